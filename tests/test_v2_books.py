"""conn.book() and conn.l3_book() on v2 against the fake's ``/v2`` (both
backends, virtual time): the precision path from ``instrument``, a mismatch
resyncing one symbol while another stays live, the L3 queue."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import next_of

from kraky_anyio import BookResync, v2
from kraky_anyio.book_engine import Verdict
from kraky_anyio.testing.server import open_fake_kraken
from kraky_anyio.testing.v2_messages import encode as v2_encode
from kraky_anyio.v2.live_books import L2BookEngine, L3View
from kraky_anyio.v2.messages import decode
from kraky_anyio.v2.render import book_checksum, level3_checksum

pytestmark = pytest.mark.anyio

FIXTURE = (
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "kraken-v2-book10-btcusd.json"
)
D = Decimal


def pair(symbol: str, pp: int, qp: int) -> dict[str, Any]:
    base, quote = symbol.split("/")
    return {
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "status": "online",
        "price_precision": pp,
        "qty_precision": qp,
        "price_increment": D(1).scaleb(-pp),
        "qty_increment": D(1).scaleb(-qp),
        "qty_min": D("0.0001"),
    }


INSTRUMENT = {"assets": [], "pairs": [pair("BTC/USD", 1, 8), pair("ETH/USD", 2, 8)]}
PRECISION = {"BTC/USD": (1, 8), "ETH/USD": (2, 8)}
Levels = list[tuple[Decimal, Decimal]]


def l2_entry(symbol: str, asks: Levels, bids: Levels, book_asks: Levels, book_bids: Levels) -> Any:
    """An entry carrying ``asks``/``bids``, checksummed over the whole book after it."""
    pp, qp = PRECISION[symbol]
    return {
        "symbol": symbol,
        "bids": [{"price": p, "qty": q} for p, q in bids],
        "asks": [{"price": p, "qty": q} for p, q in asks],
        "checksum": book_checksum(book_asks, book_bids, pp, qp),
    }


ASKS: dict[str, Levels] = {
    "BTC/USD": [(D("100.1"), D("1.00000000")), (D("100.5"), D("0.00000050"))],
    "ETH/USD": [(D("10.01"), D("2.00000000"))],
}
BIDS: dict[str, Levels] = {
    "BTC/USD": [(D("99.9"), D("0.00000001")), (D("99.0"), D("3.50000000"))],
    "ETH/USD": [(D("9.99"), D("1.00000000"))],
}


def provider(fixture: dict[str, Any] | None = None) -> Any:
    def snapshot(channel: str, symbol: str | None, params: dict[str, Any]) -> list[Any]:
        if channel == "instrument":
            return [INSTRUMENT]
        if channel == "book" and fixture is not None:
            return [fixture["init"]["data"]]
        if channel == "book" and symbol is not None:
            asks, bids = ASKS[symbol], BIDS[symbol]
            return [[l2_entry(symbol, asks, bids, asks, bids)]]
        return []

    return snapshot


async def test_the_fixture_verifies_through_the_precision_path() -> None:
    # Re-saved through floats ("qty": 4.0): only BTC/USD's precision (1, 8),
    # from the instrument channel, restores the 510 checksums.
    if not FIXTURE.exists():
        pytest.skip(f"the shared fixtures are missing: {FIXTURE}")
    fixture = json.loads(FIXTURE.read_text(), parse_float=Decimal)
    async with (
        open_fake_kraken(v2_snapshot_provider=provider(fixture)) as server,
        v2.open_kraken(server.v2_url) as conn,
        conn.messages() as notices,
    ):
        with anyio.fail_after(600):
            async with conn.book("BTC/USD", 10) as book:
                await book.wait_valid()
                for update in fixture["updates"]:
                    await server.publish_v2("book", "BTC/USD", update["data"])
                while book.book.updates < len(fixture["updates"]):
                    await anext(book)
                assert book.valid and book.resyncs == 0 and book.checksum_mismatches == 0
                last = fixture["updates"][-1]["data"][0]["checksum"]
                assert book.book.raw.checksum == last  # type: ignore[attr-defined]
            assert ("instrument", None) not in server.sessions[0].session.subscriptions
            assert conn.protocol.instruments["BTC/USD"].qty_precision == 8
        assert not [m for m in notices.receive_nowait() if isinstance(m, BookResync)]


async def test_a_mismatch_resyncs_that_symbol_while_another_stays_live() -> None:
    async with (
        open_fake_kraken(v2_snapshot_provider=provider()) as server,
        v2.open_kraken(server.v2_url) as conn,
        conn.messages() as notices,
    ):
        with anyio.fail_after(600):
            async with conn.book("BTC/USD") as btc, conn.book("ETH/USD") as eth:
                await btc.wait_valid()
                await eth.wait_valid()
                assert btc.best_bid is not None and format(btc.best_bid.volume, "f") == (
                    "0.00000001"
                )
                assert btc.spread == D("0.2")
                eth_version = (await anext(eth)).version  # the snapshot's state
                bad = l2_entry("BTC/USD", [(D("100.2"), D("1.00000000"))], [], [], [])
                await server.publish_v2("book", "BTC/USD", [bad])
                resync = await next_of(notices, lambda m: isinstance(m, BookResync))
                assert (resync.pair, resync.depth, resync.reason) == ("BTC/USD", 10, "checksum")
                await btc.wait_valid()  # unsubscribed, subscribed, a new snapshot
                assert btc.resyncs == 1 and btc.checksum_mismatches == 1
                # ETH/USD was never touched and still takes updates.
                asks = [(D("10.01"), D("1.50000000"))]
                good = l2_entry("ETH/USD", asks, [], asks, BIDS["ETH/USD"])
                await server.publish_v2("book", "ETH/USD", [good])
                state = await anext(eth)
                assert state.version > eth_version and eth.resyncs == 0
                assert eth.best_ask is not None and eth.best_ask.volume == D("1.5")
        books = [
            (f["method"], f["params"]["symbol"])
            for f in server.all_received()
            if f.get("params", {}).get("channel") == "book"
        ]
        assert books == [
            ("subscribe", ["BTC/USD"]),
            ("subscribe", ["ETH/USD"]),
            ("unsubscribe", ["BTC/USD"]),
            ("subscribe", ["BTC/USD"]),
            ("unsubscribe", ["ETH/USD"]),
            ("unsubscribe", ["BTC/USD"]),
        ]


async def test_given_precision_skips_the_instrument_channel_and_depth_is_checked() -> None:
    async with (
        open_fake_kraken(v2_snapshot_provider=provider()) as server,
        v2.open_kraken(server.v2_url) as conn,
    ):
        with pytest.raises(ValueError, match="depth"):
            conn.book("BTC/USD", 15)
        with pytest.raises(ValueError, match="depth"):
            conn.l3_book("BTC/USD", 25)
        with anyio.fail_after(600):
            async with conn.book("BTC/USD", price_precision=1, qty_precision=8) as book:
                await book.wait_valid()
        channels = {f["params"]["channel"] for f in server.all_received() if "params" in f}
        assert channels == {"book"}


async def test_l3_book_keeps_the_queue_and_the_l2_view() -> None:
    pp, qp = 1, 8
    o = ("O1", D("100.1"), D("1.00000000"), "t1")
    p = ("O2", D("100.1"), D("0.50000000"), "t2")
    b = ("O3", D("99.9"), D("2.00000000"), "t3")

    def orders(items: list[tuple[str, Decimal, Decimal, str]]) -> list[dict[str, Any]]:
        return [
            {"order_id": i, "limit_price": lp, "order_qty": q, "timestamp": t}
            for i, lp, q, t in items
        ]

    def snapshot(channel: str, symbol: str | None, params: dict[str, Any]) -> list[Any]:
        if channel != "level3":
            return []
        entry = {
            "symbol": symbol,
            "checksum": level3_checksum([[o, p]], [[b]], pp, qp),
            "bids": orders([b]),
            "asks": orders([o, p]),
        }
        return [[entry]]

    async with (
        open_fake_kraken(v2_snapshot_provider=snapshot, valid_tokens={"l3"}) as server,
        v2.open_kraken(server.v2_url, token="l3") as conn,
    ):
        with anyio.fail_after(600):
            async with conn.l3_book("BTC/USD", price_precision=pp, qty_precision=qp) as book:
                view = await anext(book)  # the snapshot's state
                assert isinstance(view, L3View)
                assert [x.order_id for x in view.l3_asks[0].orders] == ["O1", "O2"]
                assert book.best_ask is not None and book.best_ask.volume == D("1.5")
                # modify O1 in place: the queue order is kept.
                o2 = ("O1", D("100.1"), D("0.25000000"), "t4")
                update = {
                    "symbol": "BTC/USD",
                    "checksum": level3_checksum([[o2, p]], [[b]], pp, qp),
                    "bids": [],
                    "asks": [{**orders([o2])[0], "event": "modify"}],
                }
                await server.publish_v2("level3", "BTC/USD", [update])
                await anext(book)
                assert [x.order_qty for x in view.l3_asks[0].orders] == [D("0.25"), D("0.5")]
                assert book.best_ask is not None and book.best_ask.volume == D("0.75")
                assert view.updates == 1
        sub = next(f for f in server.all_received() if f.get("method") == "subscribe")
        assert sub["params"] == {
            "channel": "level3",
            "symbol": ["BTC/USD"],
            "depth": 10,
            "token": "l3",
        }


def test_the_l2_engine_judges_each_message_without_a_loop() -> None:
    engine = L2BookEngine("BTC/USD", 10, price_precision=1, qty_precision=8)
    asks, bids = ASKS["BTC/USD"], BIDS["BTC/USD"]

    def frame(kind: str, entry: Any) -> Any:
        return decode(v2_encode({"channel": "book", "type": kind, "data": [entry]}))

    update = l2_entry("BTC/USD", [(D("100.1"), D("0"))], [], asks[1:], bids)
    assert engine.apply(frame("update", update)) is Verdict.NOT_MINE  # before the snapshot
    assert engine.apply(frame("snapshot", l2_entry("BTC/USD", asks, bids, asks, bids))) is (
        Verdict.SNAPSHOT
    )
    assert engine.apply(decode('{"channel":"heartbeat"}')) is Verdict.NOT_MINE
    assert engine.apply(frame("update", update)) is Verdict.APPLIED
    assert engine.book.best_ask == (D("100.5"), D("0.00000050"))
    bad = {**update, "asks": [{"price": D("-1"), "qty": D("1")}]}
    assert engine.apply(frame("update", bad)) is Verdict.MALFORMED
    wrong = {**update, "asks": [], "checksum": 1}
    assert engine.apply(frame("update", wrong)) is Verdict.MISMATCH
    engine.reset()
    assert not engine.book.valid and engine.book.resyncs == 1
