"""Consumer streams: what a consumer of :class:`~kraky_anyio.fanout.Fanout` reads.

Each consumer has a :class:`ConsumerBuffer`, appended to by the fan-out
(:mod:`kraky_anyio.fanout`: routing, overflow policies, accounting) and read
through a :class:`MessageStream` or its :class:`MessageBatches`.

Reading (:class:`MessageStream`): ``async for msg in stream`` takes one message
at a time, without waiting while its buffer holds some, with a checkpoint
(cancellation point and scheduling point) every :data:`CHECKPOINT_EVERY`
messages so a consumer that never falls behind cannot starve the other tasks.
``async for batch in stream.batches()`` takes everything buffered at once, with
one checkpoint per batch. Several tasks may iterate one stream (a worker pool):
each message goes to exactly one of them.

A consumer that is no longer iterated and no longer referenced (``break`` out
of ``async for``) is dropped at once (CPython frees it on the spot); use
``async with conn.messages() as stream`` to close it deterministically.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import anyio
from anyio.lowlevel import checkpoint

from .stats import Stats

if TYPE_CHECKING:
    from .fanout import Fanout, Overflow
    from .filters import Filter

__all__ = ["CHECKPOINT_EVERY", "ConsumerBuffer", "MessageBatches", "MessageStream"]

#: The plain iterator checkpoints once per this many messages taken without
#: waiting: cancellation is noticed and other tasks run at least that often.
CHECKPOINT_EVERY: Final = 256


class ConsumerBuffer:
    """A consumer's buffer: the fan-out appends to it, a :class:`MessageStream`
    takes from it. Nothing here waits except the stream's iteration."""

    __slots__ = (
        "closed",
        "dropped",
        "failed",
        "filter",
        "items",
        "maxlen",
        "new_event",
        "policy",
        "space",
        "stats",
        "wake",
    )

    def __init__(
        self,
        maxlen: int,
        policy: Overflow,
        filt: Filter | None,
        stats: Stats,
        new_event: Callable[[], anyio.Event],
    ) -> None:
        self.items: deque[Any] = deque()
        self.new_event = new_event
        self.maxlen = maxlen
        self.policy = policy
        self.filter = filt
        self.stats = stats
        self.closed = False
        self.failed: BaseException | None = None
        self.dropped = 0
        # Shared by every task waiting for items (all are woken; each takes
        # what it finds), so a second waiter never hides the first one.
        self.wake: anyio.Event | None = None
        self.space: anyio.Event | None = None  # set when the reader waits for room

    def notify(self) -> None:
        if self.wake is not None:
            self.wake.set()
            self.wake = None

    def notify_space(self) -> None:
        if self.space is not None:
            self.space.set()
            self.space = None

    def take_all(self) -> list[Any]:
        out = list(self.items)
        self.items.clear()
        self.stats.messages_delivered += len(out)
        self.notify_space()
        return out

    def close(self) -> None:
        """The consumer is gone: what it did not read is dropped (counted)."""
        self.closed = True
        self.stats.messages_dropped_unread += len(self.items)
        self.items.clear()
        self.notify()
        self.notify_space()


class MessageStream:
    """An async iterator over the connection's messages from the moment it was
    created: ``dict`` events, ``list`` channel data and :class:`Notice` objects.

    Iteration waits for the next message; it ends when the connection closes,
    and raises :class:`ConsumerOverflowError` for a consumer that overflowed
    under the ``"fail"`` policy (after what was buffered before it), or the
    connection's fatal error. Cancelling a wait loses nothing. Several tasks
    may iterate the same stream: each message goes to exactly one of them.
    """

    __slots__ = ("__weakref__", "_budget", "_fanout", "_finalizer", "_items", "_queue", "_stats")

    def __init__(self, queue: ConsumerBuffer, fanout: Fanout) -> None:
        self._queue = queue
        self._fanout = fanout
        # The hot path reads these directly: one attribute each, not two.
        self._items = queue.items
        self._stats = queue.stats
        self._budget = CHECKPOINT_EVERY  # messages left before the next checkpoint
        self._finalizer = weakref.finalize(self, queue.close)

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> Any:
        items = self._items
        if items and self._budget:
            self._budget -= 1  # the fast path: no await at all
        else:
            # _wait(q), inlined: one coroutine less per wake-up.
            self._budget = CHECKPOINT_EVERY
            q = self._queue
            if items:
                await checkpoint()
            while not items:
                if q.failed is not None:
                    raise q.failed
                if q.closed:
                    raise StopAsyncIteration
                wake = q.wake
                if wake is None:
                    wake = q.wake = q.new_event()
                await wake.wait()
        item = items.popleft()
        self._stats.messages_delivered += 1
        if self._queue.space is not None:
            self._queue.notify_space()
        return item

    def batches(self) -> MessageBatches:
        """``async for batch in stream.batches()``: every buffered message at
        once (a non-empty ``list``), one checkpoint per batch; ends and raises
        like plain iteration."""
        return MessageBatches(self._queue)

    def receive_nowait(self) -> list[Any]:
        """Every buffered message at once (possibly none); never waits."""
        return self._queue.take_all()

    def __len__(self) -> int:
        return len(self._queue.items)

    async def aclose(self) -> None:
        """Stop receiving; the fan-out forgets this consumer at once and what
        it did not read is counted in ``stats.messages_dropped_unread``."""
        self._finalizer()

    async def __aenter__(self) -> MessageStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class MessageBatches:
    """The async iterator of :meth:`MessageStream.batches`."""

    def __init__(self, queue: ConsumerBuffer) -> None:
        self._queue = queue

    def __aiter__(self) -> MessageBatches:
        return self

    async def __anext__(self) -> list[Any]:
        if not await _wait(self._queue):
            raise StopAsyncIteration
        return self._queue.take_all()


async def _wait(q: ConsumerBuffer) -> bool:
    """Checkpoint, then wait until ``q`` holds a message (True) or has ended
    (False); raise its error once it is drained."""
    if q.items:
        await checkpoint()
    while not q.items:
        if q.failed is not None:
            raise q.failed
        if q.closed:
            return False
        wake = q.wake
        if wake is None:
            wake = q.wake = q.new_event()
        await wake.wait()
    return True
