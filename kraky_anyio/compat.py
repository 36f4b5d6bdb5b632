"""kraky's ``KrakyWsClient`` on top of :func:`~kraky_anyio.open_kraken`: switch in one line.

``from kraky import KrakyWsClient`` becomes
``from kraky_anyio.compat import KrakyWsClient``; the constructor, methods,
parameters and defaults are kraky 2023.8.17's. Built only on the public API:
each named connection is ``connect()``'s own task group around one
``open_kraken`` block, so it has replay, backoff and liveness.

Where kraky's behaviour was a defect, the shim does the right thing on purpose:

* **Reconnect**: kraky re-sent every ``subscribe`` call ever made, rejected and
  unsubscribed ones included, and each replayed call was appended again (one
  drop after 2 subscribes and 1 unsubscribe produced 30 subscribe frames in
  about 4 s, then blocked its event loop). Here exactly the live
  subscriptions are replayed once per new socket, after backoff.
* **Failures are not lost**: kraky swallowed a send on a closed socket with a
  debug line. Here every request runs to its reply in the background; a
  failure (error reply, lost reply, timeout, the connection closed before the
  reply) is counted in :attr:`KrakyWsClient.failed_requests` and logged at
  warning on the ``kraky_anyio.compat`` logger. Orders are never re-sent.
* **Bad arguments fail at once**: the order methods check their arguments
  (:mod:`kraky_anyio.trading`'s rules, kraky's spellings included) and raise
  ``TypeError``/``ValueError`` before anything is queued.
* **Numbers**: prices and volumes go out as decimal strings; incoming JSON
  numbers reach the handler as :class:`~decimal.Decimal`, not ``float``.
* **Notices** (``Connected``, ``Disconnected``, ``SubscriptionLost``) are
  logged, not passed to the handler, which gets kraky's decoded messages only;
  ``SubscriptionLost`` counts as a failure.
* **Frames as kraky sent them**: ``ping``/``subscribe``/``unsubscribe``
  without a ``reqid`` go out without one (their replies are matched in order,
  and by channel and pair). Orders always carry one (an order's reply must
  never be taken for another's), taken from the library's counter when not
  given.
* **Returns once written, then pauses like kraky**: each call returns once
  its frame was handed to the socket (waiting for the connection, unbounded,
  as kraky did), then sleeps :attr:`KrakyWsClient.pause_after_send` (kraky's
  0.1 s; set it to 0 to drop the pause); the request runs on to its reply
  in the background. Cancelled before its frame was written, it is never
  sent.
* **A public subscribe without pairs** is refused at once (``ValueError``
  naming ``pair=[...]``): kraky sent it and Kraken v1 answered ``Pair(s) not
  found``.
* **The ``event=`` escape hatch** of the order methods sends the fields with
  that event through :meth:`~kraky_anyio.KrakenConnection.request_raw`, as
  kraky did; its reply settles it by reqid.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc

from .backoff import ReconnectPolicy
from .compat_orders import Call, KrakyOrders
from .connection import KrakenConnection, open_kraken
from .notices import Notice, SubscriptionLost
from .v1.builders import check_subscription_args
from .v1.subscriptions import is_private

__all__ = ["KrakyWsClient", "reconnect_policy_for"]

log = logging.getLogger("kraky_anyio.compat")

Handler = Callable[[Any], Awaitable[object]]


def reconnect_policy_for(sleep_time: float) -> ReconnectPolicy:
    """kraky's ``sleep_time`` as a :class:`~kraky_anyio.ReconnectPolicy`.

    kraky waited ``sleep_time`` seconds before every reconnect, forever. Here
    the first wait is ``sleep_time`` (jittered to between half and all of it,
    so many clients do not reconnect in step), doubling up to at least 60 s,
    within Kraken's attempt budget. Raises ``ValueError`` for a negative or
    non-finite ``sleep_time``, ``TypeError`` for a non-number.
    """
    if isinstance(sleep_time, bool) or not isinstance(sleep_time, int | float):
        raise TypeError(f"sleep_time must be a number of seconds, got {type(sleep_time).__name__}")
    if not math.isfinite(sleep_time) or sleep_time < 0:
        raise ValueError(f"sleep_time must be >= 0 seconds, got {sleep_time!r}")
    return ReconnectPolicy(
        immediate_retries=0, base_delay=float(sleep_time), max_delay=max(60.0, sleep_time)
    )


class _SocketView:
    """What kraky kept as ``connections[name]["websocket"]``: only its state."""

    def __init__(self, conn: KrakenConnection) -> None:
        self._conn = conn

    @property
    def open(self) -> bool:
        """True while a socket is open (and its replay sent)."""
        return self._conn.connected

    @property
    def closed(self) -> bool:
        return not self._conn.connected


class _Fired:
    """One fire-and-forget call: the ``task_status`` its connection call
    reports "written" to, and the scope its caller calls it off with."""

    def __init__(self) -> None:
        self.written = False
        self.over = anyio.Event()  # written, or failed or called off first
        self.scope = anyio.CancelScope()

    def started(self, value: None = None) -> None:
        self.written = True
        self.over.set()


@dataclass
class _Named:
    conn: KrakenConnection
    scope: anyio.CancelScope
    requests: anyio.abc.TaskGroup
    done: anyio.Event


class KrakyWsClient(KrakyOrders):
    """kraky's WebSocket client: named connections on one object.

    ``connection_env`` is ``"production"``, ``"production-auth"``, ``"beta"``,
    ``"beta-auth"`` or a ``ws://``/``wss://`` URL. ``logging_level`` sets the
    level of the shim's own logger, ``kraky_anyio.compat``, as kraky set its
    own; the library's lines go to ``kraky_anyio`` and follow your logging
    configuration (changing that logger here would change it for every
    connection in the process).

    :attr:`connections` maps each open connection's name to kraky's record:
    ``"closed"`` (``disconnect`` was called), ``"subscriptions"`` (the
    subscribe calls made, minus those unsubscribed: informational, the replay
    uses the library's own state) and ``"websocket"`` (``.open`` /
    ``.closed``). Works under asyncio and trio.

    Each request method returns once its frame was written, then waits
    :attr:`pause_after_send` (see the module docstring).
    """

    pause_after_send: float = 0.1
    """Seconds each request method sleeps after its frame was written, as
    kraky's ``_send`` did (code that sends and then at once looks at what the
    server got relies on it). Set it to 0, on the class or one client, to
    return as soon as the frame is written."""

    def __init__(self, connection_env: str = "production", logging_level: str = "INFO") -> None:
        self.connection_env = connection_env
        self.connections: dict[str, dict[str, Any]] = {}
        self.logger = log
        self.logger.setLevel(logging_level)
        self.failed_requests = 0
        """Fire-and-forget requests that failed (each also logged at warning)."""
        self._named: dict[str, _Named] = {}
        self._opened: dict[str, anyio.Event] = {}

    # -- connections -------------------------------------------------------

    async def connect(
        self,
        handler: Handler | None,
        connection_name: str = "main",
        sleep_time: int | float = 5,
    ) -> None:
        """Run connection ``connection_name`` until :meth:`disconnect`; await
        ``handler(message)`` for each decoded message (``dict`` or ``list``).

        Blocks for the connection's life: start it in a task, as with kraky.
        Reconnects with backoff (:func:`reconnect_policy_for` ``sleep_time``).
        ``handler=None`` discards messages. Raises ``ValueError`` if the name
        is already connected or the URL is malformed, whatever ``handler``
        raises (ending this connection), and
        :class:`~kraky_anyio.ConnectionFailedError` for a library failure.
        Cancelling it closes the connection.
        """
        if connection_name in self.connections:
            raise ValueError(f"connection {connection_name!r} is already open")
        policy = reconnect_policy_for(sleep_time)
        record: dict[str, Any] = {"closed": False, "subscriptions": []}
        self.connections[connection_name] = record
        done = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                failure: Exception | None = None
                async with (
                    open_kraken(self.connection_env, reconnect_policy=policy) as conn,
                    anyio.create_task_group() as requests,
                ):
                    self._named[connection_name] = _Named(conn, scope, requests, done)
                    record["websocket"] = _SocketView(conn)
                    opened = self._opened.pop(connection_name, None)
                    if opened is not None:
                        opened.set()
                    try:
                        async with conn.messages() as stream:
                            async for message in stream:
                                await self._deliver(connection_name, handler, message)
                    except Exception as exc:
                        # Out as itself, not inside the request group's ExceptionGroup:
                        # the request tasks never raise.
                        failure = exc
                        requests.cancel_scope.cancel()
                if failure is not None:
                    raise failure
        finally:
            self._named.pop(connection_name, None)
            self.connections.pop(connection_name, None)
            done.set()
            log.info("connection %r closed", connection_name)

    async def disconnect(self, connection_name: str = "main") -> None:
        """Close connection ``connection_name`` and wait until its
        :meth:`connect` has finished; requests still waiting for replies are
        abandoned (counted and logged). A name that is not open is ignored."""
        named = self._named.get(connection_name)
        if named is None:
            log.debug("disconnect: no open connection %r", connection_name)
            return
        self.connections[connection_name]["closed"] = True
        named.scope.cancel()
        await named.done.wait()

    async def _deliver(self, name: str, handler: Handler | None, message: Any) -> None:
        if isinstance(message, Notice):
            if isinstance(message, SubscriptionLost):
                self.failed_requests += 1
                log.warning("connection %r: %s", name, message)
            else:
                log.info("connection %r: %s", name, message)
            return
        if isinstance(message, dict) and "errorMessage" in message:
            # kraky logged error replies instead of passing them on. A reply to
            # one of our requests (a status, or an "error" carrying our reqid)
            # is reported and counted by its request.
            event = str(message.get("event", ""))
            if "reqid" not in message and not event.endswith(("Status", "pong")):
                log.error("connection %r: %s", name, message["errorMessage"])
            return
        if handler is not None:
            await handler(message)

    # -- fire-and-forget requests ------------------------------------------

    async def _fire(self, name: str, what: str, call: Call) -> None:
        """Wait (unbounded, like kraky) until ``name`` is connected; start
        ``call`` in that connection's task group, to run to its reply; return
        once its frame was written (or it failed first), after
        :attr:`pause_after_send` if it was written. Cancelled before the
        write: the call is called off and its frame never sent."""
        while (named := self._named.get(name)) is None:
            await self._opened.setdefault(name, anyio.Event()).wait()
        fired = _Fired()
        try:
            named.requests.start_soon(self._run, name, what, call, named.conn, fired)
        except RuntimeError:  # its task group has just ended: the connection is closing
            self.failed_requests += 1
            log.warning("%s on connection %r abandoned: the connection was closed", what, name)
            return
        try:
            await fired.over.wait()
        except BaseException:
            if not fired.over.is_set():
                fired.scope.cancel()
            raise
        if fired.written and self.pause_after_send > 0:
            await anyio.sleep(self.pause_after_send)

    async def _run(
        self, name: str, what: str, call: Call, conn: KrakenConnection, fired: _Fired
    ) -> None:
        with fired.scope:
            try:
                await call(conn, fired)
            except anyio.get_cancelled_exc_class():
                if fired.scope.cancel_called:
                    log.info("%s on connection %r called off by its caller", what, name)
                else:
                    self.failed_requests += 1
                    log.warning(
                        "%s on connection %r abandoned: the connection was closed", what, name
                    )
                raise
            except Exception as exc:  # fire-and-forget: every failure is reported here
                self.failed_requests += 1
                log.warning(
                    "%s on connection %r failed: %s: %s", what, name, type(exc).__name__, exc
                )
            finally:
                fired.over.set()

    @staticmethod
    def _check_subscription(subscription: dict[str, Any], pair: list[str] | None) -> None:
        """kraky's subscription arguments, checked before anything is queued:
        the shim's connections have no token of their own."""
        sub, _ = check_subscription_args(subscription, pair)
        if is_private(sub) and not sub.get("token"):
            raise ValueError(
                f"{sub['name']} needs a token inside the subscription:"
                f" {{'name': {sub['name']!r}, 'token': ...}}"
            )

    async def ping(self, reqid: int | None = None, connection_name: str = "main") -> None:
        """Send a ``ping`` (without ``reqid``, none in the frame, as kraky's);
        the ``pong`` reaches the handler."""
        await self._fire(
            connection_name,
            "ping",
            lambda conn, status: conn.ping(reqid, send_reqid=reqid is not None, task_status=status),
        )

    async def subscribe(
        self,
        subscription: dict[str, Any],
        pair: list[str] | None = None,
        reqid: int | None = None,
        connection_name: str = "main",
    ) -> None:
        """Subscribe; kept and replayed on every new socket once Kraken
        confirmed it (a token inside ``subscription`` is used as given).
        Without ``reqid`` the frame carries none, as kraky's. Raises
        ``TypeError``/``ValueError`` at once for bad arguments (a public
        channel without ``pair``, a private one without a token)."""
        self._check_subscription(subscription, pair)
        await self._fire(
            connection_name,
            "subscribe",
            lambda conn, status: conn.subscribe(
                subscription, pair, reqid, send_reqid=reqid is not None, task_status=status
            ),
        )
        record = self.connections.get(connection_name)
        if record is not None:
            entry = {"event": "subscribe", "pair": pair, "subscription": subscription}
            record["subscriptions"].append(entry)

    async def unsubscribe(
        self,
        subscription: dict[str, Any],
        pair: list[str] | None = None,
        reqid: int | None = None,
        connection_name: str = "main",
    ) -> None:
        """Unsubscribe; the entries are not replayed any more. Without
        ``reqid`` the frame carries none, as kraky's. Raises
        ``TypeError``/``ValueError`` at once for bad arguments."""
        self._check_subscription(subscription, pair)
        await self._fire(
            connection_name,
            "unsubscribe",
            lambda conn, status: conn.unsubscribe(
                subscription, pair, reqid, send_reqid=reqid is not None, task_status=status
            ),
        )
        record = self.connections.get(connection_name)
        if record is not None:
            record["subscriptions"] = [
                entry
                for entry in record["subscriptions"]
                if (entry.get("subscription"), entry.get("pair")) != (subscription, pair)
            ]
