"""The v2 connection's order methods (a mixin of
:class:`~kraky_anyio.v2.connection.KrakenV2Connection`).

Every method takes Kraken's wire names as keyword arguments (typed by
:mod:`kraky_anyio.v2.order_fields`), checks them all
(:mod:`kraky_anyio.v2.orders`, :mod:`kraky_anyio.v2.order_cancels`) and goes
through one send path, :meth:`OrderMethods._order`, then returns a typed
result (:mod:`kraky_anyio.v2.order_results`). The guarantees, for each:

* Refused before anything is sent (``TypeError``/``ValueError``): a bad
  argument or combination, no token (none given and none on the
  connection), a Kraken URL that is not an auth endpoint (trading is served
  on ``production-auth``/``beta-auth`` only).
* Blocks while there is no socket (the request waits in the send queue),
  then until Kraken's responses: one, or one per order for
  :meth:`~OrderMethods.cancel_order`.
* Cancelled before the request reached the wire: it is never sent.
  Cancelled after: the order stands as Kraken decides; its responses still
  reach message consumers.
* Written once, never re-sent or replayed. The socket lost before the last
  response: :class:`~kraky_anyio.errors.OrderOutcomeUnknownError` (its
  ``cl_ord_id``/``cl_ord_ids`` name the orders: reconcile from
  ``executions``). No response within ``reply_timeout``:
  :class:`~kraky_anyio.errors.ReplyTimeoutError`, the outcome unknown too.
* Kraken said no: :class:`~kraky_anyio.errors.KrakenError` with Kraken's
  ``error`` text and every response in ``replies`` (a partly failed
  ``cancel_order`` included).

``token`` overrides the connection's token for one call; ``req_id`` picks
the request id (else one is assigned). A token never appears in an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from .. import order_values as v
from ..redaction import REDACTED
from . import order_cancels, order_results
from . import orders as builders
from .messages import Response
from .order_fields import Time
from .order_requests import OrderExpect, expect
from .rate_gate import RateKeeper, admitted

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..shell import Shell
    from .order_fields import AddOrderFields, AmendOrderFields, EditOrderFields, OrderFields
    from .protocol import KrakenV2Protocol

__all__ = ["TRADING_ENVIRONMENTS", "OrderMethods", "check_trading_url"]

#: The environments (:data:`~kraky_anyio.v2.connection.ENVIRONMENTS`) that serve trading.
TRADING_ENVIRONMENTS: Final = ("production-auth", "beta-auth")


def check_trading_url(url: str, method: str) -> None:
    """``ValueError`` if ``url`` is a Kraken host that does not serve
    trading (any but those of :data:`TRADING_ENVIRONMENTS`); any other host
    (a test server, a proxy) is allowed."""
    from .connection import ENVIRONMENTS  # not at the top: connection imports this module

    trading = {urlsplit(ENVIRONMENTS[name]).hostname for name in TRADING_ENVIRONMENTS}
    host = (urlsplit(url).hostname or "").lower()
    if (host == "kraken.com" or host.endswith(".kraken.com")) and host not in trading:
        raise ValueError(
            f"{method} is served on Kraken's auth endpoint only: open the connection on "
            f"'production-auth' ({ENVIRONMENTS['production-auth']}), not {url}"
        )


@contextmanager
def _masking(secrets: Iterable[object]) -> Iterator[None]:
    """Re-raise a TypeError/ValueError with every secret masked (a token
    passed by mistake as another argument)."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        text = str(exc)
        masked = text
        for secret in secrets:
            if isinstance(secret, str) and secret:
                masked = masked.replace(secret, REDACTED)
        if masked != text:
            raise type(exc)(masked) from None
        raise


class OrderMethods:
    """The order methods of a v2 connection (mixed into
    :class:`~kraky_anyio.v2.connection.KrakenV2Connection`)."""

    url: str
    _shell: Shell
    _protocol: KrakenV2Protocol
    _rate: RateKeeper | None

    # -- the one send path -------------------------------------------------------

    def _params(
        self, token: str | None, build: Callable[..., dict[str, Any]], **args: Any
    ) -> dict[str, Any]:
        """``build(**args)``, its errors free of any token."""
        with _masking((token, self._shell.tokens.default())):
            return build(**args)

    async def _order(
        self,
        method: str,
        params: dict[str, Any],
        *,
        expect: OrderExpect,
        token: str | None = None,
        req_id: int | None = None,
    ) -> list[Response]:
        """Send one order request (checked ``params``) and return its
        responses: the one path every order method takes.

        Refuses (``ValueError``) a non-trading Kraken URL or a missing token,
        then (``KrakyError``) a closed connection, before building the
        request; then queues it once and waits as the module text says."""
        check_trading_url(self.url, method)
        if token is not None:
            v.token(token)
        tok = token if token is not None else self._shell.tokens.default()
        if tok is None:
            raise ValueError(f"{method} needs a token: pass token= to open_kraken or to {method}")
        self._shell.check_open()
        async with admitted(self._rate, method, params) as sent:  # the rate budget, if any
            req = self._protocol.order(method, {**params, "token": tok}, expect, req_id)
            sent.bind(req)
            replies = await self._shell.request(req)
        return [r for r in replies if isinstance(r, Response)]

    async def _send(
        self, method: str, params: dict[str, Any], token: str | None, req_id: int | None
    ) -> list[Response]:
        return await self._order(
            method, params, expect=expect(method, params), token=token, req_id=req_id
        )

    # -- the methods ---------------------------------------------------------------

    async def add_order(
        self,
        *,
        token: str | None = None,
        req_id: int | None = None,
        **fields: Unpack[AddOrderFields],
    ) -> order_results.AddOrderResult:
        """Place an order; returns its ``order_id`` (and ``cl_ord_id``/
        ``order_userref`` if given). ``order_type``, ``side``, ``symbol`` and
        ``order_qty`` (or ``cash_order_qty``) are required; see
        :class:`~kraky_anyio.v2.order_fields.AddOrderFields`. Raises as the
        module text says."""
        params = self._params(token, builders.add_order, **fields)
        return order_results.add_result((await self._send("add_order", params, token, req_id))[0])

    async def amend_order(
        self,
        *,
        token: str | None = None,
        req_id: int | None = None,
        **fields: Unpack[AmendOrderFields],
    ) -> order_results.AmendResult:
        """Amend an open order in place (``order_id`` or ``cl_ord_id``; ids
        and, where possible, queue priority kept). Raises as the module text says."""
        params = self._params(token, builders.amend_order, **fields)
        resp = (await self._send("amend_order", params, token, req_id))[0]
        return order_results.amend_result(resp)

    async def edit_order(
        self,
        *,
        token: str | None = None,
        req_id: int | None = None,
        **fields: Unpack[EditOrderFields],
    ) -> order_results.EditResult:
        """Edit an order (cancel and replace: a new ``order_id``); ``order_id``
        and ``symbol`` are required. Raises as the module text says."""
        params = self._params(token, builders.edit_order, **fields)
        resp = (await self._send("edit_order", params, token, req_id))[0]
        return order_results.edit_result(resp)

    async def cancel_order(
        self,
        *,
        order_id: str | Sequence[str] | None = None,
        cl_ord_id: str | Sequence[str] | None = None,
        order_userref: int | Sequence[int] | None = None,
        token: str | None = None,
        req_id: int | None = None,
    ) -> list[order_results.CancelResult]:
        """Cancel orders named by any mix of ids; waits for one response per
        order named and returns them in arrival order. Any refused:
        :class:`~kraky_anyio.errors.KrakenError` carrying every response.
        An ``order_userref`` matching several orders is answered by its first
        response (see :mod:`kraky_anyio.v2.order_requests`)."""
        params = self._params(
            token,
            order_cancels.cancel_order,
            order_id=order_id,
            cl_ord_id=cl_ord_id,
            order_userref=order_userref,
        )
        return order_results.cancel_results(await self._send("cancel_order", params, token, req_id))

    async def cancel_all(
        self, *, token: str | None = None, req_id: int | None = None
    ) -> order_results.CancelAllResult:
        """Cancel every open order; returns how many."""
        params = order_cancels.cancel_all()
        resp = (await self._send("cancel_all", params, token, req_id))[0]
        return order_results.cancel_all_result(resp)

    async def cancel_all_orders_after(
        self, *, timeout: int, token: str | None = None, req_id: int | None = None
    ) -> order_results.CancelAfterResult:
        """Arm Kraken's dead man's switch: every order is cancelled unless
        this is called again within ``timeout`` seconds (an int, 0 disarms,
        at most 86399)."""
        params = self._params(token, order_cancels.cancel_all_orders_after, timeout=timeout)
        resp = (await self._send("cancel_all_orders_after", params, token, req_id))[0]
        return order_results.cancel_after_result(resp)

    async def batch_add(
        self,
        *,
        symbol: str,
        orders: Sequence[OrderFields],
        deadline: Time | None = None,
        validate: bool | None = None,
        token: str | None = None,
        req_id: int | None = None,
    ) -> order_results.BatchAddResult:
        """Place 2 to 15 orders on one ``symbol`` in one request (each entry
        like :class:`~kraky_anyio.v2.order_fields.OrderFields`); returns one
        result per order. Kraken accepts or rejects the batch as a whole."""
        params = self._params(
            token,
            builders.batch_add,
            symbol=symbol,
            orders=orders,
            deadline=deadline,
            validate=validate,
        )
        resp = (await self._send("batch_add", params, token, req_id))[0]
        return order_results.batch_add_result(resp)

    async def batch_cancel(
        self,
        *,
        orders: Sequence[str] | None = None,
        cl_ord_id: Sequence[str] | None = None,
        token: str | None = None,
        req_id: int | None = None,
    ) -> order_results.BatchCancelResult:
        """Cancel 2 to 50 orders (``orders``: order ids, and/or ``cl_ord_id``)
        in one request; returns how many were cancelled."""
        params = self._params(token, order_cancels.batch_cancel, orders=orders, cl_ord_id=cl_ord_id)
        resp = (await self._send("batch_cancel", params, token, req_id))[0]
        return order_results.batch_cancel_result(resp)
