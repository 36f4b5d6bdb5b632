"""Checks for single order arguments, each returning the value as Kraken v1 wants it.

Every check is ``check(name, value) -> wire value`` and raises :class:`TypeError`
(wrong type) or :class:`ValueError` (wrong value) with a message naming the
argument and, where a caller wrote something close (kraky's spellings), the
spelling to use. Used by :mod:`kraky_anyio.trading`; the messages never hold
more than a shortened repr of the bad value (see :func:`show`).

Wire conventions (Kraken v1 docs): prices, volumes and leverage are plain
decimal strings, never floats and never scientific notation; ``validate`` is
the string ``"true"``/``"false"``; ``reduce_only`` a JSON boolean;
``userref``/``newuserref``, ``starttm``, ``expiretm`` and ``deadline`` are
strings; ``oflags`` one comma-separated string; ``cancelAllOrdersAfter``'s
``timeout`` a JSON integer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

__all__ = [
    "MAX_DECIMAL_DIGITS",
    "TIME_IN_FORCE",
    "DecimalLike",
    "amount",
    "format_decimal",
    "nonempty_str",
    "oflags",
    "order_id",
    "positive_amount",
    "price",
    "show",
    "side",
    "strict_bool",
    "time_in_force",
    "timeout_seconds",
    "token",
    "userref",
    "validate_flag",
    "when",
]

DecimalLike = str | Decimal | int | float
"""What a price, volume or leverage argument may be."""

MAX_DECIMAL_DIGITS = 100
"""Largest number of digits :func:`format_decimal` writes on either side of the point."""

TIME_IN_FORCE = ("GTC", "GTD", "IOC")
"""The ``timeinforce`` values Kraken's WebSocket v1 ``addOrder`` accepts."""

# A plain or scientific decimal, optionally signed; no spaces, underscores, NaN or inf.
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Kraken's relative price forms: "+10", "-5", "#5", "10%", "+1.5%", ...
_RELATIVE_PRICE_RE = re.compile(r"(?:[+#-](?:\d+(?:\.\d*)?|\.\d+)%?|(?:\d+(?:\.\d*)?|\.\d+)%)")
_FLAG_RE = re.compile(r"[A-Za-z0-9_]+")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def show(value: object) -> str:
    """A short repr of ``value`` for an error message."""
    text = repr(value)
    # Long enough that a token passed by mistake is shown whole, so the
    # builders' guard can mask it.
    return text if len(text) <= 200 else text[:197] + "..."


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
            f"expected a str, Decimal, int or float, got {type(value).__name__}: {show(value)}"
        )
    if isinstance(value, str):
        if not _DECIMAL_RE.fullmatch(value):
            raise ValueError(f"not a decimal number: {show(value)}")
        number = Decimal(value)
    elif isinstance(value, float):
        try:
            number = Decimal(repr(value))
        except InvalidOperation:  # pragma: no cover - repr of a float always parses
            raise ValueError(f"not a decimal number: {show(value)}") from None
    else:
        number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"not a finite number: {show(value)}")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if number.adjusted() >= MAX_DECIMAL_DIGITS or -exponent > MAX_DECIMAL_DIGITS:
        raise ValueError(f"number out of range (max {MAX_DECIMAL_DIGITS} digits): {show(value)}")
    if number.is_zero():
        number = number.copy_abs()
    return format(number, "f")


def _decimal(name: str, value: DecimalLike) -> str:
    try:
        return format_decimal(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None


def amount(name: str, value: DecimalLike) -> str:
    """A non-negative absolute amount (a volume) as a plain decimal string."""
    return _amount(name, value, positive=False)


def positive_amount(name: str, value: DecimalLike) -> str:
    """A strictly positive absolute amount (leverage) as a plain decimal string."""
    return _amount(name, value, positive=True)


def _amount(name: str, value: DecimalLike, *, positive: bool) -> str:
    if isinstance(value, str) and value.startswith("+"):
        raise ValueError(f"{name}: relative forms are for prices only, got {show(value)}")
    text = _decimal(name, value)
    number = Decimal(text)
    if number < 0 or (positive and number == 0):
        what = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be {what}, got {show(value)}")
    return text


def price(name: str, value: DecimalLike) -> str:
    """A price: an absolute non-negative decimal, or a relative string kept as given."""
    if isinstance(value, str) and (value[:1] in ("+", "-", "#") or value.endswith("%")):
        if not _RELATIVE_PRICE_RE.fullmatch(value):
            raise ValueError(f"{name}: not a valid relative price: {show(value)}")
        return value
    text = _decimal(name, value)
    if Decimal(text) < 0:
        raise ValueError(
            f"{name} must be non-negative, got {show(value)}"
            " (pass a str such as '-5' for a relative price)"
        )
    return text


def nonempty_str(name: str, value: object) -> str:
    """A non-empty ``str`` without surrounding spaces."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value or value != value.strip():
        raise ValueError(f"{name} must be a non-empty str without surrounding spaces")
    return value


def token(value: object) -> str:
    """A non-empty token; the value itself never goes into a message."""
    if not isinstance(value, str):
        raise TypeError(f"token must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError("token must be a non-empty str")
    return value


def strict_bool(name: str, value: object) -> bool:
    """A real ``bool`` (``reduce_only``: sent as a JSON boolean)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def validate_flag(name: str, value: object) -> str:
    """``True``/``False``, or kraky's ``"true"``/``"false"``: sent as that string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if value in ("true", "false"):
            return value
        raise ValueError(
            f"{name} must be True or False (or the str 'true'/'false'), got {show(value)}"
        )
    raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def side(name: str, value: object) -> str:
    """``"buy"`` or ``"sell"``."""
    return _choice(name, value, ("buy", "sell"))


def time_in_force(name: str, value: object) -> str:
    """``GTC``, ``GTD`` or ``IOC``: what Kraken's v1 ``addOrder`` takes."""
    if value == "FOK":
        raise ValueError(
            f"{name} 'FOK' (fill-or-kill, listed in kraky's docstring) is not accepted by"
            " Kraken's WebSocket v1 addOrder, which takes GTC, GTD or IOC; IOC is the"
            " nearest (it may fill partly)"
        )
    return _choice(name, value, TIME_IN_FORCE)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if value not in choices:
        hint = ""
        for choice in choices:
            if value.strip().lower() == choice.lower():
                hint = f" (write {choice!r})"
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {show(value)}{hint}")
    return value


def userref(name: str, value: int | str) -> str:
    """A signed 32-bit integer (an ``int`` or a str of digits), sent as a string."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{name} must be an int or a str of digits, got {type(value).__name__}")
    if isinstance(value, str):
        if not re.fullmatch(r"-?\d+", value):
            raise ValueError(f"{name} must be an integer, got {show(value)}")
        number = int(value)
    else:
        number = value
    if not _INT32_MIN <= number <= _INT32_MAX:
        raise ValueError(f"{name} must fit in a signed 32-bit integer, got {show(value)}")
    return str(number)


def when(name: str, value: int | str) -> str:
    """``starttm``/``expiretm``/``deadline``: a non-negative int or a non-empty str."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{name} must be an int or a str, got {type(value).__name__}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
        return str(value)
    return nonempty_str(name, value)


def oflags(name: str, value: str | Iterable[str]) -> str:
    """Flag names, as one comma-separated str or a sequence; spaces around
    commas (kraky's ``"post, fciq"``) are dropped."""
    if isinstance(value, str):
        flags = value.split(",")
    elif isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a str or a sequence of str, got {type(value).__name__}")
    else:
        flags = list(value)
        for flag in flags:
            if not isinstance(flag, str):
                raise TypeError(f"{name} items must be str, got {type(flag).__name__}")
    flags = [flag.strip() for flag in flags]
    if flags and all(_FLAG_RE.fullmatch(flag) for flag in flags):
        return ",".join(flags)
    words = [w for flag in flags for w in flag.split()]
    if len(words) > len(flags) and all(_FLAG_RE.fullmatch(w) for w in words):
        raise ValueError(
            f"{name}: separate flags with commas: {','.join(words)!r}, not {show(value)}"
        )
    raise ValueError(f"{name} must be non-empty flag names, got {show(value)}")


def order_id(name: str, value: object) -> str:
    """One order: a txid, a userref ``int`` (sent as a string), or kraky's
    one-element list of either."""
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise ValueError(
                f"{name}: edit_order edits one order; pass one txid as a str"
                f" (call edit_order once per order), got {show(value)}"
            )
        (value,) = value
    if isinstance(value, int) and not isinstance(value, bool):
        return userref(name, value)
    return nonempty_str(name, value)


def timeout_seconds(name: str, value: object) -> int:
    """Whole seconds >= 0: an ``int``, or a ``float`` with no fraction (kraky's ``60.0``)."""
    if isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value) or not value.is_integer():
            hint = f" such as {math.floor(value)}" if math.isfinite(value) else ""
            raise ValueError(f"{name} is whole seconds: pass an int{hint}, got {show(value)}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (whole seconds), got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 seconds, got {value}")
    return value
