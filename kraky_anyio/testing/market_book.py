"""The simulated full book of one pair and what each ``book-<depth>`` (v1)
and ``book`` (v2) subscriber is sent, the way Kraken does (see
:mod:`kraky_anyio.testing.market` for the rules and the market that drives
it); the orders behind the levels, for ``level3``, are
:mod:`kraky_anyio.testing.market_l3`'s. v2 frames are written by
:mod:`kraky_anyio.v2.render`, at the pair's precision, with the v2 checksums."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, NamedTuple
from zlib import crc32

from ..book import CHECKSUM_DEPTH, checksum
from ..v2 import render
from ..v2.params import LEVEL3_DEPTHS
from .market_l3 import OrderQueues
from .market_v2 import V2Publication, iso_time, v1_to_iso
from .v2_messages import v2_symbol

__all__ = [
    "VOLUME_SCALE",
    "ZERO_VOLUME",
    "BookSide",
    "DepthView",
    "Publication",
    "SimulatedBook",
    "timestamp",
    "volume_text",
]

VOLUME_SCALE = 10**8
ZERO_VOLUME = "0.00000000"
#: Every v2 quantity has 8 decimals.
QTY_PRECISION = 8


class Publication(NamedTuple):
    """One channel-data message: ``server.publish(channel_name, pair, *payloads)``.

    ``payloads`` holds one payload, or two for the 5-element book update
    (asks, then bids with the checksum).
    """

    channel_name: str
    pair: str
    payloads: tuple[Any, ...]

    def message(self, channel_id: int = 0) -> list[Any]:
        """The message as Kraken frames it: ``[channelID, *payloads, channelName, pair]``."""
        return [channel_id, *self.payloads, self.channel_name, self.pair]


def timestamp(us: int) -> str:
    """Microseconds since the epoch as Kraken spells a time."""
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def volume_text(units: int) -> str:
    """A volume in units of 1e-8 with Kraken's 8 decimals."""
    return f"{units // VOLUME_SCALE}.{units % VOLUME_SCALE:08d}"


class DepthView:
    """What a ``book-<depth>`` subscriber holds, to know what to send it.

    Between messages ``have`` is exactly the top ``depth`` of the full book
    (price -> volume). During a message it may also hold levels pushed below
    ``depth`` (the subscriber truncates only after the message), and it stays
    a subset of the full book: a delete of any level it holds is sent.
    """

    __slots__ = ("changes", "depth", "have", "out")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.have: dict[int, int] = {}
        self.out: list[list[str]] = []  # v1 levels
        self.changes: list[tuple[int, int]] = []  # the same as (price, volume), for v2


class BookSide:
    """One side of the full book; prices in integer units of the pair's decimals."""

    __slots__ = ("keys", "l3", "levels", "sign", "views")

    def __init__(self, is_bids: bool, depths: Iterable[int], l3: OrderQueues) -> None:
        self.sign = -1 if is_bids else 1
        self.keys: list[int] = []  # sign * price, ascending: best first
        # price -> (volume, [price, volume, time] as sent)
        self.levels: dict[int, tuple[int, list[str]]] = {}
        self.views = [DepthView(d) for d in depths]
        self.l3 = l3

    def __len__(self) -> int:
        return len(self.keys)

    def price_at(self, rank: int) -> int:
        return self.keys[rank] * self.sign

    def best(self) -> int | None:
        return self.keys[0] * self.sign if self.keys else None


class SimulatedBook:
    """The full book of one pair (prices in integer units of its decimals,
    volumes in units of 1e-8) and, for each simulated depth, what a
    ``book-<depth>`` subscriber holds and is sent. The market's dynamics
    (:mod:`kraky_anyio.testing.market`) change it with :meth:`set_level`
    and close each engine event with :meth:`publish_event`."""

    def __init__(
        self, name: str, seed: int, decimals: int, depths: tuple[int, ...], book_levels: int
    ) -> None:
        self.name = name
        self.symbol = v2_symbol(name)
        self.decimals = decimals
        self.scale = 10**decimals
        self.book_levels = book_levels
        l3_depths = tuple(d for d in depths if d in LEVEL3_DEPTHS)
        self.asks = BookSide(False, depths, OrderQueues(name, seed, False, l3_depths))
        self.bids = BookSide(True, depths, OrderQueues(name, seed, True, l3_depths))
        #: Depths whose next update carries a wrong checksum (v1; v2 ``book``; ``level3``).
        self.corrupt: set[int] = set()
        self.corrupt_v2: set[int] = set()
        self.corrupt_l3: set[int] = set()
        #: The price step, in units; v2 prices have this many decimals.
        self.tick = 1
        self.price_precision = decimals

    def v2_price(self, units: int) -> Decimal:
        """A price (a multiple of the tick) at the pair's ``price_precision``."""
        return Decimal(units // self.tick).scaleb(-self.price_precision)

    def price(self, units: int) -> str:
        return f"{units // self.scale}.{units % self.scale:0{self.decimals}d}"

    def top(self, side: BookSide, depth: int) -> list[list[str]]:
        """``[price, volume, time]`` of the best ``depth`` levels (shared: copy
        before handing out)."""
        levels = side.levels
        return [levels[price][1] for price in map(side.price_at, range(min(depth, len(side))))]

    def snapshot(self, depth: int) -> dict[str, Any]:
        return {
            "as": [list(level) for level in self.top(self.asks, depth)],
            "bs": [list(level) for level in self.top(self.bids, depth)],
        }

    def checksum(self) -> int:
        top = CHECKSUM_DEPTH
        return checksum(self.top(self.asks, top), self.top(self.bids, top))

    # -- v2 ----------------------------------------------------------------------

    def _v2_levels(self, side: BookSide, depth: int) -> list[tuple[Decimal, Decimal]]:
        levels = side.levels
        return [
            (self.v2_price(p), Decimal(levels[p][0]).scaleb(-QTY_PRECISION))
            for p in map(side.price_at, range(min(depth, len(side))))
        ]

    def _v2_orders(self, side: BookSide, depth: int) -> list[list[render.Order]]:
        return [
            [
                (str(o[0]), price, Decimal(o[1]).scaleb(-QTY_PRECISION), v1_to_iso(o[2]))
                for o in queue
            ]
            for price, queue in ((self.v2_price(p), q) for p, q in side.l3.top(side, depth))
        ]

    # A v2 checksum's text of a number written at its precision, with the "."
    # removed and leading zeros stripped, is the decimal text of the integer
    # count of its last digit (27000.1 -> "270001", 0.00100000 -> "100000"):
    # so the simulator sums integers, cheaply, what kraky_anyio.v2.render
    # (the frames) and the client's books compute from the numbers' text;
    # the tests hold the two equal.

    def v2_checksum(self) -> int:
        """The v2 ``book`` checksum of the book as it stands."""
        tick = self.tick
        text: list[str] = []
        for side in (self.asks, self.bids):
            levels = side.levels
            for p in map(side.price_at, range(min(CHECKSUM_DEPTH, len(side)))):
                text.append(f"{p // tick}{levels[p][0]}")
        return crc32("".join(text).encode())

    def level3_checksum(self) -> int:
        """The v2 ``level3`` checksum of the book as it stands."""
        tick = self.tick
        text: list[str] = []
        for side in (self.asks, self.bids):
            for p, queue in side.l3.top(side, CHECKSUM_DEPTH):
                price = p // tick
                text.extend(f"{price}{order[1]}" for order in queue)
        return crc32("".join(text).encode())

    def v2_snapshot(self, depth: int, ts: str) -> bytes:
        """The v2 ``book`` snapshot frame of ``depth`` levels."""
        return render.book_frame(
            "snapshot",
            self.symbol,
            self._v2_levels(self.asks, depth),
            self._v2_levels(self.bids, depth),
            self.v2_checksum(),
            price_precision=self.price_precision,
            qty_precision=QTY_PRECISION,
            timestamp=ts,
        )

    def level3_snapshot(self, depth: int, ts: str) -> bytes:
        """The v2 ``level3`` snapshot frame of ``depth`` price levels."""
        return render.level3_frame(
            "snapshot",
            self.symbol,
            [o for q in self._v2_orders(self.asks, depth) for o in q],
            [o for q in self._v2_orders(self.bids, depth) for o in q],
            self.level3_checksum(),
            price_precision=self.price_precision,
            qty_precision=QTY_PRECISION,
            timestamp=ts,
        )

    # -- the full book and its depth views ----------------------------------

    def set_level(
        self, side: BookSide, price: int, volume: int, ts: str, *, fill: bool = False
    ) -> None:
        """One change of the full book (volume 0 deletes), mirrored into every
        depth view as what Kraken would send its subscriber, and into the
        orders behind the level (``fill``: the change is a trade's)."""
        levels = side.levels
        key = price * side.sign
        if volume <= 0:
            if price not in levels:
                return
            old = levels[price][0]
            del side.keys[bisect_left(side.keys, key)]
            del levels[price]
            deleted = [self.price(price), ZERO_VOLUME, ts]
            for view in side.views:
                if price not in view.have:
                    continue
                del view.have[price]
                view.out.append(deleted)
                view.changes.append((price, 0))
                if len(side) >= view.depth:
                    back = side.price_at(view.depth - 1)  # back in scope
                    back_volume, back_level = levels[back]
                    if view.have.get(back) != back_volume:
                        view.have[back] = back_volume
                        view.out.append([*back_level, "r"])
                        view.changes.append((back, back_volume))
            side.l3.change(side, price, old, 0, ts, fill)
            return
        old = 0
        if price in levels:
            old = levels[price][0]
        else:
            side.keys.insert(bisect_left(side.keys, key), key)
        level = [self.price(price), volume_text(volume), ts]
        levels[price] = (volume, level)
        rank = bisect_left(side.keys, key)
        for view in side.views:
            if rank < view.depth:
                view.have[price] = volume
                view.out.append(level)
                view.changes.append((price, volume))
        side.l3.change(side, price, old, volume, ts, fill)

    def publish_event(
        self, out: list[Publication], out_v2: list[V2Publication] | None, us: int
    ) -> None:
        """Close one engine event at ``us``: one message per depth that saw a
        change into ``out`` (v1) and ``out_v2`` (v2 ``book`` and ``level3``;
        None: no v2 wanted), then views and book truncated."""
        crc: int | None = None
        crc2: int | None = None
        iso = iso_time(us)
        for ask_view, bid_view in zip(self.asks.views, self.bids.views, strict=True):
            for side, view in ((self.asks, ask_view), (self.bids, bid_view)):
                extra = len(view.have) - min(view.depth, len(side))
                rank = view.depth
                while extra > 0:  # levels pushed below the depth, all within reach
                    price = side.price_at(rank)
                    rank += 1
                    if view.have.pop(price, None) is not None:
                        extra -= 1
            if not ask_view.out and not bid_view.out:
                continue
            depth = ask_view.depth
            if crc is None:
                crc = self.checksum()
                crc2 = None if out_v2 is None else self.v2_checksum()
            c = crc
            if depth in self.corrupt:
                self.corrupt.discard(depth)
                c = (crc + 1) % 2**32
            payloads: tuple[dict[str, Any], ...]
            if ask_view.out and bid_view.out:
                payloads = ({"a": ask_view.out}, {"b": bid_view.out, "c": str(c)})
            elif ask_view.out:
                payloads = ({"a": ask_view.out, "c": str(c)},)
            else:
                payloads = ({"b": bid_view.out, "c": str(c)},)
            out.append(Publication(f"book-{depth}", self.name, payloads))
            if out_v2 is None or crc2 is None:
                ask_view.out, ask_view.changes = [], []
                bid_view.out, bid_view.changes = [], []
                continue
            c2 = crc2
            if depth in self.corrupt_v2:
                self.corrupt_v2.discard(depth)
                c2 = (crc2 + 1) % 2**32
            frame = render.book_frame(
                "update",
                self.symbol,
                [
                    (self.v2_price(p), Decimal(v).scaleb(-QTY_PRECISION))
                    for p, v in ask_view.changes
                ],
                [
                    (self.v2_price(p), Decimal(v).scaleb(-QTY_PRECISION))
                    for p, v in bid_view.changes
                ],
                c2,
                price_precision=self.price_precision,
                qty_precision=QTY_PRECISION,
                timestamp=iso,
            )
            out_v2.append(V2Publication("book", self.symbol, frame, {"depth": depth}))
            ask_view.out, ask_view.changes = [], []
            bid_view.out, bid_view.changes = [], []
        self._publish_level3(out_v2, iso)
        for side in (self.asks, self.bids):
            while len(side) > self.book_levels:
                price = side.keys.pop() * side.sign
                del side.levels[price]
                side.l3.drop_level(price)

    def _publish_level3(self, out_v2: list[V2Publication] | None, iso: str) -> None:
        asks, bids = self.asks.l3, self.bids.l3
        crc: int | None = None
        for ask_view, bid_view in zip(asks.views, bids.views, strict=True):
            out_asks, out_bids = ask_view.out, bid_view.out
            ask_view.out, bid_view.out = [], []
            if out_v2 is None or (not out_asks and not out_bids):
                continue
            depth = ask_view.depth
            if crc is None:
                asks.end_event(self.asks)
                bids.end_event(self.bids)
                crc = self.level3_checksum()
            c = crc
            if depth in self.corrupt_l3:
                self.corrupt_l3.discard(depth)
                c = (crc + 1) % 2**32
            frame = render.level3_frame(
                "update",
                self.symbol,
                [self._l3_event(e) for e in out_asks],
                [self._l3_event(e) for e in out_bids],
                c,
                price_precision=self.price_precision,
                qty_precision=QTY_PRECISION,
                timestamp=iso,
            )
            out_v2.append(V2Publication("level3", self.symbol, frame, {"depth": depth}))
        if crc is None:
            asks.end_event(self.asks)
            bids.end_event(self.bids)

    def _l3_event(
        self, event: tuple[str, str, int, int, str]
    ) -> tuple[str, str, Decimal, Decimal, str]:
        kind, oid, price, qty, ts = event
        return (kind, oid, self.v2_price(price), Decimal(qty).scaleb(-QTY_PRECISION), v1_to_iso(ts))

    def top_of_book(self) -> tuple[int | None, ...]:
        ask, bid = self.asks.best(), self.bids.best()
        return (
            ask,
            None if ask is None else self.asks.levels[ask][0],
            bid,
            None if bid is None else self.bids.levels[bid][0],
        )
