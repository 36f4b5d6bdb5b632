"""Order methods of the connection, with kraky's names.

Each method builds its request with :mod:`kraky_anyio.trading` (bad arguments
raise ``TypeError``/``ValueError`` before anything is sent), sends it once
through the connection's writer and waits for its replies (as many as
:func:`~kraky_anyio.trading.expected_replies` says):

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
The order fields are keyword arguments, typed by
:class:`~kraky_anyio.trading.AddOrderFields` and
:class:`~kraky_anyio.trading.EditOrderFields` (kraky's positional calls:
:class:`kraky_anyio.compat.KrakyWsClient`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import trading

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .trading import AddOrderFields, EditOrderFields


class OrderMethods:
    """Mixed into :class:`~kraky_anyio.connection.KrakenConnection`."""

    async def request(
        self, message: Mapping[str, Any], expected_replies: int = 1, reqid: int | None = None
    ) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _connection_token(self) -> str:
        raise NotImplementedError

    def _token_or_current(self, token: str | None) -> str:
        return token if token is not None else self._connection_token()

    async def _send_order(self, message: dict[str, Any], reqid: int | None) -> list[dict[str, Any]]:
        _, expected = trading.expected_replies(message)
        return await self.request(message, expected, reqid)

    async def add_order(
        self,
        token: str | None = None,
        *,
        reqid: int | None = None,
        **fields: Unpack[AddOrderFields],
    ) -> dict[str, Any]:
        """Place an order (``addOrder``); returns the ``addOrderStatus`` reply
        (``txid``, ``descr``). ``pair``, ``type``, ``ordertype`` and ``volume``
        are required; the fields are :class:`~kraky_anyio.trading.AddOrderFields`.
        See the module docstring for errors."""
        message = trading.add_order(self._token_or_current(token), **fields)
        return (await self._send_order(message, reqid))[0]

    async def edit_order(
        self,
        token: str | None = None,
        *,
        reqid: int | None = None,
        **fields: Unpack[EditOrderFields],
    ) -> dict[str, Any]:
        """Edit an open order (``editOrder``); returns ``editOrderStatus``.
        ``orderid`` and ``pair`` are required; the fields are
        :class:`~kraky_anyio.trading.EditOrderFields`."""
        message = trading.edit_order(self._token_or_current(token), **fields)
        return (await self._send_order(message, reqid))[0]

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
        message = trading.cancel_order(self._token_or_current(token), txid)
        return await self._send_order(message, reqid)

    async def cancel_all(
        self, token: str | None = None, reqid: int | None = None
    ) -> dict[str, Any]:
        """Cancel every open order (``cancelAll``); the reply has ``count``."""
        message = trading.cancel_all(self._token_or_current(token))
        return (await self._send_order(message, reqid))[0]

    async def cancel_all_orders_after(
        self,
        token: str | None = None,
        timeout: int | float | None = None,
        reqid: int | None = None,
    ) -> dict[str, Any]:
        """Arm (``timeout`` whole seconds) or disarm (0) Kraken's dead man's
        switch; the reply has ``currentTime`` and ``triggerTime``."""
        message = trading.cancel_all_orders_after(self._token_or_current(token), timeout)
        return (await self._send_order(message, reqid))[0]
