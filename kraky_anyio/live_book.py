"""A checksum-verified order book kept up to date on a connection.

``async with conn.book("XBT/USD", depth=10) as book`` (which calls
:func:`open_book`) subscribes, keeps the book live and unsubscribes on exit.
The book's sans-I/O side is an *engine* (:mod:`kraky_anyio.book_engine`) that
applies each message and returns a verdict; this module owns the tasks, the
subscription and the resync policy. It does not import the connection: it
needs only what :class:`BookConnection` describes, and publishes its notices
through the ``notify`` callable it is given.

Task tree (every task has a visible owner)::

    async with open_book(...)       the caller's task: subscribes, then runs the body;
    └── task group (the book's)     owned by the ``async with``, ended on exit
        ├── feed                    reads the book's message stream, applies each
        │                           message to the engine, decides on resyncs
        └── resubscribe             at most one, started by feed on demand:
                                    backs off, unsubscribes + subscribes the pair

* ``async for state in book`` wakes once per *valid state newer than the last
  one seen*: a slow consumer never sees a torn book and never blocks the
  connection; updates coalesce and it wakes with the latest.
* A checksum mismatch or a malformed message invalidates the book and that
  pair alone is unsubscribed and subscribed again, in the background. A
  mismatch *storm* (each new snapshot failing again, with no valid update in
  between) is backed off per :class:`ResyncPolicy`: the first resync is
  immediate, the next ones wait 1, 2, 4 ... s up to 60 s, each jittered to
  between half and all of it. Validation is never switched off (unlike
  NautilusTrader's "off after 3 mismatches"): this book promises verified
  states, so it stays invalid rather than serve an unverified one.
* One :class:`~kraky_anyio.notices.BookResync` notice per *episode* and
  reason: an episode runs from the first drop of a healthy book until a valid
  update has been applied again. A drop for the same reason as the episode's
  last notice is counted (``resyncs``, ``checksum_mismatches``,
  ``malformed``) and logged, not notified, so a storm cannot flood a
  consumer's buffer; a drop for another reason (a reconnect during a checksum
  episode) is notified.
* When the socket drops the book is invalid at once; the connection's replay
  restores the subscription and the new snapshot rebuilds it.
* Leaving the block (also while disconnected or during a resync) ends both
  tasks, then always unsubscribes, shielded and bounded by ``exit_timeout``, so
  the pair leaves the connection's replay set and the same book can be opened
  again.

One book per ``(pair, depth)`` on a connection: Kraken answers a second
subscribe with ``Already subscribed``.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import anyio
import anyio.abc

from ._taskgroup import task_group
from .book import Level
from .book_engine import BookEngine, BookView, V1BookEngine, Verdict
from .errors import KrakenError, KrakyError
from .fanout import MessageStream
from .notices import BookResync, Connected, Disconnected, Notice

__all__ = ["BookConnection", "LiveBook", "ResyncPolicy", "open_book", "open_live_book"]

log = logging.getLogger("kraky_anyio")


class BookConnection(Protocol):
    """What a live book needs from a connection (``KrakenConnection`` has it)."""

    @property
    def connected(self) -> bool: ...

    def messages(self, *, channel: str, pair: str, overflow: str) -> MessageStream: ...

    async def subscribe(self, subscription: Mapping[str, Any], pair: list[str]) -> object: ...

    async def unsubscribe(self, subscription: Mapping[str, Any], pair: list[str]) -> object: ...

    async def wait_connected(self) -> None: ...


@dataclass(frozen=True)
class ResyncPolicy:
    """How repeated resyncs of one book are spaced.

    The ``n``-th resync in a row (no valid update since the previous one)
    waits 0 s for ``n <= immediate``, else ``base_delay * 2**(n - immediate - 1)``
    capped at ``max_delay``, jittered to between half and all of it.
    """

    immediate: int = 1
    base_delay: float = 1.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.immediate < 0 or not 0 < self.base_delay <= self.max_delay:
            raise ValueError("need immediate >= 0 and 0 < base_delay <= max_delay")

    def delay(self, n: int, rng: random.Random) -> float:
        if n <= self.immediate:
            return 0.0
        step = min(n - self.immediate - 1, 64)
        return min(self.max_delay, self.base_delay * 2.0**step) * rng.uniform(0.5, 1.0)


class LiveBook:
    """The live view of one pair's book; get it from ``conn.book()``."""

    def __init__(
        self,
        conn: BookConnection,
        engine: BookEngine,
        notify: Callable[[Notice], None],
        policy: ResyncPolicy,
        rng: random.Random,
    ) -> None:
        self._conn = conn
        self._engine = engine
        self._notify = notify
        self._policy = policy
        self._rng = rng
        self._changed = anyio.Event()
        self._seen = -1
        self._resyncing = False
        # The reason of the last BookResync sent, until a valid update ends
        # the episode (None: no episode).
        self._episode: str | None = None
        self._streak = 0  # resyncs since the last valid update
        self.checksum_mismatches = 0
        self.malformed = 0

    def __repr__(self) -> str:
        return f"<LiveBook {self._engine!r}>"

    # -- reading -------------------------------------------------------------

    @property
    def engine(self) -> BookEngine:
        return self._engine

    @property
    def book(self) -> BookView:
        """The underlying sans-I/O book (read it; do not feed it)."""
        return self._engine.book

    @property
    def pair(self) -> str:
        return self._engine.pair

    @property
    def depth(self) -> int:
        return self._engine.depth

    @property
    def valid(self) -> bool:
        """True while the book matches Kraken's last checksum."""
        return self.book.valid

    @property
    def resyncs(self) -> int:
        """How many times the book was dropped and rebuilt."""
        return self.book.resyncs

    @property
    def version(self) -> int:
        return self.book.version

    @property
    def bids(self) -> tuple[Level, ...]:
        return self.book.bids

    @property
    def asks(self) -> tuple[Level, ...]:
        return self.book.asks

    @property
    def best_bid(self) -> Level | None:
        return self.book.best_bid

    @property
    def best_ask(self) -> Level | None:
        return self.book.best_ask

    @property
    def spread(self) -> Decimal | None:
        return self.book.spread

    @property
    def mid(self) -> Decimal | None:
        return self.book.mid

    def __aiter__(self) -> LiveBook:
        return self

    async def __anext__(self) -> BookView:
        """Wait for a valid state newer than the last one returned."""
        book = self.book
        while not (book.valid and book.version > self._seen):
            await self._changed.wait()
            book = self.book
        self._seen = book.version
        return book

    async def wait_valid(self) -> None:
        """Wait until the book holds a verified state (not bounded in time)."""
        while not self.book.valid:
            await self._changed.wait()

    # -- maintenance (the feed task) -------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def feed(self, stream: MessageStream, tg: anyio.abc.TaskGroup) -> None:
        """The feed task (run by :func:`open_live_book`): apply ``stream`` to
        the engine until it ends; resync tasks start in ``tg``."""
        apply = self._engine.apply
        async for msg in stream:
            if isinstance(msg, (Disconnected, Connected)):
                # The book is stale from the moment the socket is gone.
                if self.book.valid:
                    self._drop("reconnect")
                continue
            verdict = apply(msg)
            if verdict is Verdict.APPLIED:
                self._streak = 0
                self._episode = None
                self._wake()
            elif verdict is Verdict.SNAPSHOT:
                self._wake()
            elif verdict is Verdict.MISMATCH:
                self.checksum_mismatches += 1
                self._resync(tg, "checksum")
            elif verdict is Verdict.MALFORMED:
                self.malformed += 1
                self._resync(tg, "malformed")

    def _drop(self, reason: str) -> None:
        self._engine.reset()
        if self._episode != reason:
            self._episode = reason
            self._notify(BookResync(self.pair, self.depth, reason))
        self._wake()

    def _resync(self, tg: anyio.abc.TaskGroup, reason: str) -> None:
        self._drop(reason)
        if not self._resyncing:
            self._resyncing = True
            self._streak += 1
            tg.start_soon(self._resubscribe, self._policy.delay(self._streak, self._rng))

    async def _resubscribe(self, delay: float) -> None:
        """Wait ``delay``, then unsubscribe and subscribe this pair again until
        it worked; failed rounds back off like repeated resyncs."""
        sub, pairs = self._engine.subscription, [self.pair]
        failures = 0
        try:
            while True:
                if delay:
                    log.info("book %s: resubscribing in %.1f s", self.pair, delay)
                    await anyio.sleep(delay)
                try:
                    # "Subscription Not Found" means there is nothing to undo.
                    with contextlib.suppress(KrakenError):
                        await self._conn.unsubscribe(sub, pairs)
                    await self._conn.subscribe(sub, pairs)
                    return
                except KrakyError as exc:
                    log.warning("book %s: resubscribe failed (%s); retrying", self.pair, exc)
                    failures += 1
                    delay = self._policy.delay(failures + self._policy.immediate, self._rng)
                    await self._conn.wait_connected()
        finally:
            self._resyncing = False


async def _unsubscribe_bounded(conn: BookConnection, engine: BookEngine, bound: float) -> None:
    # Shielded: runs while the caller is being cancelled. Bounded: a server
    # that never answers cannot hold the exit. While disconnected the
    # connection settles it locally (drops it from the replay set).
    with anyio.move_on_after(bound, shield=True):
        try:
            await conn.unsubscribe(engine.subscription, [engine.pair])
        except KrakyError as exc:
            log.warning("book %s: unsubscribe on exit failed: %s", engine.pair, exc)


@asynccontextmanager
async def open_live_book(
    conn: BookConnection,
    engine: BookEngine,
    *,
    notify: Callable[[Notice], None],
    policy: ResyncPolicy | None = None,
    rng: random.Random | None = None,
    exit_timeout: float = 10.0,
) -> AsyncIterator[LiveBook]:
    """Keep ``engine``'s book live on ``conn`` for the block (see the module
    docstring). Entering waits for the subscribe reply and raises like
    ``conn.subscribe()``; ``notify`` receives each :class:`BookResync`.
    Exiting waits at most ``exit_timeout`` seconds for the unsubscribe."""
    live = LiveBook(conn, engine, notify, policy or ResyncPolicy(), rng or random.Random())
    # Always "block": the feed task never lags for long, and a book must not
    # lose an update (it would fail its next checksum).
    stream = conn.messages(channel=engine.channel, pair=engine.pair, overflow="block")
    undo = False
    async with stream:
        try:
            # The group is cancelled when the body ends: feed and resubscribe
            # stop first, so nothing subscribes after the unsubscribe below.
            async with task_group() as tg:
                tg.start_soon(live.feed, stream, tg)
                try:
                    # Cancelled, timed out or lost with the subscribe possibly
                    # on the wire: undo it, or the server would keep a book
                    # nobody reads. A KrakenError is a rejection: nothing to
                    # undo ("Already subscribed" is someone else's).
                    undo = True
                    await conn.subscribe(engine.subscription, [engine.pair])
                except KrakenError:
                    undo = False
                    raise
                yield live
        finally:
            if undo:
                await _unsubscribe_bounded(conn, engine, exit_timeout)


def open_book(
    conn: BookConnection,
    pair: str,
    depth: int = 10,
    *,
    notify: Callable[[Notice], None],
    policy: ResyncPolicy | None = None,
    rng: random.Random | None = None,
    exit_timeout: float = 10.0,
) -> contextlib.AbstractAsyncContextManager[LiveBook]:
    """A live v1 ``book-<depth>`` of ``pair`` (what ``conn.book()`` returns).
    ``ValueError`` at once for a depth other than 10, 25, 100, 500, 1000."""
    return open_live_book(
        conn,
        V1BookEngine(pair, depth),
        notify=notify,
        policy=policy,
        rng=rng,
        exit_timeout=exit_timeout,
    )
