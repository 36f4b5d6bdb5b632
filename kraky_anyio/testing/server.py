"""An in-process fake Kraken v1 server to test clients and bots against.

::

    async with open_fake_kraken() as server:
        ws = await connect_websocket(server.url)
        ...
        await server.wait_for_subscription("book-10", "XBT/USD")
        await server.publish("book-10", "XBT/USD", {"as": [...], "bs": [...]})
        await server.drop()  # the client must reconnect

The protocol lives in :class:`~kraky_anyio.testing.session.FakeKrakenSession`
(one per connection); this module only moves its messages over
:mod:`kraky_anyio.transport` and owns the tasks. It runs on asyncio and trio,
reads time only from ``anyio.current_time()`` (so trio's ``MockClock`` drives
heartbeats) and never sleeps to synchronise: the ``wait_for_*`` helpers wake on
state changes.

Each connection has a reader (the connection's own task), a writer fed by an
unbounded queue (so messages leave in the order the session produced them),
and a heartbeat task. Server methods that send (``publish``, ``send_raw``,
``set_status``) queue and return at once; they do not wait for the bytes to be
written.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .._taskgroup import task_group
from ..errors import ConnectionClosedError, HandshakeError
from ..transport import WebSocket, accept_websocket
from .session import (
    DEFAULT_PAIRS,
    FIRST_CONNECTION_ID,
    FakeKrakenSession,
    OrderHandler,
    OutgoingMessage,
    PrivateSnapshotProvider,
    SnapshotProvider,
    _check_options,
    _check_status,
)

__all__ = ["FakeKrakenConnection", "FakeKrakenServer", "open_fake_kraken"]

#: Each connection's public channelIDs start this far from the previous one's,
#: so a client that routes by channelID across reconnects is caught.
_CHANNEL_ID_STRIDE = 1000


def _service_unavailable(request: Request) -> Response:
    body = b"503 Service Unavailable\n"
    headers = Headers(
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
    )
    return Response(503, "Service Unavailable", headers, body)


class FakeKrakenConnection:
    """One live client connection of a :class:`FakeKrakenServer`.

    ``session`` is its protocol state, ``websocket`` its socket,
    ``opened_at`` the ``anyio.current_time()`` of its handshake.
    """

    def __init__(
        self, server: FakeKrakenServer, session: FakeKrakenSession, websocket: WebSocket
    ) -> None:
        self.session = session
        self.websocket = websocket
        self.opened_at = anyio.current_time()
        self._server = server
        self._outbox, self._inbox = anyio.create_memory_object_stream[str | bytes](math.inf)
        self._wake = anyio.Event()
        self._finished = anyio.Event()

    @property
    def connection_id(self) -> int:
        """The ``connectionID`` announced in its ``systemStatus``."""
        return self.session.connection_id

    @property
    def closed(self) -> bool:
        """True once the connection's tasks have ended."""
        return self._finished.is_set()

    async def wait_closed(self) -> None:
        """Block until the connection's tasks have ended."""
        await self._finished.wait()

    async def send_raw(self, data: str | bytes) -> None:
        """Queue one frame as is: ``str`` as a text frame, ``bytes`` as a
        binary frame. Sent even while stalled (it is the test's own write)."""
        self.session.note_sent(anyio.current_time())
        self._queue_raw(data)

    def publish_nowait(
        self, channel_name: str, pair: str | None, payload: Any, *more_payloads: Any
    ) -> bool:
        """Queue channel data to this connection only, if it is subscribed to
        ``(channel_name, pair)`` (see :meth:`FakeKrakenSession.publish`);
        returns whether it was. Synchronous, so an order handler or a trading
        engine can push private data to one connection."""
        messages = self.session.publish(
            channel_name, pair, payload, *more_payloads, now=anyio.current_time()
        )
        self._queue(messages)
        return bool(messages)

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

    # -- internals -----------------------------------------------------------

    def _queue(self, messages: Iterable[OutgoingMessage]) -> None:
        # Encoded here, in the caller's task, so that a payload JSON cannot
        # encode raises from the test's own publish() call.
        for message in messages:
            self._queue_raw(json.dumps(message, separators=(",", ":")))

    def _queue_raw(self, data: str | bytes) -> None:
        # Fails only once the connection is ending: nothing left to send to.
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._outbox.send_nowait(data)

    def _poke(self) -> None:
        """Wake the heartbeat task: its schedule may have changed."""
        self._wake.set()

    async def _run(self) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._write)
                tg.start_soon(self._beat)
                await self._read()
                tg.cancel_scope.cancel()
        finally:
            self._outbox.close()
            self._inbox.close()
            # Runs on server exit too (cancelled): "going away", shielded and
            # bounded by the transport's close_timeout.
            await self.websocket.aclose(1001)

    async def _read(self) -> None:
        session, server = self.session, self._server
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
            for frame in batch:
                seen = len(session.received)
                self._queue(session.on_text(frame, now))
                server._received.extend(session.received[seen:])
            self._poke()
            server._notify()

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
                self._queue(self.session.tick(max(anyio.current_time(), due)))


class FakeKrakenServer:
    """A running fake Kraken v1 server; get one from :func:`open_fake_kraken`.

    Observation: :attr:`url`, :attr:`port`, :attr:`sessions` (the live
    connections), :meth:`all_received`, :attr:`connection_attempts` and
    :attr:`attempt_times` (every TCP accept, refused ones included),
    :attr:`connections_total` (completed handshakes), :attr:`refused`.

    Faults: :meth:`drop`, :meth:`close`, :meth:`stall`, :meth:`refuse`,
    :meth:`set_status`, :meth:`send_raw`, :meth:`rate_limit`.

    The ``wait_for*`` methods block until their condition holds (at once if
    it already does); they have no timeout: wrap them in ``anyio.fail_after``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        heartbeat_interval: float = 1.0,
        status: str = "online",
        valid_tokens: Collection[str] | None = None,
        pairs: Collection[str] | None = DEFAULT_PAIRS,
        order_handler: OrderHandler | None = None,
        snapshot_provider: SnapshotProvider | None = None,
        private_snapshot_provider: PrivateSnapshotProvider | None = None,
    ) -> None:
        _check_options(status, heartbeat_interval)
        self.host = host
        self.heartbeat_interval = heartbeat_interval
        self.valid_tokens = None if valid_tokens is None else frozenset(valid_tokens)
        self.pairs = None if pairs is None else frozenset(pairs)
        self.order_handler = order_handler
        self.snapshot_provider = snapshot_provider
        #: Given to connections opened later (see :class:`FakeKrakenSession`).
        self.private_snapshot_provider = private_snapshot_provider
        #: Tokens refused from now on, on every connection (see :meth:`revoke_token`).
        self.revoked_tokens: set[str] = set()
        #: TCP connections accepted, refused ones included.
        self.connection_attempts = 0
        #: ``anyio.current_time()`` of each TCP accept, in order.
        self.attempt_times: list[float] = []
        #: WebSocket handshakes completed.
        self.connections_total = 0
        #: Connection attempts answered with HTTP 503.
        self.refused = 0
        self._status = status
        self._port = 0
        self._stalled = False
        self._refusing: int | None = 0  # None: until told otherwise
        self._connections: list[FakeKrakenConnection] = []
        self._received: list[Any] = []
        self._changed = anyio.Event()

    # -- observation ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port bound."""
        return self._port

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>`` (or the host given)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self._port}"

    @property
    def status(self) -> str:
        """The system status announced to new connections."""
        return self._status

    @property
    def stalled(self) -> bool:
        """Whether :meth:`stall` is in effect."""
        return self._stalled

    @property
    def sessions(self) -> list[FakeKrakenConnection]:
        """The live connections, oldest first (a copy)."""
        return list(self._connections)

    def all_received(self) -> list[Any]:
        """Every client frame that decoded as JSON, on any connection, in
        arrival order (a copy)."""
        return list(self._received)

    # -- waiting -------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Block until ``predicate()`` is true. It is re-checked whenever a
        connection opens or ends, a TCP connection is accepted, or frames
        arrive."""
        while True:
            changed = self._changed
            if predicate():
                return
            await changed.wait()

    async def wait_for_connections(self, n: int = 1) -> list[FakeKrakenConnection]:
        """Block until at least ``n`` connections are open at once; returns them."""
        await self.wait_for(lambda: len(self._connections) >= n)
        return self.sessions

    async def wait_for_subscription(
        self, channel_name: str, pair: str | None
    ) -> FakeKrakenConnection:
        """Block until a live connection is subscribed to ``(channel_name,
        pair)`` (``pair=None`` for private channels); returns the first one.
        Its ``subscriptionStatus`` is queued before anything published later."""
        key = (channel_name, pair)

        def find() -> FakeKrakenConnection | None:
            return next((c for c in self._connections if key in c.session.subscriptions), None)

        await self.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found

    async def wait_for_received(self, predicate: Callable[[Any], bool], *, count: int = 1) -> Any:
        """Block until ``count`` frames in :meth:`all_received` (past ones
        included) satisfy ``predicate``; returns the ``count``-th of them.
        ``predicate`` sees every decoded frame, not only JSON objects."""
        matches: list[Any] = []
        scanned = 0

        def enough() -> bool:
            nonlocal scanned
            matches.extend(frame for frame in self._received[scanned:] if predicate(frame))
            scanned = len(self._received)
            return len(matches) >= count

        await self.wait_for(enough)
        return matches[count - 1]

    # -- faults and data -----------------------------------------------------

    async def drop(self) -> None:
        """Abort every live connection: TCP closed with no close frame. Returns
        once their tasks have ended (connections opened meanwhile are kept)."""
        for connection in self.sessions:
            await connection.drop()

    async def close(self, code: int = 1001, reason: str = "") -> None:
        """Clean close of every live connection, concurrently (see
        :meth:`FakeKrakenConnection.close`)."""
        async with anyio.create_task_group() as tg:
            for connection in self.sessions:
                tg.start_soon(connection.close, code, reason)

    def stall(self, stalled: bool = True) -> None:
        """Hang (or un-hang) the app on every connection, present and future:
        TCP stays open and WebSocket pings are still answered by the transport,
        but nothing is sent (no greeting, reply, data, status or heartbeat) and
        requests received meanwhile are never answered. :meth:`send_raw`,
        :meth:`drop` and :meth:`close` still act."""
        self._stalled = stalled
        for connection in self._connections:
            connection.session.stalled = stalled
            connection._poke()

    def refuse(self, n: int | None) -> None:
        """Refuse the next ``n`` connection attempts (``None``: until
        ``refuse(0)``). A refused attempt is accepted at TCP level, its HTTP
        upgrade request read, and answered ``503 Service Unavailable`` before
        the socket is closed; it counts in :attr:`connection_attempts`."""
        if n is not None and n < 0:
            raise ValueError("n must be >= 0 or None")
        self._refusing = n

    def revoke_token(self, token: str) -> None:
        """Make ``token`` invalid (expired) on every connection, live ones
        included: private subscribes and order handlers using
        :meth:`FakeKrakenSession.token_error` answer ``"ESession:Invalid
        session"``. Live private subscriptions made with it are kept."""
        self.revoked_tokens.add(token)

    def rate_limit(self, n: int) -> None:
        """On every live connection, answer the next ``n`` client frames with
        ``{"Error":"Exceeded msg rate"}`` instead of processing them.
        Connections opened later are not limited."""
        for connection in self._connections:
            connection.session.rate_limit(n)

    async def set_status(self, status: str) -> None:
        """Announce ``systemStatus`` ``status`` to every connection (unless
        stalled); new connections get it on connect. Raises ``ValueError`` for
        a status Kraken does not use. Queues and returns."""
        _check_status(status)
        self._status = status
        now = anyio.current_time()
        for connection in self._connections:
            connection._queue(connection.session.set_status(status, now))

    async def send_raw(self, data: str | bytes) -> int:
        """Queue ``data`` as is to every live connection (``str``: text frame,
        ``bytes``: binary frame), even while stalled; returns how many."""
        connections = self.sessions
        for connection in connections:
            await connection.send_raw(data)
        return len(connections)

    async def publish(
        self, channel_name: str, pair: str | None, payload: Any, *more_payloads: Any
    ) -> int:
        """Queue channel data to the connections subscribed to
        ``(channel_name, pair)`` (see :meth:`FakeKrakenSession.publish`);
        returns how many got it."""
        now = anyio.current_time()
        delivered = 0
        for connection in self._connections:
            messages = connection.session.publish(
                channel_name, pair, payload, *more_payloads, now=now
            )
            connection._queue(messages)
            delivered += bool(messages)
        return delivered

    # -- serving -------------------------------------------------------------

    def _take_refusal(self) -> bool:
        if self._refusing is None:
            return True
        if self._refusing > 0:
            self._refusing -= 1
            return True
        return False

    async def _serve(
        self, port: int, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=port)
        try:
            task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
            await listener.serve(self._handle)
        finally:
            # Shielded: under cancellation, ``async with listener`` would raise
            # Cancelled from aclose() and hide a crashed handler's exception.
            with anyio.CancelScope(shield=True):
                await listener.aclose()

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connection_attempts += 1
        self.attempt_times.append(anyio.current_time())
        refuse = self._take_refusal()
        if refuse:
            self.refused += 1
        self._notify()
        try:
            websocket = await accept_websocket(
                stream, process_request=_service_unavailable if refuse else None
            )
        except (HandshakeError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return
        index = self.connections_total
        self.connections_total += 1
        session = FakeKrakenSession(
            connection_id=FIRST_CONNECTION_ID + index,
            status=self._status,
            heartbeat_interval=self.heartbeat_interval,
            valid_tokens=self.valid_tokens,
            pairs=self.pairs,
            order_handler=self.order_handler,
            snapshot_provider=self.snapshot_provider,
            first_channel_id=1 + index * _CHANNEL_ID_STRIDE,
            revoked_tokens=self.revoked_tokens,
            private_snapshot_provider=self.private_snapshot_provider,
        )
        session.stalled = self._stalled
        connection = FakeKrakenConnection(self, session, websocket)
        connection._queue(session.on_open(connection.opened_at))
        self._connections.append(connection)
        self._notify()
        try:
            await connection._run()
        finally:
            self._connections.remove(connection)
            connection._finished.set()
            self._notify()


@asynccontextmanager
async def open_fake_kraken(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    heartbeat_interval: float = 1.0,
    status: str = "online",
    valid_tokens: Collection[str] | None = None,
    pairs: Collection[str] | None = DEFAULT_PAIRS,
    order_handler: OrderHandler | None = None,
    snapshot_provider: SnapshotProvider | None = None,
) -> AsyncIterator[FakeKrakenServer]:
    """Run a fake Kraken v1 server for the duration of the block.

    Listens on ``host:port`` (port 0: a free one, see ``server.port``). The
    server's tasks live in a task group owned by this context: leaving the
    block stops the listener and closes every connection with code 1001
    (each close bounded by the transport's ``close_timeout``), and nothing is
    left running. An exception raised in the block propagates as is.

    ``valid_tokens=None`` accepts any non-empty token for private channels;
    ``pairs=None`` accepts any ``BASE/QUOTE`` pair; ``snapshot_provider``
    gives what a new subscriber receives after its reply (see
    :class:`FakeKrakenSession`); ``order_handler`` answers
    order events (default: an ``"EGeneral:Unknown method"`` error).
    If ``order_handler`` has an ``async run(server, *, task_status)`` method
    (e.g. :class:`~kraky_anyio.testing.engine.FakeMatchingEngine`), it is
    started in the server's task group with ``TaskGroup.start`` before the
    listener opens, so it can bind to the server and run timers; it is
    cancelled when the block ends.
    Raises ``ValueError`` for an unknown ``status`` or a ``heartbeat_interval``
    that is not positive, ``OSError`` if the port cannot be bound. A crash
    in the server's own tasks (e.g. an ``order_handler`` raising) cancels
    the block and propagates out of it (inside an ``ExceptionGroup``).
    """
    server = FakeKrakenServer(
        host=host,
        heartbeat_interval=heartbeat_interval,
        status=status,
        valid_tokens=valid_tokens,
        pairs=pairs,
        order_handler=order_handler,
        snapshot_provider=snapshot_provider,
    )
    async with task_group() as tg:  # cancelled when the block ends
        run = getattr(order_handler, "run", None)
        if run is not None:
            await tg.start(run, server)
        server._port = await tg.start(server._serve, port)
        yield server
