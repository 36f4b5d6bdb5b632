"""Opening a WebSocket: TCP, TLS and the HTTP upgrade, client and server side.

What blocks and what is bounded:

* :func:`connect_websocket` blocks through DNS, TCP, TLS and the upgrade and
  is not bounded in time by itself (wrap it in ``anyio.fail_after``), but it
  never waits on an answer already known to be wrong: a reply that is not
  HTTP, or that websockets cannot parse (an oversized body, a broken status
  line), fails the attempt at once with the parse error as the reason.
* The default TLS context (the system CA store) is built once per process,
  in a worker thread so loading it never freezes the event loop; a user's
  ``ssl_context`` is used as given.
* Every failure is a :class:`~kraky_anyio.errors.HandshakeError` with the raw
  ``OSError`` / ``ssl.SSLError`` / anyio error as ``__cause__``; cancellation
  passes through and the stream is always closed on the way out.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import anyio.abc
import anyio.to_thread
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidURI
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import WebSocketURI, parse_uri

from .errors import HandshakeError
from .framing import DEFAULT_MAX_MESSAGE_SIZE, Message
from .websocket import DEFAULT_SEND_TIMEOUT, RAW_IO_ERRORS, WebSocket

__all__ = ["accept_websocket", "connect_websocket", "default_ssl_context", "parse_url"]

_READ_SIZE = 65536
_HTTP = b"HTTP/1.1 "


class _NoFrameLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets' protocol logs every frame at DEBUG, payload included: an
    order frame would put its token in the log. This logger never enables
    DEBUG; warnings and errors pass through to ``websockets.client``/``.server``."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_CLIENT_LOG = _NoFrameLogger(logging.getLogger("websockets.client"), {})
_SERVER_LOG = _NoFrameLogger(logging.getLogger("websockets.server"), {})


class _DefaultContext:
    """The process-wide default client TLS context, built on first use."""

    context: ssl.SSLContext | None = None


async def default_ssl_context() -> ssl.SSLContext:
    """``ssl.create_default_context()``, built once (in a worker thread: loading
    the system CA store takes tens of milliseconds) and reused by every
    ``wss://`` connection without a user context. Two first calls racing may
    both build one; the first stored wins."""
    if _DefaultContext.context is None:
        context = await anyio.to_thread.run_sync(ssl.create_default_context)
        if _DefaultContext.context is None:
            _DefaultContext.context = context
    return _DefaultContext.context


def parse_url(url: str) -> WebSocketURI:
    """Check a ``ws://``/``wss://`` URL; raise :class:`HandshakeError` (a bad
    URL never gets better: callers should check it before retrying)."""
    try:
        uri = parse_uri(url)
    except (InvalidURI, ValueError) as exc:
        raise HandshakeError(f"not a WebSocket URL: {url!r}") from exc
    if not uri.host or not 0 < uri.port < 65536:
        raise HandshakeError(f"not a WebSocket URL (host or port): {url!r}")
    return uri


@contextmanager
def _raw_errors_as(what: str) -> Iterator[None]:
    """Translate a stream's raw failures into :class:`HandshakeError`."""
    try:
        yield
    except RAW_IO_ERRORS as exc:
        why = "the peer closed the connection" if isinstance(exc, anyio.EndOfStream) else repr(exc)
        raise HandshakeError(f"{what}: {why}") from exc


async def connect_websocket(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    close_timeout: float = 2.0,
    user_agent: str | None = "kraky-anyio",
    send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
    fast_path: bool = True,
) -> WebSocket:
    """Open a WebSocket to ``url`` (``ws://`` or ``wss://``).

    For ``wss://`` the TLS handshake sends SNI and checks the certificate and
    host name, with :func:`default_ssl_context` unless ``ssl_context`` is
    given. Not bounded in time: wrap it in ``anyio.fail_after``. Raises
    :class:`HandshakeError` for a bad URL, a TCP or TLS failure (the original
    error as ``__cause__``) or a refused or unparseable upgrade.
    ``send_timeout`` bounds every send on the socket (see
    :class:`WebSocket`); ``fast_path=False`` parses every frame with
    websockets alone.
    """
    uri = parse_url(url)
    host = uri.host
    where = f"{host}:{uri.port}"
    stream: anyio.abc.ByteStream
    if uri.secure:
        context = ssl_context if ssl_context is not None else await default_ssl_context()
        with _raw_errors_as(f"could not connect to {where} over TLS"):
            stream = await anyio.connect_tcp(
                host,
                uri.port,
                ssl_context=context,
                tls_hostname=host,
                tls_standard_compatible=False,
            )
    else:
        with _raw_errors_as(f"could not connect to {where}"):
            stream = await anyio.connect_tcp(host, uri.port)
    try:
        protocol = ClientProtocol(uri, max_size=max_message_size, logger=_CLIENT_LOG)
        request = protocol.connect()
        if user_agent is not None:
            request.headers["User-Agent"] = user_agent
        protocol.send_request(request)
        leftover: list[Message] = []
        ws = WebSocket(
            stream,
            protocol,
            close_timeout=close_timeout,
            send_timeout=send_timeout,
            leftover=leftover,
            fast_path=fast_path,
        )
        with _raw_errors_as(f"the WebSocket handshake with {where} failed"):
            for chunk in protocol.data_to_send():
                await stream.send(chunk)
            rest = await _read_response(stream, protocol, where)
        # Frames glued to the 101 start at a frame boundary: the fast path
        # can take them like any later read.
        leftover.extend(ws.framing.receive_data(rest) if rest else [])
        await ws.flush_replies()  # pongs for pings that came with the 101
        return ws
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def _read_response(
    stream: anyio.abc.ByteStream, protocol: ClientProtocol, where: str
) -> bytes:
    """Feed the protocol the HTTP response, no further than the end of its
    headers for a 101; return the bytes after it. Raises HandshakeError as
    soon as the answer is known to be wrong."""
    received = bytearray()
    fed = 0
    while True:
        data = await stream.receive(_READ_SIZE)
        received += data
        if not received.startswith(_HTTP[: len(received)]):
            shown = bytes(received[:40])
            raise HandshakeError(f"{where} did not answer with HTTP/1.1: {shown!r}")
        end = received.find(b"\r\n\r\n", max(0, fed - 3))
        cut = len(received) if end < 0 or fed >= end + 4 else end + 4
        for part in (received[fed:cut], received[cut:]):
            if not part:
                continue
            protocol.receive_data(bytes(part))
            fed += len(part)
            events = protocol.events_received()
            if protocol.handshake_exc is not None:
                exc = protocol.handshake_exc
                cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
                raise HandshakeError(
                    f"the WebSocket handshake with {where} failed: {exc}{cause}"
                ) from exc
            if any(isinstance(e, Response) for e in events):
                return bytes(received[fed:])


async def accept_websocket(
    stream: anyio.abc.ByteStream,
    *,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    close_timeout: float = 2.0,
    process_request: Callable[[Request], Response | None] | None = None,
    send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
) -> WebSocket:
    """Run the server side of the opening handshake on an accepted stream.

    ``process_request`` may return a :class:`Response` to refuse the upgrade
    (e.g. HTTP 503). Raises :class:`HandshakeError` when the peer is not a
    WebSocket client, was refused or went away; the stream is then closed.
    """
    protocol = ServerProtocol(max_size=max_message_size, logger=_SERVER_LOG)
    leftover: list[Message] = []
    ws = WebSocket(
        stream, protocol, close_timeout=close_timeout, send_timeout=send_timeout, leftover=leftover
    )
    try:
        with _raw_errors_as("the client went away during the handshake"):
            request: Request | None = None
            while request is None:
                protocol.receive_data(await stream.receive(_READ_SIZE))
                events = protocol.events_received()
                for i, event in enumerate(events):
                    if isinstance(event, Request):
                        request = event
                        ws.framing.absorb(events[i + 1 :], leftover)
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
