"""The simulated full book of one pair and what each ``book-<depth>``
subscriber is sent, the way Kraken does (see :mod:`kraky_anyio.testing.market`
for the rules and the market that drives it)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Any, NamedTuple

from ..book import CHECKSUM_DEPTH, checksum

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

    __slots__ = ("depth", "have", "out")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.have: dict[int, int] = {}
        self.out: list[list[str]] = []


class BookSide:
    """One side of the full book; prices in integer units of the pair's decimals."""

    __slots__ = ("keys", "levels", "sign", "views")

    def __init__(self, is_bids: bool, depths: Iterable[int]) -> None:
        self.sign = -1 if is_bids else 1
        self.keys: list[int] = []  # sign * price, ascending: best first
        # price -> (volume, [price, volume, time] as sent)
        self.levels: dict[int, tuple[int, list[str]]] = {}
        self.views = [DepthView(d) for d in depths]

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

    def __init__(self, name: str, decimals: int, depths: Iterable[int], book_levels: int) -> None:
        self.name = name
        self.decimals = decimals
        self.scale = 10**decimals
        self.book_levels = book_levels
        self.asks = BookSide(False, depths)
        self.bids = BookSide(True, depths)
        #: Depths whose next update carries a wrong checksum.
        self.corrupt: set[int] = set()

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

    # -- the full book and its depth views ----------------------------------

    def set_level(self, side: BookSide, price: int, volume: int, ts: str) -> None:
        """One change of the full book (volume 0 deletes), mirrored into every
        depth view as what Kraken would send its subscriber."""
        levels = side.levels
        key = price * side.sign
        if volume <= 0:
            if price not in levels:
                return
            del side.keys[bisect_left(side.keys, key)]
            del levels[price]
            deleted = [self.price(price), ZERO_VOLUME, ts]
            for view in side.views:
                if price not in view.have:
                    continue
                del view.have[price]
                view.out.append(deleted)
                if len(side) >= view.depth:
                    back = side.price_at(view.depth - 1)  # back in scope
                    back_volume, back_level = levels[back]
                    if view.have.get(back) != back_volume:
                        view.have[back] = back_volume
                        view.out.append([*back_level, "r"])
            return
        if price not in levels:
            side.keys.insert(bisect_left(side.keys, key), key)
        level = [self.price(price), volume_text(volume), ts]
        levels[price] = (volume, level)
        rank = bisect_left(side.keys, key)
        for view in side.views:
            if rank < view.depth:
                view.have[price] = volume
                view.out.append(level)

    def publish_event(self, out: list[Publication]) -> None:
        """Close one engine event: one message per depth that saw a change
        into ``out``, then views and book truncated."""
        crc: int | None = None
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
            if crc is None:
                crc = self.checksum()
            c = crc
            if ask_view.depth in self.corrupt:
                self.corrupt.discard(ask_view.depth)
                c = (crc + 1) % 2**32
            payloads: tuple[dict[str, Any], ...]
            if ask_view.out and bid_view.out:
                payloads = ({"a": ask_view.out}, {"b": bid_view.out, "c": str(c)})
            elif ask_view.out:
                payloads = ({"a": ask_view.out, "c": str(c)},)
            else:
                payloads = ({"b": bid_view.out, "c": str(c)},)
            ask_view.out = []
            bid_view.out = []
            out.append(Publication(f"book-{ask_view.depth}", self.name, payloads))
        for side in (self.asks, self.bids):
            while len(side) > self.book_levels:
                del side.levels[side.keys.pop() * side.sign]

    def top_of_book(self) -> tuple[int | None, ...]:
        ask, bid = self.asks.best(), self.bids.best()
        return (
            ask,
            None if ask is None else self.asks.levels[ask][0],
            bid,
            None if bid is None else self.bids.levels[bid][0],
        )
