"""A deterministic market simulator for the fake exchange.

:class:`MarketSimulator` is a sans-I/O core: per pair, a seeded random walk
of the fair price (about 1 % a day) drives limit orders, cancels and market
orders against a book of ``book_levels`` levels per side, and every
:meth:`~MarketSimulator.step`
returns the Kraken v1 channel data that step produced, as
:class:`Publication` objects (``channel_name``, ``pair``, ``payloads``):
``book-<depth>`` updates for every depth, ``trade``, ``ticker``, ``spread`` and
``ohlc-<interval>``. :meth:`~MarketSimulator.snapshot` is what a new
subscriber gets first (pass it as ``snapshot_provider`` to
:func:`~kraky_anyio.testing.server.open_fake_kraken`), and :func:`run_market`
is the small async driver that publishes each step to a server::

    sim = MarketSimulator(seed=1)
    async with open_fake_kraken(snapshot_provider=sim.snapshot) as server:
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

from collections.abc import Collection
from typing import Any, Protocol

import anyio

from ..book import DEPTHS
from .market_book import Publication, timestamp
from .market_dynamics import MAX_SPREAD_TICKS, PairMarket

__all__ = ["MAX_SPREAD_TICKS", "MarketSimulator", "Publication", "run_market"]


class _Publisher(Protocol):
    async def publish(
        self, channel_name: str, pair: str | None, payload: Any, *more_payloads: Any
    ) -> int: ...


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

    def __repr__(self) -> str:
        return f"<MarketSimulator pairs={list(self._pairs)} seed={self._seed} steps={self._steps}>"

    @property
    def pairs(self) -> tuple[str, ...]:
        """The pairs simulated, in the order given."""
        return tuple(self._pairs)

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
        the channel data produced, in order, for every channel and depth
        (whether anyone is subscribed or not). A quiet step returns ``[]``."""
        dt_us = round(dt * 1_000_000)
        if dt_us < 1:
            raise ValueError("dt must be at least a microsecond")
        out: list[Publication] = []
        for market in self._pairs.values():
            out.extend(market.step(self._now_us, dt_us))
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

    def _market(self, pair: str) -> PairMarket:
        try:
            return self._pairs[pair]
        except KeyError:
            raise ValueError(f"pair {pair!r} is not simulated") from None


async def run_market(
    server: _Publisher, simulator: MarketSimulator, *, interval: float = 0.1
) -> None:
    """Step ``simulator`` every ``interval`` seconds (of ``anyio``'s clock)
    and publish what each step produced to ``server``'s subscribers, until
    cancelled. Run it in a task group its caller owns; the simulator's own
    clock moves by ``interval`` per step.

    A step's messages are queued in one go (the fake server's ``publish``
    queues without waiting), so a subscriber's snapshot always falls between
    two steps."""
    if not interval > 0:
        raise ValueError("interval must be positive")
    while True:
        await anyio.sleep(interval)
        for publication in simulator.step(interval):
            await server.publish(publication.channel_name, publication.pair, *publication.payloads)
