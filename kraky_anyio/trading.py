"""Order arguments to Kraken WebSocket v1 request messages (sans-I/O).

The arguments of ``addOrder`` and ``editOrder`` are written once, here: the
typed dicts :class:`AddOrderFields` and :class:`EditOrderFields` say what a
caller may pass (the connection's methods take them as typed keyword
arguments), and the field tables below say how each is checked and which wire
key it is sent as. Every builder validates all of its arguments first and only
then builds the request ``dict`` (without ``reqid``: the caller adds it). A bad
argument raises :class:`TypeError` (wrong type, unknown or missing argument) or
:class:`ValueError` (wrong value), naming the spelling to use where the caller
wrote a near miss. No exception message ever contains the token. The checks
and the wire conventions are in :mod:`kraky_anyio.order_values`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypedDict

from . import order_values as v
from .order_values import MAX_DECIMAL_DIGITS, DecimalLike, format_decimal

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "MAX_DECIMAL_DIGITS",
    "ORDER_REPLY_EVENTS",
    "AddOrderFields",
    "DecimalLike",
    "EditOrderFields",
    "add_order",
    "cancel_all",
    "cancel_all_orders_after",
    "cancel_order",
    "edit_order",
    "expected_replies",
    "format_decimal",
    "redact",
]

ORDER_REPLY_EVENTS: Mapping[str, str] = MappingProxyType(
    {
        "addOrder": "addOrderStatus",
        "editOrder": "editOrderStatus",
        "cancelOrder": "cancelOrderStatus",
        "cancelAll": "cancelAllStatus",
        "cancelAllOrdersAfter": "cancelAllOrdersAfterStatus",
    }
)
"""Order request ``event`` -> the ``event`` of its reply."""

_REDACTED = "<redacted>"


class _AddOrderRequired(TypedDict):
    pair: str
    type: str
    ordertype: str
    volume: DecimalLike


class AddOrderFields(_AddOrderRequired, total=False):
    """``addOrder``'s arguments besides the token; ``None`` means "omit".

    ``type`` is ``"buy"`` or ``"sell"``; ``volume`` >= 0 and ``leverage`` > 0 are
    decimals; ``price``, ``price2`` and ``close_price*`` are non-negative decimals
    or Kraken relative-price strings (``"+10"``, ``"-5"``, ``"#5"``, ``"10%"``),
    sent as given. ``close_*`` are sent as ``close[ordertype]``, ``close[price]``,
    ``close[price2]``; ``close_price*`` need ``close_ordertype``. ``userref`` is an
    int32 (int or digit string), sent as a string. ``oflags`` is a comma-separated
    str or a sequence of flag names. ``starttm``/``expiretm``/``deadline`` are a
    non-negative int or a non-empty str, sent as strings. ``timeinforce`` is
    ``GTC``, ``GTD`` or ``IOC``. ``validate`` is a bool (or ``"true"``/``"false"``),
    sent as ``"true"``/``"false"``; ``reduce_only`` a bool, sent as a JSON boolean.
    """

    price: DecimalLike | None
    price2: DecimalLike | None
    leverage: DecimalLike | None
    reduce_only: bool | None
    oflags: str | Iterable[str] | None
    starttm: int | str | None
    expiretm: int | str | None
    deadline: int | str | None
    cl_ord_id: str | None
    userref: int | str | None
    validate: bool | str | None
    close_ordertype: str | None
    close_price: DecimalLike | None
    close_price2: DecimalLike | None
    timeinforce: str | None


class _EditOrderRequired(TypedDict):
    orderid: str | int | list[str | int]
    pair: str


class EditOrderFields(_EditOrderRequired, total=False):
    """``editOrder``'s arguments besides the token; ``None`` means "omit".

    ``orderid`` is the original order's txid (or its userref as an int, sent as
    a string; kraky's one-element list is accepted). Other fields follow
    :class:`AddOrderFields`' rules; ``newuserref`` is sent as a string.
    """

    volume: DecimalLike | None
    price: DecimalLike | None
    price2: DecimalLike | None
    oflags: str | Iterable[str] | None
    newuserref: int | str | None
    validate: bool | str | None


_Check = Callable[[str, Any], object]

# (argument, wire key, check), in the order fields are checked and sent.
_ADD_ORDER: tuple[tuple[str, str, _Check], ...] = (
    ("pair", "pair", v.nonempty_str),
    ("type", "type", v.side),
    ("ordertype", "ordertype", v.nonempty_str),
    ("volume", "volume", v.amount),
    ("price", "price", v.price),
    ("price2", "price2", v.price),
    ("leverage", "leverage", v.positive_amount),
    ("reduce_only", "reduce_only", v.strict_bool),
    ("oflags", "oflags", v.oflags),
    ("starttm", "starttm", v.when),
    ("expiretm", "expiretm", v.when),
    ("deadline", "deadline", v.when),
    ("cl_ord_id", "cl_ord_id", v.nonempty_str),
    ("userref", "userref", v.userref),
    ("validate", "validate", v.validate_flag),
    ("close_ordertype", "close[ordertype]", v.nonempty_str),
    ("close_price", "close[price]", v.price),
    ("close_price2", "close[price2]", v.price),
    ("timeinforce", "timeinforce", v.time_in_force),
)

_EDIT_ORDER: tuple[tuple[str, str, _Check], ...] = (
    ("orderid", "orderid", v.order_id),
    ("pair", "pair", v.nonempty_str),
    ("volume", "volume", v.amount),
    ("price", "price", v.price),
    ("price2", "price2", v.price),
    ("oflags", "oflags", v.oflags),
    ("newuserref", "newuserref", v.userref),
    ("validate", "validate", v.validate_flag),
)


@contextlib.contextmanager
def _guard(token: object) -> Iterator[None]:
    """Re-raise a validation error with every occurrence of ``token`` masked."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        if isinstance(token, str) and token and token in str(exc):
            raise type(exc)(str(exc).replace(token, _REDACTED)) from None
        raise


def _build(
    event: str,
    token: object,
    fields: Mapping[str, object],
    table: tuple[tuple[str, str, _Check], ...],
    required: frozenset[str],
) -> dict[str, Any]:
    known = {name for name, _, _ in table}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"{event} got unexpected arguments: {', '.join(unknown)}")
    missing = [name for name, _, _ in table if name in required and fields.get(name) is None]
    if missing:
        raise TypeError(f"{event} needs {', '.join(missing)}")
    message: dict[str, Any] = {"event": event, "token": v.token(token)}
    for name, key, check in table:
        value = fields.get(name)
        if value is not None:
            message[key] = check(name, value)
    return message


def add_order(token: str, **fields: Unpack[AddOrderFields]) -> dict[str, Any]:
    """Build an ``addOrder`` request (without ``reqid``); see :class:`AddOrderFields`.

    Raises :class:`TypeError`/:class:`ValueError` on any bad, unknown or
    missing argument.
    """
    with _guard(token):
        message = _build("addOrder", token, fields, _ADD_ORDER, _AddOrderRequired.__required_keys__)
        if "close[ordertype]" not in message and (
            "close[price]" in message or "close[price2]" in message
        ):
            raise ValueError("close_price and close_price2 need close_ordertype")
        return message


def edit_order(token: str, **fields: Unpack[EditOrderFields]) -> dict[str, Any]:
    """Build an ``editOrder`` request (without ``reqid``); see :class:`EditOrderFields`.

    Raises :class:`TypeError`/:class:`ValueError` on any bad, unknown or
    missing argument.
    """
    with _guard(token):
        return _build("editOrder", token, fields, _EDIT_ORDER, _EditOrderRequired.__required_keys__)


def cancel_order(token: str, txid: str | Iterable[str] | None) -> dict[str, Any]:
    """Build a ``cancelOrder`` request; ``txid`` is one txid (a bare ``str``) or several.

    ``txid`` is always sent as a list. Raises :class:`TypeError` for a missing
    or non-str txid and :class:`ValueError` for an empty list or an empty txid.
    Kraken answers with one ``cancelOrderStatus`` per txid.
    """
    with _guard(token):
        checked_token = v.token(token)
        if txid is None:
            raise TypeError("cancelOrder needs txid")
        if isinstance(txid, str):
            txids = [txid]
        elif isinstance(txid, bytes | bytearray | Mapping) or not isinstance(txid, Iterable):
            raise TypeError(f"txid must be a str or a sequence of str, got {type(txid).__name__}")
        else:
            txids = list(txid)
        if not txids:
            raise ValueError("txid must name at least one order")
        for item in txids:
            v.nonempty_str("txid", item)
        return {"event": "cancelOrder", "token": checked_token, "txid": txids}


def cancel_all(token: str) -> dict[str, Any]:
    """Build a ``cancelAll`` request.

    Raises :class:`TypeError`/:class:`ValueError` on a bad token.
    """
    with _guard(token):
        return {"event": "cancelAll", "token": v.token(token)}


def cancel_all_orders_after(token: str, timeout: int | float | None) -> dict[str, Any]:
    """Build a ``cancelAllOrdersAfter`` (dead man's switch) request.

    ``timeout`` is whole seconds (an ``int``, or a ``float`` without a
    fraction such as kraky's ``60.0``), ``0`` switches the timer off. Raises
    :class:`TypeError` for a missing timeout or another type and
    :class:`ValueError` for a negative or fractional one.
    """
    with _guard(token):
        checked_token = v.token(token)
        if timeout is None:
            raise TypeError("cancelAllOrdersAfter needs timeout")
        seconds = v.timeout_seconds("timeout", timeout)
        return {"event": "cancelAllOrdersAfter", "token": checked_token, "timeout": seconds}


def expected_replies(request: Mapping[str, Any]) -> tuple[str, int]:
    """Return ``(reply_event, count)`` for an order request.

    ``cancelOrder`` gets one reply per txid, every other order event one.
    Raises :class:`ValueError` for a request that is not an order event, or a
    ``cancelOrder`` without a non-empty ``txid`` list.
    """
    event = request.get("event")
    if not isinstance(event, str) or event not in ORDER_REPLY_EVENTS:
        raise ValueError(f"not an order request event: {v.show(event)}")
    reply = ORDER_REPLY_EVENTS[event]
    if event != "cancelOrder":
        return reply, 1
    txids = request.get("txid")
    if not isinstance(txids, list | tuple) or not txids:
        raise ValueError("cancelOrder request needs a non-empty txid list")
    return reply, len(txids)


def redact(message: Mapping[str, Any]) -> dict[str, Any]:
    """Return a shallow copy of a request fit for logging: ``token`` (also inside
    ``subscription``) replaced by ``"<redacted>"``."""
    copy = dict(message)
    if "token" in copy:
        copy["token"] = _REDACTED
    subscription = copy.get("subscription")
    if isinstance(subscription, Mapping) and "token" in subscription:
        copy["subscription"] = {**subscription, "token": _REDACTED}
    return copy
