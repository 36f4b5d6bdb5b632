"""Order methods of the connection, with kraky's names and arguments.

Each method builds its request with :mod:`kraky_anyio.trading` (bad arguments
raise ``TypeError``/``ValueError`` before anything is sent), sends it once
through the connection's writer and waits for its reply:

* Kraken says ok: the reply (``dict``; ``list`` of replies for
  :meth:`cancel_order`) is returned.
* Kraken says error: :class:`~kraky_anyio.errors.KrakenError` with
  ``errorMessage`` and every reply.
* The socket drops after the request was written and before its reply:
  :class:`~kraky_anyio.errors.OrderOutcomeUnknownError`. Orders are never
  re-sent, not on reconnect and not on retry.
* No reply within ``reply_timeout``: :class:`~kraky_anyio.errors.ReplyTimeoutError`;
  the outcome is then unknown too (the order may still execute).
* Cancelled before the request reached the wire: it is never sent.

``token`` may be omitted (``None``) when the connection was opened with one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import trading
from .trading import DecimalLike


class OrderMethods:
    """Mixed into :class:`~kraky_anyio.connection.KrakenConnection`."""

    async def request(
        self, message: Mapping[str, Any], expected_replies: int = 1, reqid: int | None = None
    ) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _connection_token(self) -> str:
        raise NotImplementedError

    async def _token_or_current(self, token: str | None) -> str:
        return token if token is not None else self._connection_token()

    async def add_order(
        self,
        token: str | None = None,
        pair: str | None = None,
        type: str | None = None,
        ordertype: str | None = None,
        volume: DecimalLike | None = None,
        price: DecimalLike | None = None,
        price2: DecimalLike | None = None,
        leverage: DecimalLike | None = None,
        reduce_only: bool | None = None,
        oflags: str | Iterable[str] | None = None,
        starttm: int | str | None = None,
        expiretm: int | str | None = None,
        userref: int | str | None = None,
        validate: bool | None = None,
        close_ordertype: str | None = None,
        close_price: DecimalLike | None = None,
        close_price2: DecimalLike | None = None,
        timeinforce: str | None = None,
        reqid: int | None = None,
        *,
        deadline: int | str | None = None,
        cl_ord_id: str | None = None,
    ) -> dict[str, Any]:
        """Place an order (``addOrder``); returns the ``addOrderStatus`` reply
        (``txid``, ``descr``). ``pair``, ``type``, ``ordertype`` and ``volume``
        are required. See the module docstring for errors."""
        if pair is None or type is None or ordertype is None or volume is None:
            raise TypeError("add_order needs pair, type, ordertype and volume")
        message = trading.add_order(
            await self._token_or_current(token),
            pair,
            type,
            ordertype,
            volume,
            price=price,
            price2=price2,
            leverage=leverage,
            reduce_only=reduce_only,
            oflags=oflags,
            starttm=starttm,
            expiretm=expiretm,
            deadline=deadline,
            cl_ord_id=cl_ord_id,
            userref=userref,
            validate=validate,
            close_ordertype=close_ordertype,
            close_price=close_price,
            close_price2=close_price2,
            timeinforce=timeinforce,
        )
        return (await self.request(message, 1, reqid))[0]

    async def edit_order(
        self,
        token: str | None = None,
        orderid: str | int | None = None,
        pair: str | None = None,
        volume: DecimalLike | None = None,
        price: DecimalLike | None = None,
        price2: DecimalLike | None = None,
        oflags: str | Iterable[str] | None = None,
        newuserref: int | str | None = None,
        validate: bool | None = None,
        reqid: int | None = None,
    ) -> dict[str, Any]:
        """Edit an open order (``editOrder``); returns ``editOrderStatus``."""
        if orderid is None or pair is None:
            raise TypeError("edit_order needs orderid and pair")
        message = trading.edit_order(
            await self._token_or_current(token),
            orderid,
            pair,
            volume=volume,
            price=price,
            price2=price2,
            oflags=oflags,
            newuserref=newuserref,
            validate=validate,
        )
        return (await self.request(message, 1, reqid))[0]

    async def cancel_order(
        self,
        token: str | None = None,
        txid: str | Iterable[str] | None = None,
        reqid: int | None = None,
    ) -> list[dict[str, Any]]:
        """Cancel one or more orders (``cancelOrder``). Waits for one
        ``cancelOrderStatus`` per txid (they carry no txid: kept in arrival
        order) and raises :class:`KrakenError` carrying all of them if any
        failed."""
        if txid is None:
            raise TypeError("cancel_order needs txid")
        message = trading.cancel_order(await self._token_or_current(token), txid)
        _, expected = trading.expected_replies(message)
        return await self.request(message, expected, reqid)

    async def cancel_all(
        self, token: str | None = None, reqid: int | None = None
    ) -> dict[str, Any]:
        """Cancel every open order (``cancelAll``); the reply has ``count``."""
        message = trading.cancel_all(await self._token_or_current(token))
        return (await self.request(message, 1, reqid))[0]

    async def cancel_all_orders_after(
        self, token: str | None = None, timeout: int | None = None, reqid: int | None = None
    ) -> dict[str, Any]:
        """Arm (``timeout`` seconds) or disarm (0) Kraken's dead man's switch;
        the reply has ``currentTime`` and ``triggerTime``."""
        if timeout is None:
            raise TypeError("cancel_all_orders_after needs timeout")
        message = trading.cancel_all_orders_after(await self._token_or_current(token), timeout)
        return (await self.request(message, 1, reqid))[0]
