"""v2 order arguments: their types, Kraken's choices, and single-value checks.

The typed dicts (:class:`AddOrderFields`, :class:`OrderFields`,
:class:`AmendOrderFields`, :class:`EditOrderFields`, :class:`Triggers`,
:class:`Conditional`) say what a caller may pass, with Kraken's wire names;
the checks here (``check(name, value) -> wire value``) raise
:class:`TypeError` or :class:`ValueError` naming the argument. The builders
combining them are in :mod:`kraky_anyio.v2.orders`.

Numbers: a price or quantity is a ``Decimal``, an ``int`` or a decimal
``str`` (``"0.00000001"``, ``"1e-8"``); it is sent as a JSON *number* with its
exact digits (Kraken v2 rejects strings;
:func:`~kraky_anyio.v2.params.encode_request` writes ``Decimal("1E-8")`` as
``0.00000001``). A ``float`` is refused with a :class:`TypeError`: its binary
value is not the decimal you read, and this library never guesses (write
``Decimal("0.1")`` or ``"0.1"``).

Times (``effective_time``, ``expire_time``, ``deadline``) are RFC 3339
strings or timezone-aware ``datetime`` objects (sent in UTC).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Final, TypedDict

from .. import order_values as v
from .params import normalize_symbols

__all__ = [
    "BATCH_ADD_SIZE",
    "CONDITIONAL_TYPES",
    "FEE_PREFERENCES",
    "LIMIT_ORDER_TYPES",
    "ORDER_TYPES",
    "PRICE_TYPES",
    "RELATIVE_PRICE_TYPES",
    "SIDES",
    "STP_TYPES",
    "TIME_IN_FORCE",
    "TRAILING_ORDER_TYPES",
    "TRIGGER_ORDER_TYPES",
    "TRIGGER_REFERENCES",
    "AddOrderFields",
    "AmendOrderFields",
    "Conditional",
    "EditOrderFields",
    "Number",
    "OrderFields",
    "Time",
    "Triggers",
    "number",
    "one_of",
    "price",
    "quantity",
    "rfc3339",
    "symbol",
    "userref",
]

Number = Decimal | int | str
"""A price or quantity: exact, never a float."""
Time = str | datetime
"""An RFC 3339 string or a timezone-aware datetime."""

ORDER_TYPES: Final = (
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
)
#: Order types with a limit price (``limit_price`` required).
LIMIT_ORDER_TYPES: Final = frozenset(
    {"limit", "iceberg", "stop-loss-limit", "take-profit-limit", "trailing-stop-limit"}
)
#: Order types with a trigger (``triggers`` required; ``trigger_price`` in ``conditional``).
TRIGGER_ORDER_TYPES: Final = frozenset(
    {
        "stop-loss",
        "stop-loss-limit",
        "take-profit",
        "take-profit-limit",
        "trailing-stop",
        "trailing-stop-limit",
    }
)
TRAILING_ORDER_TYPES: Final = frozenset({"trailing-stop", "trailing-stop-limit"})
#: What the secondary (OTO) order of ``conditional`` may be.
CONDITIONAL_TYPES: Final = ("limit", *sorted(TRIGGER_ORDER_TYPES))
SIDES: Final = ("buy", "sell")
TIME_IN_FORCE: Final = ("gtc", "gtd", "ioc")
FEE_PREFERENCES: Final = ("base", "quote")
STP_TYPES: Final = ("cancel_newest", "cancel_oldest", "cancel_both")
TRIGGER_REFERENCES: Final = ("index", "last")
PRICE_TYPES: Final = ("static", "pct", "quote")
RELATIVE_PRICE_TYPES: Final = ("pct", "quote")
#: How many orders one ``batch_add`` takes.
BATCH_ADD_SIZE: Final = (2, 15)

# An RFC 3339 date-time: 2024-05-18T12:05:50Z, ...T12:05:50.293682+02:00
_RFC3339: Final = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)")


class _TriggersRequired(TypedDict):
    price: Number


class Triggers(_TriggersRequired, total=False):
    """``triggers``: ``reference`` ``index``/``last`` (Kraken's default
    ``last``), ``price``, ``price_type`` ``static``/``pct``/``quote``
    (default ``static``; a trailing stop needs ``pct`` or ``quote``)."""

    reference: str
    price_type: str


class _ConditionalRequired(TypedDict):
    order_type: str


class Conditional(_ConditionalRequired, total=False):
    """``conditional``: the secondary order placed when the primary fills (OTO)."""

    limit_price: Number
    limit_price_type: str
    trigger_price: Number
    trigger_price_type: str


class _OrderRequired(TypedDict):
    order_type: str
    side: str


class OrderFields(_OrderRequired, total=False):
    """One order's fields (an ``add_order`` without ``symbol``/``deadline``/
    ``validate``, or one entry of ``batch_add``'s ``orders``)."""

    order_qty: Number
    limit_price: Number
    limit_price_type: str
    triggers: Triggers
    time_in_force: str
    margin: bool
    post_only: bool
    reduce_only: bool
    effective_time: Time
    expire_time: Time
    cl_ord_id: str
    order_userref: int
    conditional: Conditional
    display_qty: Number
    cash_order_qty: Number
    fee_preference: str
    no_mpp: bool
    stp_type: str


class _AddOrderRequired(OrderFields):
    symbol: str


class AddOrderFields(_AddOrderRequired, total=False):
    """``add_order``'s arguments besides ``token``/``req_id``."""

    deadline: Time
    validate: bool


class AmendOrderFields(TypedDict, total=False):
    """``amend_order``'s arguments: ``order_id`` or ``cl_ord_id`` and at least one change."""

    order_id: str
    cl_ord_id: str
    order_qty: Number
    display_qty: Number
    limit_price: Number
    limit_price_type: str
    post_only: bool
    trigger_price: Number
    trigger_price_type: str
    deadline: Time
    symbol: str


class _EditOrderRequired(TypedDict):
    order_id: str
    symbol: str


class EditOrderFields(_EditOrderRequired, total=False):
    """``edit_order``'s arguments (cancel and replace): at least one change."""

    order_qty: Number
    display_qty: Number
    limit_price: Number
    triggers: Triggers
    post_only: bool
    reduce_only: bool
    fee_preference: str
    no_mpp: bool
    order_userref: int
    deadline: Time
    validate: bool


# -- single values ---------------------------------------------------------------


def number(name: str, value: object, *, signed: bool = False) -> Decimal | int:
    """An exact number for the wire: ``int`` kept, ``Decimal``/decimal ``str``
    as a ``Decimal`` (exponent forms normalised by
    :func:`~kraky_anyio.order_values.format_decimal`). Positive unless
    ``signed`` (a relative price). ``TypeError`` for a float, a bool or
    another type."""
    if isinstance(value, float):
        raise TypeError(
            f"{name}: a float is not exact and is refused: pass a Decimal, an int "
            f"or a decimal str such as {format(Decimal(repr(value)), 'f')!r}"
        )
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"{name} must be a Decimal, int or decimal str, got {type(value).__name__}")
    try:
        text = v.format_decimal(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    if not signed and Decimal(text) <= 0:
        raise ValueError(f"{name} must be positive, got {v.show(value)}")
    return value if isinstance(value, int) else Decimal(text)


def rfc3339(name: str, value: object) -> str:
    """An RFC 3339 time: a str in that form, or an aware ``datetime`` (sent in UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name}: a datetime needs a timezone (e.g. timezone.utc)")
        utc = value.astimezone(timezone.utc)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    if not isinstance(value, str):
        raise TypeError(f"{name} must be an RFC 3339 str or a datetime, got {type(value).__name__}")
    if not _RFC3339.fullmatch(value):
        raise ValueError(
            f"{name} must be an RFC 3339 time like 2024-05-18T12:05:50Z, got {v.show(value)}"
        )
    return value


def _loose(text: str) -> str:
    """``text`` without case, spaces, ``-`` or ``_``: how a near miss is recognised."""
    return "".join(c for c in text.lower() if c.isalnum())


def one_of(choices: tuple[str, ...]) -> Callable[[str, object], str]:
    """A check accepting exactly one of ``choices`` (Kraken's spelling)."""

    def check(name: str, value: object) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        if value not in choices:
            near = next((c for c in choices if _loose(c) == _loose(value)), None)
            hint = f" (write {near!r})" if near else ""
            raise ValueError(
                f"{name} must be one of {', '.join(choices)}; got {v.show(value)}{hint}"
            )
        return value

    return check


def userref(name: str, value: object) -> int:
    """``order_userref``: a signed 32-bit int, sent as a JSON integer."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(v.userref(name, value))


def quantity(name: str, value: object) -> Decimal | int:
    """A positive quantity (``order_qty``, ``display_qty``, ``cash_order_qty``)."""
    return number(name, value)


def price(name: str, value: object) -> Decimal | int:
    """A price, signed (an offset may be negative); a static one is checked
    positive by the builders, which know its ``price_type``."""
    return number(name, value, signed=True)


def symbol(name: str, value: object) -> str:
    """One v2 symbol, ``BASE/QUOTE`` (``BTC/USD``; see :func:`~.params.normalize_symbols`)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one symbol (a str), got {type(value).__name__}")
    base, _, quote = value.partition("/")
    if not base or not quote or "/" in quote or any(c.isspace() for c in value):
        raise ValueError(f"{name} must be BASE/QUOTE like 'BTC/USD', got {v.show(value)}")
    return normalize_symbols(value)[0]
