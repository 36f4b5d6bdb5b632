"""One WebSocket over an anyio byte stream, driven by websockets' sans-I/O layer.

The same code runs on asyncio and trio. The transport is four small modules,
re-exported here:

* :mod:`~kraky_anyio.framing` (no I/O): bytes in, messages and a close
  verdict out; a fast path cuts the common server text frame out of the
  stream and hands everything else to websockets' protocol, in order.
* :mod:`~kraky_anyio.websocket`: :class:`WebSocket`, the I/O shell. Sends are
  serialised by a lock and bounded by ``send_timeout`` (lock wait included);
  the protocol's own replies (pongs) never make the receiver wait on a
  stalled peer; ``aclose`` is bounded by ``close_timeout``.
* :mod:`~kraky_anyio.handshake`: :func:`connect_websocket` and
  :func:`accept_websocket` (TCP, TLS, the HTTP upgrade; the default TLS
  context built once, off the event loop).
* this module: :func:`serve_websockets`, a listener for tests and the fake
  exchange.

Every failure leaving the transport is a
:class:`~kraky_anyio.errors.TransportError` (:class:`HandshakeError` while
opening, :class:`ConnectionClosedError` after), never a raw ``OSError``,
``ssl.SSLError`` or anyio error: that one is chained as ``__cause__``.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
from anyio.streams.tls import TLSListener

from .errors import ConnectionClosedError, HandshakeError
from .framing import DEFAULT_MAX_MESSAGE_SIZE, Message
from .handshake import accept_websocket, connect_websocket, default_ssl_context
from .websocket import DEFAULT_SEND_TIMEOUT, WebSocket

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_SEND_TIMEOUT",
    "Message",
    "WebSocket",
    "accept_websocket",
    "connect_websocket",
    "default_ssl_context",
    "serve_websockets",
]


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
        except HandshakeError:
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
