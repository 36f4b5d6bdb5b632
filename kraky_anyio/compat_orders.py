"""The order methods of :class:`kraky_anyio.compat.KrakyWsClient`: kraky's
positional signatures, checked at once by :mod:`kraky_anyio.trading`, then
fired like every shim request (each returns once its frame was written, and
after the shim's pause) through :meth:`~kraky_anyio.KrakenConnection.request`.
kraky's ``event=`` override sends the checked fields with that event through
:meth:`~kraky_anyio.KrakenConnection.request_raw` (the escape hatch)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from anyio.abc import TaskStatus

from . import trading
from .connection import KrakenConnection
from .trading import AddOrderFields, DecimalLike, EditOrderFields
from .v1.builders import check_raw

#: A shim request: the connection's call, given the ``task_status`` it reports
#: "written" to.
Call = Callable[[KrakenConnection, TaskStatus[None]], Awaitable[object]]

__all__ = ["KrakyOrders"]


class KrakyOrders:
    """Mixed into ``KrakyWsClient``, which provides :meth:`_fire`."""

    async def _fire(self, name: str, what: str, call: Call) -> None:
        raise NotImplementedError

    async def _fire_order(
        self, name: str, event: str, message: dict[str, Any], reqid: int | None
    ) -> None:
        """Fire ``message`` (the checked fields) with ``reqid``; for kraky's
        ``event=`` override, with that event through ``request_raw``.
        Raises ``TypeError``/``ValueError`` at once for an event that may
        not be sent raw."""
        if event == message["event"]:
            _, expected = trading.expected_replies(message)
            await self._fire(
                name,
                event,
                lambda conn, status: conn.request(message, expected, reqid, task_status=status),
            )
            return
        raw = {**message, "event": event}
        if reqid is not None:
            raw["reqid"] = reqid
        check_raw(raw)
        await self._fire(
            name, f"{event} (raw)", lambda conn, status: conn.request_raw(raw, task_status=status)
        )

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
        )

    async def cancel_all_orders_after(
        self,
        token: str,
        timeout: int | float,  # noqa: ASYNC109 (kraky's name: the dead man's switch, not ours)
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
        )
