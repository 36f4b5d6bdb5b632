"""Kraken's book checksums (CRC32 over the top 10 levels), v1 and v2 rules.

The one place where a price or quantity becomes checksum text:

* v1 sends decimal strings: the checksum is defined on those strings
  (:func:`fragment`, :func:`checksum`);
* v2 sends JSON numbers, decoded to :class:`~decimal.Decimal` with their exact
  digits: :func:`number_text` renders one (``format(d, "f")``, never ``str(d)``,
  which gives ``1E-8``), padded to the pair's precision where the text carries
  fewer places (exponent form, or data re-saved through floats);
  :func:`v2_fragment` turns that into checksum bytes.

In both: '.' removed, leading zeros stripped, asks (best first) then bids (best
first), 10 levels each, ``zlib.crc32``, unsigned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import islice
from typing import Final
from zlib import crc32

from ..errors import BookError

__all__ = [
    "CHECKSUM_DEPTH",
    "MAX_CHECKSUM",
    "checksum",
    "checksum_value",
    "describe",
    "fragment",
    "number_text",
    "v2_checksum",
    "v2_fragment",
]

#: How many levels per side the checksum covers, whatever the depth.
CHECKSUM_DEPTH: Final = 10
#: The largest checksum (unsigned 32-bit).
MAX_CHECKSUM: Final = 0xFFFFFFFF


def describe(value: object) -> str:
    """``repr(value)``, cut to 80 characters: for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def fragment(value: object, what: str) -> str:
    """The v1 checksum fragment of one price or volume string.

    Raises :class:`BookError` unless ``value`` is a plain non-negative decimal
    string (ASCII digits, at most one '.'; no sign, exponent, NaN or Infinity).
    """
    if type(value) is not str:
        raise BookError(f"{what} must be a string, got {describe(value)}")
    digits = value.replace(".", "", 1)
    if not (digits.isdigit() and digits.isascii()):
        raise BookError(f"{what} is not a non-negative decimal string: {describe(value)}")
    return digits.lstrip("0")


# The largest checksum, as a string: a 10-digit 'c' is in range if it is <= this.
_MAX_C: Final = str(MAX_CHECKSUM)


def checksum_value(value: object) -> int:
    """The value of a v1 checksum field ``c``: an unsigned 32-bit decimal string.

    Raises :class:`BookError` if it is anything else. Leading zeros are
    accepted; a larger value could never match, and ``int()`` of a string of
    over 4300 digits (even zeros) would raise a plain ValueError.
    """
    if not (type(value) is str and value.isdigit() and value.isascii()):
        raise BookError(f"book checksum 'c' must be a string of digits, got {describe(value)}")
    digits = value.lstrip("0")
    if len(digits) > 10 or (len(digits) == 10 and digits > _MAX_C):
        raise BookError(f"book checksum 'c' is not a 32-bit value: {describe(value)}")
    return int(digits) if digits else 0


def checksum(asks: Iterable[Sequence[str]], bids: Iterable[Sequence[str]]) -> int:
    """Kraken's v1 book checksum of ``asks`` and ``bids``.

    Each is an iterable of levels ``(price_str, volume_str, ...)`` best first
    (asks ascending, bids descending); only the first 10 of each are used.
    For each level, the price and then the volume with the '.' removed and
    leading zeros stripped; all asks, then all bids; CRC32, unsigned.
    Raises :class:`BookError` if a price or volume is not a decimal string.
    """
    parts: list[str] = []
    for side in (asks, bids):
        for level in islice(side, CHECKSUM_DEPTH):
            parts.append(fragment(level[0], "price"))
            parts.append(fragment(level[1], "volume"))
    return crc32("".join(parts).encode("ascii"))


# Decimal exponents beyond this are no price or quantity (and would render huge).
_MAX_EXPONENT: Final = 60


def number_text(value: Decimal, places: int | None = None) -> str:
    """The decimal text of a v2 number: its exact digits, at least ``places`` decimals.

    ``format(value, "f")`` keeps every digit the wire sent (``0.50000000``) and
    never uses exponent form (``str(Decimal("0.00000001"))`` is ``1E-8``). With
    ``places`` (the pair's ``price_precision``/``qty_precision``) a value written
    with fewer decimals (``4.0``, ``1e-05``) is padded with zeros to that many;
    one written with more keeps them all: padding never changes the value,
    rounding would. Raises :class:`BookError` for NaN, an infinity, or a
    magnitude beyond 1e±60 (no price; a hostile ``1e999999999`` would render as
    a billion digits).
    """
    # str() is 4x cheaper than format(): use it where it has no exponent, where
    # it gives format(value, "f")'s text exactly (the tests check that).
    text = str(value)
    if "E" in text:
        # A hostile 1e999999999 would render as a billion digits.
        if not -_MAX_EXPONENT <= value.adjusted() <= _MAX_EXPONENT:
            raise BookError(f"a price or quantity is out of range: {text:.40}")
        text = format(value, "f")
    elif not text[-1].isdigit():  # "NaN", "sNaN", "Infinity"
        raise BookError(f"a price or quantity must be a finite number, got {value}")
    if places:
        dot = text.find(".")
        if dot < 0:
            return text + "." + "0" * places
        short = places - (len(text) - dot - 1)
        if short > 0:
            return text + "0" * short
    return text


def v2_fragment(value: Decimal, places: int | None = None) -> bytes:
    """The v2 checksum fragment of one number: :func:`number_text` without '.' and leading 0s."""
    return number_text(value, places).replace(".", "", 1).lstrip("0").encode("ascii")


def v2_checksum(
    asks: Iterable[tuple[Decimal, Decimal]],
    bids: Iterable[tuple[Decimal, Decimal]],
    price_places: int | None = None,
    qty_places: int | None = None,
) -> int:
    """Kraken's v2 L2 book checksum of best-first ``(price, qty)`` levels.

    Only the first 10 of each side count. ``price_places``/``qty_places`` are the
    pair's precisions, needed only where the numbers lost their text (see
    :func:`number_text`). Raises :class:`BookError` for a non-finite number.
    """
    parts: list[bytes] = []
    for side in (asks, bids):
        for price, qty in islice(side, CHECKSUM_DEPTH):
            parts.append(v2_fragment(price, price_places))
            parts.append(v2_fragment(qty, qty_places))
    return crc32(b"".join(parts))
