"""A checksum-verified order book kept up to date on a connection.

``async with conn.book("XBT/USD", depth=10) as book`` subscribes, starts one
task (owned by the ``async with``) that feeds every ``book-<depth>`` message of
the pair into a sans-I/O :class:`~kraky_anyio.book.OrderBook`, and
unsubscribes on exit.

* Iterating ``async for state in book`` wakes once per *verified state newer
  than the last one seen*: a slow consumer never sees a torn book and never
  blocks the connection; updates coalesce and it wakes with the latest.
* On a checksum mismatch (or a malformed book message) the book is marked
  invalid, a :class:`~kraky_anyio.notices.BookResync` notice goes into the
  connection's message streams, and that pair alone is unsubscribed and
  subscribed again (in the background, so the connection keeps flowing); the
  new snapshot rebuilds it. Other books are untouched.
* When the socket drops the book is invalid at once; after the reconnect the
  connection's replay restores the subscription and the new snapshot
  rebuilds the book (no extra subscribe).

One book per ``(pair, depth)`` on a connection: Kraken answers a second
subscribe with ``Already subscribed``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio

from ._taskgroup import task_group
from .book import Level, OrderBook
from .errors import BookError, ChecksumMismatchError, KrakenError, KrakyError
from .notices import BookResync, Connected, Disconnected

if TYPE_CHECKING:
    from .connection import KrakenConnection

log = logging.getLogger("kraky_anyio")


class LiveBook:
    """The live view of one pair's book; get it from ``conn.book()``."""

    def __init__(self, conn: KrakenConnection, pair: str, depth: int) -> None:
        self._conn = conn
        self._book = OrderBook(pair, depth)
        self._subscription: dict[str, Any] = {"name": "book", "depth": depth}
        self._changed = anyio.Event()
        self._seen = -1
        self._resyncing = False
        self._has_state = False
        self.checksum_mismatches = 0
        self.malformed = 0

    def __repr__(self) -> str:
        return f"<LiveBook {self._book!r}>"

    # -- reading -------------------------------------------------------------

    @property
    def book(self) -> OrderBook:
        """The underlying sans-I/O book (read it; do not feed it)."""
        return self._book

    @property
    def pair(self) -> str:
        return self._book.pair

    @property
    def depth(self) -> int:
        return self._book.depth

    @property
    def valid(self) -> bool:
        """True while the book matches Kraken's last checksum."""
        return self._book.valid

    @property
    def resyncs(self) -> int:
        """How many times the book was dropped and rebuilt."""
        return self._book.resyncs

    @property
    def version(self) -> int:
        return self._book.version

    @property
    def bids(self) -> tuple[Level, ...]:
        return self._book.bids

    @property
    def asks(self) -> tuple[Level, ...]:
        return self._book.asks

    @property
    def best_bid(self) -> Level | None:
        return self._book.best_bid

    @property
    def best_ask(self) -> Level | None:
        return self._book.best_ask

    @property
    def spread(self) -> Decimal | None:
        return self._book.spread

    @property
    def mid(self) -> Decimal | None:
        return self._book.mid

    def __aiter__(self) -> LiveBook:
        return self

    async def __anext__(self) -> OrderBook:
        """Wait for a valid state newer than the last one returned."""
        while not (self._book.valid and self._book.version > self._seen):
            await self._changed.wait()
        self._seen = self._book.version
        return self._book

    async def wait_valid(self) -> None:
        """Wait until the book holds a verified state (not bounded in time)."""
        while not self._book.valid:
            await self._changed.wait()

    # -- maintenance (the book's own task) ------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _run(self, stream: Any, tg: anyio.abc.TaskGroup) -> None:
        async for msg in stream:
            if isinstance(msg, (Disconnected, Connected)):
                # The book is stale from the moment the socket is gone.
                if self._has_state:
                    self._drop("reconnect")
                continue
            if not isinstance(msg, list):
                continue
            try:
                self._book.feed(msg)
            except ChecksumMismatchError as exc:
                self.checksum_mismatches += 1
                log.warning("%s", exc)
                self._resync(tg, "checksum")
                continue
            except BookError as exc:
                if not self._has_state:
                    continue  # stale data of the old subscription, before the snapshot
                self.malformed += 1
                log.warning("book %s: %s", self.pair, exc)
                self._resync(tg, "malformed")
                continue
            self._has_state = True
            self._wake()

    def _drop(self, reason: str) -> None:
        self._has_state = False
        self._book.reset(resync=True)
        self._conn._fanout.publish_nowait(BookResync(self.pair, self.depth, reason))
        self._wake()

    def _resync(self, tg: anyio.abc.TaskGroup, reason: str) -> None:
        self._drop(reason)
        if not self._resyncing:
            self._resyncing = True
            tg.start_soon(self._resubscribe)

    async def _resubscribe(self) -> None:
        """Unsubscribe and subscribe this pair again, until it worked; failed
        rounds back off from 1 s up to 30 s."""
        pause = 1.0
        try:
            while True:
                try:
                    # "Subscription Not Found" means there is nothing to undo.
                    with contextlib.suppress(KrakenError):
                        await self._conn.unsubscribe(self._subscription, [self.pair])
                    await self._conn.subscribe(self._subscription, [self.pair])
                    return
                except KrakyError as exc:
                    log.warning("book %s: resubscribe failed (%s); retrying", self.pair, exc)
                    await anyio.sleep(pause)
                    pause = min(30.0, pause * 2)
                    await self._conn.wait_connected()
        finally:
            self._resyncing = False


@asynccontextmanager
async def open_book(conn: KrakenConnection, pair: str, depth: int = 10) -> AsyncIterator[LiveBook]:
    """See :meth:`KrakenConnection.book`."""
    live = LiveBook(conn, pair, depth)
    # Always "block": the book task never lags for long, and a book must not
    # lose an update (it would fail its next checksum).
    stream = conn.messages(channel=f"book-{depth}", pair=pair, overflow="block")
    async with stream, task_group() as tg:
        tg.start_soon(live._run, stream, tg)
        try:
            await conn.subscribe(live._subscription, [pair])
        except BaseException as exc:
            # Cancelled, timed out or lost with the subscribe possibly on the
            # wire: undo it, or the server would keep a book nobody reads. (A
            # KrakenError is a rejection: nothing to undo, and "Already
            # subscribed" means the subscription is someone else's.)
            if conn.connected and not isinstance(exc, KrakenError):
                with anyio.move_on_after(conn.reply_timeout, shield=True):
                    with contextlib.suppress(KrakyError):
                        await conn.unsubscribe(live._subscription, [pair])
            raise
        try:
            yield live
        finally:
            if conn.connected:
                with anyio.move_on_after(conn.reply_timeout, shield=True):
                    try:
                        await conn.unsubscribe(live._subscription, [pair])
                    except KrakyError as exc:
                        log.warning("book %s: unsubscribe on exit failed: %s", pair, exc)
