"""The fake engine's v2 ``add_order``, ``batch_add``, ``amend_order`` and
``edit_order`` (see :mod:`~kraky_anyio.testing.v2_engine` for the checks
every request goes through first).

Results, as Kraken's: ``add_order`` ``{"order_id", "cl_ord_id"?,
"order_userref"?}`` (``validate: true``: ``"order_id": ""``, nothing
placed); ``batch_add`` a list of those; ``amend_order`` ``{"amend_id",
"order_id", "cl_ord_id"?}`` (ids kept, ``executions`` ``amended``);
``edit_order`` ``{"order_id": new, "original_order_id": old}`` (the old
order ``canceled`` with reason ``"Order replaced"``, a new one placed).
A batch is checked whole before any order is placed: one bad order refuses
it, with that order's error. Each order of a batch costs 1 on the counter.
``amend_order``/``edit_order`` take ``order_qty`` (above what has filled,
not under the pair's minimum), ``display_qty`` (iceberg), a static
``limit_price`` (limit types), ``trigger_price`` (while untriggered) and
``post_only``; an amend with none of them is refused
(``"EGeneral:Invalid arguments:order_qty"``), one that would make a
post-only order take liquidity gets :data:`ERR_POST_ONLY_TAKES`.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import v2_params as p
from .ledger import FakeOrder
from .order_checks import (
    ERR_LIMIT_ONLY,
    ERR_NO_REFERENCE_PRICE,
    ERR_ORDER_MINIMUM,
    ERR_POST_ONLY,
    ERR_UNKNOWN_ORDER,
    RequestError,
    invalid,
)
from .v2_messages import v2_symbol
from .v2_orders import ERR_INSUFFICIENT_FUNDS, LIMIT_TYPES, OrderSpec, read_add
from .v2_params import Trigger
from .v2_private import split_symbol

if TYPE_CHECKING:
    from .v2_engine import Call

__all__ = [
    "ERR_POST_ONLY_TAKES",
    "add_order",
    "amend_order",
    "batch_add",
    "edit_order",
    "find_order",
]

#: An amend that would make a post-only order take liquidity (the fake's
#: text: Kraken's is not recorded).
ERR_POST_ONLY_TAKES = "EOrder:Post only order"

_BATCH_SIZES = range(2, 16)


def _needs(
    call: Call, side: str, price: Decimal | None, symbol: str, qty: Decimal
) -> tuple[str, Decimal]:
    """The asset and amount an order holds while open (a buy without a
    limit ``price``: at the reference price)."""
    base, quote = split_symbol(symbol)
    if side == "sell":
        return base, qty
    return quote, qty * (price or call.trading.book.reference_for(symbol) or Decimal(0))


def _spec_needs(call: Call, spec: OrderSpec, symbol: str) -> tuple[str, Decimal]:
    price = spec.limit_price if spec.limit_price_type == "static" else None
    return _needs(call, spec.side, price, symbol, _check_market(call, spec, symbol))


def _check_market(call: Call, spec: OrderSpec, symbol: str) -> Decimal:
    """The order's quantity, checked against the pair and the system status."""
    ref = call.trading.book.reference_for(symbol)
    relative = spec.trigger is not None or spec.limit_price_type != "static"
    if ref is None and (spec.order_type not in LIMIT_TYPES or relative):
        raise RequestError(ERR_NO_REFERENCE_PRICE)
    if spec.order_type not in LIMIT_TYPES:
        if call.session.status == "post_only":
            raise RequestError(ERR_POST_ONLY)
        if call.session.status == "limit_only":
            raise RequestError(ERR_LIMIT_ONLY)
    qty = spec.quantity(ref)
    if qty is not None and qty < call.trading.minimum(symbol):
        raise RequestError(ERR_ORDER_MINIMUM)
    return qty or Decimal(0)


def _check_funds(call: Call, needs: dict[str, Decimal], exclude: str | None = None) -> None:
    for asset, amount in needs.items():
        available = call.trading.feeds.available(call.account, asset, exclude)
        if available is not None and available < amount:
            raise RequestError(ERR_INSUFFICIENT_FUNDS)


def _result(order_id: str, spec: OrderSpec) -> dict[str, Any]:
    result: dict[str, Any] = {"order_id": order_id}
    if spec.cl_ord_id is not None:
        result["cl_ord_id"] = spec.cl_ord_id
    if spec.order_userref:
        result["order_userref"] = spec.order_userref
    return result


def _place_all(call: Call, specs: list[OrderSpec], symbol: str, validate: bool) -> list[Any]:
    needs: dict[str, Decimal] = defaultdict(Decimal)
    for spec in specs:
        asset, amount = _spec_needs(call, spec, symbol)
        needs[asset] += amount
    _check_funds(call, needs)
    if validate:
        return [_result("", spec) for spec in specs]
    book = call.trading.book
    placed = [book.place(s, symbol, call.account, call.now, call.updates) for s in specs]
    return [_result(order.txid, spec) for order, spec in zip(placed, specs, strict=True)]


def add_order(call: Call, params: dict[str, Any]) -> list[Any]:
    symbol = call.trading.symbol(call.session, params.get("symbol"))
    try:
        spec: OrderSpec | RequestError = read_add(params)
    except RequestError as exc:
        spec = exc
    call.admit(symbol, call.trading.rate.cost("add", None))
    if isinstance(spec, RequestError):
        raise spec
    call.deadline(params)
    [result] = _place_all(call, [spec], symbol, spec.validate)
    return [call.reply(result)]


def batch_add(call: Call, params: dict[str, Any]) -> list[Any]:
    symbol = call.trading.symbol(call.session, params.get("symbol"))
    orders = params.get("orders")
    if not isinstance(orders, list) or len(orders) not in _BATCH_SIZES:
        raise invalid("orders")
    specs: list[OrderSpec] = []
    failure: RequestError | None = None
    for order in orders:
        try:
            if not isinstance(order, dict) or order.get("symbol", symbol) != symbol:
                raise invalid("orders")
            specs.append(read_add(order))
        except RequestError as exc:
            failure = failure or exc
    call.admit(symbol, len(orders) * call.trading.rate.cost("add", None))
    if failure is not None:
        raise failure
    call.deadline(params)
    return [call.reply(_place_all(call, specs, symbol, p.boolean(params, "validate")))]


def find_order(call: Call, order_id: object, cl_ord_id: object) -> FakeOrder | None:
    """The account's open order with ``order_id``, else the latest with
    ``cl_ord_id``, else None."""
    ledger = call.trading.ledger
    if isinstance(order_id, str):
        return ledger.find_open(order_id, call.account)
    if isinstance(cl_ord_id, str):
        matches = [o for o in ledger.open_orders(call.account) if o.cl_ord_id == cl_ord_id]
        return matches[-1] if matches else None
    return None


def _target(call: Call, params: dict[str, Any], action: str) -> FakeOrder:
    """The order an amend or edit is about, charged to its pair's counter."""
    order_id, cl_ord_id = params.get("order_id"), params.get("cl_ord_id")
    if (order_id is None) == (cl_ord_id is None) or (action == "edit" and order_id is None):
        raise invalid("order_id")
    order = find_order(call, order_id, cl_ord_id)
    if order is None:
        raise RequestError(ERR_UNKNOWN_ORDER)
    age = call.wall - order.opentm
    call.admit(order.pair, call.trading.rate.cost("amend" if action == "amend" else "edit", age))
    return order


def _changes(call: Call, params: dict[str, Any], order: FakeOrder) -> dict[str, Any]:
    """The new values an amend or edit asks for (None: unchanged), checked."""
    info = call.trading.book.orders.get(order.txid)
    order_type = info.order_type if info else order.ordertype
    qty = p.decimal(params, "order_qty")
    if qty is not None and (qty <= order.vol_exec or qty < call.trading.minimum(order.pair)):
        raise RequestError(ERR_ORDER_MINIMUM)
    display = p.decimal(params, "display_qty")
    if display is not None and order_type != "iceberg":
        raise invalid("display_qty")
    limit = p.decimal(params, "limit_price")
    if limit is not None and order_type not in LIMIT_TYPES:
        raise invalid("limit_price")
    p.choice(params, "limit_price_type", ("static",))  # amends take static prices only
    trigger_price = p.decimal(params, "trigger_price", positive=False)
    if trigger_price is not None and (info is None or info.waiting != "trigger"):
        raise invalid("trigger_price")
    post_only = params.get("post_only")
    if post_only is not None and not isinstance(post_only, bool):
        raise invalid("post_only")
    return {
        "order_qty": qty,
        "display_qty": display,
        "limit_price": limit,
        "trigger_price": trigger_price,
        "post_only": post_only,
    }


def _takes(order: FakeOrder, price: Decimal | None, ref: Decimal | None) -> bool:
    """Whether ``order`` at limit ``price`` would fill at once at ``ref``."""
    if order.held or price is None or ref is None:
        return False
    return price >= ref if order.type == "buy" else price <= ref


def amend_order(call: Call, params: dict[str, Any]) -> list[Any]:
    order = _target(call, params, "amend")
    changes = _changes(call, params, order)
    if all(v is None for v in changes.values()):
        raise invalid("order_qty")
    call.deadline(params)
    book = call.trading.book
    info = book.orders.get(order.txid)
    price = changes["limit_price"] or order.price
    post_only = changes["post_only"]
    if post_only is None:
        post_only = bool(info and info.post_only)
    if post_only and _takes(order, price, book.reference_for(order.pair)):
        raise RequestError(ERR_POST_ONLY_TAKES)
    qty = changes["order_qty"] or order.volume
    asset, amount = _needs(call, order.type, price, order.pair, qty)
    _check_funds(call, {asset: amount}, order.txid)
    amend_id = call.trading.ledger.new_id("A")
    book.amend(order, amend_id, now=call.now, updates=call.updates, **changes)
    result: dict[str, Any] = {"amend_id": amend_id, "order_id": order.txid}
    if "cl_ord_id" in params:
        result["cl_ord_id"] = order.cl_ord_id
    return [call.reply(result)]


def _edited(call: Call, params: dict[str, Any], order: FakeOrder) -> OrderSpec:
    """The spec of the order replacing ``order``: its own, with the changes."""
    changes = _changes(call, params, order)
    userref = p.integer(params, "order_userref", -(2**31), 2**31 - 1)
    info = call.trading.book.orders.get(order.txid)
    trigger = None
    if info is not None and info.trigger is not None:
        old = info.trigger
        trigger = Trigger(old.reference, changes["trigger_price"] or old.price, old.price_type)
    post_only = changes["post_only"]
    if post_only is None:
        post_only = bool(info and info.post_only)
    spec = OrderSpec(
        order_type=info.order_type if info else order.ordertype,
        side=order.type,
        order_qty=changes["order_qty"] or order.volume,
        cash_order_qty=None,
        limit_price=changes["limit_price"] or order.price,
        limit_price_type="static",
        trigger=trigger,
        display_qty=changes["display_qty"] or (info.display_qty if info else None),
        time_in_force=info.time_in_force if info else "gtc",
        expire_time=None,
        effective_time=None,
        post_only=post_only,
        reduce_only=p.boolean(params, "reduce_only", bool(info and info.reduce_only)),
        margin=bool(info and info.margin),
        validate=p.boolean(params, "validate"),
        order_userref=order.userref if userref is None else userref,
        cl_ord_id=order.cl_ord_id,
        fee_preference="quote" if order.type == "buy" else "base",
        stp_type="cancel_newest",
    )
    if info is not None:
        spec.fee_preference, spec.stp_type = info.fee_preference, info.stp_type
        if info.expire_at is not None:
            spec.expire_time = call.trading.clock.wall_time(info.expire_at)
    return spec


def edit_order(call: Call, params: dict[str, Any]) -> list[Any]:
    symbol = call.trading.symbol(call.session, params.get("symbol"))
    order = _target(call, params, "edit")
    if v2_symbol(order.pair) != symbol:
        raise invalid("symbol")
    spec = _edited(call, params, order)
    call.deadline(params)
    _check_funds(call, dict([_spec_needs(call, spec, symbol)]), order.txid)
    if spec.validate:
        return [call.reply({"order_id": "", "original_order_id": order.txid})]
    call.trading.ledger.cancel(order, "Order replaced", call.wall, call.updates)
    new = call.trading.book.place(spec, symbol, call.account, call.now, call.updates)
    return [call.reply({"order_id": new.txid, "original_order_id": order.txid})]
