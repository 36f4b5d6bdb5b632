"""What every connection object shares, whatever its protocol version.

:class:`ConnectionBase` wires one protocol object (v1's or v2's) to one
:class:`~kraky_anyio.shell.Shell` and one :class:`~kraky_anyio.fanout.Fanout`,
and gives the public state (``stats``, ``status``, ``connected``, ...),
``wait_connected()`` and ``run()``. The version's connection class adds its
own requests, consumers and books on top. Nothing here blocks except
``wait_connected()`` and the ``run()`` block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from .errors import KrakyError
from .fanout import Fanout
from .options import ConnectionOptions
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

    def __init__(self, url: str, options: ConnectionOptions | None, protocol: P) -> None:
        self.url = url
        self.options = options if options is not None else ConnectionOptions()
        self._protocol = protocol
        self._fanout = Fanout(protocol.stats, self.options.buffer_size, self.options.overflow)
        self._shell = Shell(url, self.options, protocol, self._fanout)

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
