"""Reading the params of Kraken v2 order requests for the fake exchange.

Each reader takes one field of a request's ``params`` and returns it typed,
or raises :class:`~kraky_anyio.testing.order_checks.RequestError` with the
error text the response carries. Numbers must be JSON numbers (the session
decodes them as ``Decimal``, keeping their digits): a string is refused as
Kraken does (``"EGeneral:Invalid arguments:Limit_price field must be a
number_float"``). Times are RFC 3339 strings. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .order_checks import ERR_INVALID_ARGUMENTS, RequestError, invalid

__all__ = [
    "ORDER_TYPES",
    "TRIGGERED_TYPES",
    "Trigger",
    "boolean",
    "choice",
    "decimal",
    "integer",
    "moment",
    "number_error",
    "order_ids",
    "text",
    "trigger",
]

#: Every v2 ``order_type``.
ORDER_TYPES = frozenset(
    {
        "limit",
        "market",
        "iceberg",
        "stop-loss",
        "stop-loss-limit",
        "take-profit",
        "take-profit-limit",
        "trailing-stop",
        "trailing-stop-limit",
        "settle-position",
    }
)
#: The order types that wait for ``triggers``.
TRIGGERED_TYPES = frozenset(t for t in ORDER_TYPES if t.startswith(("stop", "take", "trailing")))
_MISSING: Any = object()


def number_error(field: str) -> RequestError:
    """Kraken's refusal of a number sent as anything but a JSON number."""
    return RequestError(
        f"{ERR_INVALID_ARGUMENTS}:{field.capitalize()} field must be a number_float"
    )


def decimal(
    params: Mapping[str, Any], field: str, *, positive: bool = True, required: bool = False
) -> Decimal | None:
    """A JSON number (``Decimal`` or ``int``, never ``bool``), > 0 when
    ``positive``; None when absent and not ``required``."""
    value = params.get(field, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise invalid(field)
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise number_error(field)
    number = Decimal(value)
    if not number.is_finite() or (positive and number <= 0):
        raise invalid(field)
    return number


def integer(params: Mapping[str, Any], field: str, low: int, high: int) -> int | None:
    """An integer in ``low..high``, or None when absent."""
    value = params.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(field)
    return value


def boolean(params: Mapping[str, Any], field: str, default: bool = False) -> bool:
    """A JSON ``true``/``false`` (``default`` when absent)."""
    value = params.get(field, default)
    if not isinstance(value, bool):
        raise invalid(field)
    return value


def choice(
    params: Mapping[str, Any], field: str, allowed: Collection[str], default: str | None = None
) -> str | None:
    """One of ``allowed`` (``default`` when absent)."""
    value = params.get(field, default)
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise invalid(field)
    return value


def text(params: Mapping[str, Any], field: str, max_length: int = 64) -> str | None:
    """A non-empty string of at most ``max_length`` characters, or None."""
    value = params.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise invalid(field)
    return value


def moment(params: Mapping[str, Any], field: str) -> float | None:
    """An RFC 3339 time (``2024-01-02T03:04:05.5Z``) as Unix seconds, or None."""
    value = params.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(field) from None
    if parsed.tzinfo is None:
        raise invalid(field)
    return parsed.timestamp()


def order_ids(params: Mapping[str, Any], field: str) -> list[Any]:
    """A list of ids (strings, or integers for ``order_userref``), possibly empty."""
    value = params.get(field)
    if value is None:
        return []
    want: type = int if field == "order_userref" else str
    if not isinstance(value, list) or not all(
        isinstance(v, want) and not isinstance(v, bool) for v in value
    ):
        raise invalid(field)
    return list(value)


@dataclass
class Trigger:
    """An order's ``triggers``: fires when the reference price reaches
    :meth:`price_at` (for trailing stops, relative to the best price seen
    since placement, kept in ``extreme``)."""

    reference: str
    price: Decimal
    price_type: str
    extreme: Decimal | None = None

    def level(self, base: Decimal) -> Decimal:
        """The trigger price against ``base`` (the reference at placement,
        or the best price seen for a trailing stop)."""
        if self.price_type == "static":
            return self.price
        if self.price_type == "pct":
            return base * (1 + self.price / 100)
        return base + self.price


def trigger(params: Mapping[str, Any], order_type: str) -> Trigger | None:
    """``triggers`` of a stop, take-profit or trailing-stop order (required
    there, refused elsewhere). Trailing stops take a relative offset only
    (``pct``/``quote``), given as a positive distance."""
    value = params.get("triggers")
    if order_type not in TRIGGERED_TYPES:
        if value is not None:
            raise invalid("triggers")
        return None
    if not isinstance(value, dict):
        raise invalid("triggers")
    reference = choice(value, "reference", ("index", "last"), "last")
    trailing = order_type.startswith("trailing")
    price_type = choice(value, "price_type", ("static", "pct", "quote"), "static")
    assert reference is not None and price_type is not None
    if trailing and price_type == "static":
        raise invalid("triggers.price_type")
    price = decimal(value, "price", positive=price_type == "static" or trailing, required=True)
    assert price is not None
    return Trigger(reference, price, price_type)
