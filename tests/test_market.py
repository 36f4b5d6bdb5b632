"""The market simulator: sans-I/O streams checked by the client's own
OrderBook, then end to end through the fake exchange on both backends."""

from __future__ import annotations

import itertools
import json
import re
import statistics
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anyio
import pytest

from kraky_anyio import BookResync, open_kraken
from kraky_anyio.book import BookChecksumMismatchError, FeedResult, OrderBook
from kraky_anyio.testing.market import MAX_SPREAD_TICKS, MarketSimulator, Publication, run_market
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

PRICE = re.compile(r"^\d+\.\d{5}$")  # both default pairs have 5 decimals
VOLUME = re.compile(r"^\d+\.\d{8}$")
TIME = re.compile(r"^\d{10}\.\d{6}$")


def _run(sim: MarketSimulator, steps: int) -> list[Publication]:
    return [p for _ in range(steps) for p in sim.step()]


def _book(sim: MarketSimulator, pair: str, depth: int) -> OrderBook:
    book = OrderBook(pair, depth)
    channel = f"book-{depth}"
    (snapshot,) = sim.snapshot(channel, pair)
    assert book.feed([0, snapshot, channel, pair]) is FeedResult.SNAPSHOT
    return book


def _levels(book: OrderBook) -> tuple[list[list[str]], list[list[str]]]:
    return (
        [[str(level.price), str(level.volume)] for level in book.asks],
        [[str(level.price), str(level.volume)] for level in book.bids],
    )


def _expected(sim: MarketSimulator, pair: str, depth: int) -> tuple[list[Any], list[Any]]:
    (snapshot,) = sim.snapshot(f"book-{depth}", pair)
    return [lv[:2] for lv in snapshot["as"]], [lv[:2] for lv in snapshot["bs"]]


def _walk(obj: Any) -> Iterator[Any]:
    yield obj
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _walk(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from _walk(value)


# -- determinism ---------------------------------------------------------------


def test_same_seed_same_market() -> None:
    a, b, c = MarketSimulator(seed=7), MarketSimulator(seed=7), MarketSimulator(seed=8)
    stream_a, stream_b, stream_c = (json.dumps(_run(sim, 200)) for sim in (a, b, c))
    assert stream_a == stream_b
    assert stream_a != stream_c
    assert a.time == b.time == "1700000020.000000" and a.steps == 200
    assert a.snapshot("book-25", "ETH/USD") == b.snapshot("book-25", "ETH/USD")


def test_a_pair_does_not_depend_on_the_other_pairs() -> None:
    alone = MarketSimulator(["XBT/USD"], seed=3)
    with_others = MarketSimulator(["SOL/USD", "XBT/USD", "ETH/USD"], seed=3)
    xbt = [p for p in _run(with_others, 100) if p.pair == "XBT/USD"]
    assert json.dumps(_run(alone, 100)) == json.dumps(xbt)


# -- the book streams, checked by the client's OrderBook --------------------


def test_book_10_and_25_streams_verify_over_thousands_of_steps() -> None:
    sim = MarketSimulator(seed=1, depths=(10, 25))
    books = {(pair, depth): _book(sim, pair, depth) for pair in sim.pairs for depth in sim.depths}
    seen = {"r": 0, "delete": 0, "both sides": 0, "one price twice": 0, "late joiners": 0}
    for step in range(2000):
        if step % 500 == 250:  # a subscriber joining mid-stream gets a consistent snapshot
            for pair in sim.pairs:
                books[pair, 25] = _book(sim, pair, 25)
                seen["late joiners"] += 1
        for pub in sim.step():
            depth = int(pub.channel_name.partition("-")[2] or 0)
            if (pub.pair, depth) not in books:
                continue
            book = books[pub.pair, depth]
            assert book.feed(pub.message()) is FeedResult.VERIFIED
            levels = [lv for p in pub.payloads for k in "ab" for lv in p.get(k, [])]
            seen["r"] += sum(len(lv) == 4 and lv[3] == "r" for lv in levels)
            seen["delete"] += sum(lv[1] == "0.00000000" for lv in levels)
            seen["both sides"] += len(pub.payloads) == 2
            for key in "ab":
                prices = [lv[0] for p in pub.payloads for lv in p.get(key, [])]
                seen["one price twice"] += len(prices) != len(set(prices))
        if step % 100 == 0:  # truncated to the depth, never short
            assert all(len(b.asks) == len(b.bids) == b.depth for b in books.values())
    for (pair, depth), book in books.items():
        assert book.valid and book.updates > 100
        assert _levels(book) == _expected(sim, pair, depth)
        assert book.checksum == sim.checksum(pair)
    # Every feature of Kraken's stream occurred.
    assert all(count > 0 for count in seen.values()), seen


def test_every_depth_verifies_and_deep_books_stay_full() -> None:
    sim = MarketSimulator(["XBT/USD"], seed=2)
    books = {depth: _book(sim, "XBT/USD", depth) for depth in sim.depths}
    assert sim.depths == (10, 25, 100, 500, 1000)
    for pub in _run(sim, 400):
        if pub.channel_name.startswith("book-"):
            book = books[int(pub.channel_name[5:])]
            assert book.feed(pub.message()) is FeedResult.VERIFIED
    for depth, book in books.items():
        assert len(book.asks) == len(book.bids) == depth
        assert _levels(book) == _expected(sim, "XBT/USD", depth)


def test_a_smaller_simulated_book() -> None:
    sim = MarketSimulator(["ETH/USD"], seed=4, book_levels=100, depths=(10, 100))
    books = {depth: _book(sim, "ETH/USD", depth) for depth in (10, 100)}
    for pub in _run(sim, 500):
        assert pub.channel_name not in ("book-25", "book-500", "book-1000")
        if pub.channel_name.startswith("book-"):
            books[int(pub.channel_name[5:])].feed(pub.message())
    assert _levels(books[100]) == _expected(sim, "ETH/USD", 100)


def test_corrupt_next_checksum_breaks_exactly_the_next_update() -> None:
    sim = MarketSimulator(seed=5)
    feeds = {key: _book(sim, *key) for key in [("XBT/USD", 10), ("XBT/USD", 25), ("ETH/USD", 10)]}

    def run(steps: int) -> list[tuple[str, int]]:
        mismatches = []
        for _ in range(steps):
            for pub in sim.step():
                depth = int(pub.channel_name.partition("-")[2] or 0)
                book = feeds.get((pub.pair, depth))
                if book is None or not book.valid:
                    continue
                try:
                    book.feed(pub.message())
                except BookChecksumMismatchError as exc:
                    assert (exc.expected - exc.computed) % 2**32 == 1
                    mismatches.append((pub.pair, depth))
            for key, book in feeds.items():
                if not book.valid:  # resubscribe, as a client does after a mismatch
                    feeds[key] = _book(sim, *key)
        return mismatches

    assert run(50) == []
    sim.corrupt_next_checksum("XBT/USD")
    assert run(100) == [("XBT/USD", 10), ("XBT/USD", 25)]
    sim.corrupt_next_checksum("XBT/USD", depth=25)
    assert run(100) == [("XBT/USD", 25)]
    assert all(book.valid for book in feeds.values())
    with pytest.raises(ValueError):
        sim.corrupt_next_checksum("SOL/USD")
    with pytest.raises(ValueError):
        MarketSimulator(depths=(10,)).corrupt_next_checksum("XBT/USD", depth=25)


def test_a_day_of_market_looks_like_a_market() -> None:
    """24 virtual hours in 2-minute steps (the walk and the spread scale with
    the step): every update verifies, the book is never crossed, the spread
    stays within a few ticks, the mid wanders plausibly, the depth refills."""
    sim = MarketSimulator(["XBT/USD"], seed=0, book_levels=25, depths=(10,))
    book = _book(sim, "XBT/USD", 10)
    tick = Decimal("0.1")  # XBT/USD's price step
    start = (book.best_ask.price + book.best_bid.price) / 2  # type: ignore[union-attr]
    spreads: list[Decimal] = []
    mids: list[Decimal] = []
    updates = 0
    for _ in range(24 * 30):
        for pub in sim.step(120.0):
            if pub.channel_name != "book-10":
                continue
            assert book.feed(pub.message()) is FeedResult.VERIFIED
            assert book.best_ask and book.best_bid
            assert book.best_ask.price > book.best_bid.price  # never crossed
            updates += 1
        assert len(book.asks) == len(book.bids) == 10  # depth refilled
        assert book.spread is not None and book.best_ask and book.best_bid
        spreads.append(book.spread)
        mids.append((book.best_ask.price + book.best_bid.price) / 2)
    assert sim.time == "1700086400.000000" and updates > 2000
    assert max(spreads) <= MAX_SPREAD_TICKS * tick
    assert statistics.median(spreads) <= 3 * tick
    # About 1 % a day: a day's range is some tens of dollars to a few
    # hundred, never the thousands a drifting book showed.
    assert max(mids) - min(mids) < start / 20
    assert max(abs(a - b) for a, b in itertools.pairwise(mids)) < start / 200


def test_the_demo_pace_keeps_a_tight_spread() -> None:
    """At the demo's 0.1 s step: the spread after every step is within bound
    (the old walk had one above 50 dollars within 80 s)."""
    sim = MarketSimulator(["XBT/USD"], seed=0, depths=(10,), book_levels=100)
    book = _book(sim, "XBT/USD", 10)
    for _ in range(1000):
        for pub in sim.step():
            if pub.channel_name == "book-10":
                assert book.feed(pub.message()) is FeedResult.VERIFIED
        assert book.spread is not None
        assert Decimal(0) < book.spread <= MAX_SPREAD_TICKS * Decimal("0.1")


# -- the other channels --------------------------------------------------------


def test_messages_are_kraken_shaped_and_never_floats() -> None:
    sim = MarketSimulator(seed=6)
    pubs = _run(sim, 600)
    snapshots = [sim.snapshot(f"book-{d}", pair) for d in sim.depths for pair in sim.pairs]
    snapshots += [sim.snapshot("ticker", pair) for pair in sim.pairs]
    for obj in _walk([[p.payloads for p in pubs], snapshots]):
        assert not isinstance(obj, float)
    by_channel: dict[str, list[Publication]] = {}
    for pub in pubs:
        by_channel.setdefault(pub.channel_name, []).append(pub)
    assert set(by_channel) == {
        *(f"book-{d}" for d in (10, 25, 100, 500, 1000)),
        *(f"ohlc-{i}" for i in (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)),
        "trade",
        "ticker",
        "spread",
    }
    for pub in by_channel["book-10"]:
        for payload in pub.payloads:
            for level in payload.get("a", []) + payload.get("b", []):
                assert PRICE.match(level[0]) and VOLUME.match(level[1]) and TIME.match(level[2])
        assert pub.payloads[-1]["c"].isdigit()
    for pub in by_channel["trade"]:
        (trades,) = pub.payloads
        for price, volume, when, side, ordertype, misc in trades:
            assert PRICE.match(price) and VOLUME.match(volume) and TIME.match(when)
            assert side in ("b", "s") and ordertype in ("l", "m") and misc == ""
    for pub in by_channel["spread"]:
        (spread,) = pub.payloads
        bid, ask, when, bid_volume, ask_volume = spread
        assert float(bid) < float(ask) and TIME.match(when)
        assert VOLUME.match(bid_volume) and VOLUME.match(ask_volume)
    for pub in by_channel["ohlc-5"]:
        (candle,) = pub.payloads
        when, end, o, h, low, c, vwap, volume, count = candle
        assert TIME.match(when) and end.endswith(".000000") and int(end[:-7]) % 300 == 0
        assert float(low) <= min(float(o), float(c), float(vwap)) <= float(h)
        assert VOLUME.match(volume) and isinstance(count, int) and count >= 1
    for pub in by_channel["ticker"]:
        (ticker,) = pub.payloads
        assert list(ticker) == ["a", "b", "c", "v", "p", "t", "l", "h", "o"]
        assert float(ticker["b"][0]) < float(ticker["a"][0])
        assert isinstance(ticker["a"][1], int) and VOLUME.match(ticker["a"][2])
        assert all(isinstance(n, int) for n in ticker["t"]) and ticker["t"][0] <= ticker["t"][1]
        for today, day in zip(ticker["l"], ticker["h"], strict=True):
            assert float(today) <= float(day)
        assert float(ticker["l"][0]) <= float(ticker["c"][0]) <= float(ticker["h"][0])
    # The ticker agrees with the book.
    (ticker,) = sim.snapshot("ticker", "XBT/USD")
    (book,) = sim.snapshot("book-10", "XBT/USD")
    assert ticker["a"][0] == book["as"][0][0] and ticker["a"][2] == book["as"][0][1]
    assert ticker["b"][0] == book["bs"][0][0] and ticker["b"][2] == book["bs"][0][1]


def test_snapshot_provider_answers() -> None:
    sim = MarketSimulator()
    (book,) = sim.snapshot("book-100", "ETH/USD")
    assert len(book["as"]) == len(book["bs"]) == 100
    assert sim.snapshot("trade", "XBT/USD") == []
    assert sim.snapshot("ohlc-5", "XBT/USD") == []
    assert sim.snapshot("spread", "XBT/USD") == []
    assert sim.snapshot("ticker", "SOL/USD") == []  # not simulated
    assert sim.snapshot("ownTrades", None) == []
    # Snapshots are copies: changing one does not change the market.
    book["as"][0][1] = "999.00000000"
    assert sim.snapshot("book-100", "ETH/USD")[0]["as"][0][1] != "999.00000000"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pairs": ()},
        {"pairs": ("XBT/USD", "XBT/USD")},
        {"pairs": ("XBTUSD",)},
        {"depths": (42,)},
        {"depths": (10, 1000), "book_levels": 500},
    ],
)
def test_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MarketSimulator(**kwargs)


def test_bad_step() -> None:
    with pytest.raises(ValueError):
        MarketSimulator().step(0)
    with pytest.raises(TypeError):
        MarketSimulator("XBT/USD")


# -- end to end through the fake exchange, both backends, virtual time ---------


@pytest.mark.anyio
async def test_live_book_stays_valid_on_the_simulated_exchange() -> None:
    sim = MarketSimulator(seed=9, depths=(10,))
    market = anyio.CancelScope()

    async def run() -> None:
        with market:
            await run_market(server, sim)

    server: FakeKrakenServer
    async with (
        open_fake_kraken(pairs=sim.pairs, snapshot_provider=sim.snapshot) as server,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(run)
        async with open_kraken(server.url) as conn, conn.book("XBT/USD") as book:
            with anyio.fail_after(10):
                await book.wait_valid()
            start, states = anyio.current_time(), 0
            with anyio.fail_after(100):
                async for state in book:
                    assert state.valid and len(state.asks) == len(state.bids) == 10
                    states += 1
                    if anyio.current_time() - start > 30:  # virtual seconds
                        break
            assert book.checksum_mismatches == 0 and book.malformed == 0
            assert book.resyncs == 0 and book.book.updates > 150 and states > 50

            # Stop the market; once a pong is back, everything before it was read.
            market.cancel()
            with anyio.fail_after(10):
                await conn.ping()
                while _levels(book.book) != _expected(sim, "XBT/USD", 10):
                    await book.__anext__()
            assert book.book.checksum == sim.checksum("XBT/USD")


@pytest.mark.anyio
async def test_a_corrupt_checksum_resyncs_the_live_book() -> None:
    sim = MarketSimulator(seed=10, depths=(10, 25))
    async with (
        open_fake_kraken(pairs=sim.pairs, snapshot_provider=sim.snapshot) as server,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(run_market, server, sim)
        async with (
            open_kraken(server.url) as conn,
            conn.messages() as notices,
            conn.book("XBT/USD") as book,
            conn.book("ETH/USD", 25) as other,
        ):
            with anyio.fail_after(10):
                await book.wait_valid()
                await other.wait_valid()
            sim.corrupt_next_checksum("XBT/USD", depth=10)
            with anyio.fail_after(10):
                async for msg in notices:
                    if isinstance(msg, BookResync):
                        break
            assert (msg.pair, msg.depth, msg.reason) == ("XBT/USD", 10, "checksum")
            with anyio.fail_after(10):
                await book.wait_valid()
                await book.__anext__()  # and it follows the market again
            assert book.checksum_mismatches == 1 and book.resyncs == 1
            assert other.valid and other.resyncs == 0 and other.checksum_mismatches == 0
        tg.cancel_scope.cancel()
