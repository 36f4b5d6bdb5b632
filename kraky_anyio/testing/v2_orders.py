"""A v2 ``add_order`` (or one order of ``batch_add``) read and checked, and
the v2 side of an order of the fake exchange.

:func:`read_add` turns the params into an :class:`OrderSpec` or raises
:class:`~kraky_anyio.testing.order_checks.RequestError` with the response's
``error``. :class:`V2Order` is what the engine keeps beside the shared
:class:`~kraky_anyio.testing.ledger.FakeOrder`: order type, time in force,
triggers, timers. Pure, no I/O.

The checks, in order (texts with ``EGeneral:Invalid arguments:`` are
followed by the field): ``order_type``, ``side``, ``order_qty`` /
``cash_order_qty`` (exactly one; cash only on a market buy), ``limit_price``
(required by limit, iceberg and the ``-limit`` types, refused by the others),
``limit_price_type``, ``triggers`` (required by stop, take-profit and
trailing types), ``display_qty`` (iceberg only, at least 1/15 of the
quantity), ``time_in_force`` (``gtd`` needs ``expire_time``, which only it
takes; ``ioc`` and ``post_only`` exclude each other), ``post_only``,
``reduce_only``, ``margin``, ``validate``, ``effective_time``,
``order_userref``, ``cl_ord_id``, ``fee_preference``, ``stp_type``,
``conditional`` (an object, accepted and not acted on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ..v2.order_fields import LIMIT_ORDER_TYPES, PRICE_TYPES, STP_TYPES, TIME_IN_FORCE
from . import v2_params as p
from .ledger import FakeOrder
from .order_checks import invalid
from .v2_params import Trigger

__all__ = [
    "ERR_DEADLINE",
    "ERR_INSUFFICIENT_FUNDS",
    "LIMIT_TYPES",
    "OrderSpec",
    "V2Order",
    "limit_at",
    "read_add",
]

#: A ``deadline`` already past (Kraken's text is not recorded: the fake's).
ERR_DEADLINE = "EOrder:Deadline elapsed"
#: (Kraken) The available balance does not cover the order.
ERR_INSUFFICIENT_FUNDS = "EOrder:Insufficient funds"

#: The order types that take a ``limit_price`` (Kraken's choices come from
#: the client's tables, :mod:`kraky_anyio.v2.order_fields`: one place each).
LIMIT_TYPES = LIMIT_ORDER_TYPES
_INT32 = 2**31


@dataclass
class OrderSpec:
    """A checked ``add_order``: everything but the symbol's market checks."""

    order_type: str
    side: str
    order_qty: Decimal | None
    cash_order_qty: Decimal | None
    limit_price: Decimal | None
    limit_price_type: str
    trigger: Trigger | None
    display_qty: Decimal | None
    time_in_force: str
    expire_time: float | None
    effective_time: float | None
    post_only: bool
    reduce_only: bool
    margin: bool
    validate: bool
    order_userref: int
    cl_ord_id: str | None
    fee_preference: str
    stp_type: str

    def quantity(self, reference: Decimal | None) -> Decimal | None:
        """The base quantity: ``order_qty``, or ``cash_order_qty`` at
        ``reference`` (rounded down to 8 decimals); None without a reference."""
        if self.order_qty is not None:
            return self.order_qty
        if reference is None or self.cash_order_qty is None:
            return None
        return (self.cash_order_qty / reference).quantize(Decimal("1e-8"), ROUND_DOWN)


@dataclass
class V2Order:
    """The v2 side of ``order`` (see the module docstring). ``waiting``
    says what keeps it out of the book: ``"trigger"`` until its trigger
    fires, ``"effective"`` until its ``effective_time``, or ``""``."""

    order: FakeOrder
    order_type: str
    time_in_force: str
    fee_preference: str
    limit_price_type: str = "static"
    post_only: bool = False
    reduce_only: bool = False
    margin: bool = False
    display_qty: Decimal | None = None
    trigger: Trigger | None = None
    trigger_price: Decimal | None = None
    expire_at: float | None = None
    effective_at: float | None = None
    stp_type: str = "cancel_newest"
    waiting: str = ""


def read_add(params: Mapping[str, Any]) -> OrderSpec:
    """Check one order's params (see the module docstring)."""
    order_type = p.choice(params, "order_type", p.ORDER_TYPES)
    if order_type is None:
        raise invalid("order_type")
    side = p.choice(params, "side", ("buy", "sell"))
    if side is None:
        raise invalid("side")
    order_qty = p.decimal(params, "order_qty")
    cash = p.decimal(params, "cash_order_qty")
    if (order_qty is None) == (cash is None):
        raise invalid("order_qty")
    if cash is not None and (order_type != "market" or side != "buy"):
        raise invalid("cash_order_qty")
    limit_price = p.decimal(params, "limit_price", positive=False)
    limit_price_type = p.choice(params, "limit_price_type", PRICE_TYPES, "static")
    assert limit_price_type is not None
    if order_type in LIMIT_TYPES:
        if limit_price is None:
            raise invalid("limit_price")
        if limit_price_type == "static" and limit_price <= 0:
            raise invalid("limit_price")
    elif limit_price is not None or "limit_price_type" in params:
        raise invalid("limit_price")
    trigger = p.trigger(params, order_type)
    display_qty = p.decimal(params, "display_qty")
    if order_type == "iceberg":
        quantity = order_qty or Decimal(0)
        if display_qty is None or display_qty > quantity or display_qty * 15 < quantity:
            raise invalid("display_qty")
    elif display_qty is not None:
        raise invalid("display_qty")
    time_in_force = p.choice(params, "time_in_force", TIME_IN_FORCE, "gtc")
    expire_time = p.moment(params, "expire_time")
    if (time_in_force == "gtd") != (expire_time is not None):
        raise invalid("expire_time")
    post_only = p.boolean(params, "post_only")
    if post_only and (time_in_force == "ioc" or order_type not in ("limit", "iceberg")):
        raise invalid("post_only")
    conditional = params.get("conditional")
    if conditional is not None and not isinstance(conditional, dict):
        raise invalid("conditional")
    userref = p.integer(params, "order_userref", -_INT32, _INT32 - 1)
    default_fee = "quote" if side == "buy" else "base"
    fee_preference = p.choice(params, "fee_preference", ("base", "quote"), default_fee)
    stp_type = p.choice(params, "stp_type", STP_TYPES, "cancel_newest")
    assert time_in_force is not None and fee_preference is not None and stp_type is not None
    return OrderSpec(
        order_type=order_type,
        side=side,
        order_qty=order_qty,
        cash_order_qty=cash,
        limit_price=limit_price,
        limit_price_type=limit_price_type,
        trigger=trigger,
        display_qty=display_qty,
        time_in_force=time_in_force,
        expire_time=expire_time,
        effective_time=p.moment(params, "effective_time"),
        post_only=post_only,
        reduce_only=p.boolean(params, "reduce_only"),
        margin=p.boolean(params, "margin"),
        validate=p.boolean(params, "validate"),
        order_userref=userref or 0,
        cl_ord_id=p.text(params, "cl_ord_id", 36),
        fee_preference=fee_preference,
        stp_type=stp_type,
    )


def limit_at(spec_price: Decimal, price_type: str, base: Decimal) -> Decimal:
    """A limit price given relative (``pct``/``quote``) to ``base``."""
    if price_type == "static":
        return spec_price
    if price_type == "pct":
        return base * (1 + spec_price / 100)
    return base + spec_price
