"""v2 order requests' ``params``: checked builders, no I/O.

Each builder takes Kraken's wire names as keyword arguments (typed in
:mod:`kraky_anyio.v2.order_fields`, where numbers and times are explained),
checks every one of them and the combinations Kraken's docs rule out, and
returns the request's ``params`` without ``token`` (the connection adds it).
A bad argument raises :class:`TypeError` (wrong type, unknown or missing
argument) or :class:`ValueError` (wrong value, bad combination) before
anything is sent. Prices and quantities come out as ``Decimal``/``int``:
:func:`~kraky_anyio.v2.params.encode_request` writes them as exact JSON numbers.

Combinations refused (from Kraken's v2 ``add_order`` docs): ``limit_price``
for, and only for, limit-type orders (``limit``, ``iceberg``,
``*-limit``); ``triggers`` for, and only for, stop-loss, take-profit and
trailing-stop orders, a trailing stop's ``price_type`` being ``pct`` or
``quote``; ``display_qty`` for, and only for, ``iceberg``;
``cash_order_qty`` only for a market buy without margin, instead of
``order_qty``; ``expire_time`` for, and only for, ``time_in_force="gtd"``;
``no_mpp`` only for market orders; ``cl_ord_id`` or ``order_userref``, not
both; a ``conditional`` order's ``limit_price``/``trigger_price`` as its type
needs them; a static price that is not positive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from .. import order_values as v
from .order_fields import (
    BATCH_ADD_SIZE,
    CONDITIONAL_TYPES,
    FEE_PREFERENCES,
    LIMIT_ORDER_TYPES,
    ORDER_TYPES,
    PRICE_TYPES,
    RELATIVE_PRICE_TYPES,
    SIDES,
    STP_TYPES,
    TIME_IN_FORCE,
    TRAILING_ORDER_TYPES,
    TRIGGER_ORDER_TYPES,
    TRIGGER_REFERENCES,
    one_of,
    price,
    quantity,
    rfc3339,
    userref,
)
from .order_fields import symbol as check_symbol

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .order_fields import AddOrderFields, AmendOrderFields, EditOrderFields

__all__ = ["add_order", "amend_order", "batch_add", "edit_order", "order_entry"]


_Check = Callable[[str, Any], object]


def _sub(
    table: Mapping[str, _Check], required: tuple[str, ...]
) -> Callable[[str, object], dict[str, Any]]:
    """A check of a sub-object (``triggers``, ``conditional``)."""

    def check(name: str, value: object) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
        return _fields(f"{name}.", value, table, required)

    return check


def _fields(
    where: str, given: Mapping[str, object], table: Mapping[str, _Check], required: tuple[str, ...]
) -> dict[str, Any]:
    """``given`` checked against ``table`` (``None`` means "omit")."""
    unknown = sorted(str(k) for k in given if k not in table)
    if unknown:
        raise TypeError(
            f"{where.rstrip('.') or 'order'} got unexpected arguments: {', '.join(unknown)}"
            f"; it accepts {', '.join(table)}"
        )
    missing = [name for name in required if given.get(name) is None]
    if missing:
        raise TypeError(f"{where.rstrip('.') or 'order'} needs {', '.join(missing)}")
    return {
        name: check(where + name, given[name])
        for name, check in table.items()
        if given.get(name) is not None
    }


_TRIGGERS: Final[Mapping[str, _Check]] = {
    "reference": one_of(TRIGGER_REFERENCES),
    "price": price,
    "price_type": one_of(PRICE_TYPES),
}
_CONDITIONAL: Final[Mapping[str, _Check]] = {
    "order_type": one_of(CONDITIONAL_TYPES),
    "limit_price": price,
    "limit_price_type": one_of(PRICE_TYPES),
    "trigger_price": price,
    "trigger_price_type": one_of(PRICE_TYPES),
}

_ORDER: Final[Mapping[str, _Check]] = {
    "order_type": one_of(ORDER_TYPES),
    "side": one_of(SIDES),
    "order_qty": quantity,
    "limit_price": price,
    "limit_price_type": one_of(PRICE_TYPES),
    "triggers": _sub(_TRIGGERS, ("price",)),
    "time_in_force": one_of(TIME_IN_FORCE),
    "margin": v.strict_bool,
    "post_only": v.strict_bool,
    "reduce_only": v.strict_bool,
    "effective_time": rfc3339,
    "expire_time": rfc3339,
    "cl_ord_id": v.nonempty_str,
    "order_userref": userref,
    "conditional": _sub(_CONDITIONAL, ("order_type",)),
    "display_qty": quantity,
    "cash_order_qty": quantity,
    "fee_preference": one_of(FEE_PREFERENCES),
    "no_mpp": v.strict_bool,
    "stp_type": one_of(STP_TYPES),
}


_ADD: Final[Mapping[str, _Check]] = {
    **_ORDER,
    "symbol": check_symbol,
    "deadline": rfc3339,
    "validate": v.strict_bool,
}
_AMEND: Final[Mapping[str, _Check]] = {
    "order_id": v.nonempty_str,
    "cl_ord_id": v.nonempty_str,
    "order_qty": quantity,
    "display_qty": quantity,
    "limit_price": price,
    "limit_price_type": one_of(PRICE_TYPES),
    "post_only": v.strict_bool,
    "trigger_price": price,
    "trigger_price_type": one_of(PRICE_TYPES),
    "deadline": rfc3339,
    "symbol": check_symbol,
}
_EDIT: Final[Mapping[str, _Check]] = {
    "order_id": v.nonempty_str,
    "symbol": check_symbol,
    "order_qty": quantity,
    "display_qty": quantity,
    "limit_price": price,
    "triggers": _sub(_TRIGGERS, ("price",)),
    "post_only": v.strict_bool,
    "reduce_only": v.strict_bool,
    "fee_preference": one_of(FEE_PREFERENCES),
    "no_mpp": v.strict_bool,
    "order_userref": userref,
    "deadline": rfc3339,
    "validate": v.strict_bool,
}


_PRICE_TYPED: Final = (
    ("limit_price", "limit_price_type"),
    ("trigger_price", "trigger_price_type"),
)

# -- combinations ------------------------------------------------------------------


def _static_positive(where: str, name: str, value: object, price_type: object) -> None:
    if price_type in RELATIVE_PRICE_TYPES:
        return
    if isinstance(value, Decimal | int) and value <= 0:
        raise ValueError(
            f"{where}{name} must be positive (or give a pct/quote price type for an offset)"
        )


def _check_order(where: str, o: dict[str, Any]) -> None:
    """The combinations of one order's fields that Kraken's docs rule out."""
    kind = o["order_type"]
    if "limit_price" in o:
        if kind not in LIMIT_ORDER_TYPES:
            raise ValueError(
                f"{where}limit_price is for limit-type orders "
                f"({', '.join(sorted(LIMIT_ORDER_TYPES))}), not {kind}"
            )
        default = "quote" if kind == "trailing-stop-limit" else "static"
        ptype = o.get("limit_price_type", default)
        _static_positive(where, "limit_price", o["limit_price"], ptype)
    elif kind in LIMIT_ORDER_TYPES:
        raise ValueError(f"{where}a {kind} order needs limit_price")
    if "limit_price_type" in o and "limit_price" not in o:
        raise ValueError(f"{where}limit_price_type needs limit_price")
    triggers = o.get("triggers")
    if triggers is not None:
        if kind not in TRIGGER_ORDER_TYPES:
            raise ValueError(
                f"{where}triggers are for stop-loss, take-profit and trailing-stop "
                f"orders, not {kind}"
            )
        ptype = triggers.get("price_type", "static")
        if kind in TRAILING_ORDER_TYPES and ptype not in RELATIVE_PRICE_TYPES:
            raise ValueError(
                f"{where}a {kind} trails by an offset: triggers.price_type must be 'pct' or 'quote'"
            )
        _static_positive(where, "triggers.price", triggers["price"], ptype)
    elif kind in TRIGGER_ORDER_TYPES:
        raise ValueError(f"{where}a {kind} order needs triggers={{'price': ...}}")
    if ("display_qty" in o) != (kind == "iceberg"):
        raise ValueError(f"{where}display_qty is required for, and only for, iceberg orders")
    if "cash_order_qty" in o:
        if kind != "market" or o["side"] != "buy" or o.get("margin"):
            raise ValueError(f"{where}cash_order_qty is only for market buys without margin")
        if "order_qty" in o:
            raise ValueError(f"{where}give order_qty or cash_order_qty, not both")
    elif "order_qty" not in o:
        raise TypeError(f"{where}an order needs order_qty (or cash_order_qty for a market buy)")
    tif = o.get("time_in_force")
    if ("expire_time" in o) != (tif == "gtd"):
        raise ValueError(f"{where}expire_time is required for, and only for, time_in_force='gtd'")
    if "no_mpp" in o and kind != "market":
        raise ValueError(f"{where}no_mpp is only for market orders")
    if "cl_ord_id" in o and "order_userref" in o:
        raise ValueError(f"{where}give cl_ord_id or order_userref, not both")
    cond = o.get("conditional")
    if cond is not None:
        ckind = cond["order_type"]
        if ("limit_price" in cond) != (ckind in LIMIT_ORDER_TYPES):
            raise ValueError(
                f"{where}conditional.limit_price is required for, and only for, "
                f"a limit-type order ({ckind} given)"
            )
        if ("trigger_price" in cond) != (ckind in TRIGGER_ORDER_TYPES):
            raise ValueError(
                f"{where}conditional.trigger_price is required for, and only for, "
                f"a triggered order ({ckind} given)"
            )
        for field, ptype in _PRICE_TYPED:
            if ptype in cond and field not in cond:
                raise ValueError(f"{where}conditional.{ptype} needs conditional.{field}")


# -- builders ----------------------------------------------------------------------


def order_entry(where: str, fields: Mapping[str, object]) -> dict[str, Any]:
    """One checked order without ``symbol`` (a ``batch_add`` entry)."""
    if "symbol" in fields:
        raise ValueError(f"{where}one symbol per batch: pass symbol= to batch_add, not per order")
    order = _fields(where, fields, _ORDER, ("order_type", "side"))
    _check_order(where, order)
    return order


def add_order(**fields: Unpack[AddOrderFields]) -> dict[str, Any]:
    """``add_order``'s ``params`` (no token), checked; see :class:`AddOrderFields`."""
    params = _fields("add_order.", fields, _ADD, ("order_type", "side", "symbol"))
    _check_order("add_order: ", params)
    return params


def amend_order(**fields: Unpack[AmendOrderFields]) -> dict[str, Any]:
    """``amend_order``'s ``params`` (no token): ``order_id`` or ``cl_ord_id``
    (not both) and at least one change; checked."""
    params = _fields("amend_order.", fields, _AMEND, ())
    if ("order_id" in params) == ("cl_ord_id" in params):
        raise TypeError("amend_order needs order_id or cl_ord_id (one of them)")
    changes = set(params) - {"order_id", "cl_ord_id", "deadline", "symbol"}
    if not changes:
        raise TypeError("amend_order needs a change: order_qty, limit_price, trigger_price, ...")
    for field, ptype in _PRICE_TYPED:
        if ptype in params and field not in params:
            raise ValueError(f"amend_order: {ptype} needs {field}")
        if field in params:
            _static_positive("amend_order: ", field, params[field], params.get(ptype))
    return params


def edit_order(**fields: Unpack[EditOrderFields]) -> dict[str, Any]:
    """``edit_order``'s ``params`` (no token): ``order_id``, ``symbol`` and at
    least one change; checked."""
    params = _fields("edit_order.", fields, _EDIT, ("order_id", "symbol"))
    if not set(params) - {"order_id", "symbol", "deadline", "validate"}:
        raise TypeError("edit_order needs a change: order_qty, limit_price, triggers, ...")
    if "limit_price" in params:
        _static_positive("edit_order: ", "limit_price", params["limit_price"], None)
    triggers = params.get("triggers")
    if triggers is not None:
        _static_positive(
            "edit_order: ", "triggers.price", triggers["price"], triggers.get("price_type")
        )
    return params


def batch_add(
    *, symbol: object, orders: object, deadline: object = None, validate: object = None
) -> dict[str, Any]:
    """``batch_add``'s ``params`` (no token): one ``symbol`` and
    :data:`BATCH_ADD_SIZE` orders (each like :class:`OrderFields`), checked."""
    params: dict[str, Any] = {"symbol": check_symbol("symbol", symbol)}
    if isinstance(orders, str | bytes | Mapping) or not isinstance(orders, list | tuple):
        raise TypeError(f"orders must be a list of dicts, got {type(orders).__name__}")
    low, high = BATCH_ADD_SIZE
    if not low <= len(orders) <= high:
        raise ValueError(f"batch_add takes {low} to {high} orders, got {len(orders)}")
    entries = []
    for i, order in enumerate(orders):
        if not isinstance(order, Mapping):
            raise TypeError(f"orders[{i}] must be a dict, got {type(order).__name__}")
        entries.append(order_entry(f"orders[{i}].", order))
    ids = [e["cl_ord_id"] for e in entries if "cl_ord_id" in e]
    if len(set(ids)) != len(ids):
        raise ValueError("batch_add: two orders share a cl_ord_id")
    params["orders"] = entries
    if deadline is not None:
        params["deadline"] = rfc3339("deadline", deadline)
    if validate is not None:
        params["validate"] = v.strict_bool("validate", validate)
    return params
