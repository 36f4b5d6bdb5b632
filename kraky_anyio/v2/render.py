"""Write v2 ``book`` and ``level3`` frames as Kraken does: for the fake exchange.

Numbers are JSON numbers written at the pair's precision, trailing zeros
included (``"qty":4.00000000``, never ``4.0`` or ``1E-8``), and every frame
carries the checksum of the book it leaves behind, computed with the same
rules the client verifies (:mod:`kraky_anyio.book.checksums`). No I/O, no
clock: the caller passes the timestamp.

A value with more decimals than the precision raises :class:`ValueError`
(Kraken never sends one; rounding it here would hide a fake-exchange bug).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import islice
from zlib import crc32

from ..book.checksums import CHECKSUM_DEPTH, number_text
from .book import check_precision

__all__ = [
    "book_checksum",
    "book_frame",
    "level3_checksum",
    "level3_frame",
    "wire_number",
]

#: A price level: (price, qty).
Level = tuple[Decimal, Decimal]
#: A level3 order: (order_id, limit_price, order_qty, timestamp).
Order = tuple[str, Decimal, Decimal, str]


def wire_number(value: object, places: int) -> str:
    """``value`` as Kraken writes it: exactly ``places`` decimals.

    Raises :class:`ValueError` if ``value`` is not finite or needs more decimals,
    :class:`TypeError` unless it is a Decimal (a float is never exact).
    """
    if not isinstance(value, Decimal):
        raise TypeError(f"a wire number must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"a wire number must be finite, got {value}")
    try:
        exact = value.quantize(Decimal(1).scaleb(-places))
    except ArithmeticError:  # more digits than the context holds
        raise ValueError(f"{value} is out of range at {places} decimals") from None
    if exact != value:
        raise ValueError(f"{value} has more than {places} decimals")
    return number_text(exact, places)


def _frag(text: str) -> bytes:
    return text.replace(".", "", 1).lstrip("0").encode("ascii")


def book_checksum(
    asks: Iterable[Level], bids: Iterable[Level], price_precision: int, qty_precision: int
) -> int:
    """Kraken's v2 L2 checksum of best-first levels written at the pair's precision."""
    parts = [
        _frag(wire_number(price, price_precision)) + _frag(wire_number(qty, qty_precision))
        for side in (asks, bids)
        for price, qty in islice(side, CHECKSUM_DEPTH)
    ]
    return crc32(b"".join(parts))


def level3_checksum(
    asks: Iterable[Sequence[Order]],
    bids: Iterable[Sequence[Order]],
    price_precision: int,
    qty_precision: int,
) -> int:
    """Kraken's L3 checksum: best-first price levels, each a queue of orders."""
    parts = [
        _frag(wire_number(order[1], price_precision)) + _frag(wire_number(order[2], qty_precision))
        for side in (asks, bids)
        for queue in islice(side, CHECKSUM_DEPTH)
        for order in queue
    ]
    return crc32(b"".join(parts))


def _json_str(text: str) -> str:
    if not text.isprintable() or '"' in text or "\\" in text:
        raise ValueError(f"a symbol, id or timestamp must be plain text, got {text!r:.80}")
    return f'"{text}"'


def _tail(timestamp: str | None) -> str:
    return "" if timestamp is None else f',"timestamp":{_json_str(timestamp)}'


def book_frame(
    kind: str,
    symbol: str,
    asks: Iterable[Level],
    bids: Iterable[Level],
    checksum: int,
    *,
    price_precision: int,
    qty_precision: int,
    timestamp: str | None = None,
) -> bytes:
    """A ``book`` frame (``kind`` ``snapshot`` or ``update``) with these levels.

    ``asks``/``bids`` are the levels the frame carries (an update's changes,
    qty 0 to delete); ``checksum`` is :func:`book_checksum` of the book after
    them. Raises :class:`ValueError` for a bad kind, precision or number.
    """
    if kind not in ("snapshot", "update"):
        raise ValueError(f"kind must be snapshot or update, got {kind!r:.80}")
    pp = check_precision(price_precision, "price_precision")
    qp = check_precision(qty_precision, "qty_precision")
    if pp is None or qp is None:
        raise TypeError("price_precision and qty_precision are needed to write numbers")

    def side(levels: Iterable[Level]) -> str:
        return ",".join(
            f'{{"price":{wire_number(p, pp)},"qty":{wire_number(q, qp)}}}' for p, q in levels
        )

    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":{_json_str(symbol)},'
        f'"bids":[{side(bids)}],"asks":[{side(asks)}],"checksum":{int(checksum)}'
        f"{_tail(timestamp)}}}]}}"
    ).encode()


def level3_frame(
    kind: str,
    symbol: str,
    asks: Iterable[Order | tuple[str, str, Decimal, Decimal, str]],
    bids: Iterable[Order | tuple[str, str, Decimal, Decimal, str]],
    checksum: int,
    *,
    price_precision: int,
    qty_precision: int,
    timestamp: str | None = None,
) -> bytes:
    """A ``level3`` frame. A snapshot's orders are ``(order_id, limit_price,
    order_qty, timestamp)``; an update's are ``(event, order_id, limit_price,
    order_qty, timestamp)`` with ``event`` ``add``/``modify``/``delete``."""
    if kind not in ("snapshot", "update"):
        raise ValueError(f"kind must be snapshot or update, got {kind!r:.80}")
    pp = check_precision(price_precision, "price_precision")
    qp = check_precision(qty_precision, "qty_precision")
    if pp is None or qp is None:
        raise TypeError("price_precision and qty_precision are needed to write numbers")
    update = kind == "update"

    def order(item: Sequence[object]) -> str:
        if update:
            event, oid, price, qty, stamp = item
            if event not in ("add", "modify", "delete"):
                raise ValueError(f"event must be add, modify or delete, got {event!r:.80}")
            extra = f',"event":"{event}"'
        else:
            oid, price, qty, stamp = item
            extra = ""
        if not (isinstance(oid, str) and isinstance(stamp, str)):
            raise TypeError(f"order_id and timestamp must be str: {item!r:.120}")
        return (
            f'{{"order_id":{_json_str(oid)},"limit_price":{wire_number(price, pp)},'
            f'"order_qty":{wire_number(qty, qp)},"timestamp":{_json_str(stamp)}{extra}}}'
        )

    return (
        f'{{"channel":"level3","type":"{kind}","data":[{{"symbol":{_json_str(symbol)},'
        f'"checksum":{int(checksum)},"bids":[{",".join(map(order, bids))}],'
        f'"asks":[{",".join(map(order, asks))}]{_tail(timestamp)}}}]}}'
    ).encode()
