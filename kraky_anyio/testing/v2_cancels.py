"""The fake engine's v2 ``cancel_order``, ``batch_cancel``, ``cancel_all``
and ``cancel_all_orders_after``, and how a refused request is answered.

* ``cancel_order``: any mix of ``order_id``, ``cl_ord_id`` and
  ``order_userref`` lists; **one response per order**, all with the
  request's ``req_id``, in request order: ``result`` ``{"order_id"}`` (plus
  the ``cl_ord_id``/``order_userref`` it was named by), or an error carrying
  the id at top level (``"order_id"``, ``"cl_ord_id"`` or
  ``"order_userref"``): ``"EOrder:Unknown order"`` when no open order of the
  account has it, ``"EOrder:Rate limit exceeded"`` when cancelling it would
  cross its pair's ceiling (that order stays). An ``order_userref`` cancels
  every open order carrying it (one response each).
* ``batch_cancel``: ``orders`` (order ids or ``cl_ord_id``\\ s) and/or
  ``cl_ord_id``, 2 to 50 in all; answered with Kraken's real shape, a
  top-level ``"orders_cancelled": N`` and no ``result``. Ids matching no
  open order are skipped (not counted); the whole batch is refused
  (``"EOrder:Rate limit exceeded"``, nothing cancelled) if its cost would
  cross a pair's ceiling.
* ``cancel_all``: ``{"count": N}``; ``cancel_all_orders_after``:
  ``{"currentTime", "triggerTime"}`` (``"0"`` when ``timeout`` 0 disarms;
  ``timeout`` an integer below 86400).

A request refused as a whole (token, status, params) gets one error
response, except ``cancel_order``: one per id it named, each naming it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from . import v2_params as p
from .ledger import FakeOrder
from .order_checks import ERR_RATE_LIMIT, ERR_UNKNOWN_ORDER, RequestError, invalid
from .v2_requests import find_order

if TYPE_CHECKING:
    from .v2_engine import Call

__all__ = ["batch_cancel", "cancel_all", "cancel_all_orders_after", "cancel_order", "refused"]

_CANCEL_FIELDS = ("order_id", "cl_ord_id", "order_userref")
_BATCH_SIZES = range(2, 51)
_MAX_TIMEOUT = 86400


def _named(params: object) -> list[tuple[str, Any]]:
    """``(field, id)`` for every id a ``cancel_order`` names, in order."""
    if not isinstance(params, dict):
        return []
    named: list[tuple[str, Any]] = []
    for field in _CANCEL_FIELDS:
        value = params.get(field)
        if isinstance(value, list):
            named.extend((field, v) for v in value)
    return named


def refused(call: Call, text: str) -> list[Any]:
    """The responses for a request refused as a whole."""
    if call.method == "cancel_order":
        named = _named(call.request.get("params"))
        if named:
            return [call.error(text, **{field: value}) for field, value in named]
    return [call.error(text)]


def _cancel_cost(call: Call, order: FakeOrder) -> int:
    return call.trading.rate.cost("cancel", call.wall - order.opentm)


def cancel_order(call: Call, params: dict[str, Any]) -> list[Any]:
    named: list[tuple[str, Any]] = []
    for field in _CANCEL_FIELDS:
        named.extend((field, v) for v in p.order_ids(params, field))
    if not named:
        raise invalid("order_id")
    ledger = call.trading.ledger
    replies: list[Any] = []
    for field, value in named:
        if field == "order_userref":
            matches = [o for o in ledger.open_orders(call.account) if o.userref == value]
        else:
            found = find_order(call, value if field == "order_id" else None, value)
            matches = [] if found is None else [found]
        if not matches:
            replies.append(call.error(ERR_UNKNOWN_ORDER, **{field: value}))
        for order in matches:
            try:
                call.admit(order.pair, _cancel_cost(call, order))
            except RequestError as exc:
                replies.append(call.error(str(exc), **{field: value}))
                continue
            ledger.cancel(order, "User requested", call.wall, call.updates)
            result: dict[str, Any] = {"order_id": order.txid}
            if field != "order_id":
                result[field] = value
            replies.append(call.reply(result))
    return replies


def batch_cancel(call: Call, params: dict[str, Any]) -> list[Any]:
    ids = p.order_ids(params, "orders")
    cl_ord_ids = p.order_ids(params, "cl_ord_id")
    if len(ids) + len(cl_ord_ids) not in _BATCH_SIZES:
        raise invalid("orders")
    found: dict[str, FakeOrder] = {}
    for value in ids:
        order = find_order(call, value, None) or find_order(call, None, value)
        if order is not None:
            found[order.txid] = order
    for value in cl_ord_ids:
        order = find_order(call, None, value)
        if order is not None:
            found[order.txid] = order
    costs: dict[str, int] = defaultdict(int)
    for order in found.values():
        costs[order.pair] += _cancel_cost(call, order)
    rate = call.trading.rate
    if not all(rate.allows(call.account, pair, cost, call.now) for pair, cost in costs.items()):
        raise RequestError(ERR_RATE_LIMIT)
    for pair, cost in costs.items():
        call.admit(pair, cost)
    for order in found.values():
        call.trading.ledger.cancel(order, "User requested", call.wall, call.updates)
    return [call.reply(orders_cancelled=len(found))]


def cancel_all(call: Call, params: dict[str, Any]) -> list[Any]:
    count = call.trading.ledger.cancel_all(call.account, "User requested", call.wall, call.updates)
    return [call.reply({"count": count})]


def cancel_all_orders_after(call: Call, params: dict[str, Any]) -> list[Any]:
    timeout = p.integer(params, "timeout", 0, _MAX_TIMEOUT - 1)
    if timeout is None:
        raise invalid("timeout")
    clock, timers = call.trading.clock, call.trading.desk.timers
    if timeout == 0:
        timers.pop(call.account, None)
        trigger = "0"
    else:
        timers[call.account] = call.now + timeout
        trigger = clock.iso_time(call.now + timeout)
    result = {"currentTime": clock.iso_time(call.now), "triggerTime": trigger}
    return [call.reply(result)]
