"""The market simulator in Kraken v2: its frames checked by the client's own
decoder and v2 books (sans-I/O), then end to end on the fake exchange's
``/v2`` path with a plain WebSocket client, on asyncio and trio, virtual time."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import anyio
import pytest

from kraky_anyio.testing.market import MarketSimulator, V2Publication, run_market
from kraky_anyio.testing.market_book import SimulatedBook
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.testing.v2_messages import JsonNumber, encode
from kraky_anyio.testing.v2_session import FakeKrakenV2Session
from kraky_anyio.transport import WebSocket, connect_websocket
from kraky_anyio.v2 import Book, Level3Book, decode, render
from kraky_anyio.v2.messages import (
    BookMessage,
    InstrumentMessage,
    Level3Message,
    OHLCMessage,
    Response,
    TickerMessage,
    TradeMessage,
)

NUMBER = re.compile(rb'"(price|qty|limit_price|order_qty|bid|ask|bid_qty|ask_qty|last)":([^,}]+)')
ORDER_ID = re.compile(r"^O[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}$")


def _frame(pub: V2Publication, kind: str = "update") -> bytes:
    if isinstance(pub.data, bytes):
        return pub.data
    return encode({"channel": pub.channel, "type": kind, "data": pub.data}).encode()


def _books(sim: MarketSimulator, symbol: str) -> dict[tuple[str, int], Book | Level3Book]:
    books: dict[tuple[str, int], Book | Level3Book] = {}
    for depth in sim.depths:
        books["book", depth] = Book(symbol, depth)
        if depth in (10, 100, 1000):
            books["level3", depth] = Level3Book(symbol, depth)
    for (channel, depth), book in books.items():
        (snapshot,) = sim.v2_snapshot(channel, symbol, {"depth": depth})
        assert book.feed(decode(snapshot)).ok
    return books


# -- sans-I/O ------------------------------------------------------------------


def test_v1_stream_is_byte_identical_to_before_v2() -> None:
    """The v1 streams of two seeds hash as they did before v2 was added,
    whether the v2 messages are written or not."""
    sim = MarketSimulator(seed=7)
    pubs = [p for _ in range(300) for p in sim.step()]
    digest = hashlib.sha256(json.dumps(pubs).encode()).hexdigest()
    assert digest == "e84e1a7598ab0d26f1b9202d868f91dfac2450bdf0bab0b5ba1d863439c5a912"
    sim = MarketSimulator(["XBT/USD"], seed=3, depths=(10, 100))
    pubs = [p for _ in range(300) for p in sim.advance(1.0).v1]
    digest = hashlib.sha256(json.dumps(pubs).encode()).hexdigest()
    assert digest == "22af58fee0d1d752268712169256d013b0f672d1a075a5c3c00cd119538ccde0"


def test_every_v2_book_and_level3_depth_verifies_with_late_joiners() -> None:
    sim = MarketSimulator(["XBT/USD"], seed=1)
    books = _books(sim, "BTC/USD")
    seen: Counter[str] = Counter()
    for step in range(600):
        if step % 200 == 100:  # a subscriber joining mid-stream gets a consistent snapshot
            books.update(_books(sim, "BTC/USD"))
            seen["late joiners"] += 1
        for pub in sim.advance().v2:
            message = decode(_frame(pub))
            if pub.channel not in ("book", "level3"):
                continue
            assert pub.params is not None
            assert books[pub.channel, pub.params["depth"]].feed(message).ok
            if isinstance(message, Level3Message):
                entry = message.data[0]
                seen.update(str(o.event) for o in (*entry.asks, *entry.bids))
    assert seen["add"] and seen["modify"] and seen["delete"] and seen["late joiners"] == 3
    for (channel, depth), book in books.items():
        assert book.valid and book.version > 100
        assert len(book.asks) == len(book.bids) == depth
        assert book.checksum == sim.v2_checksum("BTC/USD", channel)
    # The L3 book's aggregated view is the L2 book, level for level.
    for depth in (10, 100, 1000):
        l3, l2 = books["level3", depth], books["book", depth]
        assert isinstance(l3, Level3Book) and isinstance(l2, Book)
        assert l3.l2_asks() == l2.asks and l3.l2_bids() == l2.bids
        ids = [o.order_id for side in (l3.asks, l3.bids) for lv in side for o in lv.orders]
        assert len(ids) == len(set(ids)) and all(ORDER_ID.match(i) for i in ids)


def test_the_simulators_checksums_equal_render_py() -> None:
    """The simulator sums integers; render.py and the client read the text."""
    sim = MarketSimulator(["ETH/USD", "XRP/USD"], seed=2, depths=(10,))
    for _ in range(50):
        sim.advance()
    for symbol in sim.symbols:
        (frame,) = sim.v2_snapshot("book", symbol, {"depth": 10})
        message = decode(frame)
        assert isinstance(message, BookMessage)
        (entry,) = message.data
        pair = {p.symbol: p for p in sim_pairs(sim)}[symbol]
        asks, bids = ([(lv.price, lv.qty) for lv in side] for side in (entry.asks, entry.bids))
        expected = render.book_checksum(asks, bids, pair.price_precision, pair.qty_precision)
        assert entry.checksum == sim.v2_checksum(symbol) == expected


def sim_pairs(sim: MarketSimulator) -> list[Any]:
    (data,) = sim.v2_snapshot("instrument", None, {})
    message = decode(encode({"channel": "instrument", "type": "snapshot", "data": data}))
    assert isinstance(message, InstrumentMessage)
    return message.data.pairs


def test_numbers_are_written_at_the_pairs_precision() -> None:
    sim = MarketSimulator(["XBT/USD", "ETH/USD", "XRP/USD"], seed=6, depths=(10, 25))
    precision = {p.symbol: (p.price_precision, p.qty_precision) for p in sim_pairs(sim)}
    assert precision == {"BTC/USD": (1, 8), "ETH/USD": (2, 8), "XRP/USD": (5, 8)}
    frames = [_frame(p) for _ in range(300) for p in sim.advance().v2]
    snapshots = [
        _frame(V2Publication(channel, symbol, data), "snapshot")
        for symbol in sim.symbols
        for channel in ("book", "level3", "ticker", "trade", "ohlc")
        for data in sim.v2_snapshot(channel, symbol, {"depth": 10, "interval": 5})
    ]
    counted: Counter[str] = Counter()
    for raw in frames + snapshots:
        message = decode(raw)
        symbol = json.loads(raw)["data"][0]["symbol"]
        pp, qp = precision[symbol]
        for name, text in NUMBER.findall(raw):
            places = qp if name.endswith(b"qty") else pp
            shape = rb"\d+\.\d{%d}" % places if places else rb"\d+"
            assert re.fullmatch(shape, text), (name, text)
            counted[getattr(message, "channel", "?")] += 1
    assert set(counted) == {"book", "level3", "ticker", "trade"}, counted
    # Kraken's instrument numbers are in the shortest form, exponent included.
    (instrument,) = sim.v2_snapshot("instrument", None, {})
    text = encode({"channel": "instrument", "type": "snapshot", "data": instrument})
    assert '"qty_increment":1e-08' in text and '"price_increment":1e-05' in text
    assert '"price_increment":0.1,' in text and '"cost_min":0.5' in text


def test_the_ticker_is_the_books_touch() -> None:
    sim = MarketSimulator(["XBT/USD"], seed=4, depths=(10,))
    book = _books(sim, "BTC/USD")["book", 10]
    assert isinstance(book, Book)
    triggers: Counter[str] = Counter()
    for _ in range(300):
        for pub in sim.advance().v2:
            message = decode(_frame(pub))
            if isinstance(message, BookMessage):
                assert book.feed(message).ok
            elif isinstance(message, TickerMessage):
                assert pub.params is not None
                triggers[pub.params["event_trigger"]] += 1
                (ticker,) = message.data
                assert book.best_bid is not None and book.best_ask is not None
                assert (ticker.bid, ticker.bid_qty) == (book.best_bid.price, book.best_bid.qty)
                assert (ticker.ask, ticker.ask_qty) == (book.best_ask.price, book.best_ask.qty)
                assert ticker.low <= ticker.last <= ticker.high
                pct = ticker.change * 100 / (ticker.last - ticker.change)
                assert ticker.change_pct == pct.quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert triggers["bbo"] > 100 and triggers["trades"] > 10


def test_level3_queues_fill_from_the_front() -> None:
    """Price-time priority: a fill deletes the front orders and modifies the
    next; a cancel touches any order; new volume joins the back."""
    book = SimulatedBook("XBT/USD", 0, 1, (10,), 10)
    asks = book.asks
    for qty in (100, 200, 300):
        book.set_level(asks, 500, sum(range(100, qty + 1, 100)), "1700000000.000001")
    book.publish_event([], None, 1)
    ids = [o[0] for o in asks.l3.queues[500]]
    out: list[V2Publication] = []
    book.set_level(asks, 500, 600 - 150, "1700000000.000002", fill=True)
    book.publish_event([], out, 2_000_000)
    level3 = [decode(p.data) for p in out if p.channel == "level3"]
    assert isinstance(level3[0], Level3Message)
    events = [(o.event, o.order_id, o.order_qty) for o in level3[0].data[0].asks]
    assert events == [
        ("delete", ids[0], Decimal("0.00000100")),
        ("modify", ids[1], Decimal("0.00000150")),
    ]
    assert [o[0] for o in asks.l3.queues[500]] == ids[1:]
    book.set_level(asks, 500, 450 + 70, "1700000000.000003")
    assert [o[0] for o in asks.l3.queues[500]][:2] == ids[1:] and asks.l3.queues[500][2][1] == 70
    book.set_level(asks, 500, 0, "1700000000.000004")
    assert 500 not in asks.l3.queues


def test_corrupt_next_v2_checksum() -> None:
    sim = MarketSimulator(["XBT/USD"], seed=5, depths=(10, 25))
    books = _books(sim, "BTC/USD")
    sim.corrupt_next_v2_checksum("XBT/USD", 25)
    sim.corrupt_next_v2_checksum("BTC/USD", 10, channel="level3")
    bad: list[tuple[str, int]] = []
    for _ in range(50):
        for pub in sim.advance().v2:
            if pub.channel in ("book", "level3"):
                assert pub.params is not None
                key = (pub.channel, pub.params["depth"])
                if books[key].valid and not books[key].feed(decode(pub.data)).ok:
                    bad.append(key)
        # Resubscribe between steps, as a client's snapshot falls between them.
        books.update({k: b for k, b in _books(sim, "BTC/USD").items() if not books[k].valid})
    assert bad == [("book", 25), ("level3", 10)]
    with pytest.raises(ValueError):
        sim.corrupt_next_v2_checksum("BTC/USD", 100)
    with pytest.raises(ValueError):
        sim.corrupt_next_v2_checksum("BTC/USD", channel="trade")
    with pytest.raises(ValueError):
        sim.corrupt_next_v2_checksum("SOL/USD")


def test_v2_snapshot_provider_answers() -> None:
    sim = MarketSimulator(["XBT/USD"], seed=0, depths=(10, 25))
    assert sim.symbols == ("BTC/USD",)
    assert sim.v2_snapshot("book", "BTC/USD", {"depth": 100}) == []  # not simulated
    assert sim.v2_snapshot("level3", "BTC/USD", {"depth": 100}) == []
    assert sim.v2_snapshot("ticker", "ETH/USD", {}) == []
    assert sim.v2_snapshot("trade", "BTC/USD", {"snapshot": True}) == []  # no trade yet
    assert sim.v2_snapshot("executions", None, {}) == []
    (candle,) = sim.v2_snapshot("ohlc", "BTC/USD", {"interval": 60})
    message = decode(encode({"channel": "ohlc", "type": "snapshot", "data": candle}))
    assert isinstance(message, OHLCMessage) and message.data[0].trades == 0
    while not sim.v2_snapshot("trade", "BTC/USD", {}):
        sim.advance()
    for _ in range(600):
        sim.advance()
    (trades,) = sim.v2_snapshot("trade", "BTC/USD", {})
    message = decode(encode({"channel": "trade", "type": "snapshot", "data": trades}))
    assert isinstance(message, TradeMessage) and len(message.data) == 50
    assert [t.trade_id for t in message.data] == sorted({t.trade_id for t in message.data})


def test_session_publishes_by_params_and_takes_written_frames() -> None:
    session = FakeKrakenV2Session()
    sub = {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 25}}
    session.on_text(json.dumps(sub), 0.0)
    assert session.publish("book", "BTC/USD", b"{}", params={"depth": 10}) == []
    assert session.publish("book", "BTC/USD", b'{"x":1}', params={"depth": 25}) == [b'{"x":1}']
    assert session.encode(b'{"x":1}') == '{"x":1}'
    with pytest.raises(ValueError):
        session.publish("executions", None, b"{}")
    assert encode({"n": JsonNumber("2.5e-05")}) == '{"n":2.5e-05}'
    with pytest.raises(ValueError):
        JsonNumber("1E-8x")


# -- end to end on /v2 -----------------------------------------------------------


class Reader:
    """Reads raw frames from a plain WebSocket, decodes every one."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.pending: list[str | bytes] = []

    async def next(self) -> tuple[str, Any]:
        while not self.pending:
            self.pending.extend(await self.ws.receive_batch())
        raw = self.pending.pop(0)
        assert isinstance(raw, str)
        return raw, decode(raw)

    async def send(self, method: str, **params: Any) -> None:
        await self.ws.send_text(json.dumps({"method": method, "params": params}))


@asynccontextmanager
async def _market(
    sim: MarketSimulator, interval: float | None = 1.0
) -> AsyncIterator[tuple[FakeKrakenServer, anyio.CancelScope]]:
    """A fake exchange with ``sim`` on it (stepped every ``interval``
    seconds, None: by the test), and the scope that stops the market."""
    market = anyio.CancelScope()

    async def run(server: FakeKrakenServer, interval: float) -> None:
        with market:
            await run_market(server, sim, interval=interval)

    async with (
        open_fake_kraken(
            pairs=sim.pairs,
            snapshot_provider=sim.snapshot,
            v2_snapshot_provider=sim.v2_snapshot,
            valid_tokens={"tok"},
        ) as server,
        anyio.create_task_group() as tg,
    ):
        if interval is not None:
            tg.start_soon(run, server, interval)
        yield server, market
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_an_hour_of_v2_market_data_verifies() -> None:
    """One virtual hour in 6-second steps: every frame decodes, every book and
    level3 checksum verifies, the ticker is the book's touch, the numbers'
    text is the instrument's precision; at the end the books are the market's."""
    sim = MarketSimulator(seed=11, depths=(10, 100))
    async with _market(sim, 6.0) as (server, market):
        ws = await connect_websocket(server.v2_url)
        reader = Reader(ws)
        await reader.send("subscribe", channel="instrument")
        await reader.send("subscribe", channel="book", symbol=["BTC/USD"], depth=10)
        await reader.send("subscribe", channel="book", symbol=["ETH/USD"], depth=100)
        await reader.send("subscribe", channel="level3", symbol=["BTC/USD"], depth=100, token="tok")
        await reader.send(
            "subscribe", channel="ticker", symbol=["BTC/USD", "ETH/USD"], event_trigger="bbo"
        )
        await reader.send("subscribe", channel="trade", symbol=["BTC/USD"], snapshot=True)
        await reader.send("subscribe", channel="ohlc", symbol=["ETH/USD"], interval=5)
        books: dict[tuple[str, str], Book | Level3Book] = {
            ("book", "BTC/USD"): Book("BTC/USD", 10),
            ("book", "ETH/USD"): Book("ETH/USD", 100),
            ("level3", "BTC/USD"): Level3Book("BTC/USD", 100),
        }
        precision: dict[str, int] = {}
        seen: Counter[str] = Counter()
        start = anyio.current_time()
        with anyio.fail_after(4000):
            while True:
                if market.cancel_called:
                    pass
                elif anyio.current_time() - start >= 3600:
                    # Stop the market; once the pong is back, everything was read.
                    market.cancel()
                    await ws.send_text('{"method":"ping"}')
                raw, message = await reader.next()
                seen[getattr(message, "channel", type(message).__name__)] += 1
                if isinstance(message, Response):
                    if message.method == "pong":
                        break
                    assert message.success, message
                elif isinstance(message, InstrumentMessage):
                    precision = {p.symbol: p.price_precision for p in message.data.pairs}
                elif isinstance(message, (BookMessage, Level3Message)):
                    (entry,) = message.data
                    assert books[message.channel, entry.symbol].feed(message).ok
                    # The instrument's precision is the numbers' text.
                    places = precision[entry.symbol]
                    for name, text in NUMBER.findall(raw.encode()):
                        decimals = 8 if name.endswith(b"qty") else places
                        assert re.fullmatch(rb"\d+\.\d{%d}" % decimals, text), text
                elif isinstance(message, TickerMessage):
                    (ticker,) = message.data
                    book = books["book", ticker.symbol]
                    assert isinstance(book, Book) and book.best_bid and book.best_ask
                    assert (ticker.bid, ticker.ask) == (book.best_bid.price, book.best_ask.price)
                    assert (ticker.bid_qty, ticker.ask_qty) == (
                        book.best_bid.qty,
                        book.best_ask.qty,
                    )
        assert (
            seen["Response"] == 8 + 1 and seen["instrument"] == 1 and seen["status"] == 1
        )  # acks, pong
        assert seen["book"] > 600 and seen["level3"] > 300 and seen["ticker"] > 300
        assert seen["trade"] > 30 and seen["ohlc"] > 30
        for key, book in books.items():
            assert book.valid and book.checksum == sim.v2_checksum(key[1], key[0])
        await ws.aclose()


@pytest.mark.anyio
async def test_unsubscribe_stops_the_data_and_level3_needs_a_token() -> None:
    sim = MarketSimulator(["XBT/USD"], seed=12, depths=(10,))
    async with _market(sim, interval=None) as (server, _):
        ws = await connect_websocket(server.v2_url)
        reader = Reader(ws)
        _, status = await reader.next()
        assert status.channel == "status"
        await reader.send("subscribe", channel="level3", symbol=["BTC/USD"])
        _, refused = await reader.next()
        assert isinstance(refused, Response) and refused.success is False

        async def steps(n: int) -> Counter[str]:
            for _ in range(n):
                for pub in sim.advance().v2:
                    await server.publish_v2(pub.channel, pub.symbol, pub.data, params=pub.params)
            await ws.send_text('{"method":"ping","req_id":99}')
            seen: Counter[str] = Counter()
            while True:
                _, message = await reader.next()
                if isinstance(message, Response) and message.method == "pong":
                    return seen
                seen[getattr(message, "channel", "response")] += 1

        await reader.send("subscribe", channel="book", symbol=["BTC/USD"])
        await reader.send("subscribe", channel="ticker", symbol=["BTC/USD"], event_trigger="bbo")
        with anyio.fail_after(60):
            await server.wait_for_subscription("book", "BTC/USD", api="v2")
            await server.wait_for_subscription("ticker", "BTC/USD", api="v2")
            seen = await steps(30)
            assert seen["book"] > 30 and seen["ticker"] > 5 and seen["response"] == 2, seen
            await reader.send("unsubscribe", channel="book", symbol=["BTC/USD"])
            session = server.sessions[0].session
            assert isinstance(session, FakeKrakenV2Session)
            await server.wait_for(lambda: not session.subscription_params("book", "BTC/USD"))
            seen = await steps(0)  # the ack, and what was queued before it
            assert seen["response"] == 1
            seen = await steps(30)
            assert seen["book"] == 0 and seen["ticker"] > 5
        await ws.aclose()


@pytest.mark.anyio
async def test_the_kraken_exchange_fixture_serves_v2(kraken_exchange: FakeKrakenServer) -> None:
    """The pytest plugin's exchange gives a v2 subscriber its snapshot, then updates."""
    with anyio.fail_after(60):
        ws = await connect_websocket(kraken_exchange.v2_url)
        reader = Reader(ws)
        await reader.send("subscribe", channel="book", symbol=["ETH/USD"], depth=25)
        book = Book("ETH/USD", 25)
        while book.updates < 5:
            _, message = await reader.next()
            if isinstance(message, BookMessage):
                assert book.feed(message).ok
        await ws.aclose()


# -- kraky-anyio serve -------------------------------------------------------------


def test_cli_serve_speaks_v2_on_the_v2_path() -> None:
    """``kraky-anyio serve`` (a real process, real time): a v2 book snapshot
    on ``<url>/v2`` verifies, and an update follows."""

    async def check() -> None:
        command = [sys.executable, "-m", "kraky_anyio", "serve", "--port", "0"]
        async with await anyio.open_process(command) as proc:
            try:
                with anyio.fail_after(60):
                    assert proc.stdout is not None
                    line = b""
                    while not line.endswith(b"\n"):
                        line += await proc.stdout.receive(1)
                    url = line.decode().strip()
                    assert url.startswith("ws://127.0.0.1:")
                    ws = await connect_websocket(url + "/v2")
                    reader = Reader(ws)
                    await reader.send("subscribe", channel="book", symbol=["BTC/USD"], depth=25)
                    book = Book("BTC/USD", 25)
                    while book.updates < 1:
                        _, message = await reader.next()
                        if isinstance(message, BookMessage):
                            assert book.feed(message).ok
                    await ws.aclose()
            finally:
                proc.terminate()

    anyio.run(check)
