"""The recorder: a frame tap that queues, and the writer task that drains it.

Tasks and lifetimes::

    record_into(...)  (conn.record()'s block, or open_kraken(record=...)
    │                  around the connection's own task group)
    └── task group
        └── writer   waits for queued lines, writes each batch in a worker
                     thread (anyio.to_thread.run_sync), shielded: a batch
                     taken is always written whole

The reader's cost is the tap: a tuple appended per frame and an event set
(no encoding, no I/O). Encoding, compression and the disk are the worker
thread's. Leaving the block (normally, by exception, by cancellation: Ctrl-C)
detaches the tap, stops the writer between two batches and then, shielded,
writes what is left and finishes the file: a recording is always complete
and readable up to its last line.

**Overflow.** At most ``buffer`` lines wait for the disk (plus the batch being
written). Past that, received frames are dropped under ``overflow="drop"``
(the default: the reader never waits; counted in
:attr:`RecordStats.frames_dropped` and marked by one ``gap`` line where they
were lost), or the reader waits for room under ``"block"``. ``open``,
``close`` and ``sent`` lines are never dropped (they are few).

**Counters** (:class:`RecordStats`): at every moment
``frames_seen == frames_recorded + frames_dropped + (received frames queued)``.

**Errors.** A write that fails (disk full, ...) stops the recording: it is
logged, every frame from then on is counted in ``frames_dropped``, the
connection goes on, and leaving the block raises :class:`RecordingError`
(unless the block is already raising: then it is only logged).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from ..taskgroup import task_group
from .format import Entry, header
from .options import RecordOptions
from .writer import PartWriter, RecordingError

__all__ = ["FileSink", "RecordStats", "Recorder", "Sink", "record_into"]

log = logging.getLogger("kraky_anyio")


class Sink(Protocol):
    """Where the writer task puts batches (a :class:`FileSink` unless a test
    gives another). ``write`` and ``aclose`` may block the writer task, never
    the reader; they raise ``OSError`` on failure."""

    async def write(self, entries: list[Entry]) -> None: ...

    async def aclose(self) -> None: ...


class FileSink:
    """The recording's files (:class:`~kraky_anyio.recording.writer.PartWriter`),
    each call in a worker thread (or, ``inline``, in the caller's thread)."""

    def __init__(self, files: PartWriter, *, inline: bool = False) -> None:
        self.files = files
        self.inline = inline

    @classmethod
    async def open(cls, options: RecordOptions, api: str, url: str, started: float) -> FileSink:
        """Open part 0 and write its header; ``FileExistsError`` if a recording
        is there (without ``overwrite``), ``OSError`` if it cannot be created."""

        def make() -> PartWriter:
            return PartWriter(
                options.path,
                lambda part: header(api, url, started, part),
                rotate_bytes=options.rotate_bytes,
                rotate_seconds=options.rotate_seconds,
                overwrite=options.overwrite,
            )

        inline = options.io == "inline"
        return cls(make() if inline else await anyio.to_thread.run_sync(make), inline=inline)

    async def _call(self, func: Callable[..., Any], *args: Any) -> Any:
        if self.inline:
            return func(*args)
        return await anyio.to_thread.run_sync(func, *args)

    async def write(self, entries: list[Entry]) -> None:
        await self._call(self.files.write, entries)

    async def aclose(self) -> None:
        await self._call(self.files.close)

    async def file_bytes(self) -> int:
        """Bytes on disk of every part."""
        total: int = await self._call(self.files.file_bytes)
        return total


@dataclass
class RecordStats:
    """A recording's counters; they only grow (see the module docstring)."""

    #: Received frames the tap was given.
    frames_seen: int = 0
    #: Received frames written to the file.
    frames_recorded: int = 0
    #: Received frames not recorded: the disk could not keep up
    #: (``overflow="drop"``) or the recording had failed.
    frames_dropped: int = 0
    #: ``gap`` lines written (each marks one run of dropped frames).
    gaps: int = 0
    #: ``sent`` lines written.
    frames_sent: int = 0
    #: Lines written (headers included) and their bytes before compression.
    lines_written: int = 0
    bytes_written: int = 0
    #: Files written (1 + rotations).
    parts: int = 0
    #: Batches handed to the sink, and the most lines one of them held.
    batches: int = 0
    largest_batch: int = 0
    #: Bytes on disk of every part, known once the recording is closed.
    file_bytes: int = 0


class Recorder:
    """One recording: the tap the shell calls (see
    :mod:`kraky_anyio.recording.tap`) and the writer task.

    Get one from ``conn.record(path)`` or the ``record=`` option; the tap
    methods are synchronous and never block.
    """

    def __init__(
        self, options: RecordOptions, *, api: str, url: str, sink: Sink | None = None
    ) -> None:
        self.options = options
        self.api = api
        self.url = url
        self.stats = RecordStats()
        #: The error that stopped the recording, if any.
        self.error: BaseException | None = None
        self._sink = sink
        self._limit = options.buffer
        self._block = options.overflow == "block"
        self._buf: list[Entry] = []
        self._queued_frames = 0
        self._t0 = 0.0
        self._has_data = anyio.Event()
        self._signalled = False  # _has_data is set: cheaper to test than the event
        self._room: anyio.Event | None = None
        self._write_lock = anyio.Lock()
        self._gap = 0
        self._gap_at = (0.0, 0.0)
        self._stopped = False  # failed or closed: nothing more is queued

    @property
    def path(self) -> str:
        return str(self.options.path)

    def __repr__(self) -> str:
        return f"<Recorder {self.path} {self.api} frames={self.stats.frames_recorded}>"

    async def start(self) -> None:
        """Zero the clock and open the file (unless a sink was given);
        raises ``FileExistsError``/``OSError`` from the disk."""
        started = time.time()
        if self._sink is None:
            self._sink = await FileSink.open(self.options, self.api, self.url, started)
        # After the file is open: nothing is recorded before, and t is
        # never negative.
        self._t0 = anyio.current_time()
        self._count_files()

    # -- the tap (the reader's and the writer's path: no I/O, no waiting) -------

    def received(self, gen: int, frames: Sequence[str | bytes], now: float) -> bool:
        n = len(frames)
        stats = self.stats
        stats.frames_seen += n
        if self._stopped:
            stats.frames_dropped += n
            return False
        t, wall = now - self._t0, time.time()
        buf = self._buf
        keep = n if self._block else min(n, self._limit - len(buf))
        if keep > 0:
            if self._gap:
                self._end_gap()
            append = buf.append
            for frame in frames if keep == n else frames[:keep]:
                append(("recv", t, wall, gen, frame))
            self._queued_frames += keep
            if not self._signalled:
                self._signalled = True
                self._has_data.set()
        if keep < n:
            lost = n - max(keep, 0)
            stats.frames_dropped += lost
            self._gap += lost
            self._gap_at = (t, wall)
        return self._block and len(buf) >= self._limit

    def sent(self, gen: int, text: str, now: float) -> None:
        self._control("sent", gen, text, now)

    def opened(self, gen: int, now: float) -> None:
        self._control("open", gen, None, now)

    def closed(self, gen: int, reason: str, now: float) -> None:
        self._control("close", gen, reason, now)

    async def wait_room(self) -> None:
        """Wait until fewer than ``buffer`` lines are queued (the writer took
        them), or the recording stopped."""
        while len(self._buf) >= self._limit and not self._stopped:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    def _control(self, kind: str, gen: int, payload: object, now: float) -> None:
        if self._stopped:
            return
        if self._gap:
            self._end_gap()
        self._buf.append((kind, now - self._t0, time.time(), gen, payload))
        if not self._signalled:
            self._signalled = True
            self._has_data.set()

    def _end_gap(self) -> None:
        t, wall = self._gap_at
        self._buf.append(("gap", t, wall, 0, self._gap))
        self._gap = 0

    # -- the writer task ------------------------------------------------------

    async def run(self) -> None:
        """Write queued lines until cancelled (or a write fails: then return)."""
        while not self._stopped:
            await self._has_data.wait()
            self._has_data, self._signalled = anyio.Event(), False
            await self._flush()

    async def _flush(self) -> None:
        with anyio.CancelScope(shield=True):
            async with self._write_lock:
                batch, self._buf = self._buf, []
                frames, self._queued_frames = self._queued_frames, 0
                if self._room is not None:
                    self._room.set()
                    self._room = None
                if not batch or self._sink is None or self.error is not None:
                    self.stats.frames_dropped += frames
                    return
                try:
                    await self._sink.write(batch)
                except Exception as exc:
                    self._fail(exc, frames)
                    return
        stats = self.stats
        stats.frames_recorded += frames
        stats.frames_sent += sum(1 for entry in batch if entry[0] == "sent")
        stats.gaps += sum(1 for entry in batch if entry[0] == "gap")
        stats.batches += 1
        stats.largest_batch = max(stats.largest_batch, len(batch))
        self._count_files()

    def _fail(self, exc: Exception, frames: int) -> None:
        self.error = exc
        self._stopped = True
        self.stats.frames_dropped += frames + self._queued_frames
        self._buf, self._queued_frames = [], 0
        log.error("recording to %s failed, stopped: %s", self.path, exc)

    def _count_files(self) -> None:
        sink = self._sink
        if isinstance(sink, FileSink):
            files = sink.files
            self.stats.parts = files.parts
            self.stats.lines_written = files.lines
            self.stats.bytes_written = files.bytes

    async def aclose(self, *, raise_error: bool = True) -> None:
        """Write what is queued, finish and close the file; shielded from
        cancellation (bounded by the disk). Raises :class:`RecordingError` if
        the recording failed (``raise_error``: else it is only logged). Idempotent."""
        with anyio.CancelScope(shield=True):
            if self._sink is not None and not (self._stopped and self.error is None):
                if self._gap and self.error is None:
                    self._end_gap()
                await self._flush()
                self._stopped = True
                try:
                    await self._sink.aclose()
                except Exception as exc:
                    if self.error is None:
                        self.error = exc
                        log.error("recording to %s: closing failed: %s", self.path, exc)
                sink = self._sink
                if isinstance(sink, FileSink):
                    self.stats.file_bytes = await sink.file_bytes()
            self._stopped = True
        if self.error is not None and raise_error:
            raise RecordingError(f"recording to {self.path} failed: {self.error}") from self.error


@asynccontextmanager
async def record_into(
    attach: Callable[[Recorder], None],
    detach: Callable[[Recorder], None],
    recorder: Recorder,
    *,
    open_gen: int | None = None,
) -> AsyncIterator[Recorder]:
    """Record for the block: start ``recorder``, run its writer task in a
    task group of this block, ``attach`` it as a tap; on leaving, ``detach``
    it and close it (see :meth:`Recorder.aclose`). ``open_gen``: the socket
    already open, written as an ``open`` line at the start."""
    await recorder.start()
    try:
        async with task_group() as tg:
            tg.start_soon(recorder.run, name=f"kraky_anyio recorder {recorder.path}")
            if open_gen is not None:
                recorder.opened(open_gen, anyio.current_time())
            attach(recorder)
            try:
                yield recorder
            finally:
                detach(recorder)
    except BaseException:
        await recorder.aclose(raise_error=False)
        raise
    await recorder.aclose()
