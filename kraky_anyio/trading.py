"""Order arguments to Kraken WebSocket v1 request messages (sans-I/O).

Every builder validates all of its arguments first and only then builds the
request ``dict`` (without ``reqid``: the caller adds it). A bad argument raises
:class:`TypeError` (wrong type) or :class:`ValueError` (wrong value). No
exception message ever contains the token.

Wire conventions (Kraken v1 docs):

* prices, volumes and leverage are plain decimal strings, never floats and
  never scientific notation (see :func:`format_decimal`);
* ``validate`` is sent as the string ``"true"``/``"false"``, ``reduce_only``
  as a JSON boolean;
* ``userref``/``newuserref``, ``starttm``, ``expiretm`` and ``deadline`` are
  sent as strings; ``oflags`` as one comma-separated string;
* ``cancelAllOrdersAfter``'s ``timeout`` is a JSON integer.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

__all__ = [
    "MAX_DECIMAL_DIGITS",
    "ORDER_REPLY_EVENTS",
    "DecimalLike",
    "add_order",
    "cancel_all",
    "cancel_all_orders_after",
    "cancel_order",
    "edit_order",
    "expected_replies",
    "format_decimal",
    "redact",
]

DecimalLike = str | Decimal | int | float
"""What a price, volume or leverage argument may be."""

MAX_DECIMAL_DIGITS = 100
"""Largest number of digits :func:`format_decimal` writes on either side of the point."""

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

_TIME_IN_FORCE = ("GTC", "GTD", "IOC")
_REDACTED = "<redacted>"
# A plain or scientific decimal, optionally signed; no spaces, underscores, NaN or inf.
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Kraken's relative price forms: "+10", "-5", "#5", "10%", "+1.5%", ...
_RELATIVE_PRICE_RE = re.compile(r"(?:[+#-](?:\d+(?:\.\d*)?|\.\d+)%?|(?:\d+(?:\.\d*)?|\.\d+)%)")
_FLAG_RE = re.compile(r"[A-Za-z0-9_]+")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _show(value: object) -> str:
    """A short repr of ``value`` for an error message."""
    text = repr(value)
    # Long enough that a token passed by mistake is shown whole, so _guard masks it.
    return text if len(text) <= 200 else text[:197] + "..."


@contextlib.contextmanager
def _guard(token: object) -> Iterator[None]:
    """Re-raise a validation error with every occurrence of ``token`` masked."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        if isinstance(token, str) and token and token in str(exc):
            raise type(exc)(str(exc).replace(token, _REDACTED)) from None
        raise


def format_decimal(value: DecimalLike) -> str:
    """Return ``value`` as a plain decimal string (no exponent, no float artefacts).

    * ``float`` goes through its shortest ``repr`` first, so ``0.1`` -> ``"0.1"``
      and ``1e-05`` -> ``"0.00001"``;
    * ``Decimal('1E+3')`` -> ``"1000"``, ``Decimal('1E-5')`` -> ``"0.00001"``;
      trailing zeros are kept (``Decimal('1.50')`` -> ``"1.50"``); ``-0`` -> ``"0"``;
    * ``str`` must be a decimal literal (optionally signed, exponent allowed):
      no spaces, underscores, ``NaN`` or ``inf``.

    The sign is kept: callers check it. Raises :class:`TypeError` for any other
    type (``bool`` included) and :class:`ValueError` for a non-finite value, a
    malformed string, or more than :data:`MAX_DECIMAL_DIGITS` digits on either
    side of the point.
    """
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int | float):
        raise TypeError(
            f"expected a str, Decimal, int or float, got {type(value).__name__}: {_show(value)}"
        )
    if isinstance(value, str):
        if not _DECIMAL_RE.fullmatch(value):
            raise ValueError(f"not a decimal number: {_show(value)}")
        number = Decimal(value)
    elif isinstance(value, float):
        try:
            number = Decimal(repr(value))
        except InvalidOperation:  # pragma: no cover - repr of a float always parses
            raise ValueError(f"not a decimal number: {_show(value)}") from None
    else:
        number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"not a finite number: {_show(value)}")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if number.adjusted() >= MAX_DECIMAL_DIGITS or -exponent > MAX_DECIMAL_DIGITS:
        raise ValueError(f"number out of range (max {MAX_DECIMAL_DIGITS} digits): {_show(value)}")
    if number.is_zero():
        number = number.copy_abs()
    return format(number, "f")


def _amount(name: str, value: DecimalLike, *, positive: bool = False) -> str:
    """A non-negative (or strictly positive) absolute amount as a plain decimal string."""
    if isinstance(value, str) and value.startswith("+"):
        raise ValueError(f"{name}: relative forms are for prices only, got {_show(value)}")
    try:
        text = format_decimal(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    number = Decimal(text)
    if number < 0 or (positive and number == 0):
        what = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be {what}, got {_show(value)}")
    return text


def _price(name: str, value: DecimalLike) -> str:
    """A price: an absolute non-negative decimal, or a relative string kept as given."""
    if isinstance(value, str) and (value[:1] in ("+", "-", "#") or value.endswith("%")):
        if not _RELATIVE_PRICE_RE.fullmatch(value):
            raise ValueError(f"{name}: not a valid relative price: {_show(value)}")
        return value
    try:
        text = format_decimal(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    if Decimal(text) < 0:
        raise ValueError(
            f"{name} must be non-negative, got {_show(value)}"
            " (pass a str such as '-5' for a relative price)"
        )
    return text


def _nonempty_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value or value != value.strip():
        raise ValueError(f"{name} must be a non-empty str without surrounding spaces")
    return value


def _token(value: object) -> str:
    # Never put the value itself in a message.
    if not isinstance(value, str):
        raise TypeError(f"token must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError("token must be a non-empty str")
    return value


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def _userref(name: str, value: int | str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{name} must be an int or a str of digits, got {type(value).__name__}")
    if isinstance(value, str):
        if not re.fullmatch(r"-?\d+", value):
            raise ValueError(f"{name} must be an integer, got {_show(value)}")
        number = int(value)
    else:
        number = value
    if not _INT32_MIN <= number <= _INT32_MAX:
        raise ValueError(f"{name} must fit in a signed 32-bit integer, got {_show(value)}")
    return str(number)


def _time(name: str, value: int | str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{name} must be an int or a str, got {type(value).__name__}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
        return str(value)
    return _nonempty_str(name, value)


def _oflags(value: str | Iterable[str]) -> str:
    if isinstance(value, str):
        flags = value.split(",")
    elif isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"oflags must be a str or a sequence of str, got {type(value).__name__}")
    else:
        flags = list(value)
        for flag in flags:
            if not isinstance(flag, str):
                raise TypeError(f"oflags items must be str, got {type(flag).__name__}")
    if not flags or not all(_FLAG_RE.fullmatch(flag) for flag in flags):
        raise ValueError(f"oflags must be non-empty flag names, got {_show(value)}")
    return ",".join(flags)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {_show(value)}")
    return value


def _validate_flag(value: bool) -> str:
    return "true" if _bool("validate", value) else "false"


def add_order(
    token: str,
    pair: str,
    type: str,
    ordertype: str,
    volume: DecimalLike,
    price: DecimalLike | None = None,
    price2: DecimalLike | None = None,
    leverage: DecimalLike | None = None,
    reduce_only: bool | None = None,
    oflags: str | Iterable[str] | None = None,
    starttm: int | str | None = None,
    expiretm: int | str | None = None,
    deadline: int | str | None = None,
    cl_ord_id: str | None = None,
    userref: int | str | None = None,
    validate: bool | None = None,
    close_ordertype: str | None = None,
    close_price: DecimalLike | None = None,
    close_price2: DecimalLike | None = None,
    timeinforce: str | None = None,
) -> dict[str, Any]:
    """Build an ``addOrder`` request (without ``reqid``); ``None`` arguments are omitted.

    ``type`` is ``"buy"`` or ``"sell"``; ``volume`` >= 0 and ``leverage`` > 0 are
    decimals; ``price``, ``price2`` and ``close_price*`` are non-negative decimals
    or Kraken relative-price strings (``"+10"``, ``"-5"``, ``"#5"``, ``"10%"``),
    sent as given. ``close_*`` are sent as ``close[ordertype]``, ``close[price]``,
    ``close[price2]``; ``close_price*`` need ``close_ordertype``. ``userref`` is an
    int32 (int or digit string), sent as a string. ``oflags`` is a comma-separated
    str or a sequence of flag names. ``starttm``/``expiretm``/``deadline`` are a
    non-negative int or a non-empty str, sent as strings. ``timeinforce`` is
    ``GTC``, ``GTD`` or ``IOC``. ``validate`` is sent as ``"true"``/``"false"``,
    ``reduce_only`` as a JSON boolean.

    Raises :class:`TypeError`/:class:`ValueError` on any bad argument.
    """
    with _guard(token):
        fields: dict[str, Any] = {
            "event": "addOrder",
            "token": _token(token),
            "pair": _nonempty_str("pair", pair),
            "type": _choice("type", type, ("buy", "sell")),
            "ordertype": _nonempty_str("ordertype", ordertype),
            "volume": _amount("volume", volume),
        }
        if price is not None:
            fields["price"] = _price("price", price)
        if price2 is not None:
            fields["price2"] = _price("price2", price2)
        if leverage is not None:
            fields["leverage"] = _amount("leverage", leverage, positive=True)
        if reduce_only is not None:
            fields["reduce_only"] = _bool("reduce_only", reduce_only)
        if oflags is not None:
            fields["oflags"] = _oflags(oflags)
        if starttm is not None:
            fields["starttm"] = _time("starttm", starttm)
        if expiretm is not None:
            fields["expiretm"] = _time("expiretm", expiretm)
        if deadline is not None:
            fields["deadline"] = _time("deadline", deadline)
        if cl_ord_id is not None:
            fields["cl_ord_id"] = _nonempty_str("cl_ord_id", cl_ord_id)
        if userref is not None:
            fields["userref"] = _userref("userref", userref)
        if validate is not None:
            fields["validate"] = _validate_flag(validate)
        if close_ordertype is not None:
            fields["close[ordertype]"] = _nonempty_str("close_ordertype", close_ordertype)
        elif close_price is not None or close_price2 is not None:
            raise ValueError("close_price and close_price2 need close_ordertype")
        if close_price is not None:
            fields["close[price]"] = _price("close_price", close_price)
        if close_price2 is not None:
            fields["close[price2]"] = _price("close_price2", close_price2)
        if timeinforce is not None:
            fields["timeinforce"] = _choice("timeinforce", timeinforce, _TIME_IN_FORCE)
        return fields


def edit_order(
    token: str,
    orderid: str | int,
    pair: str,
    volume: DecimalLike | None = None,
    price: DecimalLike | None = None,
    price2: DecimalLike | None = None,
    oflags: str | Iterable[str] | None = None,
    newuserref: int | str | None = None,
    validate: bool | None = None,
) -> dict[str, Any]:
    """Build an ``editOrder`` request (without ``reqid``); ``None`` arguments are omitted.

    ``orderid`` is the original order's txid (or its userref as an int, sent as
    a string). Other fields follow :func:`add_order`'s rules; ``newuserref`` is
    sent as a string, ``validate`` as ``"true"``/``"false"``.

    Raises :class:`TypeError`/:class:`ValueError` on any bad argument.
    """
    with _guard(token):
        if isinstance(orderid, int) and not isinstance(orderid, bool):
            order = _userref("orderid", orderid)
        else:
            order = _nonempty_str("orderid", orderid)
        fields: dict[str, Any] = {
            "event": "editOrder",
            "token": _token(token),
            "orderid": order,
            "pair": _nonempty_str("pair", pair),
        }
        if volume is not None:
            fields["volume"] = _amount("volume", volume)
        if price is not None:
            fields["price"] = _price("price", price)
        if price2 is not None:
            fields["price2"] = _price("price2", price2)
        if oflags is not None:
            fields["oflags"] = _oflags(oflags)
        if newuserref is not None:
            fields["newuserref"] = _userref("newuserref", newuserref)
        if validate is not None:
            fields["validate"] = _validate_flag(validate)
        return fields


def cancel_order(token: str, txid: str | Iterable[str]) -> dict[str, Any]:
    """Build a ``cancelOrder`` request; ``txid`` is one txid (a bare ``str``) or several.

    ``txid`` is always sent as a list. Raises :class:`TypeError` for a non-str
    txid and :class:`ValueError` for an empty list or an empty txid. Kraken
    answers with one ``cancelOrderStatus`` per txid.
    """
    with _guard(token):
        checked_token = _token(token)
        if isinstance(txid, str):
            txids = [txid]
        elif isinstance(txid, bytes | bytearray | Mapping) or not isinstance(txid, Iterable):
            raise TypeError(f"txid must be a str or a sequence of str, got {type(txid).__name__}")
        else:
            txids = list(txid)
        if not txids:
            raise ValueError("txid must name at least one order")
        for item in txids:
            _nonempty_str("txid", item)
        return {"event": "cancelOrder", "token": checked_token, "txid": txids}


def cancel_all(token: str) -> dict[str, Any]:
    """Build a ``cancelAll`` request.

    Raises :class:`TypeError`/:class:`ValueError` on a bad token.
    """
    with _guard(token):
        return {"event": "cancelAll", "token": _token(token)}


def cancel_all_orders_after(token: str, timeout: int) -> dict[str, Any]:
    """Build a ``cancelAllOrdersAfter`` (dead man's switch) request.

    ``timeout`` is whole seconds (an ``int``, not a ``bool``), ``0`` switches the
    timer off. Raises :class:`TypeError` for a non-int and :class:`ValueError`
    for a negative timeout.
    """
    with _guard(token):
        checked_token = _token(token)
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            raise TypeError(f"timeout must be an int, got {type(timeout).__name__}")
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {timeout}")
        return {"event": "cancelAllOrdersAfter", "token": checked_token, "timeout": timeout}


def expected_replies(request: Mapping[str, Any]) -> tuple[str, int]:
    """Return ``(reply_event, count)`` for an order request.

    ``cancelOrder`` gets one reply per txid, every other order event one.
    Raises :class:`ValueError` for a request that is not an order event, or a
    ``cancelOrder`` without a non-empty ``txid`` list.
    """
    event = request.get("event")
    if not isinstance(event, str) or event not in ORDER_REPLY_EVENTS:
        raise ValueError(f"not an order request event: {_show(event)}")
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
