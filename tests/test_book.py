"""The sans-I/O order book: Kraken's checksum, a recorded Kraken session, every
book rule, every kind of malformed input, and a property test against a naive
reference model. Plain pytest: no event loop."""

from __future__ import annotations

import copy
import json
import zlib
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kraky_anyio.book import (
    CHECKSUM_DEPTH,
    DEPTHS,
    BookChecksumMismatchError,
    FeedResult,
    Level,
    OrderBook,
    checksum,
)
from kraky_anyio.errors import BookError, ChecksumMismatchError

FIXTURE = (
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "kraken-v1-book10-xbtusd.json"
)

PAIR = "XBT/USD"
T = "1700000000.000000"  # a level's timestamp; the book ignores its value

Levels = list[tuple[str, str]]


# -- helpers ------------------------------------------------------------------


def frag(text: str) -> str:
    """Kraken's checksum fragment, written independently of the module."""
    return text.replace(".", "").lstrip("0")


def ref_checksum(asks: Sequence[tuple[str, str]], bids: Sequence[tuple[str, str]]) -> int:
    """Kraken's checksum of best-first (price, volume) strings, independently."""
    text = "".join(frag(p) + frag(v) for p, v in [*asks[:10], *bids[:10]])
    return zlib.crc32(text.encode("ascii"))


def lv(price: str, volume: str, *flag: str) -> list[str]:
    return [price, volume, T, *flag]


def msg(payload: Any, channel: str = "book-10", pair: str = PAIR) -> list[Any]:
    return [336, payload, channel, pair]


def snapshot(asks: Levels, bids: Levels, channel: str = "book-10") -> list[Any]:
    return msg({"as": [lv(p, v) for p, v in asks], "bs": [lv(p, v) for p, v in bids]}, channel)


def as_levels(levels: Levels) -> tuple[Level, ...]:
    return tuple(Level(Decimal(p), Decimal(v)) for p, v in levels)


def state(book: OrderBook) -> tuple[Any, ...]:
    """Everything a rejected message must leave as it was."""
    return (
        book.asks,
        book.bids,
        book.version,
        book.valid,
        book.updates,
        book.resyncs,
        book.checksum,
        book.best_ask,
        book.best_bid,
    )


ASKS: Levels = [(f"{100 + i}.00000", f"{i + 1}.00000000") for i in range(10)]
BIDS: Levels = [(f"{99 - i}.00000", f"{i + 1}.50000000") for i in range(10)]


def fresh(depth: int = 10, asks: Levels = ASKS, bids: Levels = BIDS) -> OrderBook:
    book = OrderBook(PAIR, depth)
    assert book.feed(snapshot(asks, bids, f"book-{depth}")) is FeedResult.SNAPSHOT
    return book


class Model:
    """The naive reference: a dict per side, fully sorted and truncated after
    every message; the latest spelling of a price is the one kept."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.sides: dict[str, dict[Decimal, tuple[str, str]]] = {"a": {}, "b": {}}

    def apply(self, side: str, levels: Sequence[Sequence[str]]) -> None:
        book = self.sides[side]
        for price, volume, *_ in levels:
            if Decimal(volume) == 0:
                book.pop(Decimal(price), None)
            else:
                book[Decimal(price)] = (price, volume)

    def truncate(self) -> None:
        for side in ("a", "b"):
            self.sides[side] = dict(
                sorted(self.sides[side].items(), reverse=side == "b")[: self.depth]
            )

    def side(self, side: str) -> Levels:
        return list(self.sides[side].values())

    @property
    def asks(self) -> Levels:
        return self.side("a")

    @property
    def bids(self) -> Levels:
        return self.side("b")

    def checksum(self) -> int:
        return ref_checksum(self.asks, self.bids)


def update(
    book: Model,
    a: list[list[str]] | None = None,
    b: list[list[str]] | None = None,
    c: bool = True,
) -> list[Any]:
    """A 4-element update applied to ``book`` (the model), with its checksum."""
    payload: dict[str, Any] = {}
    for side, levels in (("a", a), ("b", b)):
        if levels is not None:
            book.apply(side, levels)
            payload[side] = levels
    book.truncate()
    if c:
        payload["c"] = str(book.checksum())
    return msg(payload, f"book-{book.depth}")


def model_of(depth: int = 10, asks: Levels = ASKS, bids: Levels = BIDS) -> Model:
    model = Model(depth)
    model.apply("a", [lv(p, v) for p, v in asks])
    model.apply("b", [lv(p, v) for p, v in bids])
    model.truncate()
    return model


def assert_matches(book: OrderBook, model: Model) -> None:
    assert book.asks == as_levels(model.asks)
    assert book.bids == as_levels(model.bids)
    assert book.checksum == model.checksum()


# -- the checksum ---------------------------------------------------------------

EXAMPLE_ASKS: Levels = [(f"0.{5005 + 5 * i:05d}", "0.00000500") for i in range(10)]
EXAMPLE_BIDS: Levels = [
    (f"0.0{price}", "0.00000500")
    for price in (5000, 4995, 4990, 4980, 4975, 4970, 4965, 4960, 4955, 4950)
]


def test_kraken_worked_example() -> None:
    assert EXAMPLE_ASKS[0][0] == "0.05005" and EXAMPLE_ASKS[-1][0] == "0.05050"
    assert checksum(EXAMPLE_ASKS, EXAMPLE_BIDS) == 974947235
    assert ref_checksum(EXAMPLE_ASKS, EXAMPLE_BIDS) == 974947235
    # The same book as a snapshot with its checksum, then a no-op update.
    book = OrderBook("ETH/XBT")
    payload = {
        "as": [lv(p, v) for p, v in EXAMPLE_ASKS],
        "bs": [lv(p, v) for p, v in EXAMPLE_BIDS],
        "c": "974947235",
    }
    assert book.feed([1, payload, "book-10", "ETH/XBT"]) is FeedResult.SNAPSHOT
    upd = {"b": [lv("0.04950", "0.00000500")], "c": "974947235"}
    assert book.feed([1, upd, "book-10", "ETH/XBT"]) is FeedResult.VERIFIED


def test_checksum_function_uses_top_ten_and_rejects_bad_strings() -> None:
    many = [(f"{i}.5", "1.0") for i in range(1, 30)]
    extra = [(p, v, "1700000000.000000", "r") for p, v in many]  # more items are ignored
    assert checksum(extra, many) == checksum(many[:10], many[:10]) == ref_checksum(many, many)
    assert checksum([], []) == 0
    assert checksum(iter(many), iter([])) == ref_checksum(many, [])
    bads: list[Any] = ["1e5", "NaN", "-1", "", 1.5]
    for bad in bads:
        with pytest.raises(BookError):
            checksum([(bad, "1.0")], [])
        with pytest.raises(BookError):
            checksum([], [("1.0", bad)])


def test_checksum_never_goes_through_float() -> None:
    # float("0.00001") prints as 1e-05; the fragment must come from the string.
    asks = [("0.00001000", "0.00000100")]
    assert checksum(asks, []) == zlib.crc32(b"1000100")


def test_the_book_package_keeps_every_name_and_one_checksum_module() -> None:
    import kraky_anyio.book as book
    from kraky_anyio.book import checksums as rules

    for name in book.__all__:
        assert getattr(book, name) is not None
    # One place for the rules: the package's checksum() is the checksum module's.
    assert book.checksum is rules.checksum and book.CHECKSUM_DEPTH == rules.CHECKSUM_DEPTH == 10
    assert rules.fragment("0.00100000", "qty") == "100000"
    assert rules.checksum_value("0001") == 1


# -- the recorded Kraken session ------------------------------------------------


@pytest.fixture(scope="module")
def session() -> dict[str, Any]:
    if not FIXTURE.is_file():
        pytest.fail(
            f"the recorded Kraken session is missing: {FIXTURE} (the shared/ folder must "
            "sit beside the repository)",
            pytrace=False,
        )
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def test_replay_recorded_session(session: dict[str, Any]) -> None:
    init = session["init"]
    assert [m.get("event") for m in init[:3]] == ["systemStatus", "pong", "subscriptionStatus"]
    book = OrderBook(PAIR, 10)
    assert book.feed(init[3]) is FeedResult.SNAPSHOT
    assert book.valid and len(book.asks) == len(book.bids) == 10
    model = Model(10)
    model.apply("a", init[3][1]["as"])
    model.apply("b", init[3][1]["bs"])
    model.truncate()
    assert_matches(book, model)

    results: Counter[FeedResult] = Counter()
    skipped = five = 0
    for message in session["updates"]:
        if isinstance(message, dict):  # heartbeats, pongs: not for the book
            skipped += 1
            continue
        five += len(message) == 5
        before = book.version
        results[book.feed(message)] += 1
        assert book.version == before + 1
        for payload in message[1:-2]:
            for side in ("a", "b"):
                model.apply(side, payload.get(side, []))
        model.truncate()
        assert book.checksum == int(message[-3]["c"]) == model.checksum()
        assert book.asks == as_levels(model.asks) and book.bids == as_levels(model.bids)
    assert results == {FeedResult.VERIFIED: 979}
    assert skipped == 1146 - 979 and five == 1
    assert book.valid and book.updates == 979 and book.resyncs == 0
    assert len(book.asks) == len(book.bids) == 10
    prices = [level.price for level in book.asks]
    assert prices == sorted(prices)
    prices = [level.price for level in book.bids]
    assert prices == sorted(prices, reverse=True)


def test_events_are_not_book_messages(session: dict[str, Any]) -> None:
    book = OrderBook(PAIR)
    book.feed(session["init"][3])
    before = state(book)
    for event in [*session["init"][:3], {"event": "heartbeat"}]:
        with pytest.raises(BookError, match="must be a list"):
            book.feed(event)
    assert state(book) == before


def checksummed(session: dict[str, Any]) -> list[list[Any]]:
    return [copy.deepcopy(m) for m in session["updates"] if isinstance(m, list)]


def test_corrupted_level_is_caught_by_next_checksum(session: dict[str, Any]) -> None:
    updates = checksummed(session)
    book = OrderBook(PAIR)
    book.feed(session["init"][3])
    for message in updates[:100]:
        book.feed(message)
    # Corrupt one volume in update 100 and drop its checksum: it applies quietly...
    corrupt = updates[100]
    payload = corrupt[1]
    side = "a" if "a" in payload else "b"
    level = payload[side][0]
    assert Decimal(level[1]) != 0
    level[1] = str(Decimal(level[1]) + Decimal("0.00000001"))
    del payload["c"]
    assert book.feed(corrupt) is FeedResult.UPDATED
    assert book.valid
    # ...and the next checksummed update finds the book wrong.
    version = book.version
    with pytest.raises(BookChecksumMismatchError) as info:
        book.feed(updates[101])
    exc = info.value
    assert isinstance(exc, ChecksumMismatchError) and isinstance(exc, BookError)
    assert exc.pair == PAIR
    assert exc.expected == int(updates[101][-3]["c"])
    assert exc.computed == book.checksum != exc.expected
    assert str(exc.expected) in str(exc) and str(exc.computed) in str(exc)
    assert not book.valid
    assert book.version == version + 1  # the message stays applied
    assert book.updates == 101  # the corrupt one counts; the mismatch does not

    # An invalid book refuses every update, changing nothing.
    before = state(book)
    for message in updates[102:110]:
        with pytest.raises(BookError, match="not valid") as refused:
            book.feed(message)
        assert not isinstance(refused.value, ChecksumMismatchError)
    assert state(book) == before

    # A new snapshot makes it valid again; the session then replays cleanly.
    book.reset(resync=True)
    assert book.feed(session["init"][3]) is FeedResult.SNAPSHOT
    assert book.valid and book.resyncs == 1
    assert all(book.feed(m) is FeedResult.VERIFIED for m in checksummed(session))


def test_corrupted_checksummed_update_raises_itself(session: dict[str, Any]) -> None:
    updates = checksummed(session)
    book = OrderBook(PAIR)
    book.feed(session["init"][3])
    message = copy.deepcopy(updates[0])
    message[1]["c"] = str((int(message[1]["c"]) + 1) % 2**32)
    with pytest.raises(BookChecksumMismatchError):
        book.feed(message)
    assert not book.valid and book.updates == 0
    # A snapshot without asking for a reset also revalidates.
    assert book.feed(session["init"][3]) is FeedResult.SNAPSHOT and book.valid
    assert book.feed(updates[0]) is FeedResult.VERIFIED


def test_snapshot_with_wrong_checksum_is_a_mismatch() -> None:
    book = OrderBook(PAIR)
    payload = {"as": [lv(p, v) for p, v in ASKS], "bs": [], "c": "1"}
    with pytest.raises(BookChecksumMismatchError):
        book.feed(msg(payload))
    assert not book.valid and book.asks == as_levels(ASKS)


# -- the rules ----------------------------------------------------------------------


def test_zero_volume_deletes_and_deleting_an_absent_level_is_a_no_op() -> None:
    book, model = fresh(), model_of()
    for zero in ("0.00000000", "0", "0.0", "000.000", ".0", "0."):
        model = model_of()
        book = fresh()
        assert book.feed(update(model, a=[lv("101.00000", zero)])) is FeedResult.VERIFIED
        assert Decimal("101") not in [level.price for level in book.asks]
        assert_matches(book, model)
    assert book.feed(update(model, a=[lv("101.50000", "0.00000000")])) is FeedResult.VERIFIED
    assert book.feed(update(model, b=[lv("150.00000", "0.00000000")])) is FeedResult.VERIFIED
    assert_matches(book, model)
    assert len(book.asks) == 9


def test_republished_level_is_applied() -> None:
    book, model = fresh(), model_of()
    book.feed(update(model, a=[lv("100.00000", "0.00000000")]))
    assert book.feed(update(model, a=[lv("110.00000", "7.00000000", "r")])) is FeedResult.VERIFIED
    assert book.asks[-1] == Level(Decimal("110"), Decimal("7"))
    assert_matches(book, model)


def test_same_price_twice_in_one_message_is_applied_in_order() -> None:
    book, model = fresh(), model_of()
    cases = [
        [lv("99.50000", "1.0"), lv("99.50000", "2.0")],  # insert, then change
        [lv("99.50000", "3.0"), lv("99.50000", "0.0")],  # change, then delete
        [lv("99.50000", "0.0"), lv("99.50000", "4.0")],  # delete nothing, then insert
        [lv("100.00000", "0"), lv("100.00000", "5.0"), lv("100.00000", "6.0")],
    ]
    for levels in cases:
        assert book.feed(update(model, a=levels)) is FeedResult.VERIFIED
        assert_matches(book, model)
    assert book.best_ask == Level(Decimal("99.5"), Decimal("4"))
    assert book.asks[1] == Level(Decimal("100"), Decimal("6"))


def test_truncation_to_depth_without_deletes() -> None:
    book, model = fresh(), model_of()
    assert book.feed(update(model, a=[lv("99.50000", "1.0")])) is FeedResult.VERIFIED
    assert len(book.asks) == 10
    assert book.asks[0].price == Decimal("99.5") and book.asks[-1].price == Decimal("108")
    # The level pushed out is gone: deleting it is a no-op, and a delete in the top
    # does not bring it back (Kraken republishes it with "r" if it matters).
    assert book.feed(update(model, a=[lv("109.00000", "0.00000000")])) is FeedResult.VERIFIED
    assert book.feed(update(model, a=[lv("101.00000", "0.00000000")])) is FeedResult.VERIFIED
    assert len(book.asks) == 9
    assert_matches(book, model)
    # Several better bids in one message push several out.
    levels = [lv(f"99.{i}0000", "1.0") for i in range(1, 5)]
    assert book.feed(update(model, b=levels)) is FeedResult.VERIFIED
    assert [level.price for level in book.bids[:5]] == [
        Decimal(p) for p in ("99.4", "99.3", "99.2", "99.1", "99")
    ]
    assert book.bids[-1].price == Decimal("94") and len(book.bids) == 10
    assert_matches(book, model)
    # A level worse than the whole full side is dropped at once.
    assert book.feed(update(model, b=[lv("1.00000", "1.0")])) is FeedResult.VERIFIED
    assert book.bids[-1].price == Decimal("94")
    assert_matches(book, model)


def test_snapshot_is_truncated_and_replaces_everything() -> None:
    asks = [(f"{100 + i}.0", "1.0") for i in range(15)]
    bids = [(f"{99 - i}.0", "1.0") for i in range(3)]
    book = fresh(10, asks[::-1], bids)  # any order in, best first out
    assert book.asks == as_levels(asks[:10]) and book.bids == as_levels(bids)
    assert book.checksum == ref_checksum(asks, bids)
    version = book.version
    book.feed(snapshot([], [("5.0", "1.0")]))
    assert book.asks == () and book.bids == as_levels([("5.0", "1.0")])
    assert book.version == version + 1 and book.valid


@pytest.mark.parametrize("depth", [25, 100, 500, 1000])
def test_deep_books_checksum_only_the_top_ten(depth: int) -> None:
    asks = [(f"{3000 + i}.1", f"{i + 1}.0") for i in range(depth + 5)]
    bids = [(f"{2999 - i}.2", f"{i + 1}.0") for i in range(depth + 5)]
    model = model_of(depth, asks, bids)
    book = fresh(depth, asks, bids)
    assert len(book.asks) == len(book.bids) == depth
    assert book.channel_name == f"book-{depth}" and book.depth == depth
    assert_matches(book, model)
    top = book.checksum
    assert top == ref_checksum(asks[:CHECKSUM_DEPTH], bids[:CHECKSUM_DEPTH])
    # Changes below the top ten are kept but leave the checksum alone.
    deep = [lv(asks[15][0], "9.0"), lv(asks[20][0], "0"), lv("3015.15", "1.0")]
    assert book.feed(update(model, a=deep)) is FeedResult.VERIFIED
    assert book.checksum == top
    assert book.asks[15] == Level(Decimal(asks[15][0]), Decimal(9))
    assert_matches(book, model)
    # A change in the top ten moves it; a deletion there pulls level 11 up.
    assert book.feed(update(model, b=[lv(bids[3][0], "0")])) is FeedResult.VERIFIED
    assert book.checksum != top
    assert book.bids[9].price == Decimal(bids[10][0])
    # A better level pushes the worst out, without a delete.
    assert book.feed(update(model, b=[lv("2999.5", "1.0")])) is FeedResult.VERIFIED
    assert len(book.bids) == depth
    assert_matches(book, model)


@pytest.mark.parametrize("depth", DEPTHS)
def test_depths_and_channel_names(depth: int) -> None:
    book = OrderBook(PAIR, depth)
    assert (book.pair, book.depth, book.channel_name) == (PAIR, depth, f"book-{depth}")
    assert not book.valid and book.version == book.updates == book.resyncs == 0
    assert OrderBook(PAIR).depth == 10


@pytest.mark.parametrize("depth", [0, 5, 11, 50, 2000, "10", 10.0, True, None])
def test_bad_depth(depth: Any) -> None:
    with pytest.raises(ValueError, match="depth"):
        OrderBook(PAIR, depth)


@pytest.mark.parametrize("pair", ["", None, 1])
def test_bad_pair(pair: Any) -> None:
    with pytest.raises(ValueError, match="pair"):
        OrderBook(pair)


def test_update_before_snapshot_is_refused() -> None:
    book = OrderBook(PAIR)
    model = model_of()
    for message in (
        update(model, a=[lv("99.5", "1.0")]),
        update(model, c=False, b=[lv("98.5", "1.0")]),
        [336, {"a": [lv("99.5", "1.0")]}, {"b": [lv("98.5", "1.0")], "c": "1"}, "book-10", PAIR],
    ):
        with pytest.raises(BookError, match="not valid"):
            book.feed(message)
    assert book.version == 0 and book.updates == 0 and not book.valid
    assert book.asks == book.bids == ()


def test_update_without_checksum_and_five_element_update() -> None:
    book, model = fresh(), model_of()
    assert book.feed(update(model, c=False, a=[lv("99.5", "1.0")])) is FeedResult.UPDATED
    model.apply("a", [lv("100.5", "1.0")])
    model.apply("b", [lv("98.5", "2.0"), lv("99.00000", "0")])
    model.truncate()
    five = [
        336,
        {"a": [lv("100.5", "1.0")]},
        {"b": [lv("98.5", "2.0"), lv("99.00000", "0")], "c": str(model.checksum())},
        "book-10",
        PAIR,
    ]
    assert book.feed(five) is FeedResult.VERIFIED
    assert_matches(book, model)
    # Both sides in one payload, and the same side in both payloads.
    assert book.feed(update(model, a=[lv("99.5", "0")], b=[lv("98.5", "0")])) is (
        FeedResult.VERIFIED
    )
    model.apply("a", [lv("99.7", "1.0"), lv("99.7", "2.0")])
    model.truncate()
    five = [
        336,
        {"a": [lv("99.7", "1.0")]},
        {"a": [lv("99.7", "2.0")], "c": str(model.checksum())},
        "book-10",
        PAIR,
    ]
    assert book.feed(five) is FeedResult.VERIFIED
    assert_matches(book, model)
    assert book.updates == 4


@pytest.mark.parametrize("width", [11, 14, 5000])
def test_checksum_with_leading_zeros_is_accepted(width: int) -> None:
    """'c' is a number: leading zeros are accepted, even more than int() takes."""
    book, model = fresh(), model_of()
    one = update(model, a=[lv("99.5", "1.0")])  # one level: the hot path
    two = update(model, b=[lv("98.5", "1.0"), lv("98.6", "1.0")])  # two levels
    five = [336, {"a": [lv("99.5", "2.0")]}, {"b": [lv("98.5", "0")]}, "book-10", PAIR]
    update(model, a=[lv("99.5", "2.0")], b=[lv("98.5", "0")])
    five[2]["c"] = str(model.checksum())
    for message in (one, two, five):
        message[-3]["c"] = message[-3]["c"].zfill(width)
        assert book.feed(message) is FeedResult.VERIFIED
    assert_matches(book, model)
    payload = {"as": [lv(p, v) for p, v in ASKS], "bs": [], "c": "0" * width}
    payload["c"] += str(ref_checksum(ASKS, []))
    assert book.feed(msg(payload)) is FeedResult.SNAPSHOT and book.valid
    # A wrong one is a mismatch, whatever its spelling.
    for message in (update(model, a=[lv("99.5", "1.0")]), five):
        book = fresh()
        wrong = int(message[-3]["c"].lstrip("0")) ^ 1
        message[-3]["c"] = str(wrong).zfill(width)
        with pytest.raises(BookChecksumMismatchError) as info:
            book.feed(message)
        assert info.value.expected == wrong


def test_same_price_spelt_differently_is_one_level() -> None:
    book, model = fresh(), model_of()
    # Kraken spells each pair's prices one way; if not, the latest spelling wins.
    assert book.feed(update(model, a=[lv("100.0", "5")])) is FeedResult.VERIFIED
    assert book.asks[0] == Level(Decimal(100), Decimal(5)) and len(book.asks) == 10
    assert book.checksum == ref_checksum([("100.0", "5"), *ASKS[1:]], BIDS)
    assert book.feed(update(model, a=[lv("100.00000", "0")])) is FeedResult.VERIFIED
    assert book.best_ask == Level(Decimal(101), Decimal(2))
    assert_matches(book, model)


LONG = [
    "0.000012345678901234",
    "0.0000123456789012341",
    "0.000012345678901233",
    "0.00001234567890124",
    "0.00001234567890123",
    "0.00001234567890",
    "0.0000123456788",
    "0.10000000000000001",  # float("0.10000000000000001") == 0.1
    "0.1",
    "0.09999999999999999",
    "123456789012345678901234567890.5",
]


@pytest.mark.parametrize("late", [False, True])
def test_long_prices_sort_exactly(late: bool) -> None:
    """Prices with more digits than a float holds sort by their exact value, also
    when the first one arrives after short prices are already in the book."""
    depth = 25
    model = model_of(depth, [], [])
    book = fresh(depth, [], [])
    shorts = ["0.00001", "0.2", "0.05", "99.5"]
    first, second = (shorts, LONG) if late else (LONG, shorts)
    for side in ("a", "b"):
        for prices in (first, second):
            levels = [lv(p, "1.5") for p in prices]
            message = update(model, a=levels) if side == "a" else update(model, b=levels)
            assert book.feed(message) is FeedResult.VERIFIED
            assert_matches(book, model)
    exact = sorted(Decimal(p) for p in LONG + shorts)
    assert [level.price for level in book.asks] == exact
    assert [level.price for level in book.bids] == exact[::-1]
    assert len(exact) == len(set(exact))  # no two of them collapsed into one level
    # Updating and deleting long prices finds the right level.
    message = update(model, a=[lv(LONG[0], "2.0"), lv(LONG[1], "0")], b=[lv(LONG[7], "0")])
    assert book.feed(message) is FeedResult.VERIFIED
    assert_matches(book, model)


# -- reading ----------------------------------------------------------------------


def test_reading_an_empty_and_one_sided_book() -> None:
    book = OrderBook(PAIR)
    assert book.asks == book.bids == ()
    assert book.best_ask is None and book.best_bid is None
    assert book.spread is None and book.mid is None
    assert book.checksum == 0
    book.feed(snapshot([("100.5", "1.25")], []))
    assert book.best_ask == Level(Decimal("100.5"), Decimal("1.25"))
    assert book.best_bid is None and book.spread is None and book.mid is None
    book.feed(snapshot([], [("99.5", "2")]))
    assert book.best_ask is None and book.spread is None and book.mid is None
    assert book.best_bid == Level(Decimal("99.5"), Decimal(2))


def test_reading_a_full_book() -> None:
    book = fresh()
    assert isinstance(book.asks, tuple) and len(book.asks) == 10
    for level in (*book.asks, *book.bids):
        assert isinstance(level, Level)
        assert type(level.price) is Decimal and type(level.volume) is Decimal
    assert book.best_ask == book.asks[0] == Level(Decimal("100.00000"), Decimal("1"))
    assert book.best_bid == book.bids[0] == Level(Decimal("99"), Decimal("1.5"))
    assert str(book.best_ask.price) == "100.00000"  # the string's precision is kept
    assert book.spread == Decimal(1) and type(book.spread) is Decimal
    assert book.mid == Decimal("99.5") and type(book.mid) is Decimal
    assert book.asks is book.asks  # cached until the next change
    asks = book.asks
    book.feed(update(model_of(), b=[lv("99.75", "1.0")]))
    assert book.asks is asks  # the other side's cache survives
    assert book.best_bid == Level(Decimal("99.75"), Decimal(1))
    assert book.spread == Decimal("0.25") and book.mid == Decimal("99.875")
    assert "XBT/USD" in repr(book) and "valid" in repr(book)


def test_reset_and_resyncs() -> None:
    book = fresh()
    book.feed(update(model_of(), a=[lv("99.5", "1.0")]))
    version = book.version
    book.reset()
    assert not book.valid and book.resyncs == 0 and book.version == version + 1
    assert book.asks == book.bids == () and book.best_ask is None and book.checksum == 0
    assert "invalid" in repr(book)
    with pytest.raises(BookError, match="not valid"):
        book.feed(update(model_of(), a=[lv("99.5", "1.0")]))
    book.reset(resync=True)
    book.reset(resync=True)
    assert book.resyncs == 2 and book.version == version + 3
    assert book.updates == 1  # counters survive resets
    with pytest.raises(TypeError):
        book.reset(True)  # type: ignore[call-arg]
    model = model_of()
    assert book.feed(snapshot(ASKS, BIDS)) is FeedResult.SNAPSHOT and book.valid
    assert book.feed(update(model, a=[lv("99.5", "1.0")])) is FeedResult.VERIFIED
    assert book.updates == 2 and book.resyncs == 2


# -- malformed input ------------------------------------------------------------------

GOOD = lv("99.50000", "1.00000000")
GOOD_C = str(ref_checksum([("99.50000", "1.00000000"), *ASKS[:9]], BIDS))


def with_level(level: Any, side: str = "a") -> list[Any]:
    """An update carrying a good level, then ``level``, and a checksum."""
    return msg({side: [GOOD, level], "c": GOOD_C})


def with_price(price: Any) -> list[Any]:
    return with_level([price, "1.0", T])


def with_volume(volume: Any) -> list[Any]:
    return with_level(["100.50000", volume, T])


def with_c(c: Any) -> list[Any]:
    return msg({"a": [GOOD], "c": c})


def alone(level: Any, side: str = "a") -> list[Any]:
    """An update of the single level ``level`` (the common case, handled apart)."""
    return msg({side: [level], "c": GOOD_C})


SINGLE_LEVELS: dict[str, Any] = {
    "a string": "99.5",
    "a tuple": ("99.5", "1.0", T),
    "None": None,
    "of 2": ["99.5", "1.0"],
    "of 5": ["99.5", "1.0", T, "r", "r"],
    "unknown flag": ["99.5", "1.0", T, "R"],
    "price a float": [99.5, "1.0", T],
    "volume a float": ["99.5", 1.0, T],
    "time None": ["99.5", "1.0", None],
    "known price, time None": ["100.00000", "1.0", None],
    "known price, volume an int": ["100.00000", 0, T],
    "zero price": ["0.000", "1.0", T],
}


BAD_DECIMALS = [
    "",
    ".",
    "..",
    "1.2.3",
    "1e5",
    "1E5",
    "-1.0",
    "+1.0",
    " 1.0",
    "1.0 ",
    "1_000.0",
    "0x10",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "\u0661\u0660\u0660",  # Arabic-Indic digits: Decimal() would take them
    "\uff11\uff10",  # fullwidth digits
    "\u00b2",  # superscript two: str.isdigit() is True
    "\ud800",  # a lone surrogate, as JSON can decode it
    "1,5",
]

MALFORMED: dict[str, Any] = {
    "not a list": {"a": [GOOD], "c": GOOD_C},
    "a tuple": tuple(msg({"a": [GOOD], "c": GOOD_C})),
    "a string": json.dumps(msg({"a": [GOOD], "c": GOOD_C})),
    "None": None,
    "3 elements": [336, {"a": [GOOD], "c": GOOD_C}, "book-10"],
    "6 elements": [336, {"a": [GOOD]}, {"b": [GOOD]}, {"c": GOOD_C}, "book-10", PAIR],
    "empty list": [],
    "payload a list": msg([["a", [GOOD]]]),
    "payload None": msg(None),
    "payload a string": msg("a"),
    "wrong pair": msg({"a": [GOOD], "c": GOOD_C}, pair="ETH/USD"),
    "pair None": msg({"a": [GOOD], "c": GOOD_C}, pair=None),  # type: ignore[arg-type]
    "wrong channel depth": msg({"a": [GOOD], "c": GOOD_C}, channel="book-25"),
    "wrong channel": msg({"a": [GOOD], "c": GOOD_C}, channel="ticker"),
    "unknown key": msg({"a": [GOOD], "c": GOOD_C, "d": []}),
    "unknown key, no c": msg({"a": [GOOD], "x": []}),
    "only c": msg({"c": GOOD_C}),
    "empty payload": msg({}),
    "levels a string": msg({"a": "99.5", "c": GOOD_C}),
    "levels None": msg({"b": None, "c": GOOD_C}),
    "levels a dict": msg({"a": {"99.5": "1.0"}, "c": GOOD_C}),
    "levels a tuple": msg({"a": (GOOD,), "c": GOOD_C}),
    "level a string": with_level("99.5"),
    "level a dict": with_level({"price": "99.5", "volume": "1.0"}),
    "level a tuple": with_level(("100.5", "1.0", T)),
    "level None": with_level(None),
    "level of 2": with_level(["100.5", "1.0"]),
    "level of 5": with_level(["100.5", "1.0", T, "r", "x"]),
    "level of 0": with_level([]),
    "unknown flag": with_level(["100.5", "1.0", T, "x"]),
    "flag None": with_level(["100.5", "1.0", T, None]),
    "price a float": with_price(100.5),
    "price an int": with_price(100),
    "price None": with_price(None),
    "price a bool": with_price(True),
    "price a Decimal": with_price(Decimal("100.5")),
    "zero price": with_price("0.00000"),
    "zero price short": with_price("0"),
    "volume a float": with_volume(1.5),
    "volume an int": with_volume(0),
    "volume None": with_volume(None),
    "time a float": with_level(["100.5", "1.0", 1700000000.0]),
    "time None": with_level(["100.5", "1.0", None]),
    "bad bid level": with_level(["98.5", "-1.0", T], side="b"),
    "known price, bad volume": with_level(["100.00000", "NaN", T]),
    "known price, bad time": with_level(["100.00000", "1.0", None]),
    "c an int": with_c(int(GOOD_C)),
    "c a float": with_c(float(GOOD_C)),
    "c None": with_c(None),
    "c empty": with_c(""),
    "c negative": with_c("-" + GOOD_C),
    "c with letters": with_c(GOOD_C + "a"),
    "c hex": with_c("0x1f"),
    "c fullwidth": with_c("\uff11\uff12"),
    "c spaces": with_c(" " + GOOD_C),
    "c above 32 bits": with_c("4294967296"),
    "c of 11 digits": with_c("12345678901"),
    "c of 5000 digits": with_c("9" * 5000),
    "c a list": with_c([GOOD_C]),
    "c in the first of two payloads": [
        336,
        {"a": [GOOD], "c": GOOD_C},
        {"b": [lv("98.5", "1.0")]},
        "book-10",
        PAIR,
    ],
    "five: first not a dict": [336, [GOOD], {"b": [GOOD], "c": GOOD_C}, "book-10", PAIR],
    "five: second not a dict": [336, {"a": [GOOD]}, None, "book-10", PAIR],
    "five: bad level first": [
        336,
        {"a": [GOOD, ["100.5", "NaN", T]]},
        {"b": [lv("98.5", "1.0")], "c": GOOD_C},
        "book-10",
        PAIR,
    ],
    "five: bad level second": [
        336,
        {"a": [GOOD]},
        {"b": [lv("98.5", "1.0"), ["98.4", "1.0", T, "R"]], "c": GOOD_C},
        "book-10",
        PAIR,
    ],
    "five: unknown key": [336, {"a": [GOOD], "x": 1}, {"b": [], "c": "1"}, "book-10", PAIR],
    "five: bad c": [336, {"a": [GOOD]}, {"b": [], "c": "x"}, "book-10", PAIR],
    "five: a snapshot part": [
        336,
        {"as": [GOOD]},
        {"bs": [GOOD]},
        "book-10",
        PAIR,
    ],
    "five: wrong pair": [336, {"a": [GOOD]}, {"b": [], "c": "1"}, "book-10", "ETH/USD"],
    "snapshot and update keys": msg({"as": [GOOD], "a": [GOOD]}),
    "snapshot with unknown key": msg({"as": [GOOD], "bs": [], "x": 1}),
    "snapshot levels a string": msg({"as": "99.5", "bs": []}),
    "snapshot bad level": msg({"as": [GOOD, ["100.5", "-1", T]], "bs": []}),
    "snapshot bad bid level": msg({"as": [GOOD], "bs": [["98.5", "1", T, "x"]]}),
    "snapshot bad c": msg({"as": [GOOD], "bs": [], "c": "abc"}),
    "snapshot c None": msg({"as": [GOOD], "bs": [], "c": None}),
    "snapshot wrong channel": msg({"as": [GOOD], "bs": []}, channel="book-100"),
    **{f"price {bad!r}": with_price(bad) for bad in BAD_DECIMALS},
    **{f"volume {bad!r}": with_volume(bad) for bad in BAD_DECIMALS},
    **{f"snapshot price {bad!r}": msg({"bs": [[bad, "1", T]]}) for bad in BAD_DECIMALS},
    **{f"single level {name}": alone(level) for name, level in SINGLE_LEVELS.items()},
    **{f"single bid {name}": alone(level, "b") for name, level in SINGLE_LEVELS.items()},
    **{f"single price {bad!r}": alone([bad, "1.0", T]) for bad in BAD_DECIMALS},
    **{f"single new volume {bad!r}": alone(["98.5", bad, T], "b") for bad in BAD_DECIMALS},
    **{f"single known volume {bad!r}": alone(["100.00000", bad, T]) for bad in BAD_DECIMALS},
    **{
        f"single known bid volume {bad!r}": alone(["99.00000", bad, T], "b") for bad in BAD_DECIMALS
    },
}


@pytest.mark.parametrize("message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_message_raises_and_changes_nothing(message: Any) -> None:
    book = fresh()
    book.feed(update(model_of(), a=[lv("100.5", "0.5")]))  # something in the caches
    book.asks, book.bids  # noqa: B018
    before = state(book)
    with pytest.raises(BookError) as info:
        book.feed(message)
    assert not isinstance(info.value, ChecksumMismatchError)
    assert state(book) == before
    assert book.valid
    # The book still works: the good update applies and verifies.
    model = model_of()
    model.apply("a", [lv("100.5", "0.5")])
    assert book.feed(update(model, a=[GOOD])) is FeedResult.VERIFIED


def test_good_versions_of_the_malformed_messages_pass() -> None:
    """The malformed messages above fail for the stated reason only."""
    for level in (lv("100.5", "1.0"), lv("100.5", "1.0", "r"), ["100.5", "0", "1.5"]):
        book = fresh()
        message = with_level(level)
        del message[1]["c"]
        assert book.feed(message) is FeedResult.UPDATED
    book = fresh()
    assert book.feed(with_c(GOOD_C)) is FeedResult.VERIFIED
    assert book.feed(with_c(GOOD_C.zfill(10))) is FeedResult.VERIFIED


SINGLE_CHANGES = {
    "change": ("a", "101.00000", "9.0"),
    "delete": ("a", "101.00000", "0"),
    "insert, truncating": ("a", "99.50000", "1.0"),
    "insert at the end": ("a", "125.00000", "1.0"),  # past a full side at depth 10
    "delete at the end": ("b", "90.00000", "0"),
    "bid change": ("b", "95.00000", "9.0"),
    "bid delete": ("b", "99.00000", "0.0"),
    "bid insert": ("b", "99.50000", "1.0"),
}
BAD_CS = ["", "abc", "-1", " 1", "1.0", "\uff11", "4294967296", "00004294967296", "9" * 5000]


@pytest.mark.parametrize("depth", [10, 25])
@pytest.mark.parametrize("change", SINGLE_CHANGES.values(), ids=SINGLE_CHANGES.keys())
def test_single_level_with_malformed_checksum_changes_nothing(
    change: tuple[str, str, str], depth: int
) -> None:
    """A one-level update is checked against 'c' before it is made: with a
    malformed 'c' it leaves the book as it was, at every depth and position."""
    side, price, volume = change
    levels = [(f"{90 + i}.00000", f"{i + 1}.0") for i in range(30)]
    asks, bids = levels[10:], levels[:10][::-1]
    for bad in BAD_CS:
        book = fresh(depth, asks, bids)
        before = state(book)
        message = msg({side: [lv(price, volume)], "c": bad}, f"book-{depth}")
        with pytest.raises(BookError) as info:
            book.feed(message)
        assert not isinstance(info.value, ChecksumMismatchError)
        assert state(book) == before
        # The same update with its right checksum then verifies.
        model = model_of(depth, asks, bids)
        good = (
            update(model, [lv(price, volume)])
            if side == "a"
            else update(model, b=[lv(price, volume)])
        )
        good[2] = f"book-{depth}"
        assert book.feed(good) is FeedResult.VERIFIED
        assert_matches(book, model)


def test_single_level_deep_change_with_malformed_checksum_changes_nothing() -> None:
    asks = [(f"{100 + i}.0", "1.0") for i in range(25)]
    book = fresh(25, asks, BIDS)
    before = state(book)
    for level in (lv("120.0", "2.0"), lv("120.0", "0"), lv("120.5", "2.0"), lv("124.5", "1")):
        with pytest.raises(BookError, match="'c'"):
            book.feed(msg({"a": [level], "c": "x"}, "book-25"))
        assert state(book) == before


def test_malformed_message_on_an_invalid_book_is_still_a_book_error() -> None:
    book = OrderBook(PAIR)
    for message in MALFORMED.values():
        with pytest.raises(BookError):
            book.feed(message)
    assert book.version == 0 and not book.valid


# -- property: the book equals a naive model --------------------------------------------

# Prices of varied lengths: short ones; the same value spelt with more or fewer
# zeros (one level, the latest spelling kept); and long ones that a float cannot
# tell apart ("1.000000000000000001" vs "1"), which switch a side to exact keys.
FRACTIONS = ["", ".0", ".5", ".50000", ".05", ".00001", ".123456789", ".000000000000000001"]
PRICE_POOL = [f"{units}{fraction}" for units in range(1, 31) for fraction in FRACTIONS]
PRICE_POOL += [f"0{units}.5" for units in range(1, 31, 3)]  # a leading zero
VOLUME_POOL = [
    "0",
    "0.00000000",
    "0.0",
    "1",
    "2.5",
    "0.00000001",
    "0.00010000",
    "12.34500000",
    "100.00000000",
    "123456789.12345678",
    "7",
    "0.1",
]

# A level is (index into the example's prices, index into VOLUME_POOL, "r" flag).
level_specs = st.lists(
    st.tuples(st.integers(0, 63), st.integers(0, len(VOLUME_POOL) - 1), st.booleans()),
    min_size=1,
    max_size=4,
)
Spec = list[tuple[int, int, bool]]
message_specs = st.tuples(
    st.sampled_from(["a", "b", "ab", "five"]), level_specs, level_specs, st.integers(0, 5)
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    depth=st.sampled_from([10, 10, 25]),
    pool=st.lists(st.sampled_from(PRICE_POOL), min_size=3, max_size=40, unique=True),
    snap=st.tuples(level_specs, level_specs, st.integers(0, 8)),
    updates=st.lists(message_specs, max_size=30),
)
def test_book_matches_naive_model(
    depth: int,
    pool: list[str],
    snap: tuple[Spec, Spec, int],
    updates: list[tuple[str, Spec, Spec, int]],
) -> None:
    def levels(spec: Spec) -> list[list[str]]:
        return [
            lv(pool[i % len(pool)], VOLUME_POOL[v], *(["r"] if flag else [])) for i, v, flag in spec
        ]

    channel = f"book-{depth}"
    # A snapshot of up to 4 * 8 levels per side, often more than the depth.
    asks = [(level[0], level[1]) for level in levels(snap[0]) * snap[2]]
    bids = [(level[0], level[1]) for level in levels(snap[1]) * snap[2]]
    model = model_of(depth, asks, bids)
    book = OrderBook(PAIR, depth)
    assert book.feed(snapshot(asks, bids, channel)) is FeedResult.SNAPSHOT
    assert_matches(book, model)
    for shape, ask_spec, bid_spec, with_c in updates:
        ask_levels = levels(ask_spec) if shape != "b" else []
        bid_levels = levels(bid_spec) if shape != "a" else []
        model.apply("a", ask_levels)
        model.apply("b", bid_levels)
        model.truncate()
        c = {"c": str(model.checksum())} if with_c else {}
        if shape == "five":
            message = [336, {"a": ask_levels}, {"b": bid_levels, **c}, channel, PAIR]
        else:
            payload = {side: levels for side, levels in (("a", ask_levels), ("b", bid_levels))}
            message = msg({k: v for k, v in payload.items() if k in shape} | c, channel)
        version = book.version
        result = book.feed(message)
        assert result is (FeedResult.VERIFIED if with_c else FeedResult.UPDATED)
        assert book.version == version + 1
        assert_matches(book, model)
        assert len(book.asks) <= depth and len(book.bids) <= depth
    assert book.valid and book.updates == len(updates)
