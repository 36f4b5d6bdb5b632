"""One client connection of the fake exchange: the I/O shell around a session.

:func:`accept_client` runs the opening handshake (or refuses it with HTTP
503) and reports the request path, from which the server picks the protocol.
A :class:`FakeKrakenConnection` moves frames between a
:class:`~kraky_anyio.transport.WebSocket` and a sans-I/O session (v1
:class:`~kraky_anyio.testing.session.FakeKrakenSession` or v2
:class:`~kraky_anyio.testing.v2_session.FakeKrakenV2Session`). It owns three
tasks while :meth:`FakeKrakenConnection.run` runs: the reader (the caller's
own task), a writer fed by an unbounded queue (messages leave in the order the
session produced them) and a heartbeat task that sleeps until the session's
next heartbeat is due. Methods that send (:meth:`~FakeKrakenConnection.send`,
:meth:`~FakeKrakenConnection.send_raw`, :meth:`~FakeKrakenConnection.publish_nowait`)
queue and return at once; they never wait for the bytes to be written.
Time is ``anyio.current_time()`` only, so virtual clocks drive heartbeats.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import anyio
import anyio.abc
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..errors import ConnectionClosedError, TransportError
from ..transport import WebSocket, accept_websocket
from .session import FakeKrakenSession
from .v2_session import FakeKrakenV2Session

__all__ = ["FakeKrakenConnection", "FakeSession", "accept_client"]

#: The session of a connection: v1 or v2, chosen by the request path.
FakeSession: TypeAlias = FakeKrakenSession | FakeKrakenV2Session


def _service_unavailable() -> Response:
    body = b"503 Service Unavailable\n"
    headers = Headers(
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
    )
    return Response(503, "Service Unavailable", headers, body)


async def accept_client(
    stream: anyio.abc.ByteStream, *, refuse: bool = False
) -> tuple[WebSocket, str] | None:
    """The server side of the opening handshake on an accepted TCP stream:
    ``(websocket, path)`` (the request path without its query string), or
    None when the client failed the handshake or went away, or was refused:
    with ``refuse``, the upgrade request is read and answered ``503 Service
    Unavailable``, then the stream is closed. Blocks until the client's
    request has arrived (unbounded: the caller's scope bounds it)."""
    paths: list[str] = []

    def route(request: Request) -> Response | None:
        paths.append(urlsplit(request.path).path)
        return _service_unavailable() if refuse else None

    try:
        websocket = await accept_websocket(stream, process_request=route)
    except (TransportError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        return None
    return websocket, paths[0]


class FakeKrakenConnection:
    """One live client connection of a fake server.

    ``session`` is its protocol state (``session.api`` says ``"v1"`` or
    ``"v2"``), ``websocket`` its socket, ``opened_at`` the
    ``anyio.current_time()`` of its handshake.
    """

    def __init__(self, session: FakeSession, websocket: WebSocket) -> None:
        self.session = session
        self.websocket = websocket
        self.opened_at = anyio.current_time()
        self._outbox, self._inbox = anyio.create_memory_object_stream[str | bytes](math.inf)
        self._wake = anyio.Event()
        self._finished = anyio.Event()

    @property
    def connection_id(self) -> int:
        """The connection id announced in its greeting."""
        return self.session.connection_id

    @property
    def closed(self) -> bool:
        """True once the connection's tasks have ended."""
        return self._finished.is_set()

    async def wait_closed(self) -> None:
        """Block until the connection's tasks have ended."""
        await self._finished.wait()

    # -- sending -------------------------------------------------------------

    def send(self, messages: Iterable[Any]) -> None:
        """Queue messages the session produced, encoded by the session.
        Encoded here, in the caller's task, so a payload JSON cannot encode
        raises from the caller (e.g. the test's own ``publish``)."""
        for message in messages:
            self._queue_raw(self.session.encode(message))
        self.reschedule()

    async def send_raw(self, data: str | bytes) -> None:
        """Queue one frame as is: ``str`` as a text frame, ``bytes`` as a
        binary frame. Sent even while stalled (it is the test's own write)."""
        self.session.note_sent(anyio.current_time())
        self._queue_raw(data)

    def publish_nowait(
        self, channel_name: str, pair: str | None, payload: Any, *more_payloads: Any
    ) -> bool:
        """Queue v1 channel data to this connection only, if it is a v1
        connection subscribed to ``(channel_name, pair)`` (see
        :meth:`FakeKrakenSession.publish`); returns whether it was.
        Synchronous, so an order handler or a trading engine can push private
        data to one connection."""
        if not isinstance(self.session, FakeKrakenSession):
            return False
        messages = self.session.publish(
            channel_name, pair, payload, *more_payloads, now=anyio.current_time()
        )
        self.send(messages)
        return bool(messages)

    def reschedule(self) -> None:
        """Wake the heartbeat task: the session's schedule may have changed
        (a subscription, a stall)."""
        self._wake.set()

    def _queue_raw(self, data: str | bytes) -> None:
        # Fails only once the connection is ending: nothing left to send to.
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._outbox.send_nowait(data)

    # -- closing -------------------------------------------------------------

    async def drop(self) -> None:
        """Close the TCP connection without a close frame (a network drop);
        returns once the connection's tasks have ended."""
        await self.websocket.abort()
        await self._finished.wait()

    async def close(self, code: int = 1001, reason: str = "") -> None:
        """Clean close: send a close frame and wait for the client's (at most
        the transport's ``close_timeout``, then abort); returns once the
        connection's tasks have ended. The client must be reading to answer."""
        await self.websocket.aclose(code, reason)
        await self._finished.wait()

    # -- running -------------------------------------------------------------

    async def run(
        self, on_received: Callable[[list[Any]], None], on_closed: Callable[[], None]
    ) -> None:
        """Greet, then serve the connection until the client goes, the socket
        breaks or the caller is cancelled; closes the socket (code 1001,
        shielded, bounded by the transport's ``close_timeout``) on the way
        out. ``on_received(frames)`` is called after each socket read with
        the frames that decoded as JSON (possibly none); ``on_closed()``
        once the socket is closed, just before :meth:`wait_closed` returns."""
        try:
            self.send(self.session.on_open(self.opened_at))
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._write)
                tg.start_soon(self._beat)
                await self._read(on_received)
                tg.cancel_scope.cancel()
        finally:
            self._outbox.close()
            self._inbox.close()
            # Shielded by the transport: runs on server exit too (cancelled).
            await self.websocket.aclose(1001)
            on_closed()
            self._finished.set()

    async def _read(self, on_received: Callable[[list[Any]], None]) -> None:
        session = self.session
        while True:
            try:
                batch = await self.websocket.receive_batch()
            except ConnectionClosedError:
                return
            except UnicodeDecodeError:
                # A text frame that is not UTF-8 (the transport lets the
                # decode error escape): close as a WebSocket server must.
                await self.websocket.aclose(1007, "invalid UTF-8")
                return
            now = anyio.current_time()
            seen = len(session.received)
            for frame in batch:
                self.send(session.on_text(frame, now))
            on_received(session.received[seen:])

    async def _write(self) -> None:
        async for data in self._inbox:
            try:
                if isinstance(data, bytes):
                    await self.websocket.send_bytes(data)
                else:
                    await self.websocket.send_text(data)
            except ConnectionClosedError:
                return  # the reader sees the same failure and ends the connection

    async def _beat(self) -> None:
        while True:
            self._wake = anyio.Event()
            due = self.session.heartbeat_due()
            if due is None:
                await self._wake.wait()
            else:
                # Traffic meanwhile only pushes the due time later, so
                # sleeping to the old one and asking again is enough. The
                # max(): a quantised virtual clock (looptime) may wake us a
                # float rounding short of `due`; without it, this loop would
                # spin without ever letting that clock advance.
                await anyio.sleep_until(due)
                self.send(self.session.tick(max(anyio.current_time(), due)))
