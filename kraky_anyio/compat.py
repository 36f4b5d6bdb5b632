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
* **Frames as kraky sent them**: ``subscribe``/``unsubscribe`` without a
  ``reqid`` go out without one (their replies are matched by channel and
  pair); orders and pings always carry one (an order's reply must never be
  mistaken for another's), taken from the library's counter when not given.
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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from . import trading
from .backoff import ReconnectPolicy
from .connection import KrakenConnection, open_kraken
from .notices import Notice, SubscriptionLost
from .trading import AddOrderFields, DecimalLike, EditOrderFields
from .v1.builders import check_raw, check_subscription_args
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


@dataclass
class _Named:
    conn: KrakenConnection
    scope: anyio.CancelScope
    requests: anyio.abc.TaskGroup
    done: anyio.Event


class KrakyWsClient:
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
    """

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

    async def _fire(
        self,
        name: str,
        what: str,
        call: Callable[[KrakenConnection], Awaitable[object]],
    ) -> None:
        """Wait (unbounded, like kraky) until ``name`` is connected, then run
        ``call`` to its reply in that connection's task group."""
        while (named := self._named.get(name)) is None:
            await self._opened.setdefault(name, anyio.Event()).wait()
        named.requests.start_soon(self._run, name, what, call, named.conn)
        await anyio.lowlevel.checkpoint()

    async def _run(
        self,
        name: str,
        what: str,
        call: Callable[[KrakenConnection], Awaitable[object]],
        conn: KrakenConnection,
    ) -> None:
        try:
            await call(conn)
        except anyio.get_cancelled_exc_class():
            self.failed_requests += 1
            log.warning("%s on connection %r abandoned: the connection was closed", what, name)
            raise
        except Exception as exc:  # fire-and-forget: every failure is reported here
            self.failed_requests += 1
            log.warning("%s on connection %r failed: %s: %s", what, name, type(exc).__name__, exc)

    async def _fire_order(
        self,
        name: str,
        event: str,
        message: dict[str, Any],
        reqid: int | None,
        call: Callable[[KrakenConnection], Awaitable[object]],
    ) -> None:
        """Fire ``call``; or, for kraky's ``event=`` override, ``message``
        (the checked fields) with that event through ``request_raw``.
        Raises ``TypeError``/``ValueError`` at once for an event that may
        not be sent raw."""
        if event == message["event"]:
            await self._fire(name, event, call)
            return
        raw = {**message, "event": event}
        if reqid is not None:
            raw["reqid"] = reqid
        check_raw(raw)
        await self._fire(name, f"{event} (raw)", lambda conn: conn.request_raw(raw))

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
        """Send a ``ping``; the ``pong`` reaches the handler."""
        await self._fire(connection_name, "ping", lambda conn: conn.ping(reqid))

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
            lambda conn: conn.subscribe(subscription, pair, reqid, send_reqid=reqid is not None),
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
            lambda conn: conn.unsubscribe(subscription, pair, reqid, send_reqid=reqid is not None),
        )
        record = self.connections.get(connection_name)
        if record is not None:
            record["subscriptions"] = [
                entry
                for entry in record["subscriptions"]
                if (entry.get("subscription"), entry.get("pair")) != (subscription, pair)
            ]

    async def add_order(
        self,
        token: str,
        pair: str,
        type: str,
        ordertype: str,
        volume: DecimalLike,
        price: DecimalLike | None = None,
        price2: DecimalLike | None = None,
        leverage: DecimalLike | None = None,
        reduce_only: bool | None = None,
        oflags: str | Iterable[str] | None = None,
        starttm: int | str | None = None,
        expiretm: int | str | None = None,
        userref: int | str | None = None,
        validate: bool | str | None = None,
        close_ordertype: str | None = None,
        close_price: DecimalLike | None = None,
        close_price2: DecimalLike | None = None,
        timeinforce: str | None = None,
        reqid: int | None = None,
        event: str = "addOrder",
        connection_name: str = "main",
    ) -> None:
        """Place an order (kraky's positional order); see
        :class:`~kraky_anyio.trading.AddOrderFields` for the values. Raises
        ``TypeError``/``ValueError`` at once for bad arguments. Another
        ``event`` sends these fields with it, raw (kraky's escape hatch)."""
        fields = AddOrderFields(
            pair=pair,
            type=type,
            ordertype=ordertype,
            volume=volume,
            price=price,
            price2=price2,
            leverage=leverage,
            reduce_only=reduce_only,
            oflags=oflags,
            starttm=starttm,
            expiretm=expiretm,
            userref=userref,
            validate=validate,
            close_ordertype=close_ordertype,
            close_price=close_price,
            close_price2=close_price2,
            timeinforce=timeinforce,
        )
        await self._fire_order(
            connection_name,
            event,
            trading.add_order(token, **fields),
            reqid,
            lambda conn: conn.add_order(token, reqid=reqid, **fields),
        )

    async def edit_order(
        self,
        token: str,
        orderid: str | int | list[str | int],
        pair: str,
        volume: DecimalLike | None,
        price: DecimalLike | None = None,
        price2: DecimalLike | None = None,
        oflags: str | Iterable[str] | None = None,
        newuserref: int | str | None = None,
        validate: bool | str | None = None,
        reqid: int | None = None,
        event: str = "editOrder",
        connection_name: str = "main",
    ) -> None:
        """Edit an order; ``orderid`` may be kraky's one-element list. Raises
        ``TypeError``/``ValueError`` at once for bad arguments; another
        ``event`` is sent raw, as for :meth:`add_order`."""
        fields = EditOrderFields(
            orderid=orderid,
            pair=pair,
            volume=volume,
            price=price,
            price2=price2,
            oflags=oflags,
            newuserref=newuserref,
            validate=validate,
        )
        await self._fire_order(
            connection_name,
            event,
            trading.edit_order(token, **fields),
            reqid,
            lambda conn: conn.edit_order(token, reqid=reqid, **fields),
        )

    async def cancel_order(
        self,
        token: str,
        txid: str | list[str],
        reqid: int | None = None,
        event: str = "cancelOrder",
        connection_name: str = "main",
    ) -> None:
        """Cancel orders by txid. Raises ``TypeError``/``ValueError`` at once
        for bad arguments; another ``event`` is sent raw."""
        await self._fire_order(
            connection_name,
            event,
            trading.cancel_order(token, txid),
            reqid,
            lambda conn: conn.cancel_order(token, txid, reqid),
        )

    async def cancel_all(
        self,
        token: str,
        reqid: int | None = None,
        event: str = "cancelAll",
        connection_name: str = "main",
    ) -> None:
        """Cancel every open order. Raises ``TypeError``/``ValueError`` at
        once for a bad token; another ``event`` is sent raw."""
        await self._fire_order(
            connection_name,
            event,
            trading.cancel_all(token),
            reqid,
            lambda conn: conn.cancel_all(token, reqid),
        )

    async def cancel_all_orders_after(
        self,
        token: str,
        timeout: int | float,  # noqa: ASYNC109 - kraky's name: Kraken's dead man's switch, not a deadline
        reqid: int | None = None,
        event: str = "cancelAllOrdersAfter",
        connection_name: str = "main",
    ) -> None:
        """Arm (``timeout`` whole seconds) or disarm (0) the dead man's switch.
        Raises ``TypeError``/``ValueError`` at once for bad arguments;
        another ``event`` is sent raw."""
        await self._fire_order(
            connection_name,
            event,
            trading.cancel_all_orders_after(token, timeout),
            reqid,
            lambda conn: conn.cancel_all_orders_after(token, timeout, reqid),
        )
