"""The v2 ``instrument`` channel's data for the simulated pairs, written as
Kraken writes it: an object of ``assets`` and ``pairs`` whose increments and
minimums are JSON numbers in the shortest form, exponent included
(``1e-08``), which carries no precision: clients read ``price_precision``
and ``qty_precision``."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .market_book import QTY_PRECISION, SimulatedBook
from .v2_messages import JsonNumber

__all__ = ["instrument_data", "kraken_number"]

#: (precision, precision_display) of assets Kraken lists; others get (8, 5).
_ASSET_PRECISIONS = {
    "BTC": (10, 5),
    "ETH": (10, 5),
    "USD": (4, 2),
    "EUR": (4, 2),
    "USDT": (8, 4),
    "SOL": (10, 5),
    "DOGE": (8, 2),
}
#: The smallest order, about this much of the quote currency (rounded down
#: to a power of ten of the base).
_MIN_COST = Decimal(5)


def kraken_number(value: Decimal) -> JsonNumber:
    """``value`` as Kraken's JSON writer prints it: the shortest digits,
    exponent form below 1e-4 (``1e-08``, ``2.5e-05``), ``.0`` on integers."""
    n = value.normalize()
    adjusted = n.adjusted()
    if adjusted < -4:
        digits = "".join(map(str, n.as_tuple().digits))
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        return JsonNumber(f"{'-' if n < 0 else ''}{mantissa}e-{-adjusted:02d}")
    text = format(n, "f")
    return JsonNumber(text if "." in text else f"{text}.0")


def _asset(name: str) -> dict[str, Any]:
    precision, display = _ASSET_PRECISIONS.get(name, (8, 5))
    return {
        "id": name,
        "status": "enabled",
        "precision": precision,
        "precision_display": display,
        "borrowable": False,
        "collateral_value": kraken_number(Decimal(1)),
    }


def _pair(book: SimulatedBook, reference: Decimal) -> dict[str, Any]:
    base, _, quote = book.symbol.partition("/")
    increment = Decimal(1).scaleb(-book.price_precision)
    qty_min = Decimal(1).scaleb((_MIN_COST / reference).adjusted())
    return {
        "symbol": book.symbol,
        "base": base,
        "quote": quote,
        "status": "online",
        "qty_precision": QTY_PRECISION,
        "qty_increment": kraken_number(Decimal(1).scaleb(-QTY_PRECISION)),
        "price_precision": book.price_precision,
        "cost_precision": 5,
        "marginable": False,
        "has_index": True,
        "cost_min": kraken_number(Decimal("0.5")),
        "tick_size": kraken_number(increment),
        "price_increment": kraken_number(increment),
        "qty_min": kraken_number(qty_min),
    }


def instrument_data(books: Iterable[tuple[SimulatedBook, Decimal]]) -> dict[str, Any]:
    """``{"assets": [...], "pairs": [...]}`` for ``(book, reference price)`` pairs."""
    books = list(books)
    assets: dict[str, None] = {}
    for book, _ in books:
        for asset in book.symbol.split("/"):
            assets.setdefault(asset)
    return {
        "assets": [_asset(name) for name in assets],
        "pairs": [_pair(book, price) for book, price in books],
    }
