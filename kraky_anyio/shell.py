"""The shell's tasks: supervisor, reader, watchdog, writer (see ``connection.py``
for the task tree). Version-agnostic: it talks to the protocol object only
through :class:`kraky_anyio.seam.ProtocolCore`, moves frames, wakes callers
and owns the sockets.

Exceptions are translated where they enter: the transport raises only the
:class:`~kraky_anyio.errors.TransportError` family (:func:`_transport_errors`
maps the few raw ones a connect attempt can still leak), so the supervisor
catches that family and its own ``TimeoutError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .backoff import Backoff
from .errors import (
    ConnectionClosedError,
    ConnectionFailedError,
    KrakyError,
    TransportError,
)
from .fanout import Fanout
from .notices import Connected, Disconnected
from .options import ConnectionOptions
from .redaction import redact
from .requests import Request, RequestState
from .restore import replay_plan, send_later, send_replay, token_failure
from .seam import ProtocolCore, ReplayPlan, SendAction
from .status import ConnectionState, ConnectionStatus
from .tokens import SocketTokens
from .transport import WebSocket, connect_websocket
from .waiters import CLOSED_MESSAGE, Waiters
from .watchdog import watch

if TYPE_CHECKING:
    from .recording.tap import FrameTap

log = logging.getLogger("kraky_anyio")


@contextmanager
def _transport_errors() -> Iterator[None]:
    """Raw errors a connect attempt may leak, as ``TransportError``."""
    try:
        yield
    except (OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc


class SocketRun:
    """Per-socket facts the socket's tasks share."""

    __slots__ = ("generation", "reason", "ws")

    def __init__(self, ws: WebSocket, generation: int) -> None:
        self.ws = ws
        self.generation = generation
        self.reason = "closed"


class Shell:
    """Tasks, sockets and waiters of one connection."""

    def __init__(
        self,
        url: str,
        options: ConnectionOptions,
        protocol: ProtocolCore,
        fanout: Fanout,
    ) -> None:
        self.url = url
        self.options = options
        self.protocol = protocol
        self.fanout = fanout
        self.tokens = SocketTokens(options.token, options.connect_timeout)
        self.backoff = Backoff(options.reconnect_policy, options.rng)
        self.send_tx: MemoryObjectSendStream[Request]
        self.send_rx: MemoryObjectReceiveStream[Request]
        self.send_tx, self.send_rx = anyio.create_memory_object_stream[Request](options.send_buffer)
        self.ws: WebSocket | None = None
        self.generation = 0
        self.connected = False
        self.closing = False
        self.fatal: BaseException | None = None
        self._changed = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._socket_scope: anyio.CancelScope | None = None
        self._run: SocketRun | None = None
        self.waiters = Waiters(protocol)
        #: Called by the reader with each batch's messages before consumers
        #: get them (e.g. the v2 order rate budget): synchronous, never blocking.
        self.observers: list[Callable[[list[Any]], None]] = []
        self.last_rx = 0.0
        self._state: ConnectionState = "connecting"
        self._next_attempt_at: float | None = None
        self._disconnected_since: float | None = None
        self._last_error: str | None = None
        self._failed_in_a_row = 0
        #: An observer of every frame and socket (a recording), or None.
        self.tap: FrameTap | None = None

    # -- state -------------------------------------------------------------

    @property
    def status(self) -> ConnectionStatus:
        state: ConnectionState = "closed" if self.closing else self._state
        return ConnectionStatus(
            state,
            self._failed_in_a_row,
            self._next_attempt_at if state == "backoff" else None,
            None if state == "connected" else self._disconnected_since,
            self._last_error,
        )

    def _set_connected(self, value: bool) -> None:
        self.connected = value
        if value:
            self._state, self._disconnected_since = "connected", None
            self._failed_in_a_row = 0
        elif self._disconnected_since is None:
            self._state, self._disconnected_since = "connecting", anyio.current_time()
        self._changed.set()
        self._changed = anyio.Event()

    @property
    def started(self) -> bool:
        return self._task_group is not None

    def check_open(self) -> None:
        if self.closing or self._task_group is None:
            raise KrakyError(CLOSED_MESSAGE)

    async def wait_changed(self) -> None:
        """Wait for the next connect, disconnect or close."""
        await self._changed.wait()

    async def wait_connected(self) -> None:
        while True:
            self.check_open()
            if self.connected:
                return
            await self._changed.wait()

    # -- requests ----------------------------------------------------------

    async def request(
        self, req: Request, task_status: TaskStatus[None] = TASK_STATUS_IGNORED
    ) -> list[dict[str, Any]]:
        """Queue ``req`` for the writer and wait for its replies;
        ``task_status.started()`` once it was written (see :class:`Waiters`)."""
        if self.closing:
            self.protocol.caller_gone(req)
        timeout = self.options.reply_timeout
        return await self.waiters.request(req, self.send_tx, timeout, task_status)

    def close(self) -> None:
        """The block is left: wake every waiting caller with the closed error."""
        self.closing = True
        self._state = "closed"
        self.waiters.close()
        self._changed.set()
        self.send_tx.close()
        self.send_rx.close()

    # -- tasks -------------------------------------------------------------

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        self._task_group = tg
        self._disconnected_since = anyio.current_time()
        tg.start_soon(self._guard, self._supervisor, name="kraky_anyio supervisor")
        tg.start_soon(self._guard, self._writer, name="kraky_anyio writer")

    def start_soon(self, func: Any, *args: Any, name: str) -> None:
        """Run a helper task in the connection's group (e.g. a resync)."""
        if self._task_group is None:
            raise KrakyError(CLOSED_MESSAGE)
        self._task_group.start_soon(func, *args, name=name)

    async def _guard(self, task: Any) -> None:
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
        if self.fatal is None:
            self.fatal = exc
        self.fanout.close(exc)
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    def _drop_socket(self, generation: int, reason: str) -> None:
        """Hand a failed socket to the supervisor at once (it may be the
        only task that notices: the reader may be blocked on a consumer)."""
        run = self._run
        if run is not None and run.generation == generation and self._socket_scope is not None:
            if run.reason == "closed":
                run.reason = reason
            self._socket_scope.cancel()

    async def _writer(self) -> None:
        async for req in self.send_rx:
            await self._write(req)
            self.waiters.wake(req)

    async def _write(self, req: Request) -> None:
        protocol = self.protocol
        while True:
            ws, run = self.ws, self._run
            if ws is None or run is None or not self.connected:
                await self._changed.wait()
                continue
            gen = run.generation
            action = protocol.next_to_send(req, gen)
            if action is SendAction.SKIP or action is SendAction.SETTLED:
                return
            if action is SendAction.NEEDS_TOKEN:
                try:
                    token = await self.tokens.for_socket(gen)
                except Exception as exc:
                    protocol.stats.token_failures += 1
                    log.warning("token provider: %s; %s not sent", token_failure(exc), req.event)
                    protocol.fail_unsent(req, exc)
                    return
                if self._run is run:
                    protocol.supply_token(req, token)
                continue  # the socket may have changed while fetching: ask again
            if ws.closed or ws.close_code is not None:
                # Closed under us (a close frame absorbed by the transport):
                # nothing was written; wait for the next socket.
                self._drop_socket(gen, "the socket closed")
                await self._changed.wait()
                continue
            frame = protocol.frame(req)
            protocol.sending(req, gen)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("> %s", redact(req.message))
            if self.tap is not None:  # before the write: its reply may come first
                self.tap.sent(gen, frame, anyio.current_time())
            try:
                await ws.send_text(frame)
            except TransportError as exc:
                # Unknown counts as written: an order possibly sent is never resent.
                written = not isinstance(exc, ConnectionClosedError) or exc.written
                protocol.send_failed(req, exc, written)
                self._drop_socket(gen, f"a write failed: {exc}")
            else:
                self.waiters.written(req)
            return

    async def _supervisor(self) -> None:
        stats = self.protocol.stats
        while True:
            self.backoff.maintenance = self.protocol.maintenance
            # Re-checked after each sleep: an attempt never starts early.
            while (delay := self.backoff.delay(anyio.current_time())) > 0:
                self._state = "backoff"
                self._next_attempt_at = anyio.current_time() + delay
                log.info("reconnecting in %.2f s", delay)
                await anyio.sleep(delay)
            self._state, self._next_attempt_at = "connecting", None
            self.backoff.attempt(anyio.current_time())
            stats.connection_attempts += 1
            try:
                with anyio.fail_after(self.options.connect_timeout), _transport_errors():
                    ws = await connect_websocket(
                        self.url,
                        ssl_context=self.options.ssl_context,
                        max_message_size=self.options.max_message_size,
                        send_timeout=self.options.send_timeout,
                        close_timeout=self.options.close_timeout,
                    )
            except (TransportError, TimeoutError) as exc:
                self.backoff.failed(anyio.current_time())
                stats.connect_failures += 1
                self._failed_in_a_row += 1
                self._last_error = str(exc) or type(exc).__name__
                log.warning("connecting to %s failed: %s", self.url, exc)
                if not self.options.reconnect:
                    raise ConnectionFailedError(f"could not connect to {self.url}: {exc}") from exc
                continue
            reason = await self._run_socket(ws)
            self._last_error = reason
            if not self.options.reconnect:
                raise ConnectionFailedError(f"the connection to {self.url} was lost: {reason}")

    async def _run_socket(self, ws: WebSocket) -> str:
        stats = self.protocol.stats
        self.generation += 1
        run = SocketRun(ws, self.generation)
        stats.connections += 1
        self.backoff.connected(anyio.current_time())
        self.last_rx = anyio.current_time()
        self.ws, self._run = ws, run
        if self.tap is not None:
            self.tap.opened(run.generation, self.last_rx)
        plan: ReplayPlan | None = None
        try:
            async with anyio.create_task_group() as tg:
                self._socket_scope = tg.cancel_scope
                plan = await replay_plan(self)
                await self.fanout.publish(
                    [Connected(run.generation, self.url, plan.entries), *plan.notices]
                )
                tg.start_soon(self._reader, run, tg)
                tg.start_soon(watch, self, run)
                try:
                    await send_replay(self, run, plan)
                except TransportError as exc:
                    run.reason = str(exc)
                    tg.cancel_scope.cancel()
                else:
                    self._set_connected(True)
                    log.info(
                        "connected to %s (socket %d, %d replayed)",
                        self.url,
                        run.generation,
                        plan.entries,
                    )
        finally:
            self._socket_scope = None
            self.ws, self._run = None, None
            self._set_connected(False)
            stats.disconnects += 1
            self.backoff.disconnected(anyio.current_time())
            for req in plan.requests if plan is not None else ():
                if req.state is RequestState.QUEUED:
                    self.protocol.caller_gone(req)
            for req in self.protocol.connection_lost(run.generation).settled:
                self.waiters.wake(req)
            if self.tap is not None:
                self.tap.closed(run.generation, run.reason, anyio.current_time())
            await ws.aclose()
            will = self.options.reconnect and not self.closing and self.fatal is None
            self.fanout.publish_nowait(Disconnected(run.generation, run.reason, will))
        log.info("socket %d closed: %s", run.generation, run.reason)
        return run.reason

    async def _reader(self, run: SocketRun, tg: anyio.abc.TaskGroup) -> None:
        receive = self.protocol.receive_frames
        ws = run.ws
        try:
            while True:
                batch = await ws.receive_batch()
                self.last_rx = anyio.current_time()
                tap = self.tap
                if tap is not None and tap.received(run.generation, batch, self.last_rx):
                    await tap.wait_room()  # a recording's backpressure (overflow="block")
                verdict = receive(batch)
                for observe in self.observers:
                    observe(verdict.messages)
                for req in verdict.settled:
                    self.waiters.wake(req)
                for req in verdict.to_send:
                    await self.send_tx.send(req)
                if verdict.to_send_after:
                    tg.start_soon(send_later, self, verdict.to_send_after)
                if verdict.messages:
                    if await self.fanout.publish(verdict.messages):
                        # Let the woken consumer run before this task goes
                        # back to the socket: at 1k msgs/s that cuts the
                        # publish-to-handler p50 from ~70 to ~35-45 us.
                        await self.fanout.yield_to_woken()
                    self.last_rx = anyio.current_time()
        except TransportError as exc:
            if run.reason == "closed":
                run.reason = str(exc)
        finally:
            tg.cancel_scope.cancel()

    async def dead(self, run: SocketRun, reason: str) -> None:
        """Declare ``run``'s socket dead (the watchdog's verdict) and abort it."""
        self.protocol.stats.dead_connections += 1
        run.reason = reason
        log.warning("connection looks dead: %s", reason)
        await run.ws.abort()
