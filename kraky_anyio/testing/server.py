"""An in-process fake Kraken server (v1 and v2) to test clients and bots against.

::

    async with open_fake_kraken() as server:
        ws = await connect_websocket(server.url)        # v1
        ws2 = await connect_websocket(server.v2_url)    # v2: the same server, path /v2
        ...
        await server.wait_for_subscription("book-10", "XBT/USD")
        await server.publish("book-10", "XBT/USD", {"as": [...], "bs": [...]})
        await server.drop()  # the client must reconnect

Paths: a WebSocket opened on ``/v2`` (``server.v2_url``, query string
allowed) speaks Kraken v2 (:class:`~kraky_anyio.testing.v2_session.FakeKrakenV2Session`);
any other path speaks v1 (:class:`~kraky_anyio.testing.session.FakeKrakenSession`),
as Kraken's ``wss://ws.kraken.com`` does. Both share the listener, the
options (:class:`~kraky_anyio.testing.options.FakeKrakenOptions`), the fault
injection and the ``wait_for*`` helpers.

This module listens and injects faults; the observation log and the
``wait_for*`` helpers are :mod:`kraky_anyio.testing.observation`, each
connection's I/O is :mod:`kraky_anyio.testing.connection`. It runs on asyncio
and trio, reads time only from ``anyio.current_time()`` and never sleeps to
synchronise: the ``wait_for_*`` helpers wake on state changes. Server methods
that send (``publish``, ``publish_v2``, ``send_raw``, ``set_status``) queue
and return at once; they do not wait for the bytes to be written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc

from ..taskgroup import task_group
from .connection import FakeKrakenConnection, FakeSession, accept_client
from .observation import ServerObservation
from .options import FakeKrakenOptions, check_status, make_options
from .replay import Replay, ReplaySource
from .session import FakeKrakenSession
from .v1_messages import FIRST_CONNECTION_ID
from .v2_session import FIRST_V2_CONNECTION_ID, V2_PATH, FakeKrakenV2Session

__all__ = ["FakeKrakenConnection", "FakeKrakenServer", "open_fake_kraken"]

#: Each connection's public channelIDs start this far from the previous one's,
#: so a client that routes by channelID across reconnects is caught.
_CHANNEL_ID_STRIDE = 1000


class FakeKrakenServer(ServerObservation):
    """A running fake Kraken server; get one from :func:`open_fake_kraken`.

    Configuration: :attr:`options` (a :class:`FakeKrakenOptions`, given to
    every connection opened from then on; change it with :meth:`configure`).

    Observation: :attr:`url`, :attr:`v2_url`, :attr:`port`, :attr:`sessions`
    (the live connections, v1 and v2), :meth:`all_received`,
    :attr:`connection_attempts` and :attr:`attempt_times` (every TCP accept,
    refused ones included), :attr:`connections_total` (completed
    handshakes), :attr:`refused`.

    Faults: :meth:`drop`, :meth:`close`, :meth:`stall`, :meth:`refuse`,
    :meth:`set_status`, :meth:`send_raw`, :meth:`rate_limit`, on v1 and v2
    connections alike.

    The ``wait_for*`` methods block until their condition holds (at once if
    it already does); they have no timeout: wrap them in ``anyio.fail_after``.
    """

    def __init__(
        self,
        options: FakeKrakenOptions | None = None,
        *,
        host: str = "127.0.0.1",
        replay: Replay | None = None,
    ) -> None:
        super().__init__()
        self.options = make_options(options, {})
        self.host = host
        #: The recording served (see :mod:`kraky_anyio.testing.replay`), or None.
        self.replay = replay
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
        self._status = self.options.status
        self._port = 0
        self._stalled = False
        self._refusing: int | None = 0  # None: until told otherwise
        self._rate_limit_next = 0  # frames the next connection answers rate-limited

    def configure(self, **changes: Any) -> None:
        """Replace :attr:`options` with ``changes`` applied (validated: bad
        values raise ``TypeError``/``ValueError``). Connections opened from
        now on get the new options; live ones keep theirs."""
        self.options = self.options.replace(**changes)

    @property
    def valid_tokens(self) -> Collection[str] | None:
        """``options.valid_tokens``; assigning it is ``configure(valid_tokens=...)``."""
        return self.options.valid_tokens

    @valid_tokens.setter
    def valid_tokens(self, tokens: Collection[str] | None) -> None:
        self.configure(valid_tokens=tokens)

    # -- observation ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port bound."""
        return self._port

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>`` (or the host given): the v1 endpoint."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self._port}"

    @property
    def v2_url(self) -> str:
        """``ws://127.0.0.1:<port>/v2``: the v2 endpoint."""
        return self.url + V2_PATH

    @property
    def status(self) -> str:
        """The system status announced to new connections."""
        return self._status

    @property
    def stalled(self) -> bool:
        """Whether :meth:`stall` is in effect."""
        return self._stalled

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
            connection.reschedule()

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

    def rate_limit(self, n: int, *, next_connection: bool = False) -> None:
        """On every live connection, answer the next ``n`` client frames with
        a rate-limit error instead of processing them (v1:
        ``{"Error":"Exceeded msg rate"}``; v2: see
        :meth:`FakeKrakenV2Session.rate_limit`). Connections opened later are
        not limited; with ``next_connection``, only the next one opened is,
        from its first frame (e.g. a client's replay after :meth:`drop`).
        Raises ``ValueError`` for ``n < 0``."""
        if n < 0:
            raise ValueError("n must be >= 0")
        if next_connection:
            self._rate_limit_next = n
            return
        for connection in self._connections:
            connection.session.rate_limit(n)

    async def set_status(self, status: str) -> None:
        """Announce ``status`` to every connection (unless stalled): v1 a
        ``systemStatus``, v2 a ``status`` channel update; new connections get
        it on connect. Raises ``ValueError`` for a status Kraken does not use.
        Queues and returns."""
        check_status(status)
        self._status = status
        now = anyio.current_time()
        for connection in self._connections:
            connection.send(connection.session.set_status(status, now))

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
        """Queue v1 channel data to the v1 connections subscribed to
        ``(channel_name, pair)`` (see :meth:`FakeKrakenSession.publish`);
        returns how many got it."""
        return sum(
            c.publish_nowait(channel_name, pair, payload, *more_payloads) for c in self.sessions
        )

    async def publish_v2(
        self,
        channel: str,
        symbol: str | None,
        data: Any,
        *,
        type: str = "update",
        params: Mapping[str, Any] | None = None,
    ) -> int:
        """Queue one v2 channel message to the v2 connections subscribed to
        ``(channel, symbol)`` whose subscription has every item of ``params``
        (e.g. ``{"depth": 25}``; see :meth:`FakeKrakenV2Session.publish`,
        which also takes a frame already written as ``bytes``): the seam a
        market simulator publishes v2 ticker/book/trade through. Returns how
        many got it. Queues and returns, like :meth:`publish`."""
        now = anyio.current_time()
        delivered = 0
        for connection in self.sessions:
            session = connection.session
            if isinstance(session, FakeKrakenV2Session):
                messages = session.publish(channel, symbol, data, type=type, params=params, now=now)
                connection.send(messages)
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

    async def serve(
        self, port: int = 0, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on ``host:port`` and serve connections until cancelled; use
        as ``await tg.start(server.serve, port)`` (the port bound is
        ``started``). Raises ``OSError`` if the port cannot be bound; an
        exception from a connection (e.g. an ``order_handler`` raising)
        propagates. :func:`open_fake_kraken` does all this for you."""
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=port)
        try:
            self._port = listener.extra(anyio.abc.SocketAttribute.local_port)
            task_status.started(self._port)
            await listener.serve(self._handle)
        finally:
            # Shielded: under cancellation, ``async with listener`` would raise
            # Cancelled from aclose() and hide a crashed handler's exception.
            with anyio.CancelScope(shield=True):
                await listener.aclose()

    def _new_session(self, path: str) -> FakeSession:
        index = self.connections_total
        self.connections_total += 1
        session: FakeSession
        replay = self.replay
        if path == V2_PATH:
            session = (FakeKrakenV2Session if replay is None else replay.v2_session)(
                self.options,
                connection_id=FIRST_V2_CONNECTION_ID + index,
                revoked_tokens=self.revoked_tokens,
            )
        else:
            session = (FakeKrakenSession if replay is None else replay.v1_session)(
                self.options,
                connection_id=FIRST_CONNECTION_ID + index,
                first_channel_id=1 + index * _CHANNEL_ID_STRIDE,
                revoked_tokens=self.revoked_tokens,
            )
        session.status = self._status
        session.stalled = self._stalled
        session.rate_limit(self._rate_limit_next)
        self._rate_limit_next = 0
        return session

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connection_attempts += 1
        self.attempt_times.append(anyio.current_time())
        refuse = self._take_refusal()
        if refuse:
            self.refused += 1
        self._notify()
        accepted = await accept_client(stream, refuse=refuse)
        if accepted is None:
            return
        websocket, path = accepted
        connection = FakeKrakenConnection(self._new_session(path), websocket)
        self._connections.append(connection)
        self._notify()

        def received(frames: list[Any]) -> None:
            self._received.extend(frames)
            self._notify()

        def closed() -> None:
            self._connections.remove(connection)
            self._notify()

        await connection.run(received, closed)


@asynccontextmanager
async def open_fake_kraken(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    options: FakeKrakenOptions | None = None,
    replay: ReplaySource | None = None,
    speed: float | str = 1.0,
    loop: bool = False,
    **changes: Any,
) -> AsyncIterator[FakeKrakenServer]:
    """Run a fake Kraken server (v1 on ``/``, v2 on ``/v2``) for the
    duration of the block.

    Configured by ``options`` with keyword ``changes`` applied, e.g.
    ``open_fake_kraken(valid_tokens={"tok"}, heartbeat_interval=0.5)``: every
    :class:`~kraky_anyio.testing.options.FakeKrakenOptions` field is a
    keyword here. An unknown keyword raises ``TypeError``, a bad value
    ``TypeError``/``ValueError``, on entering the block before anything runs.

    Listens on ``host:port`` (port 0: a free one, see ``server.port``). The
    server's tasks live in a task group owned by this context: leaving the
    block stops the listener and closes every connection with code 1001
    (each close bounded by the transport's ``close_timeout``), and nothing is
    left running. An exception raised in the block propagates as is.
    If ``order_handler`` has an ``async run(server, *, task_status)`` method
    (e.g. :class:`~kraky_anyio.testing.engine.FakeMatchingEngine`), it is
    started in the server's task group with ``TaskGroup.start`` before the
    listener opens, so it can bind to the server and run timers; it is
    cancelled when the block ends. Raises ``OSError`` if the port cannot be
    bound. A crash in the server's own tasks (e.g. an ``order_handler``
    raising) cancels the block and propagates out of it (inside an
    ``ExceptionGroup`` when other errors came with it).

    ``replay`` (a path or a
    :class:`~kraky_anyio.testing.replay_formats.Recording`) serves that
    recording at ``speed`` (``1``, ``10``, ``"max"``), from the start again
    at its end with ``loop``; see :mod:`kraky_anyio.testing.replay` (any
    pair is accepted unless ``pairs`` is given). A bad recording raises
    :class:`~kraky_anyio.testing.replay_formats.RecordingFormatError` on
    entering the block.
    """
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be a non-empty str, not {host!r}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {port!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, not {port}")
    played = None
    if replay is not None:
        played = Replay(replay, speed=speed, loop=loop)
        if options is None:
            changes.setdefault("pairs", None)  # the recording's, whatever they are
    elif speed != 1.0 or loop:
        raise TypeError("speed and loop are options of a replay: pass replay= too")
    server = FakeKrakenServer(make_options(options, changes), host=host, replay=played)
    async with task_group() as tg:  # cancelled when the block ends
        if played is not None:
            await tg.start(played.run, server)
        run = getattr(server.options.order_handler, "run", None)
        if run is not None:
            await tg.start(run, server)
        await tg.start(server.serve, port)
        yield server
