"""``open_kraken`` and the connection: the task group and its tasks.

Task ownership, all inside the task group that ``open_kraken`` opens::

    open_kraken (task group)
    ├── supervisor   opens sockets, waits out backoff, replays subscriptions
    │   └── per-socket task group
    │       ├── reader    socket -> protocol -> fan-out to consumers
    │       └── watchdog  liveness: ping when idle, drop the socket when dead
    └── writer       the only task that sends user requests, from the send channel
                     (the supervisor writes the replay, the watchdog its pings)

Leaving the ``async with`` block (normally, by exception or by cancellation)
cancels this group, closes the socket with a bounded close handshake and ends
every consumer's iteration; no task outlives the block.
"""

from __future__ import annotations

import logging
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeAlias

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._taskgroup import task_group
from .backoff import Backoff, ReconnectPolicy
from .errors import (
    AuthError,
    ConnectionClosedError,
    ConnectionFailedError,
    KrakyError,
    ReplyTimeoutError,
    TransportError,
)
from .fanout import Fanout, MessageStream, Overflow, make_filter
from .live_book import LiveBook, open_book
from .notices import Connected, Disconnected, SubscriptionLost
from .orders import OrderMethods
from .protocol import (
    DEFERRED_TOKEN,
    KrakenProtocol,
    PendingRequest,
    RequestState,
    Stats,
    redact,
    resolve_url,
)
from .transport import DEFAULT_MAX_MESSAGE_SIZE, WebSocket, connect_websocket

log = logging.getLogger("kraky_anyio")

TokenProvider: TypeAlias = Callable[[], Awaitable[str]]


class _Waiter:
    """The I/O side of a pending request: events its caller waits on."""

    __slots__ = ("done", "sent")

    def __init__(self) -> None:
        self.sent = anyio.Event()
        self.done = anyio.Event()

    def __call__(self, req: PendingRequest) -> None:
        if req.state is not RequestState.QUEUED:
            self.sent.set()
        if req.state is RequestState.DONE or req.state is RequestState.ABANDONED:
            self.done.set()


class KrakenConnection(OrderMethods):
    """One logical connection to Kraken, kept alive across sockets.

    Create it with :func:`open_kraken`. Its methods may be called from any task
    while the ``async with`` block is open.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | TokenProvider | None = None,
        ssl_context: ssl.SSLContext | None = None,
        reconnect: bool = True,
        reconnect_policy: ReconnectPolicy | None = None,
        reply_timeout: float = 10.0,
        idle_timeout: float = 5.0,
        ping_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
        buffer_size: int = 1000,
        overflow: Overflow | str = "block",
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        send_buffer: int = 100,
        rng: random.Random | None = None,
    ) -> None:
        for name, value in (
            ("reply_timeout", reply_timeout),
            ("idle_timeout", idle_timeout),
            ("ping_timeout", ping_timeout),
            ("connect_timeout", connect_timeout),
            ("close_timeout", close_timeout),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0")
        self.url = url
        self._token = token
        self._ssl_context = ssl_context
        self._reconnect = reconnect
        self.reply_timeout = reply_timeout
        self.idle_timeout = idle_timeout
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self._max_message_size = max_message_size
        self._protocol = KrakenProtocol()
        self._fanout = Fanout(self._protocol.stats, buffer_size, overflow)
        self._backoff = Backoff(reconnect_policy, rng)
        self._send_tx: MemoryObjectSendStream[PendingRequest]
        self._send_rx: MemoryObjectReceiveStream[PendingRequest]
        self._send_tx, self._send_rx = anyio.create_memory_object_stream[PendingRequest](
            send_buffer
        )
        self._ws: WebSocket | None = None
        self._generation = 0
        self._connected = anyio.Event()
        self._socket_token: tuple[int, str] | None = None
        self._last_rx = 0.0
        self._closing = False
        self._fatal: BaseException | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<KrakenConnection {self.url} {state} generation={self._generation}>"

    # -- public state ------------------------------------------------------

    @property
    def stats(self) -> Stats:
        """Counters of frames, errors, reconnects and consumers (read-only use)."""
        return self._protocol.stats

    @property
    def connected(self) -> bool:
        """True while a socket is open and its replay has been sent."""
        return self._connected.is_set()

    @property
    def generation(self) -> int:
        """How many sockets have been opened so far (the current one's number)."""
        return self._generation

    @property
    def system_status(self) -> str | None:
        """The last ``systemStatus`` status Kraken sent, or None."""
        return self._protocol.system_status

    @property
    def protocol(self) -> KrakenProtocol:
        """The sans-I/O protocol state (registry, pending requests)."""
        return self._protocol

    def live_subscriptions(self) -> list[tuple[dict[str, Any], str | None]]:
        """``(subscription, pair)`` for every live entry: what a reconnect replays."""
        return [(dict(e.subscription), e.pair) for e in self._protocol.subscriptions.live()]

    async def wait_connected(self) -> None:
        """Wait until a socket is open and live subscriptions were replayed.

        Not bounded in time: wrap it in ``anyio.fail_after`` to give up.
        """
        while not self._connected.is_set():
            await self._connected.wait()

    # -- consumers ---------------------------------------------------------

    def messages(
        self,
        *,
        channel: str | Iterable[str] | None = None,
        pair: str | Iterable[str] | None = None,
        buffer_size: int | None = None,
        overflow: Overflow | str | None = None,
    ) -> MessageStream:
        """A new consumer of every message from now on, in order.

        Yields ``dict`` events, ``list`` channel data and
        :class:`~kraky_anyio.notices.Notice` objects (``Connected``,
        ``Disconnected``, ...). With ``channel`` and/or ``pair`` only matching
        channel data (and notices) are kept. ``buffer_size`` and ``overflow``
        override the connection's defaults for this consumer (see
        :mod:`kraky_anyio.fanout`). Iteration ends when the connection closes.
        """
        return self._fanout.open(make_filter(channel, pair), buffer_size, overflow)

    def book(self, pair: str, depth: int = 10) -> AbstractAsyncContextManager[LiveBook]:
        """``async with conn.book(pair, depth) as book``: a checksum-verified
        local book of ``pair``, subscribed on entry and unsubscribed on exit
        (see :mod:`kraky_anyio.live_book`). Entering waits for the subscribe
        reply and raises like :meth:`subscribe`; ``ValueError`` for a depth
        other than 10, 25, 100, 500, 1000."""
        return open_book(self, pair, depth, notify=self._fanout.publish_nowait)

    # -- requests ----------------------------------------------------------

    async def ping(self, reqid: int | None = None) -> dict[str, Any]:
        """Send a ``ping`` event and return Kraken's ``pong``.

        Waits for a socket if there is none. Raises :class:`ReplyLostError` if
        the socket is lost before the pong, :class:`ReplyTimeoutError` after
        ``reply_timeout`` seconds on the wire.
        """
        req = self._protocol.ping(reqid)
        return (await self._request(req))[0]

    async def subscribe(
        self,
        subscription: Mapping[str, Any],
        pair: str | Iterable[str] | None = None,
        reqid: int | None = None,
    ) -> list[dict[str, Any]]:
        """Subscribe and return the ``subscriptionStatus`` replies, one per pair.

        ``pair`` is a list of pairs (a bare string means one pair); private
        channels take none and get the connection's token. Raises
        :class:`KrakenError` (with every reply) if any pair was rejected: the
        accepted pairs stay live. Raises :class:`ReplyLostError` if the socket
        drops before all replies (those pairs are not live and not replayed),
        :class:`ReplyTimeoutError` after ``reply_timeout``; ``ValueError`` or
        ``TypeError`` for bad arguments, before anything is sent. Waits for a
        socket if there is none; if cancelled before the request reached the
        wire, it is never sent.
        """
        token = await self._token_if_private(subscription)
        req = self._protocol.subscribe(subscription, pair, reqid, token=token)
        return await self._request(req)

    async def unsubscribe(
        self,
        subscription: Mapping[str, Any],
        pair: str | Iterable[str] | None = None,
        reqid: int | None = None,
    ) -> list[dict[str, Any]]:
        """Unsubscribe; the entries leave the replay set at once.

        With no socket open, nothing is sent and ``[]`` is returned (unless a
        subscribe of the same entry is still queued: then the unsubscribe
        waits for the next socket and goes out after it). If the
        socket drops before the replies, the replies received so far are
        returned (the next socket will not have the subscription). Raises
        :class:`KrakenError` if Kraken rejects it (e.g. ``Subscription Not
        Found``).
        """
        bound: int | None = self._generation
        if self._ws is None:
            if self._protocol.unsubscribe_locally(subscription, pair):
                return []
            bound = None  # follow the subscribe still queued for the next socket
        token = await self._token_if_private(subscription)
        req = self._protocol.unsubscribe(
            subscription, pair, reqid, token=token, bound_generation=bound
        )
        return await self._request(req)

    async def request(
        self, message: Mapping[str, Any], expected_replies: int = 1, reqid: int | None = None
    ) -> list[dict[str, Any]]:
        """Send an order event (``addOrder``, ``cancelOrder``, ...) as given and
        return its replies; used by the trading methods. An order is never
        re-sent: if the socket drops after it was written and before its reply,
        :class:`OrderOutcomeUnknownError` is raised."""
        req = self._protocol.order(message, expected_replies, reqid)
        return await self._request(req)

    async def _request(self, req: PendingRequest) -> list[dict[str, Any]]:
        self._check_open()
        waiter = _Waiter()
        req.listener = waiter
        try:
            await self._send_tx.send(req)
            await waiter.sent.wait()
            if not req.done:
                with anyio.move_on_after(self.reply_timeout):
                    await waiter.done.wait()
                if not req.done:
                    self._protocol.timed_out(req)
                    raise ReplyTimeoutError(
                        f"no reply to {req.event} (reqid {req.reqid}) within {self.reply_timeout} s"
                    )
        except BaseException:
            # Cancelled before the wire: the writer will skip it. Already sent:
            # the reply, when it comes, still updates the registry quietly.
            self._protocol.abandon(req)
            self._protocol.orphan(req)
            raise
        finally:
            req.listener = None
        return req.result()

    def _check_open(self) -> None:
        if self._closing or self._task_group is None:
            raise KrakyError("the connection is closed (use it inside `async with open_kraken()`)")

    async def _token_if_private(self, subscription: Mapping[str, Any]) -> str | None:
        if not isinstance(subscription, Mapping) or subscription.get("name") not in (
            "ownTrades",
            "openOrders",
        ):
            return None
        if subscription.get("token"):
            return None
        return self._connection_token()

    def _connection_token(self) -> str:
        """The fixed token, or a placeholder the writer replaces with the token
        of the socket the request goes out on (a provider's tokens are per
        socket). Raises ``ValueError`` when the connection has no token."""
        if self._token is None:
            raise ValueError("this call needs a token: pass token= to open_kraken or the call")
        return self._token if isinstance(self._token, str) else DEFERRED_TOKEN

    async def current_token(self) -> str:
        """The token for the current socket: the fixed string, or one fetched
        from the provider once per socket (while disconnected, the last socket's
        token). A provider call is bounded by ``connect_timeout``. Raises
        ``ValueError`` without a token, ``TimeoutError`` if the provider hangs,
        and whatever the provider raises."""
        if self._token is None:
            raise ValueError("this call needs a token: pass token= to open_kraken")
        if isinstance(self._token, str):
            return self._token
        if self._socket_token is not None and self._socket_token[0] == self._generation:
            return self._socket_token[1]
        with anyio.fail_after(self.connect_timeout):
            token = await self._token()
        if not isinstance(token, str) or not token:
            raise TypeError("the token provider must return a non-empty str")
        self._socket_token = (self._generation, token)
        return token

    # -- tasks -------------------------------------------------------------

    def _start(self, tg: anyio.abc.TaskGroup) -> None:
        self._task_group = tg
        tg.start_soon(self._guard, self._supervisor, name="kraky_anyio supervisor")
        tg.start_soon(self._guard, self._writer, name="kraky_anyio writer")

    async def _guard(self, task: Callable[[], Awaitable[None]]) -> None:
        """Run an internal task; turn its failure into the connection's fatal
        error so the task group never raises on its own."""
        try:
            await task()
        except ConnectionFailedError as exc:
            self._die(exc)
        except Exception as exc:
            err = ConnectionFailedError(f"internal error in kraky_anyio: {exc!r}")
            err.__cause__ = exc
            log.exception("internal task failed")
            self._die(err)

    def _die(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        self._fanout.close(exc)
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    async def _writer(self) -> None:
        async for req in self._send_rx:
            while req.state is RequestState.QUEUED:
                ws = self._ws
                if ws is None or not self._connected.is_set():
                    await self.wait_connected()
                    continue
                gen = self._generation
                if req.bound_generation is not None and req.bound_generation != gen:
                    self._protocol.settle_locally(req)
                    break
                if ws.closed:
                    await anyio.lowlevel.checkpoint()  # the supervisor is about to notice
                    continue
                if req.deferred_token:
                    try:
                        token = await self.current_token()
                    except Exception as exc:
                        self.stats.token_failures += 1
                        # Only the type: a provider's message may hold secrets.
                        err = AuthError(f"the token provider failed ({type(exc).__name__})")
                        log.warning("%s: %s not sent", err, req.event)
                        self._protocol.fail_unsent(req, err)
                        break
                    if gen != self._generation or ws is not self._ws:
                        continue  # the socket changed while fetching: use its token
                    req.set_token(token)
                self._protocol.mark_sent(req, gen)
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("> %s", redact(req.message))
                try:
                    await ws.send_text(req.frame)
                except ConnectionClosedError as exc:
                    self._protocol.send_failed(req, exc)

    async def _supervisor(self) -> None:
        while True:
            self._backoff.maintenance = self._protocol.system_status == "maintenance"
            # Re-checked after each sleep: an attempt never starts early.
            while (delay := self._backoff.delay(anyio.current_time())) > 0:
                log.info("reconnecting in %.2f s", delay)
                await anyio.sleep(delay)
            self._backoff.attempt(anyio.current_time())
            self.stats.connection_attempts += 1
            try:
                with anyio.fail_after(self.connect_timeout):
                    ws = await connect_websocket(
                        self.url,
                        ssl_context=self._ssl_context,
                        max_message_size=self._max_message_size,
                        close_timeout=self.close_timeout,
                    )
            except (
                OSError,  # ssl.SSLError included
                TransportError,
                TimeoutError,
                anyio.EndOfStream,  # TLS handshake cut short
                anyio.BrokenResourceError,
            ) as exc:
                self._backoff.failed(anyio.current_time())
                self.stats.connect_failures += 1
                log.warning("connecting to %s failed: %s", self.url, exc)
                if not self._reconnect:
                    raise ConnectionFailedError(f"could not connect to {self.url}: {exc}") from exc
                continue
            reason = await self._run_socket(ws)
            if not self._reconnect:
                raise ConnectionFailedError(f"the connection to {self.url} was lost: {reason}")

    async def _run_socket(self, ws: WebSocket) -> str:
        self._generation += 1
        gen = self._generation
        self.stats.connections += 1
        self._backoff.connected(anyio.current_time())
        self._last_rx = anyio.current_time()
        self._ws = ws
        state = {"reason": "closed"}
        replay: list[PendingRequest] = []
        try:
            replay = await self._replay_requests()
            replayed = sum(len(r.pairs) for r in replay)
            await self._fanout.publish([Connected(gen, self.url, replayed)])
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._reader, ws, tg.cancel_scope, state)
                tg.start_soon(self._watchdog, ws, state)
                try:
                    for req in replay:
                        self._protocol.mark_sent(req, gen)
                        self.stats.replayed += len(req.pairs)
                        await ws.send_text(req.frame)
                except ConnectionClosedError as exc:
                    state["reason"] = str(exc)
                    tg.cancel_scope.cancel()
                else:
                    self._connected.set()
                    log.info("connected to %s (socket %d, %d replayed)", self.url, gen, replayed)
        finally:
            self._connected = anyio.Event()
            self._ws = None
            self.stats.disconnects += 1
            self._backoff.disconnected(anyio.current_time())
            for req in replay:
                self._protocol.abandon(req)
            self._protocol.connection_lost(gen)
            await ws.aclose()
            self._report_replay_losses()
            will = self._reconnect and not self._closing and self._fatal is None
            self._fanout.publish_nowait(Disconnected(gen, state["reason"], will))
        log.info("socket %d closed: %s", gen, state["reason"])
        return state["reason"]

    async def _replay_requests(self) -> list[PendingRequest]:
        plan = self._protocol.subscriptions.replay_plan()
        token = None
        if any(sub.get("name") in ("ownTrades", "openOrders") for sub, _ in plan):
            try:
                token = await self.current_token()
            except Exception as exc:
                self.stats.token_failures += 1
                # The message names the exception type only: providers may
                # put secrets in their errors.
                log.warning(
                    "token provider failed (%s): private subscriptions not restored",
                    type(exc).__name__,
                )
        return self._protocol.replay(token)

    def _report_replay_losses(self) -> None:
        for sub, pair, why in self._protocol.take_replay_losses():
            self._fanout.publish_nowait(SubscriptionLost(sub, pair, why))

    async def _reader(self, ws: WebSocket, scope: anyio.CancelScope, state: dict[str, str]) -> None:
        receive = self._protocol.receive
        try:
            while True:
                batch = await ws.receive_batch()
                self._last_rx = anyio.current_time()
                out = []
                for raw in batch:
                    msg = receive(raw)
                    if msg is not None:
                        out.append(msg)
                if self._protocol._replay_losses:
                    self._report_replay_losses()
                if out:
                    await self._fanout.publish(out)
                    self._last_rx = anyio.current_time()
        except ConnectionClosedError as exc:
            if state["reason"] == "closed":
                state["reason"] = str(exc)
        finally:
            scope.cancel()

    async def _watchdog(self, ws: WebSocket, state: dict[str, str]) -> None:
        """Judge liveness on Kraken's own messages: ping after ``idle_timeout``
        of silence, drop the socket if ``ping_timeout`` more pass silently."""
        while True:
            if self._fanout.blocked:
                # The reader is not reading: silence proves nothing.
                await self._fanout.wait_unblocked()
                self._last_rx = anyio.current_time()
                continue
            idle_until = self._last_rx + self.idle_timeout
            now = anyio.current_time()
            if now < idle_until:
                await anyio.sleep(idle_until - now)
                if self._last_rx + self.idle_timeout > idle_until:
                    continue  # a message came: idle again from there
                # Otherwise the silence is over, even if a clock that keeps
                # time in steps woke us a rounding error early.
                if self._fanout.blocked:
                    continue
            ping = self._protocol.ping(internal=True)
            self.stats.pings_sent += 1
            sent_at = anyio.current_time()
            self._protocol.mark_sent(ping, self._generation)
            try:
                await ws.send_text(ping.frame)
            except ConnectionClosedError:
                return  # the reader sees the same failure and ends the socket
            await anyio.sleep(self.ping_timeout)
            if self._last_rx < sent_at and not self._fanout.blocked:
                self.stats.dead_connections += 1
                state["reason"] = (
                    f"no message from Kraken for {self.idle_timeout + self.ping_timeout:g} s"
                )
                log.warning("connection looks dead: %s", state["reason"])
                await ws.abort()
                return


@asynccontextmanager
async def open_kraken(
    connection_env: str = "production",
    *,
    token: str | TokenProvider | None = None,
    ssl_context: ssl.SSLContext | None = None,
    reconnect: bool = True,
    reconnect_policy: ReconnectPolicy | None = None,
    reply_timeout: float = 10.0,
    idle_timeout: float = 5.0,
    ping_timeout: float = 5.0,
    connect_timeout: float = 10.0,
    close_timeout: float = 2.0,
    buffer_size: int = 1000,
    overflow: Overflow | str = "block",
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    rng: random.Random | None = None,
) -> AsyncIterator[KrakenConnection]:
    """Open a connection to Kraken's v1 WebSocket API for the ``async with`` block.

    ``connection_env`` is ``"production"``, ``"production-auth"``, ``"beta"``,
    ``"beta-auth"`` or a ``ws://``/``wss://`` URL. Entering does not wait for
    the server: connecting goes on in the background (use
    :meth:`KrakenConnection.wait_connected`). Sockets are re-opened with
    backoff after any loss (unless ``reconnect=False``) and live subscriptions
    replayed. ``token`` is a string or, better, an async callable returning a
    fresh token: it is called once per new socket that needs one (Kraken wants
    a token used within 15 minutes of its creation).

    Leaving the block closes everything; an exception from the block comes out
    as itself. A library failure (the socket lost or never opened with
    ``reconnect=False``, or an internal error) cancels the block and comes out
    as :class:`ConnectionFailedError`.
    """
    conn = KrakenConnection(
        resolve_url(connection_env),
        token=token,
        ssl_context=ssl_context,
        reconnect=reconnect,
        reconnect_policy=reconnect_policy,
        reply_timeout=reply_timeout,
        idle_timeout=idle_timeout,
        ping_timeout=ping_timeout,
        connect_timeout=connect_timeout,
        close_timeout=close_timeout,
        buffer_size=buffer_size,
        overflow=overflow,
        max_message_size=max_message_size,
        rng=rng,
    )
    try:
        async with task_group() as tg:
            conn._start(tg)
            try:
                yield conn
            finally:
                conn._closing = True
    finally:
        conn._closing = True
        # After the tasks: the last Disconnected notice is delivered first.
        conn._fanout.close(conn._fatal)
        conn._send_tx.close()
        conn._send_rx.close()
    if conn._fatal is not None:
        raise conn._fatal
