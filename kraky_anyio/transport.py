"""One WebSocket over an anyio byte stream, driven by websockets' sans-I/O layer.

The same code runs on asyncio and trio. One task may receive while others
send: sends are serialised by a lock, and the replies the protocol generates on
its own (pongs, the echo of a close frame) are flushed by the receiving task.

What blocks and what is bounded:

* :meth:`WebSocket.send_text` blocks until the bytes are handed to the
  socket. If it is cancelled or fails half-way, the socket is marked broken:
  every later send or receive raises :class:`ConnectionClosedError`.
* :meth:`WebSocket.receive_batch` blocks until at least one whole message has
  arrived and returns every message completed by that read (so a consumer
  pays one hand-off per socket read, not per message). A message larger than
  ``max_message_size`` closes the socket with code 1009.
* :meth:`WebSocket.aclose` runs the close handshake under a shielded deadline
  of ``close_timeout`` seconds, so closing against a dead peer never hangs.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
from anyio.streams.tls import TLSListener
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidURI, PayloadTooBig
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from .errors import ConnectionClosedError, HandshakeError, MessageTooBigError

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "WebSocket",
    "accept_websocket",
    "connect_websocket",
    "serve_websockets",
]

#: Largest message accepted by default: a full depth-1000 book snapshot is
#: about 150 KB, so 4 MiB leaves room without letting a peer exhaust memory.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
_READ_SIZE = 65536

Message = str | bytes


class _NoFrameLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets' protocol logs every frame at DEBUG, payload included: an
    order frame would put its token in the log. This logger never enables
    DEBUG; warnings and errors pass through to ``websockets.client``/``.server``."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_CLIENT_LOG = _NoFrameLogger(logging.getLogger("websockets.client"), {})
_SERVER_LOG = _NoFrameLogger(logging.getLogger("websockets.server"), {})


class WebSocket:
    """An open WebSocket. Create it with :func:`connect_websocket` or
    :func:`accept_websocket`; close it with :meth:`aclose`."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        protocol: Protocol,
        *,
        close_timeout: float = 2.0,
        leftover: list[Message] | None = None,
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._close_timeout = close_timeout
        self._send_lock = anyio.Lock()
        # The very list the handshake code appends to (frames that arrived
        # with the 101 response): never replace it with a copy.
        self._pending: list[Message] = leftover if leftover is not None else []
        self._fragments: list[bytes] = []
        self._fragment_opcode: Opcode | None = None
        self._closed_exc: ConnectionClosedError | None = None
        self._stream_closed = False
        self._receiving = False
        self._eof_seen = anyio.Event()
        self.bytes_received = 0

    # -- state -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the socket can no longer send or receive."""
        return self._closed_exc is not None or self._stream_closed

    @property
    def close_code(self) -> int | None:
        """The close code received from the peer, or None."""
        rcvd = self._protocol.close_rcvd
        return None if rcvd is None else int(rcvd.code)

    def _closed_error(self) -> ConnectionClosedError:
        if self._closed_exc is not None:
            return self._closed_exc
        return ConnectionClosedError("the WebSocket is closed")

    # -- sending -----------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send one text message.

        Raises :class:`ConnectionClosedError` if the socket is closed or the
        write fails. If cancelled during the write, the socket is aborted
        (a half-written frame would corrupt the stream).
        """
        async with self._send_lock:
            if self.closed or self._protocol.state is not State.OPEN:
                raise self._closed_error()
            self._protocol.send_text(text.encode())
            await self._flush_locked()

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary message (Kraken never does; used by tests)."""
        async with self._send_lock:
            if self.closed or self._protocol.state is not State.OPEN:
                raise self._closed_error()
            self._protocol.send_binary(data)
            await self._flush_locked()

    async def _flush(self) -> None:
        async with self._send_lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        chunks = self._protocol.data_to_send()
        if not chunks or self._stream_closed:
            return
        try:
            for chunk in chunks:
                if chunk:
                    await self._stream.send(chunk)
                else:
                    # The protocol asks for a half-close: TLS streams cannot,
                    # so a full close is the portable answer.
                    await self._abort()
        except BaseException as exc:
            # Cancelled or failed half-way: the frame boundary is lost.
            self._mark_broken(f"write failed: {exc!r}")
            await self._abort()
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            raise self._closed_error() from exc

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
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    data = b""
                except anyio.ClosedResourceError:
                    self._mark_broken("the socket was closed locally")
                    raise self._closed_error() from None
                batch = await self._feed(data)
                if batch:
                    return batch
        finally:
            self._receiving = False

    async def _feed(self, data: bytes) -> list[Message]:
        protocol = self._protocol
        if data:
            self.bytes_received += len(data)
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
            self._eof_seen.set()
        batch: list[Message] = []
        self._absorb(protocol.events_received(), batch)
        exc = protocol.parser_exc
        if self._closed_exc is not None:
            pass
        elif isinstance(exc, PayloadTooBig):
            self._closed_exc = MessageTooBigError(
                f"message over the size limit (closed with 1009): {exc}",
                code=1009,
                reason="message too big",
            )
        elif (
            protocol.close_rcvd is not None
            or protocol.state is State.CLOSED
            or not data
            or exc is not None
        ):
            rcvd = protocol.close_rcvd
            code = None if rcvd is None else int(rcvd.code)
            reason = "" if rcvd is None else rcvd.reason
            detail = f"code {code}" if code is not None else "no close frame"
            if exc is not None and not isinstance(exc, EOFError):
                detail += f", protocol error: {exc}"
            self._closed_exc = ConnectionClosedError(
                f"the WebSocket was closed ({detail})", code=code, reason=reason
            )
        # Pongs and the echo of a close frame were queued by the protocol.
        if not self._stream_closed:
            with contextlib.suppress(ConnectionClosedError):
                await self._flush()
        if self._closed_exc is not None:
            self._eof_seen.set()
            await self._abort()
            if batch:
                return batch
            raise self._closed_exc
        return batch

    def _absorb(self, events: list[Any], batch: list[Message]) -> None:
        """Append the messages completed by ``events`` to ``batch``."""
        for event in events:
            if not isinstance(event, Frame):
                continue
            try:
                self._on_frame(event, batch)
            except UnicodeDecodeError:
                if self._protocol.state is State.OPEN:
                    self._protocol.fail(1007, "invalid UTF-8 in a text message")
                self._closed_exc = ConnectionClosedError(
                    "the peer sent invalid UTF-8 in a text message (closed with 1007)",
                    code=1007,
                    reason="invalid UTF-8",
                )
                return

    def _on_frame(self, frame: Frame, batch: list[Message]) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                data = bytes(frame.data)
                batch.append(data.decode() if opcode is Opcode.TEXT else data)
            else:
                self._fragment_opcode = opcode
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(self._fragments)
                text = self._fragment_opcode is Opcode.TEXT
                self._fragments = []
                batch.append(data.decode() if text else data)
        # PING is answered by the protocol itself; PONG and CLOSE need nothing here.

    # -- closing -----------------------------------------------------------

    def _mark_broken(self, why: str) -> None:
        if self._closed_exc is None:
            self._closed_exc = ConnectionClosedError(f"the WebSocket is broken ({why})")

    async def _abort(self) -> None:
        if not self._stream_closed:
            self._stream_closed = True
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


def _default_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


async def connect_websocket(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    close_timeout: float = 2.0,
    user_agent: str | None = "kraky-anyio",
) -> WebSocket:
    """Open a WebSocket to ``url`` (``ws://`` or ``wss://``).

    For ``wss://`` the TLS handshake sends SNI and checks the certificate and
    host name, with ``ssl.create_default_context()`` unless ``ssl_context`` is
    given. Not bounded in time: wrap it in ``anyio.fail_after``. Raises
    :class:`HandshakeError` for a bad URL or a refused upgrade, ``OSError``
    for TCP/TLS failures.
    """
    try:
        uri = parse_uri(url)
    except InvalidURI as exc:
        raise HandshakeError(f"not a WebSocket URL: {url!r}") from exc
    host = uri.host
    if uri.secure:
        context = ssl_context if ssl_context is not None else _default_ssl_context()
        stream: anyio.abc.ByteStream = await anyio.connect_tcp(
            host, uri.port, ssl_context=context, tls_hostname=host, tls_standard_compatible=False
        )
    else:
        stream = await anyio.connect_tcp(host, uri.port)
    try:
        protocol = ClientProtocol(uri, max_size=max_message_size, logger=_CLIENT_LOG)
        request = protocol.connect()
        if user_agent is not None:
            request.headers["User-Agent"] = user_agent
        protocol.send_request(request)
        for chunk in protocol.data_to_send():
            await stream.send(chunk)
        leftover: list[Message] = []
        ws = WebSocket(stream, protocol, close_timeout=close_timeout, leftover=leftover)
        response: Response | None = None
        while response is None:
            try:
                data = await stream.receive(_READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                raise HandshakeError(
                    "the server closed the connection during the handshake"
                ) from exc
            protocol.receive_data(data)
            events = protocol.events_received()
            response = next((e for e in events if isinstance(e, Response)), None)
            ws._absorb(events, leftover)
        if protocol.handshake_exc is not None:
            raise HandshakeError(f"WebSocket handshake failed: {protocol.handshake_exc}")
        # Frames that came with the 101 may have queued replies (pongs).
        await ws._flush()
        return ws
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def accept_websocket(
    stream: anyio.abc.ByteStream,
    *,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    close_timeout: float = 2.0,
    process_request: Callable[[Request], Response | None] | None = None,
) -> WebSocket:
    """Run the server side of the opening handshake on an accepted stream.

    ``process_request`` may return a :class:`Response` to refuse the upgrade
    (e.g. HTTP 503). Raises :class:`HandshakeError` when the peer is not a
    WebSocket client or was refused; the stream is then closed.
    """
    protocol = ServerProtocol(max_size=max_message_size, logger=_SERVER_LOG)
    leftover: list[Message] = []
    ws = WebSocket(stream, protocol, close_timeout=close_timeout, leftover=leftover)
    try:
        request: Request | None = None
        while request is None:
            try:
                data = await stream.receive(_READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                raise HandshakeError(
                    "the client closed the connection during the handshake"
                ) from exc
            protocol.receive_data(data)
            for event in protocol.events_received():
                if isinstance(event, Request):
                    request = event
            if request is None and protocol.handshake_exc is not None:
                break
        response: Response | None = None
        if request is not None and process_request is not None:
            response = process_request(request)
        if response is None:
            response = (
                protocol.accept(request)
                if request is not None
                else protocol.reject(400, "Bad Request\n")
            )
        protocol.send_response(response)
        for chunk in protocol.data_to_send():
            if chunk:
                await stream.send(chunk)
        if protocol.state is not State.OPEN:
            raise HandshakeError(f"WebSocket upgrade refused with HTTP {response.status_code}")
        return ws
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def serve_websockets(
    handler: Callable[[WebSocket], Awaitable[Any]],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Accept WebSocket connections and run ``handler(ws)`` for each, forever.

    A :class:`ConnectionClosedError` escaping the handler ends that
    connection quietly (its peer went away); other exceptions propagate.

    Use with ``port = await tg.start(serve_websockets, handler)``: the port
    actually bound is passed to ``task_status.started``. The handler's socket
    is closed when it returns. Cancel the enclosing scope to stop serving.
    """
    tcp = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound = tcp.extra(anyio.abc.SocketAttribute.local_port)
    listener: anyio.abc.Listener[Any] = (
        TLSListener(tcp, ssl_context, standard_compatible=False) if ssl_context else tcp
    )

    async def handle(stream: anyio.abc.ByteStream) -> None:
        try:
            ws = await accept_websocket(stream, max_message_size=max_message_size)
        except (HandshakeError, OSError, anyio.BrokenResourceError):
            return
        try:
            await handler(ws)
        except ConnectionClosedError:
            pass  # the peer went away: the handler's job is over
        finally:
            await ws.aclose()

    task_status.started(bound)
    try:
        await listener.serve(handle)
    finally:
        # Shielded: closing inside a cancelled scope would raise Cancelled and
        # mask an exception coming out of a handler.
        with anyio.CancelScope(shield=True):
            await listener.aclose()
