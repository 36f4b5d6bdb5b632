"""One open WebSocket over an anyio byte stream: the I/O shell around
:class:`~kraky_anyio.framing.Framing` and websockets' sans-I/O protocol.

The same code runs on asyncio and trio. One task may receive while others
send: sends are serialised by a lock. What blocks and what is bounded:

* :meth:`WebSocket.send_text` blocks until the bytes are handed to the
  socket, for at most ``send_timeout`` seconds *including the wait for the
  lock*: a send that cannot complete in time means a dead peer, so the socket
  is aborted and :class:`ConnectionClosedError` raised. A send cancelled or
  failed half-way also breaks the socket (the frame boundary is lost).
* :meth:`WebSocket.receive_batch` blocks until at least one whole message
  has arrived and returns every message completed by that read. The replies
  the protocol makes on its own (pongs, the echo of a close) are written by
  the receiving task only if no send holds the lock (the holder writes them
  before releasing it), and under the same ``send_timeout``: a peer that
  floods pings and never reads cannot stall the receiver or a sender.
* :meth:`WebSocket.aclose` runs the close handshake under a shielded deadline
  of ``close_timeout`` seconds, so closing against a dead peer never hangs.

Every failure leaving this module is a :class:`~kraky_anyio.errors.TransportError`
(:class:`ConnectionClosedError` here), with the raw ``OSError`` / anyio error
as ``__cause__``; cancellation passes through untouched.
"""

from __future__ import annotations

import contextlib
import math

import anyio
import anyio.abc
from websockets.protocol import Protocol, State

from .errors import ConnectionClosedError
from .framing import Framing, Message

__all__ = ["DEFAULT_SEND_TIMEOUT", "RAW_IO_ERRORS", "WebSocket"]

#: Longest a send (lock wait included) may take before the peer is judged dead.
DEFAULT_SEND_TIMEOUT = 10.0
_READ_SIZE = 65536

#: What a byte stream raises when the connection fails: translated at once.
RAW_IO_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # ssl.SSLError included
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)


class WebSocket:
    """An open WebSocket. Create it with :func:`connect_websocket` or
    :func:`accept_websocket`; close it with :meth:`aclose`."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        protocol: Protocol,
        *,
        close_timeout: float = 2.0,
        send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
        leftover: list[Message] | None = None,
        fast_path: bool = True,
    ) -> None:
        if send_timeout is not None and not send_timeout > 0:
            raise ValueError("send_timeout must be > 0 or None")
        self._stream = stream
        self._protocol = protocol
        self._framing = Framing(protocol, fast=fast_path)
        self._close_timeout = close_timeout
        self._send_timeout = math.inf if send_timeout is None else send_timeout
        self._send_lock = anyio.Lock()
        # The very list the handshake code appends to (frames that arrived
        # with the 101 response): never replace it with a copy.
        self._pending: list[Message] = leftover if leftover is not None else []
        self._broken: ConnectionClosedError | None = None
        self._stream_closed = False
        self._receiving = False
        self._eof_seen = anyio.Event()
        self.bytes_received = 0

    # -- state -------------------------------------------------------------

    @property
    def framing(self) -> Framing:
        """The sans-I/O frame splitter (the handshake feeds it early bytes)."""
        return self._framing

    @property
    def closed(self) -> bool:
        """True once the socket can no longer send or receive."""
        return self._closed_exc is not None or self._stream_closed

    @property
    def close_code(self) -> int | None:
        """The close code received from the peer, or None."""
        rcvd = self._protocol.close_rcvd
        return None if rcvd is None else int(rcvd.code)

    @property
    def _closed_exc(self) -> ConnectionClosedError | None:
        return self._framing.closed or self._broken

    def _closed_error(self) -> ConnectionClosedError:
        exc = self._closed_exc
        return exc if exc is not None else ConnectionClosedError("the WebSocket is closed")

    def _mark_broken(self, why: str) -> None:
        if self._broken is None:
            self._broken = ConnectionClosedError(f"the WebSocket is broken ({why})")

    # -- sending -----------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send one text message, within ``send_timeout`` (lock wait included).

        Raises :class:`ConnectionClosedError` if the socket is closed, the
        write fails or the deadline passes (the socket is then aborted). If
        cancelled during the write, the socket is aborted (a half-written
        frame would corrupt the stream).
        """
        await self._send(text.encode(), text=True)

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary message (Kraken never does; used by tests)."""
        await self._send(data, text=False)

    async def _send(self, data: bytes, *, text: bool) -> None:
        started = False
        with anyio.move_on_after(self._send_timeout) as scope:
            async with self._send_lock:
                if self.closed or self._protocol.state is not State.OPEN:
                    raise _unsent(self._closed_error())
                started = True
                if text:
                    self._protocol.send_text(data)
                else:
                    self._protocol.send_binary(data)
                await self._flush_locked()
        if scope.cancelled_caught:
            await self._send_timed_out(started)

    async def _send_timed_out(self, started: bool) -> None:
        self._broken = None  # the deadline is the true reason, not "interrupted"
        self._mark_broken(f"a send did not complete within {self._send_timeout:g} s")
        await self._abort()
        exc = self._closed_error()
        raise exc if started else _unsent(exc)

    async def _flush_locked(self) -> None:
        # Looping until empty: replies the receiving task queued while this
        # holder was writing go out before the lock is released.
        while chunks := self._framing.data_to_send():
            if self._stream_closed:
                return
            try:
                for chunk in chunks:
                    if chunk:
                        await self._stream.send(chunk)
                    else:
                        # The protocol asks for a half-close: TLS streams
                        # cannot, so a full close is the portable answer.
                        await self._abort()
            except BaseException as exc:
                # Cancelled or failed half-way: the frame boundary is lost.
                self._mark_broken(f"write interrupted: {exc!r}")
                await self._abort()
                if isinstance(exc, RAW_IO_ERRORS):
                    raise self._closed_error() from exc
                raise

    async def flush_replies(self) -> None:
        """Write the replies the protocol queued on its own (pongs, a close
        echo), waiting for the send lock; bounded by ``send_timeout``."""
        await self._flush_replies(wait=True)

    async def _flush_replies(self, *, wait: bool) -> None:
        """Write the protocol's own replies. Without ``wait``, a busy lock is
        left alone: its holder writes them before releasing it."""
        if self._stream_closed or not self._protocol.writes:
            return
        with anyio.move_on_after(self._send_timeout) as scope:
            if wait:
                await self._send_lock.acquire()
            else:
                try:
                    self._send_lock.acquire_nowait()
                except anyio.WouldBlock:
                    return
            try:
                with contextlib.suppress(ConnectionClosedError):
                    await self._flush_locked()
            finally:
                self._send_lock.release()
        if scope.cancelled_caught:
            with contextlib.suppress(ConnectionClosedError):
                await self._send_timed_out(True)

    # -- receiving ---------------------------------------------------------

    async def receive_batch(self) -> list[Message]:
        """Return every message completed by the next socket read (at least one).

        Text messages are ``str``, binary ones ``bytes``. Raises
        :class:`ConnectionClosedError` (with the close code, if any) once the
        peer closed or the connection failed; messages that arrived before the
        close are returned first. Only one task may receive at a time.
        """
        if self._pending:
            batch, self._pending = self._pending, []
            return batch
        self._receiving = True
        try:
            while True:
                if self._closed_exc is not None:
                    raise self._closed_exc
                if self._stream_closed:
                    raise self._closed_error()
                try:
                    data = await self._stream.receive(_READ_SIZE)
                except anyio.ClosedResourceError as exc:
                    self._mark_broken("the socket was closed locally")
                    raise self._closed_error() from exc
                except RAW_IO_ERRORS:
                    data = b""  # reset, EOF or TLS failure: the peer is gone
                batch = await self._feed(data)
                if batch:
                    return batch
        finally:
            self._receiving = False

    async def _feed(self, data: bytes) -> list[Message]:
        framing = self._framing
        if data:
            self.bytes_received += len(data)
            batch = framing.receive_data(data)
        else:
            batch = framing.receive_eof()
            self._eof_seen.set()
        closed = framing.closed
        await self._flush_replies(wait=closed is not None)
        if closed is not None:
            self._eof_seen.set()
            await self._abort()
            if batch:
                return batch
            raise closed
        return batch

    # -- closing -----------------------------------------------------------

    async def _abort(self) -> None:
        if not self._stream_closed:
            self._stream_closed = True
            with contextlib.suppress(*RAW_IO_ERRORS):
                await anyio.aclose_forcefully(self._stream)

    async def abort(self) -> None:
        """Close the TCP connection at once, without a close handshake."""
        self._mark_broken("aborted locally")
        await self._abort()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close handshake, bounded by ``close_timeout`` and shielded from
        cancellation so the socket is always released. Idempotent; never raises
        for a peer that is gone."""
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + self._close_timeout
            try:
                if not self.closed and self._protocol.state is State.OPEN:
                    async with self._send_lock:
                        self._protocol.send_close(code, reason)
                        await self._flush_locked()
                    if self._receiving:
                        # The reader task will see the peer's close and EOF.
                        await self._eof_seen.wait()
                    else:
                        while not self._stream_closed:
                            try:
                                await self.receive_batch()
                            except ConnectionClosedError:
                                break
            except ConnectionClosedError:
                pass
            finally:
                self._mark_broken("closed locally")
                await self._abort()


def _unsent(exc: ConnectionClosedError) -> ConnectionClosedError:
    """A copy of ``exc`` for a send of which no byte left (the socket's own
    error object is shared by every later call, so it is not changed)."""
    unsent = ConnectionClosedError(str(exc), exc.code, exc.reason, written=False)
    unsent.__cause__ = exc.__cause__
    return unsent
