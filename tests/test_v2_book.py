"""The v2 L2 book and the v2 checksum rules: Kraken's worked example, a recorded
Kraken session (precision path), the exponent trap, every book rule, malformed
input, and a property test against a naive model. Plain pytest: no event loop."""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kraky_anyio.book.checksums import number_text, v2_checksum, v2_fragment
from kraky_anyio.errors import BookError
from kraky_anyio.v2.book import Book, Outcome, Verdict
from kraky_anyio.v2.messages import BookEntry, BookLevel, BookMessage, decode

FIXTURE = (
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "kraken-v2-book10-btcusd.json"
)
SYMBOL = "BTC/USD"

Levels = list[tuple[str, str]]


def frag(text: str) -> str:
    """Kraken's checksum fragment of a decimal text, written independently."""
    return text.replace(".", "").lstrip("0")


def ref_checksum(asks: Levels, bids: Levels) -> int:
    text = "".join(frag(p) + frag(q) for p, q in [*asks[:10], *bids[:10]])
    return zlib.crc32(text.encode("ascii"))


def frame(kind: str, asks: Levels, bids: Levels, checksum: int, symbol: str = SYMBOL) -> str:
    """A v2 book frame with every number written as a JSON number, text as given."""

    def side(levels: Levels) -> str:
        return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels) + "]"

    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}",'
        f'"bids":{side(bids)},"asks":{side(asks)},"checksum":{checksum},'
        '"timestamp":"2026-08-16T23:37:04.334090Z"}]}'
    )


def feed(book: Book, text: str) -> Verdict:
    return book.feed(decode(text))


# -- Kraken's worked example -----------------------------------------------------

EX_ASKS: Levels = [
    ("45285.2", "0.00100000"),
    ("45286.4", "1.54571953"),
    ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"),
    ("45290.2", "0.15890660"),
    ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"),
    ("45296.1", "0.35380000"),
    ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]
EX_BIDS: Levels = [
    ("45283.5", "0.10000000"),
    ("45283.4", "1.54582015"),
    ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"),
    ("45280.3", "1.54592586"),
    ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"),
    ("45277.5", "0.30000000"),
    ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]
EX_CHECKSUM = 3310070434


def test_kraken_worked_example() -> None:
    assert ref_checksum(EX_ASKS, EX_BIDS) == EX_CHECKSUM
    as_dec = [(Decimal(p), Decimal(q)) for p, q in EX_ASKS]
    bs_dec = [(Decimal(p), Decimal(q)) for p, q in EX_BIDS]
    assert v2_checksum(as_dec, bs_dec) == EX_CHECKSUM
    assert v2_fragment(Decimal("45285.2")) + v2_fragment(Decimal("0.00100000")) == b"452852100000"
    book = Book(SYMBOL)
    assert feed(book, frame("snapshot", EX_ASKS, EX_BIDS, EX_CHECKSUM)).outcome is Outcome.SNAPSHOT
    assert book.valid and book.checksum == EX_CHECKSUM
    assert book.best_ask == BookLevel(price=Decimal("45285.2"), qty=Decimal("0.00100000"))
    assert book.spread == Decimal("1.7")
    # The wire text is kept: 0.10000000 is not 0.1.
    assert str(book.bids[0].qty) == "0.10000000"


def test_same_book_written_without_trailing_zeros_needs_the_precision() -> None:
    short_asks = [(p, str(Decimal(q).normalize())) for p, q in EX_ASKS]
    short_bids = [(p, str(Decimal(q).normalize())) for p, q in EX_BIDS]
    assert short_bids[0][1] == "0.1"
    bare = Book(SYMBOL)
    verdict = feed(bare, frame("snapshot", short_asks, short_bids, EX_CHECKSUM))
    assert verdict.outcome is Outcome.MISMATCH and not verdict.ok
    assert verdict.expected == EX_CHECKSUM and verdict.computed == bare.checksum != EX_CHECKSUM
    book = Book(SYMBOL, price_precision=1, qty_precision=8)
    assert feed(book, frame("snapshot", short_asks, short_bids, EX_CHECKSUM)).ok
    # set_precision re-renders a book already held.
    bare.set_precision(1, 8)
    assert bare.checksum == EX_CHECKSUM


# -- numbers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "places", "rendered"),
    [
        ("0.00000001", None, "0.00000001"),  # str() would give 1E-8
        ("0.00000050", None, "0.00000050"),  # str() would give 5.0E-7
        ("1e-08", None, "0.00000001"),
        ("1e-05", 8, "0.00001000"),
        ("4.0", 8, "4.00000000"),
        ("29430", 1, "29430.0"),
        ("62797.0", 1, "62797.0"),
        ("0.123456789", 8, "0.123456789"),  # more places than the precision: kept
        ("1E+3", 0, "1000"),
    ],
)
def test_number_text(text: str, places: int | None, rendered: str) -> None:
    assert number_text(Decimal(text), places) == rendered


def test_exponent_trap_through_the_decoder() -> None:
    asks: Levels = [("0.00000050", "0.00000001")]
    bids: Levels = [("0.00000001", "0.00000050")]
    assert str(Decimal("0.00000001")) == "1E-8"  # the trap itself
    book = Book("TINY/USD")
    crc = ref_checksum(asks, bids)
    assert zlib.crc32(b"501" + b"150") == crc
    assert feed(book, frame("snapshot", asks, bids, crc, "TINY/USD")).ok
    # The same values written in exponent form: the text has no precision.
    exp = Book("TINY/USD", price_precision=8, qty_precision=8)
    assert feed(
        exp, frame("snapshot", [("5e-07", "1e-08")], [("1e-08", "5E-7")], crc, "TINY/USD")
    ).ok


WIRE_NUMBER = r"[0-9]{1,12}(\.[0-9]{1,12})?([eE][-+]?[0-9]{1,2})?"


@settings(max_examples=150, deadline=None)
@given(
    value=(
        st.decimals(allow_nan=False, allow_infinity=False)
        | st.from_regex(WIRE_NUMBER, fullmatch=True).map(Decimal)
    ).filter(lambda d: -60 <= d.adjusted() <= 60),
    places=st.none() | st.integers(min_value=0, max_value=12),
)
def test_number_text_is_the_exact_plain_text(value: Decimal, places: int | None) -> None:
    text = number_text(value, places)
    assert "E" not in text and "e" not in text
    assert Decimal(text) == value  # padding never changes the value
    if places is None or places == 0:
        assert text == format(value, "f")  # the cheap path gives format()'s text
    else:
        decimals = len(text.partition(".")[2])
        assert decimals == max(places, len(format(value, "f").partition(".")[2]))


@pytest.mark.parametrize(
    "bad", ["NaN", "Infinity", "-Infinity", "sNaN", "1E+999999999", "1E-999999"]
)
def test_non_finite_numbers_are_refused(bad: str) -> None:
    with pytest.raises(BookError, match=r"finite|out of range"):
        number_text(Decimal(bad))


def test_a_huge_exponent_in_a_frame_is_refused_not_rendered() -> None:
    book = fresh()
    version = book.version
    with pytest.raises(BookError, match="out of range"):
        book.feed(decode(frame("update", [("1e999999999", "1.0")], [], 0)))
    assert book.version == version and book.valid


# -- the recorded Kraken session -------------------------------------------------


@pytest.fixture(scope="module")
def session() -> dict[str, Any]:
    if not FIXTURE.is_file():
        pytest.skip(f"the shared fixtures are not beside the repository: {FIXTURE} is missing")
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def test_recorded_session_verifies_all_510_checksums(session: dict[str, Any]) -> None:
    frames = [json.dumps(session["init"])] + [json.dumps(u) for u in session["updates"]]
    assert len(frames) == 510
    book = Book(SYMBOL, 10, price_precision=1, qty_precision=8)
    outcomes = [feed(book, f).outcome for f in frames]
    assert outcomes[0] is Outcome.SNAPSHOT
    assert outcomes[1:] == [Outcome.UPDATED] * 509
    assert book.valid and book.updates == 509 and book.version == 510
    assert len(book.asks) == len(book.bids) == 10
    assert all(a.price > b.price for a in book.asks for b in book.bids)  # never crossed
    # Without the precision, the re-saved text ("qty": 4.0) cannot verify.
    bare = Book(SYMBOL)
    assert feed(bare, frames[0]).outcome is Outcome.MISMATCH


def test_corrupted_update_in_the_session_is_a_mismatch(session: dict[str, Any]) -> None:
    updates = json.loads(json.dumps(session["updates"]))
    entry = updates[10]["data"][0]
    side = entry["asks"] or entry["bids"]
    side[0]["qty"] = side[0]["qty"] + 1
    book = Book(SYMBOL, price_precision=1, qty_precision=8)
    assert feed(book, json.dumps(session["init"])).ok
    verdicts = [feed(book, json.dumps(u)) for u in updates[:11]]
    assert all(v.ok for v in verdicts[:10])
    bad = verdicts[10]
    assert bad.outcome is Outcome.MISMATCH and bad.expected == entry["checksum"]
    assert bad.computed == book.checksum != bad.expected and not book.valid
    with pytest.raises(BookError, match="not valid"):
        feed(book, json.dumps(updates[11]))
    # A new snapshot makes it valid again.
    assert feed(book, json.dumps(session["init"])).outcome is Outcome.SNAPSHOT


# -- book rules -----------------------------------------------------------------

BASE_ASKS: Levels = [(f"{100 + i}.0", "1.00000000") for i in range(10)]
BASE_BIDS: Levels = [(f"{99 - i}.0", "1.00000000") for i in range(10)]


def fresh(depth: int = 10) -> Book:
    book = Book(SYMBOL, depth)
    crc = ref_checksum(BASE_ASKS, BASE_BIDS)
    assert feed(book, frame("snapshot", BASE_ASKS, BASE_BIDS, crc)).ok
    return book


def texts(levels: tuple[BookLevel, ...]) -> Levels:
    return [(format(lv.price, "f"), format(lv.qty, "f")) for lv in levels]


def test_update_applies_in_order_then_truncates_then_verifies() -> None:
    book = fresh()
    # One message touches 100.0 twice (last wins), inserts 99.5 (which pushes
    # 109.0 out of depth 10) and deletes 101.0; Kraken sends no delete for 109.0.
    upd: Levels = [("100.0", "2.00000000"), ("99.5", "0.50000000"), ("100.0", "3.00000000")]
    upd.append(("101.0", "0"))
    asks = [("99.5", "0.50000000"), ("100.0", "3.00000000"), *BASE_ASKS[2:]]
    assert len(asks) == 10 and asks[-1][0] == "109.0"
    verdict = feed(book, frame("update", upd, [], ref_checksum(asks, BASE_BIDS)))
    assert verdict.outcome is Outcome.UPDATED and book.updates == 1
    assert texts(book.asks) == asks
    # Deleting a level that is not in the book changes nothing.
    assert feed(book, frame("update", [("500.0", "0.0")], [], book.checksum)).ok
    assert texts(book.asks) == asks


def test_checksum_covers_top_ten_whatever_the_depth() -> None:
    asks: Levels = [(f"{100 + i}.0", "1.0") for i in range(25)]
    bids: Levels = [(f"{99 - i}.0", "1.0") for i in range(25)]
    book = Book(SYMBOL, 25)
    assert feed(book, frame("snapshot", asks, bids, ref_checksum(asks, bids))).ok
    assert len(book.asks) == 25
    # A change at level 20 leaves the checksum as it was.
    assert feed(book, frame("update", [("120.0", "7.0")], [], ref_checksum(asks, bids))).ok
    assert book.asks[20].qty == Decimal("7.0")


def test_same_price_spelt_differently_is_one_level() -> None:
    book = fresh()
    asks = [("100.00", "5.00000000"), *BASE_ASKS[1:]]
    assert feed(
        book, frame("update", [("100.00", "5.00000000")], [], ref_checksum(asks, BASE_BIDS))
    ).ok
    assert len(book.asks) == 10


def test_crossed_update_with_a_wrong_checksum_is_a_mismatch() -> None:
    book = fresh()
    verdict = feed(book, frame("update", [], [("150.0", "1.0")], 12345))
    assert verdict.outcome is Outcome.MISMATCH and not book.valid


def test_messages_not_for_this_book_are_ignored() -> None:
    book = fresh()
    version = book.version
    other = frame("update", [("100.0", "9.0")], [], 1, symbol="ETH/USD")
    assert feed(book, other).outcome is Outcome.IGNORED
    assert book.feed(decode('{"channel":"heartbeat"}')).outcome is Outcome.IGNORED
    assert book.version == version
    with pytest.raises(BookError, match="ETH/USD"):
        entry = decode(other)
        assert isinstance(entry, BookMessage)
        book.feed_entry("update", entry.data[0])


def test_update_before_snapshot_and_reset() -> None:
    book = Book(SYMBOL)
    with pytest.raises(BookError, match="not valid"):
        feed(book, frame("update", [("1.0", "1.0")], [], 0))
    book = fresh()
    book.reset(resync=True)
    assert not book.valid and book.resyncs == 1 and book.asks == () and book.checksum == 0


def level(price: Any, qty: Any) -> BookLevel:
    return BookLevel(price=price, qty=qty)


@pytest.mark.parametrize(
    "bad_entry",
    [
        BookEntry(symbol=SYMBOL, asks=[level(Decimal("0"), Decimal("1"))], checksum=0),
        BookEntry(symbol=SYMBOL, asks=[level(Decimal("-1"), Decimal("1"))], checksum=0),
        BookEntry(symbol=SYMBOL, bids=[level(Decimal("1"), Decimal("-1"))], checksum=0),
        BookEntry(symbol=SYMBOL, bids=[level(Decimal("NaN"), Decimal("1"))], checksum=0),
        BookEntry(symbol=SYMBOL, bids=[level(Decimal("1"), Decimal("Infinity"))], checksum=0),
        BookEntry(symbol=SYMBOL, bids=[level(1.5, Decimal("1"))], checksum=0),
        BookEntry(symbol=SYMBOL, checksum=-1),
        BookEntry(symbol=SYMBOL, checksum=2**32),
        BookEntry(symbol=SYMBOL, checksum=True),
    ],
)
def test_malformed_entries_raise_and_change_nothing(bad_entry: BookEntry) -> None:
    book = fresh()
    before = (book.asks, book.bids, book.version, book.valid)
    with pytest.raises(BookError):
        book.feed_entry("update", bad_entry)
    assert (book.asks, book.bids, book.version, book.valid) == before


def test_unknown_message_type_is_refused() -> None:
    book = fresh()
    entry = BookEntry(symbol=SYMBOL, checksum=book.checksum)
    with pytest.raises(BookError, match="snapshot or update"):
        book.feed_entry("delta", entry)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 15}, "depth"),
        ({"depth": True}, "depth"),
        ({"symbol": ""}, "symbol"),
        ({"price_precision": -1}, "price_precision"),
        ({"qty_precision": 1.5}, "qty_precision"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"symbol": SYMBOL, **kwargs}
    with pytest.raises(ValueError, match=match):
        Book(**args)


# -- property: the book equals a naive model -------------------------------------

prices = st.integers(min_value=1, max_value=40).map(lambda i: f"{i}.5")
qtys = st.sampled_from(["0", "0.0", "1.0", "2.50000000", "0.00000001", "3"])
updates = st.lists(
    st.tuples(st.booleans(), st.lists(st.tuples(prices, qtys), min_size=1, max_size=6)),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(depth=st.sampled_from([10, 25]), steps=updates)
def test_book_matches_naive_model(depth: int, steps: list[tuple[bool, Levels]]) -> None:
    model: dict[bool, dict[Decimal, tuple[str, str]]] = {True: {}, False: {}}
    book = Book(SYMBOL, depth)
    assert feed(book, frame("snapshot", [], [], 0)).ok

    def ordered(is_bid: bool) -> Levels:
        side = model[is_bid]
        keys = sorted(side, reverse=is_bid)[:depth]
        for gone in set(side) - set(keys):
            del side[gone]
        return [side[k] for k in keys]

    for is_bid, levels in steps:
        for p, q in levels:
            if Decimal(q) == 0:
                model[is_bid].pop(Decimal(p), None)
            else:
                model[is_bid][Decimal(p)] = (p, q)
        asks, bids = ordered(False), ordered(True)
        crc = ref_checksum(asks, bids)
        msg = frame("update", [] if is_bid else levels, levels if is_bid else [], crc)
        assert feed(book, msg).outcome is Outcome.UPDATED
        assert texts(book.asks) == asks and texts(book.bids) == bids
