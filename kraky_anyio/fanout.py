"""Fan-out: every consumer gets every message, through its own bounded buffer.

The reader task hands over each batch (all the messages one socket read
produced) with one call to :meth:`Fanout.publish`. Appending to a consumer's
buffer is synchronous; only a full buffer under the ``"block"`` policy makes
the reader wait, so the cost of an awaited hand-off is paid per batch, not per
message. Notices go in with :meth:`Fanout.publish_nowait`, which never waits.

What is bounded: each consumer's buffer holds at most ``buffer_size`` of the
reader's messages; notices are appended past the limit (they are few: one per
socket event or book resync, and books coalesce theirs).

Overflow policies, per consumer:

``"block"`` (default)
    The reader waits until the consumer has room. Nothing is lost; a slow
    consumer slows every consumer and stops the socket from being read (Kraken
    may then drop the connection). The liveness check is paused meanwhile, so a
    slow consumer never makes the connection look dead.
``"fail"``
    The consumer is given what fits, then fails: its iteration yields the
    messages buffered before the overflow and then raises
    :class:`~kraky_anyio.errors.ConsumerOverflowError`. The others go on and
    lose nothing. The consumer is gone from then on: what is published later
    reaches the other consumers, or is counted in ``stats.messages_unrouted``.

Every message is accounted for in :class:`~kraky_anyio.stats.Stats`
(delivered, still buffered, or dropped with its reason counted); the
identities are in :mod:`kraky_anyio.stats`.

Consumers read through :class:`~kraky_anyio.streams.MessageStream`
(:mod:`kraky_anyio.streams`: iteration, batches, checkpoints); this module
routes, applies the overflow policy and counts.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import anyio
from anyio.lowlevel import checkpoint

from .errors import ConsumerOverflowError
from .filters import Filter, make_filter
from .notices import Notice
from .stats import Stats
from .streams import CHECKPOINT_EVERY, ConsumerBuffer, MessageBatches, MessageStream

# Filter and make_filter live in .filters, the streams in .streams;
# re-exported for the old imports.
__all__ = [
    "CHECKPOINT_EVERY",
    "Fanout",
    "Filter",
    "MessageBatches",
    "MessageStream",
    "Overflow",
    "make_filter",
]


class Overflow(str, enum.Enum):
    BLOCK = "block"
    FAIL = "fail"


def _count_notices(batch: list[Any]) -> int:
    """How many of ``batch`` are notices. Decoded messages are exactly ``list``
    or ``dict``: counting those by type is ~5x cheaper than ``isinstance(m,
    Notice)`` on each (a miss walks the whole check), and only the rest are
    tested."""
    types = list(map(type, batch))
    data = types.count(list) + types.count(dict)
    if data == len(batch):
        return 0
    return sum(
        1
        for m, t in zip(batch, types, strict=True)
        if t is not list and t is not dict and isinstance(m, Notice)
    )


class Fanout:
    """Delivers batches to every open consumer, in order."""

    def __init__(self, stats: Stats, buffer_size: int = 1000, overflow: Overflow | str = "block"):
        if buffer_size < 1:
            raise ValueError("buffer_size must be >= 1")
        self._queues: list[ConsumerBuffer] = []
        self._stats = stats
        self.buffer_size = buffer_size
        self.overflow = Overflow(overflow)
        self._closed_with: BaseException | None = None
        self._closed = False
        self._unblocked = anyio.Event()
        self._unblocked.set()
        # The consumers the last publish woke, for yield_to_woken.
        self._woken: list[ConsumerBuffer] = []
        # The running backend's Event class: calling it directly skips
        # anyio.Event's backend lookup, a good part of a hand-off's cost.
        self._new_event: Callable[[], anyio.Event] = type(self._unblocked)

    @property
    def blocked(self) -> bool:
        """True while publish waits for a slow consumer."""
        return not self._unblocked.is_set()

    async def wait_unblocked(self) -> None:
        await self._unblocked.wait()

    @property
    def consumers(self) -> int:
        return sum(1 for q in self._queues if not q.closed)

    def open(
        self,
        filt: Filter | None = None,
        buffer_size: int | None = None,
        overflow: Overflow | str | None = None,
    ) -> MessageStream:
        if buffer_size is not None and (isinstance(buffer_size, bool) or buffer_size < 1):
            raise ValueError("buffer_size must be >= 1")
        q = ConsumerBuffer(
            self.buffer_size if buffer_size is None else buffer_size,
            Overflow(overflow) if overflow is not None else self.overflow,
            filt,
            self._stats,
            self._new_event,
        )
        if self._closed:
            q.closed = True
            q.failed = self._closed_with
        else:
            self._queues.append(q)
        return MessageStream(q, self)

    def _route(self, batch: list[Any]) -> list[tuple[ConsumerBuffer, list[Any]]]:
        """Who gets what of ``batch``; counts it in the stats."""
        stats = self._stats
        n = len(batch)
        stats.messages_published += n
        stats.notices_published += _count_notices(batch)
        offers = []
        everything = pruned = False
        for q in self._queues:
            if q.closed:
                pruned = True
            elif q.filter is None:
                offers.append((q, batch))
                everything = True
            else:
                items = [m for m in batch if q.filter(m)]
                if items:
                    offers.append((q, items))
        if pruned:
            self._queues = [q for q in self._queues if not q.closed]
        if everything:
            routed = n
        elif len(offers) < 2:
            routed = len(offers[0][1]) if offers else 0
        else:  # several filters: an item counts once however many kept it
            filters = [q.filter for q, _ in offers if q.filter is not None]
            routed = sum(1 for m in batch if any(f(m) for f in filters))
        stats.messages_routed += routed
        stats.messages_unrouted += n - routed
        return offers

    async def publish(self, batch: list[Any]) -> bool:
        """Give ``batch`` to every consumer. Waits only for a full consumer
        under the ``"block"`` policy; cancelling that wait loses the rest of
        the batch for that consumer and the ones after it (used only when the
        connection closes; counted in ``stats.messages_dropped_unread``).

        Returns True if a consumer was waiting for messages and is now woken:
        the reader then calls :meth:`yield_to_woken` so that consumer runs
        before the next read."""
        # A snapshot: a consumer opened while this publish waits must not get
        # this batch (it began before the consumer existed).
        offers = self._route(batch)
        stats = self._stats
        done = 0
        woken: list[ConsumerBuffer] = []
        self._woken = woken
        try:
            for q, items in offers:
                if q.closed:  # closed while an earlier consumer blocked us
                    stats.consumer_copies += len(items)
                    stats.messages_dropped_unread += len(items)
                elif len(q.items) + len(items) <= q.maxlen:
                    stats.consumer_copies += len(items)
                    q.items.extend(items)
                    if q.wake is not None:
                        woken.append(q)
                        q.notify()
                elif q.policy is Overflow.FAIL:
                    self._fail(q, items)
                else:
                    await self._put_blocking(q, items)
                done += 1
        except BaseException:
            lost = sum(len(i) for _, i in offers[done + 1 :])
            stats.consumer_copies += lost
            stats.messages_dropped_unread += lost
            raise
        return bool(woken)

    async def yield_to_woken(self) -> None:
        """Yield until the consumers the last :meth:`publish` woke have run
        (taken their messages), at most two scheduling points: the reader calls
        it so a handler runs before the reader goes back to the socket.

        One yield suffices on asyncio (FIFO: the woken consumer runs first).
        Trio runs the tasks that became runnable together in random order (it
        reverses each batch half the time), so after one yield the reader
        resumes first half the time and re-arms the socket before the handler
        runs (publish-to-handler p50 at 1k msgs/s: 61-63 us with one yield, 45
        with this, measured); the second yield comes after the consumer's step
        on any backend, and is skipped where the consumer already ran."""
        await checkpoint()
        if any(q.items for q in self._woken):
            await checkpoint()
        self._woken = []

    def _fail(self, q: ConsumerBuffer, items: list[Any]) -> None:
        # Notices may have pushed the buffer past its limit: room is never < 0.
        room = max(0, q.maxlen - len(q.items))
        q.items.extend(items[:room])
        q.dropped = len(items) - room
        self._stats.consumer_copies += len(items)
        self._stats.consumer_overflows += 1
        self._stats.messages_dropped_by_overflow += q.dropped
        q.failed = ConsumerOverflowError(
            f"consumer fell {q.maxlen} messages behind and was failed (overflow='fail'); "
            "it received every message up to this point",
            dropped=q.dropped,
        )
        q.closed = True
        q.notify()

    async def _put_blocking(self, q: ConsumerBuffer, items: list[Any]) -> None:
        i = 0
        try:
            while i < len(items):
                room = q.maxlen - len(q.items)
                if q.closed:
                    break
                if room > 0:
                    chunk = items[i : i + room]
                    self._stats.consumer_copies += len(chunk)
                    q.items.extend(chunk)
                    i += room
                    q.notify()
                    continue
                space = q.space = self._new_event()
                self._unblocked = self._new_event()
                try:
                    await space.wait()
                finally:
                    self._unblocked.set()
        finally:
            lost = max(0, len(items) - i)
            self._stats.consumer_copies += lost
            self._stats.messages_dropped_unread += lost

    def publish_nowait(self, item: Any) -> None:
        """Append one item (a notice) to every consumer, ignoring the limit:
        used where the reader must not wait (closing)."""
        for q, items in self._route([item]):
            self._stats.consumer_copies += 1
            q.items.extend(items)
            q.notify()

    def close(self, error: BaseException | None = None) -> None:
        """End every stream: iteration drains the buffer, then stops (or raises
        ``error``). Later :meth:`open` calls get an ended stream."""
        self._closed = True
        self._closed_with = error
        for q in self._queues:
            if error is not None and q.failed is None:
                q.failed = error
            q.closed = True
            q.notify()
            q.notify_space()
        self._queues = []
