"""What every connection object shares, whatever its protocol version.

:class:`ConnectionBase` wires one protocol object (v1's or v2's) to one
:class:`~kraky_anyio.shell.Shell` and one :class:`~kraky_anyio.fanout.Fanout`,
and gives the public state (``stats``, ``status``, ``connected``, ...),
``wait_connected()``, ``run()`` and ``record()`` (see
:mod:`kraky_anyio.recording`). The version's connection class adds its own
requests, consumers and books on top. Nothing here blocks except
``wait_connected()`` and the ``run()`` and ``record()`` blocks.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, ClassVar, Generic, TypeVar

import anyio

from .errors import KrakyError
from .fanout import Fanout
from .options import ConnectionOptions
from .recording.options import RecordOptions
from .recording.recorder import Recorder, record_into
from .recording.tap import TapSet
from .seam import ProtocolCore
from .shell import Shell
from .stats import Stats
from .status import ConnectionStatus
from .taskgroup import task_group

__all__ = ["ConnectionBase"]

P = TypeVar("P", bound=ProtocolCore)
C = TypeVar("C", bound="ConnectionBase")  # type: ignore[type-arg]


class ConnectionBase(Generic[P]):
    """One logical connection kept alive across sockets, over ``protocol``."""

    #: The Kraken API version spoken, ``"v1"`` or ``"v2"`` (recordings say it).
    api: ClassVar[str]

    def __init__(self, url: str, options: ConnectionOptions | None, protocol: P) -> None:
        self.url = url
        self.options = options if options is not None else ConnectionOptions()
        self._protocol = protocol
        self._fanout = Fanout(protocol.stats, self.options.buffer_size, self.options.overflow)
        self._shell = Shell(url, self.options, protocol, self._fanout)
        self._taps = TapSet()
        self._recording: Recorder | None = None

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<{type(self).__name__} {self.url} {state} generation={self.generation}>"

    @property
    def reply_timeout(self) -> float:
        return self.options.reply_timeout

    @property
    def stats(self) -> Stats:
        """Counters of frames, errors, reconnects and consumers (read-only use)."""
        return self._protocol.stats

    @property
    def status(self) -> ConnectionStatus:
        """Where the connection is now (state, attempts, backoff, last error)."""
        return self._shell.status

    @property
    def connected(self) -> bool:
        """True while a socket is open and its replay has been sent."""
        return self._shell.connected

    @property
    def generation(self) -> int:
        """How many sockets have been opened so far (the current one's number)."""
        return self._shell.generation

    @property
    def protocol(self) -> P:
        """The sans-I/O protocol state (registry, pending requests)."""
        return self._protocol

    @property
    def consumers(self) -> int:
        """How many message streams (``messages()``, books) are open."""
        return self._fanout.consumers

    @property
    def recording(self) -> Recorder | None:
        """The recording of the ``record=`` option (its ``stats``), or None."""
        return self._recording

    async def wait_connected(self) -> None:
        """Wait until a socket is open and live subscriptions were replayed.

        Not bounded in time: wrap it in ``anyio.fail_after`` to give up.
        Raises ``KrakyError("the connection is closed ...")`` once the block
        is left (also if it was waiting then)."""
        await self._shell.wait_connected()

    @asynccontextmanager
    async def run(self: C) -> AsyncIterator[C]:
        """Run the connection's tasks for the ``async with`` block (what
        ``open_kraken`` does after checking its arguments). Once only:
        ``KrakyError`` if run again. A library failure comes out of the block
        as its error (``ConnectionFailedError``); yours as itself."""
        shell = self._shell
        if shell.closing or shell.started:
            raise KrakyError(f"a {type(self).__name__} runs once: call open_kraken() again")
        try:
            async with AsyncExitStack() as stack:
                if self.options.record is not None:
                    # Around the connection's group: its last close line is
                    # queued before the recording is closed.
                    self._recording = self._recorder(RecordOptions.make(self.options.record, {}))
                    await stack.enter_async_context(self._record_into(self._recording))
                async with task_group() as tg:
                    shell.start(tg)
                    try:
                        yield self
                    finally:
                        shell.closing = True
        finally:
            shell.close()
            # After the tasks: the last Disconnected notice is delivered first.
            self._fanout.close(shell.fatal)
        if shell.fatal is not None:
            raise shell.fatal

    def record(
        self, path: str | os.PathLike[str] | RecordOptions, **options: Any
    ) -> AbstractAsyncContextManager[Recorder]:
        """``async with conn.record("s.jsonl.gz") as recorder``: record every
        frame received and sent from now until the block is left (see
        :mod:`kraky_anyio.recording` for the format and the options of
        :class:`~kraky_anyio.recording.RecordOptions`, given as keywords or as
        the one argument). ``TypeError``/``ValueError`` at once for a bad
        suffix or option; entering raises ``FileExistsError``/``OSError`` from
        the disk and ``KrakyError`` once the connection is closed. The writer
        task lives in the block's own task group; leaving the block (also by
        cancellation) writes what is queued and finishes the file, then raises
        :class:`~kraky_anyio.recording.RecordingError` if writing had failed.
        A socket already open is recorded from now, after an ``open`` line."""
        recorder = self._recorder(RecordOptions.make(path, options))
        self._shell.check_open()
        return self._record_into(recorder)

    def _recorder(self, options: RecordOptions) -> Recorder:
        return Recorder(options, api=self.api, url=self.url)

    def _record_into(self, recorder: Recorder) -> AbstractAsyncContextManager[Recorder]:
        shell, taps = self._shell, self._taps

        def attach(tap: Recorder) -> None:
            # The socket open now, not when record() was called: it may have
            # opened while the file was being created.
            if shell.ws is not None:
                tap.opened(shell.generation, anyio.current_time())
            taps.add(tap)
            shell.tap = taps

        def detach(tap: Recorder) -> None:
            taps.remove(tap)
            shell.tap = taps if taps else None

        return record_into(attach, detach, recorder)
