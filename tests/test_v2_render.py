"""Rendering v2 book and level3 frames for the fake exchange: numbers at the
pair's precision, checksums the client verifies, bad input refused."""

from __future__ import annotations

import zlib
from decimal import Decimal
from typing import Any

import pytest

from kraky_anyio.book.checksums import v2_checksum
from kraky_anyio.v2 import decode
from kraky_anyio.v2.book import Book, Outcome
from kraky_anyio.v2.level3 import Level3Book
from kraky_anyio.v2.render import (
    book_checksum,
    book_frame,
    level3_checksum,
    level3_frame,
    wire_number,
)

D = Decimal
PRECISION: dict[str, Any] = {"price_precision": 1, "qty_precision": 8}
MOVE: Any = ("move", "A", D(1), D(1), "t")
BAD_ID: Any = (5, D(1), D(1), "t")


def test_wire_number() -> None:
    assert wire_number(D("4"), 8) == "4.00000000"
    assert wire_number(D("1E-8"), 8) == "0.00000001"
    assert wire_number(D("5.0E-7"), 8) == "0.00000050"
    assert wire_number(D("62797"), 1) == "62797.0"
    assert wire_number(D("100"), 0) == "100"
    with pytest.raises(ValueError, match="more than 1 decimals"):
        wire_number(D("1.25"), 1)
    with pytest.raises(ValueError, match="finite"):
        wire_number(D("NaN"), 1)
    with pytest.raises(TypeError, match="Decimal"):
        wire_number(1.5, 1)
    with pytest.raises(ValueError, match="out of range"):
        wire_number(D("1E+30"), 8)


def test_checksum_text_is_written_at_the_precision() -> None:
    asks = [(D("45285.2"), D("0.001")), (D("45286.4"), D("1.54571953"))]
    bids = [(D("45283.5"), D("0.1"))]
    text = b"452852" + b"100000" + b"452864" + b"154571953" + b"452835" + b"10000000"
    assert book_checksum(asks, bids, 1, 8) == zlib.crc32(text)
    assert book_checksum(asks, bids, 1, 8) == v2_checksum(asks, bids, 1, 8)


def test_rendered_book_frames_verify_in_the_client_book() -> None:
    asks = [(D(100 + i), D("0.5")) for i in range(12)]
    bids = [(D(99 - i), D(1)) for i in range(12)]
    top_asks, top_bids = asks[:10], bids[:10]
    crc = book_checksum(top_asks, top_bids, 1, 8)
    snap = book_frame("snapshot", "BTC/USD", top_asks, top_bids, crc, **PRECISION, timestamp="t")
    assert b'"qty":0.50000000' in snap and b'"price":100.0' in snap
    book = Book("BTC/USD")  # no precision given: the text carries it
    assert book.feed(decode(snap)).outcome is Outcome.SNAPSHOT
    # Delete the best ask; the 11th ask comes into view in the same message.
    after = asks[1:11]
    crc = book_checksum(after, top_bids, 1, 8)
    upd = book_frame("update", "BTC/USD", [(D(100), D(0)), asks[10]], [], crc, **PRECISION)
    assert b'"qty":0.00000000' in upd
    assert book.feed(decode(upd)).outcome is Outcome.UPDATED
    assert [lv.price for lv in book.asks] == [p for p, _ in after]
    # A wrong checksum is a mismatch, as the client must see it.
    bad = book_frame("update", "BTC/USD", [], [(D(99), D(2))], crc, **PRECISION)
    assert book.feed(decode(bad)).outcome is Outcome.MISMATCH


def test_rendered_level3_frames_verify_in_the_client_book() -> None:
    asks = [[("A1", D(101), D("0.1"), "t"), ("A2", D(101), D(2), "t")], [("A3", D(102), D(1), "t")]]
    bids = [[("B1", D(100), D(3), "t")]]
    crc = level3_checksum(asks, bids, 1, 8)
    snap = level3_frame(
        "snapshot", "BTC/USD", [o for q in asks for o in q], bids[0], crc, **PRECISION
    )
    book = Level3Book("BTC/USD")
    assert book.feed(decode(snap)).outcome is Outcome.SNAPSHOT
    asks[0].pop(0)
    asks[0].append(("A4", D(101), D(5), "t"))
    crc = level3_checksum(asks, bids, 1, 8)
    upd = level3_frame(
        "update",
        "BTC/USD",
        [("delete", "A1", D(101), D("0.1"), "t"), ("add", "A4", D(101), D(5), "t")],
        [],
        crc,
        **PRECISION,
    )
    assert book.feed(decode(upd)).outcome is Outcome.UPDATED
    assert [o.order_id for o in book.asks[0].orders] == ["A2", "A4"]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: book_frame("delta", "X", [], [], 0, **PRECISION), ValueError),
        (lambda: book_frame("update", 'X"', [], [], 0, **PRECISION), ValueError),
        (lambda: book_frame("update", "X", [(D("1.25"), D(1))], [], 0, **PRECISION), ValueError),
        (
            lambda: book_frame("update", "X", [], [], 0, price_precision=None, qty_precision=8),
            TypeError,
        ),
        (
            lambda: level3_frame(
                "update", "X", [("move", "A", D(1), D(1), "t")], [], 0, **PRECISION
            ),
            ValueError,
        ),
        (
            lambda: level3_frame("snapshot", "X", [(5, D(1), D(1), "t")], [], 0, **PRECISION),
            TypeError,
        ),
    ],
)
def test_bad_input_is_refused(call: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        call()
