"""Fan-out: every consumer gets every message, through its own bounded buffer.

The reader task hands over each batch (all the messages one socket read
produced) with one call to :meth:`Fanout.publish`. Appending to a consumer's
buffer is synchronous; only a full buffer under the ``"block"`` policy makes
the reader wait, so the cost of an awaited hand-off is paid per batch, not per
message.

Overflow policies, per consumer (``buffer_size`` messages each):

``"block"`` (default)
    The reader waits until the consumer has room. Nothing is lost; a slow
    consumer slows every consumer and stops the socket from being read (Kraken
    may then drop the connection). The liveness check is paused meanwhile, so a
    slow consumer never makes the connection look dead.
``"fail"``
    The consumer is given what fits, then fails: its iteration yields the
    messages buffered before the overflow and then raises
    :class:`~kraky_anyio.errors.ConsumerOverflowError`. The others go on and
    lose nothing; ``stats.messages_dropped_by_overflow`` counts the messages of
    the overflowing batch that did not fit (the consumer is gone after that, so
    later messages are not counted against it).

A consumer that is no longer iterated and no longer referenced (``break`` out
of ``async for``) is dropped at once (CPython frees it on the spot); use
``async with conn.messages() as stream`` to close it deterministically.
"""

from __future__ import annotations

import enum
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import anyio

from .errors import ConsumerOverflowError
from .notices import Notice
from .stats import Stats


class Overflow(str, enum.Enum):
    BLOCK = "block"
    FAIL = "fail"


Filter = Callable[[Any], bool]


def make_filter(
    channel: str | Iterable[str] | None, pair: str | Iterable[str] | None
) -> Filter | None:
    """A predicate keeping notices and the channel data of ``channel``/``pair``.

    ``channel`` matches Kraken's channelName exactly or by family
    (``"book"`` matches ``"book-10"``; ``"ohlc"`` matches ``"ohlc-5"``).
    """
    if channel is None and pair is None:
        return None
    channels = (
        None if channel is None else ({channel} if isinstance(channel, str) else set(channel))
    )
    pairs = None if pair is None else ({pair} if isinstance(pair, str) else set(pair))

    def keep(msg: Any) -> bool:
        if isinstance(msg, Notice):
            return True
        if not isinstance(msg, list) or len(msg) < 3:
            return False
        if channels is not None:
            name = msg[-2] if isinstance(msg[-2], str) else msg[1]
            if name not in channels and name.split("-", 1)[0] not in channels:
                return False
        if pairs is not None:
            return isinstance(msg[-1], str) and msg[-1] in pairs
        return True

    return keep


class _Queue:
    """A consumer's buffer; owned by the fan-out, read by a MessageStream."""

    __slots__ = (
        "closed",
        "dropped",
        "failed",
        "filter",
        "items",
        "maxlen",
        "policy",
        "space",
        "wake",
    )

    def __init__(self, maxlen: int, policy: Overflow, filt: Filter | None) -> None:
        self.items: deque[Any] = deque()
        self.maxlen = maxlen
        self.policy = policy
        self.filter = filt
        self.closed = False
        self.failed: BaseException | None = None
        self.dropped = 0
        self.wake: anyio.Event | None = None  # set when the consumer waits for items
        self.space: anyio.Event | None = None  # set when the reader waits for room

    def notify(self) -> None:
        if self.wake is not None:
            self.wake.set()
            self.wake = None

    def notify_space(self) -> None:
        if self.space is not None:
            self.space.set()
            self.space = None

    def close(self) -> None:
        self.closed = True
        self.items.clear()
        self.notify()
        self.notify_space()


class MessageStream:
    """An async iterator over the connection's messages from the moment it was
    created: ``dict`` events, ``list`` channel data and :class:`Notice` objects.

    Iteration waits for the next message; it ends when the connection closes,
    and raises :class:`ConsumerOverflowError` for a consumer that overflowed
    under the ``"fail"`` policy (after what was buffered before it), or the
    connection's fatal error. Cancelling a wait loses nothing.
    """

    def __init__(self, queue: _Queue, fanout: Fanout) -> None:
        self._queue = queue
        self._fanout = fanout
        self._finalizer = weakref.finalize(self, queue.close)

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> Any:
        q = self._queue
        while not q.items:
            if q.failed is not None:
                raise q.failed
            if q.closed:
                raise StopAsyncIteration
            event = q.wake = anyio.Event()
            await event.wait()
        item = q.items.popleft()
        q.notify_space()
        return item

    def receive_nowait(self) -> list[Any]:
        """Every buffered message at once (possibly none); never waits."""
        q = self._queue
        out = list(q.items)
        q.items.clear()
        q.notify_space()
        return out

    def __len__(self) -> int:
        return len(self._queue.items)

    async def aclose(self) -> None:
        """Stop receiving; the fan-out forgets this consumer at once."""
        self._finalizer()

    async def __aenter__(self) -> MessageStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Fanout:
    """Delivers batches to every open consumer, in order."""

    def __init__(self, stats: Stats, buffer_size: int = 1000, overflow: Overflow | str = "block"):
        if buffer_size < 1:
            raise ValueError("buffer_size must be >= 1")
        self._queues: list[_Queue] = []
        self._stats = stats
        self.buffer_size = buffer_size
        self.overflow = Overflow(overflow)
        self._closed_with: BaseException | None = None
        self._closed = False
        self._unblocked = anyio.Event()
        self._unblocked.set()

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
        q = _Queue(
            self.buffer_size if buffer_size is None else buffer_size,
            Overflow(overflow) if overflow is not None else self.overflow,
            filt,
        )
        if self._closed:
            q.closed = True
            q.failed = self._closed_with
        else:
            self._queues.append(q)
        return MessageStream(q, self)

    async def publish(self, batch: list[Any]) -> None:
        """Give ``batch`` to every consumer. Waits only for a full consumer
        under the ``"block"`` policy; cancelling that wait loses the rest of
        the batch for that consumer (used only when the connection closes)."""
        queues = self._queues
        if any(q.closed for q in queues):
            queues = self._queues = [q for q in queues if not q.closed]
        # A snapshot: a consumer opened while this publish waits must not get
        # this batch (it began before the consumer existed).
        for q in tuple(queues):
            items = batch if q.filter is None else [m for m in batch if q.filter(m)]
            if not items:
                continue
            if len(q.items) + len(items) <= q.maxlen:
                q.items.extend(items)
                q.notify()
            elif q.policy is Overflow.FAIL:
                self._fail(q, items)
            else:
                await self._put_blocking(q, items)
        self._stats.messages_delivered += len(batch)

    def _fail(self, q: _Queue, items: list[Any]) -> None:
        # Notices may have pushed the buffer past its limit: room is never < 0.
        room = max(0, q.maxlen - len(q.items))
        q.items.extend(items[:room])
        q.dropped = len(items) - room
        self._stats.consumer_overflows += 1
        self._stats.messages_dropped_by_overflow += q.dropped
        q.failed = ConsumerOverflowError(
            f"consumer fell {q.maxlen} messages behind and was failed (overflow='fail'); "
            "it received every message up to this point",
            dropped=q.dropped,
        )
        q.closed = True
        q.notify()

    async def _put_blocking(self, q: _Queue, items: list[Any]) -> None:
        i = 0
        while i < len(items):
            room = q.maxlen - len(q.items)
            if room > 0:
                q.items.extend(items[i : i + room])
                i += room
                q.notify()
                continue
            if q.closed:
                return
            space = q.space = anyio.Event()
            self._unblocked = anyio.Event()
            try:
                await space.wait()
            finally:
                self._unblocked.set()

    def publish_nowait(self, item: Any) -> None:
        """Append one item (a notice) to every consumer, ignoring the limit:
        used where the reader must not wait (closing)."""
        for q in self._queues:
            if not q.closed and (q.filter is None or q.filter(item)):
                q.items.append(item)
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
