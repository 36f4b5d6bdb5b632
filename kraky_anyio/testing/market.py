"""A deterministic market simulator for the fake exchange, in Kraken v1 and v2.

:class:`MarketSimulator` is a sans-I/O core: per pair, a seeded random walk
of the fair price (about 1 % a day) drives limit orders, cancels and market
orders against a book of ``book_levels`` levels per side, and every
:meth:`~MarketSimulator.step`
returns the Kraken v1 channel data that step produced, as
:class:`Publication` objects (``channel_name``, ``pair``, ``payloads``):
``book-<depth>`` updates for every depth, ``trade``, ``ticker``, ``spread`` and
``ohlc-<interval>``. :meth:`~MarketSimulator.advance` returns the same and the
v2 messages of the step (:class:`V2Publication`: ``book`` per depth and
``level3`` per depth as frames written by :mod:`kraky_anyio.v2.render`,
``trade``, ``ticker`` per ``event_trigger``, ``ohlc`` per ``interval``).
:meth:`~MarketSimulator.snapshot` is what a new v1 subscriber gets first
(pass it as ``snapshot_provider`` to
:func:`~kraky_anyio.testing.server.open_fake_kraken`),
:meth:`~MarketSimulator.v2_snapshot` what a new v2 subscriber gets (pass it
as ``v2_snapshot_provider``), and :func:`run_market` is the small async driver
that publishes each step to a server, v1 and v2::

    sim = MarketSimulator(seed=1)
    async with open_fake_kraken(
        pairs=sim.pairs, snapshot_provider=sim.snapshot, v2_snapshot_provider=sim.v2_snapshot
    ) as server:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_market, server, sim)
            ...  # clients see a live, checksum-consistent market
            tg.cancel_scope.cancel()

Book updates follow what Kraken does for a ``book-<depth>`` subscriber (see
``kraken-ws-v1.md``). Each engine event (an order, a cancel, a sweep) is one
message per depth; its levels are the event's changes in order, a price may
appear several times, a zero volume deletes. A depth-D stream carries only the
changes inside the top D; a level pushed below D is not deleted (the client
truncates after each message); a delete inside the top D is followed by the
level that comes back into scope, republished as ``[price, volume, time,
"r"]`` with its original time. A message touching both sides is the
5-element form. The checksum ``"c"`` covers the top 10 of each side, which is
the same for every depth of 10 or more.

v2 follows the same rules with v2 shapes: a ``book`` update carries the
event's ``{price, qty}`` changes (a level back in scope is just a level) and
the v2 checksum; numbers are written at the pair's precision (XBT/USD, v2
``BTC/USD``: price 1 decimal, qty 8), trailing zeros kept; symbols are v2
spelled. The orders behind each level (for ``level3``) follow price-time
priority; see :mod:`kraky_anyio.testing.market_l3`.

It looks like a real market for hours on end. Each step: quotes the fair
price moved through are taken (trades at the touch, sweeping only as far as
the move); about ten random events a second (orders joining at or near the
touch, cancels, small market orders at the touch, depth refilled behind it);
then market makers quote again, so that the spread, a mean-reverting number
of ticks between 1 and :data:`MAX_SPREAD_TICKS` (about 2 on average), is
back within its target after every step, with a dense ladder of levels
behind the touch. The book is never crossed.

Everything is deterministic for a seed: no clock is read (the simulator's
time starts at ``start_time`` and moves by each step's ``dt``) and each pair
has its own ``random.Random``, so a pair's stream does not depend on the other
pairs simulated. Prices and volumes are strings (prices with the pair's fixed
decimals, volumes with 8), never floats.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

import anyio

from ..book import DEPTHS
from ..v2.params import LEVEL3_DEPTHS
from .market_book import Publication, timestamp
from .market_dynamics import MAX_SPREAD_TICKS, PairMarket
from .market_instrument import instrument_data
from .market_v2 import V2Publication, iso_time

__all__ = [
    "MAX_SPREAD_TICKS",
    "MarketSimulator",
    "Publication",
    "Step",
    "V2Publication",
    "run_market",
]


class _Publisher(Protocol):
    async def publish(
        self, channel_name: str, pair: str | None, payload: Any, *more_payloads: Any
    ) -> int: ...

    async def publish_v2(
        self,
        channel: str,
        symbol: str | None,
        data: Any,
        *,
        type: str = "update",
        params: Mapping[str, Any] | None = None,
    ) -> int: ...

    @property
    def sessions(self) -> Sequence[Any]: ...


class Step(NamedTuple):
    """What one :meth:`MarketSimulator.advance` produced: v1 and v2 messages, in order."""

    v1: list[Publication]
    v2: list[V2Publication]


class MarketSimulator:
    """A deterministic market of ``pairs``; see the module docstring.

    ``seed`` fixes everything; ``start_time`` (epoch seconds) is the
    simulator's clock before the first step; ``book_levels`` is how many
    levels each side of each book holds (Kraken's deepest subscription is
    1000); ``depths`` are the ``book-<depth>`` streams produced (each at most
    ``book_levels``). Raises ``ValueError`` for no pairs, a duplicate pair, a
    pair not spelled ``BASE/QUOTE`` or an unsupported depth.
    """

    def __init__(
        self,
        pairs: Collection[str] = ("XBT/USD", "ETH/USD"),
        seed: int = 0,
        *,
        start_time: int = 1_700_000_000,
        book_levels: int = 1000,
        depths: Collection[int] = DEPTHS,
    ) -> None:
        if isinstance(pairs, str):
            raise TypeError("pairs must be a collection of pairs, not a string")
        pairs = tuple(pairs)
        if not pairs:
            raise ValueError("a market needs at least one pair")
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"duplicate pairs in {pairs}")
        for pair in pairs:
            base, _, quote = pair.partition("/")
            if not base or not quote or "/" in quote:
                raise ValueError(f"pair must be spelled BASE/QUOTE, got {pair!r}")
        self._depths = tuple(sorted(set(depths)))
        if not self._depths or any(d not in DEPTHS or d > book_levels for d in self._depths):
            raise ValueError(
                f"depths must be some of {DEPTHS}, each at most book_levels={book_levels}"
            )
        self._seed = seed
        self._now_us = start_time * 1_000_000
        self._steps = 0
        self._pairs = {
            pair: PairMarket(pair, seed, self._depths, book_levels, self._now_us) for pair in pairs
        }
        self._symbols = {market.symbol: market for market in self._pairs.values()}
        if len(self._symbols) != len(self._pairs):
            raise ValueError(f"pairs {pairs} name the same v2 symbol twice")
        self._instrument = instrument_data(
            (m, m.v2_price(m.fair) or Decimal(1)) for m in self._pairs.values()
        )

    def __repr__(self) -> str:
        return f"<MarketSimulator pairs={list(self._pairs)} seed={self._seed} steps={self._steps}>"

    @property
    def pairs(self) -> tuple[str, ...]:
        """The pairs simulated, in the order given."""
        return tuple(self._pairs)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The pairs in v2 spelling (``XBT/USD`` is ``BTC/USD``), in the same order."""
        return tuple(self._symbols)

    @property
    def depths(self) -> tuple[int, ...]:
        """The ``book-<depth>`` streams produced, ascending."""
        return self._depths

    @property
    def steps(self) -> int:
        """How many steps have run."""
        return self._steps

    @property
    def time(self) -> str:
        """The simulator's clock, epoch seconds as Kraken spells them."""
        return timestamp(self._now_us)

    def step(self, dt: float = 0.1) -> list[Publication]:
        """Advance the market by ``dt`` seconds of its own clock and return
        the v1 channel data produced, in order, for every channel and depth
        (whether anyone is subscribed or not). A quiet step returns ``[]``."""
        return self.advance(dt, v2=False).v1

    def advance(self, dt: float = 0.1, *, v2: bool = True) -> Step:
        """:meth:`step`, returning the v2 messages of the step too (unless
        ``v2`` is false: writing them costs more than the rest of the step,
        and the market's state is the same either way). Raises
        ``ValueError`` for ``dt`` below a microsecond."""
        dt_us = round(dt * 1_000_000)
        if dt_us < 1:
            raise ValueError("dt must be at least a microsecond")
        out = Step([], [])
        for market in self._pairs.values():
            v1_out, v2_out = market.step(self._now_us, dt_us, v2)
            out.v1.extend(v1_out)
            out.v2.extend(v2_out)
        self._now_us += dt_us
        self._steps += 1
        return out

    def snapshot(self, channel_name: str, pair: str | None) -> list[Any]:
        """What a new subscriber of ``(channel_name, pair)`` gets first: for
        ``book-<depth>`` the book ``{"as": [...], "bs": [...]}`` of that depth,
        for ``ticker`` the current ticker, else nothing (also for pairs not
        simulated). The signature of the server's ``snapshot_provider``."""
        market = self._pairs.get(pair) if pair is not None else None
        if market is None:
            return []
        if channel_name == "ticker":
            return [market.ticker()]
        name, _, depth = channel_name.partition("-")
        if name == "book" and depth.isdigit():
            return [market.snapshot(int(depth))]
        return []

    def v2_snapshot(self, channel: str, symbol: str | None, params: Mapping[str, Any]) -> list[Any]:
        """What a new v2 subscriber of ``(channel, symbol)`` with ``params``
        gets first (the signature of the server's ``v2_snapshot_provider``):
        ``book``/``level3`` the frame of that ``depth`` (nothing for a depth
        not simulated), ``ticker`` the current ticker, ``trade`` the last 50
        trades (nothing before the first), ``ohlc`` the current candle of that
        ``interval``, ``instrument`` every simulated pair and its assets; else
        nothing (also for symbols not simulated)."""
        if channel == "instrument":
            return [self._instrument]
        market = self._symbols.get(symbol) if symbol is not None else None
        if market is None:
            return []
        now = self._now_us
        if channel in ("book", "level3"):
            depth = params.get("depth", 10)
            if channel == "book" and depth in self._depths:
                return [market.v2_snapshot(depth, iso_time(now))]
            if channel == "level3" and depth in self._depths and depth in LEVEL3_DEPTHS:
                return [market.level3_snapshot(depth, iso_time(now))]
            return []
        if channel == "ticker":
            return [[market.ticker_v2(now)]]
        if channel == "trade":
            return [list(market.recent_v2)] if market.recent_v2 else []
        if channel == "ohlc":
            return [[market.candle_v2(now, params.get("interval", 1))]]
        return []

    def instrument(self) -> dict[str, Any]:
        """The v2 ``instrument`` data of the simulated pairs (shared: do not change)."""
        return self._instrument

    def checksum(self, pair: str) -> int:
        """Kraken's checksum of ``pair``'s book as it stands."""
        return self._market(pair).checksum()

    def corrupt_next_checksum(self, pair: str, depth: int | None = None) -> None:
        """Make the next ``book-<depth>`` update of ``pair`` carry a wrong
        checksum (the book data stay right); ``depth=None``: the next update
        of every depth. Later updates are correct again."""
        market = self._market(pair)
        if depth is None:
            market.corrupt.update(self._depths)
        elif depth in self._depths:
            market.corrupt.add(depth)
        else:
            raise ValueError(f"depth {depth!r} is not simulated (one of {self._depths})")

    def v2_checksum(self, symbol: str, channel: str = "book") -> int:
        """Kraken's v2 ``book`` (or ``level3``) checksum of a pair's book as it
        stands; ``symbol`` in either spelling."""
        market = self._market(symbol)
        if channel == "level3":
            return market.level3_checksum()
        return market.v2_checksum()

    def corrupt_next_v2_checksum(
        self, symbol: str, depth: int | None = None, *, channel: str = "book"
    ) -> None:
        """Make the next v2 ``channel`` (``book`` or ``level3``) update of
        ``symbol`` (either spelling) of ``depth`` carry a wrong checksum;
        ``depth=None``: every depth. Raises ``ValueError`` for a pair, depth
        or channel not simulated."""
        market = self._market(symbol)
        if channel not in ("book", "level3"):
            raise ValueError(f"channel must be 'book' or 'level3', not {channel!r}")
        depths = (
            self._depths
            if channel == "book"
            else tuple(d for d in self._depths if d in LEVEL3_DEPTHS)
        )
        target = market.corrupt_v2 if channel == "book" else market.corrupt_l3
        if depth is None:
            target.update(depths)
        elif depth in depths:
            target.add(depth)
        else:
            raise ValueError(f"{channel} depth {depth!r} is not simulated (one of {depths})")

    def _market(self, pair: str) -> PairMarket:
        market = self._pairs.get(pair) or self._symbols.get(pair)
        if market is None:
            raise ValueError(f"pair {pair!r} is not simulated")
        return market


async def run_market(
    server: _Publisher, simulator: MarketSimulator, *, interval: float = 0.1
) -> None:
    """Step ``simulator`` every ``interval`` seconds (of ``anyio``'s clock)
    and publish what each step produced to ``server``'s subscribers, v1
    (``publish``) and v2 (``publish_v2``), until cancelled. Run it in a task
    group its caller owns; the simulator's own clock moves by ``interval``
    per step.

    A step's messages are queued in one go (the fake server's ``publish``
    queues without waiting), so a subscriber's snapshot always falls between
    two steps. v2 messages are written only while a v2 connection is open."""
    if not interval > 0:
        raise ValueError("interval must be positive")
    while True:
        await anyio.sleep(interval)
        v2 = any(connection.session.api == "v2" for connection in server.sessions)
        step = simulator.advance(interval, v2=v2)
        for publication in step.v1:
            await server.publish(publication.channel_name, publication.pair, *publication.payloads)
        for message in step.v2:
            await server.publish_v2(
                message.channel, message.symbol, message.data, params=message.params
            )
