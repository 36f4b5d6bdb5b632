"""Trading through open_kraken against the fake exchange's matching engine,
on asyncio and trio, on virtual time; then the engine alone (sans-I/O)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import anyio
import looptime
import pytest
from helpers import drop_and_wait_reconnect, next_of

from kraky_anyio import (
    Connected,
    Disconnected,
    KrakenConnection,
    KrakenError,
    OrderOutcomeUnknownError,
    SubscriptionLost,
    open_kraken,
)
from kraky_anyio.sequence import SequenceStatus, SequenceTracker
from kraky_anyio.testing.engine import (
    DEFAULT_ACCOUNT,
    ERR_CANCEL_ONLY,
    ERR_NO_REFERENCE_PRICE,
    ERR_ORDER_MINIMUM,
    ERR_POST_ONLY,
    ERR_RATE_LIMIT,
    ERR_UNKNOWN_ORDER,
    ERR_UNKNOWN_PAIR,
    FakeMatchingEngine,
)
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.testing.session import (
    ERR_INVALID_SESSION,
    ERR_INVALID_TOKEN,
    FakeKrakenSession,
    OutgoingMessage,
)

TXID = re.compile(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")
TRADE_ID = re.compile(r"T[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
OPEN_ORDERS = {"name": "openOrders"}
OWN_TRADES = {"name": "ownTrades"}
PRIVATE = ("openOrders", "ownTrades")
REF_XBT = "30000"
# A limit buy below the reference price rests in the book.
RESTING = {"pair": "XBT/USD", "type": "buy", "ordertype": "limit", "volume": "0.01"}


# -- fixtures and helpers ------------------------------------------------------


@pytest.fixture
def engine() -> FakeMatchingEngine:
    return FakeMatchingEngine(reference_prices={"XBT/USD": REF_XBT, "ETH/USD": "2000"})


@pytest.fixture
async def server(engine: FakeMatchingEngine) -> AsyncIterator[FakeKrakenServer]:
    async with open_fake_kraken(order_handler=engine) as srv:
        yield srv


def received(server: FakeKrakenServer, event: str) -> list[dict[str, Any]]:
    return [f for f in server.all_received() if isinstance(f, dict) and f.get("event") == event]


def is_private(msg: Any) -> bool:
    return isinstance(msg, list) and len(msg) == 3 and msg[1] in PRIVATE


def order_update(msg: Any, txid: str, status: str | None = None) -> bool:
    """Is ``msg`` an openOrders message about ``txid`` (with ``status``)?"""
    if not is_private(msg) or msg[1] != "openOrders":
        return False
    for item in msg[0]:
        fields = item.get(txid)
        if fields is not None and (status is None or fields.get("status") == status):
            return True
    return False


async def subscribe_private(conn: KrakenConnection, server: FakeKrakenServer) -> None:
    with anyio.fail_after(10):
        await conn.wait_connected()
        await conn.subscribe(OPEN_ORDERS)
        await conn.subscribe(OWN_TRADES)
        await server.wait_for_subscription("openOrders", None)
        await server.wait_for_subscription("ownTrades", None)


def token_counter() -> tuple[Callable[[], Any], list[str]]:
    """An async token provider returning tok-1, tok-2, ... and the list of
    tokens it handed out."""
    issued: list[str] = []

    async def provider() -> str:
        issued.append(f"tok-{len(issued) + 1}")
        return issued[-1]

    return provider, issued


# -- every order method, ok and error --------------------------------------------


@pytest.mark.anyio
async def test_add_order_ok_sends_decimal_strings(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with open_kraken(server.url, token="tok-1") as conn:
        with anyio.fail_after(10):
            reply = await conn.add_order(
                pair="XBT/USD",
                type="buy",
                ordertype="limit",
                volume="0.01",
                price="4000",
                userref=7,
                reqid=42,
            )
    assert TXID.fullmatch(reply["txid"])
    assert reply == {
        "descr": "buy 0.01000000 XBTUSD @ limit 4000",
        "event": "addOrderStatus",
        "reqid": 42,
        "status": "ok",
        "txid": reply["txid"],
    }
    [frame] = received(server, "addOrder")
    assert frame == {
        "event": "addOrder",
        "token": "tok-1",
        "pair": "XBT/USD",
        "type": "buy",
        "ordertype": "limit",
        "volume": "0.01",
        "price": "4000",
        "userref": "7",
        "reqid": 42,
    }
    order = engine.orders[reply["txid"]]
    assert (order.status, order.volume, order.price, order.userref) == (
        "open",
        Decimal("0.01"),
        Decimal("4000"),
        7,
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("volume", "price", "wire_volume", "wire_price"),
    [
        (Decimal("0.0100"), Decimal("4000.50"), "0.0100", "4000.50"),
        (Decimal("1E-3"), Decimal("4E+3"), "0.001", "4000"),
        (0.1, 4000.5, "0.1", "4000.5"),
        (0.00015, 1e16, "0.00015", "10000000000000000"),
        (3, 4000, "3", "4000"),
    ],
)
async def test_decimal_and_float_inputs_have_no_artefacts(
    server: FakeKrakenServer,
    engine: FakeMatchingEngine,
    volume: Any,
    price: Any,
    wire_volume: str,
    wire_price: str,
) -> None:
    async with open_kraken(server.url, token="tok-1") as conn:
        with anyio.fail_after(10):
            # Never crossing the reference price: the order rests and can be edited.
            side = "sell" if Decimal(wire_price) > Decimal(REF_XBT) else "buy"
            reply = await conn.add_order(
                pair="XBT/USD", type=side, ordertype="limit", volume=volume, price=price
            )
            edited = await conn.edit_order(
                orderid=reply["txid"], pair="XBT/USD", volume=volume, price=price
            )
    [frame] = received(server, "addOrder")
    [edit] = received(server, "editOrder")
    for sent in (frame, edit):
        assert (sent["volume"], sent["price"]) == (wire_volume, wire_price)
    # The engine parsed exactly what was meant.
    assert engine.orders[edited["txid"]].volume == Decimal(wire_volume)
    assert engine.orders[edited["txid"]].price == Decimal(wire_price)


@pytest.mark.anyio
async def test_every_order_method_ok(server: FakeKrakenServer, engine: FakeMatchingEngine) -> None:
    async with open_kraken(server.url, token="tok-1") as conn:
        with anyio.fail_after(10):
            first = await conn.add_order(**RESTING, price="25000")
            second = await conn.add_order(**RESTING, price="26000")
            edited = await conn.edit_order(
                orderid=first["txid"], pair="XBT/USD", price="25500", reqid=3
            )
            cancelled = await conn.cancel_order(txid=second["txid"], reqid=4)
            await conn.add_order(**RESTING, price="20000")
            cancel_all = await conn.cancel_all(reqid=5)
            after = await conn.cancel_all_orders_after(timeout=60, reqid=6)
            off = await conn.cancel_all_orders_after(timeout=0, reqid=7)
    assert edited == {
        "descr": "order edited price = 25500.00000000 volume = 0.01000000",
        "event": "editOrderStatus",
        "originaltxid": first["txid"],
        "reqid": 3,
        "status": "ok",
        "txid": edited["txid"],
    }
    assert TXID.fullmatch(edited["txid"]) and edited["txid"] != first["txid"]
    assert engine.orders[first["txid"]].status == "canceled"
    assert engine.orders[first["txid"]].cancel_reason == "Order replaced"
    assert cancelled == [{"event": "cancelOrderStatus", "reqid": 4, "status": "ok"}]
    # The edited order and the 20000 one were open; the second was cancelled.
    assert cancel_all == {"count": 2, "event": "cancelAllStatus", "reqid": 5, "status": "ok"}
    assert engine.open_orders() == []
    assert ISO.fullmatch(after["currentTime"]) and ISO.fullmatch(after["triggerTime"])
    now = datetime.fromisoformat(after["currentTime"].replace("Z", "+00:00"))
    trigger = datetime.fromisoformat(after["triggerTime"].replace("Z", "+00:00"))
    assert (trigger - now).total_seconds() == 60
    assert (off["triggerTime"], off["status"], off["reqid"]) == ("0", "ok", 7)
    assert ISO.fullmatch(off["currentTime"])
    assert engine.dead_man_switch() is None
    assert [f["event"] for f in server.all_received()] == [
        "addOrder",
        "addOrder",
        "editOrder",
        "cancelOrder",
        "addOrder",
        "cancelAll",
        "cancelAllOrdersAfter",
        "cancelAllOrdersAfter",
    ]


@pytest.mark.anyio
async def test_validate_only_places_nothing(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with open_kraken(server.url, token="tok-1") as conn:
        with anyio.fail_after(10):
            reply = await conn.add_order(**RESTING, price="25000", validate=True)
    assert reply == {
        "descr": "buy 0.01000000 XBTUSD @ limit 25000",
        "event": "addOrderStatus",
        "reqid": reply["reqid"],
        "status": "ok",
    }
    assert received(server, "addOrder")[0]["validate"] == "true"
    assert engine.orders == {}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"pair": "NOPE/USD"}, ERR_UNKNOWN_PAIR),
        ({"volume": "0.00001"}, ERR_ORDER_MINIMUM),
        ({"ordertype": "stop-loss"}, "EGeneral:Invalid arguments:ordertype"),
        ({"ordertype": "limit", "price": None}, "EGeneral:Invalid arguments:price"),
        ({"pair": "SOL/USD", "ordertype": "market"}, ERR_NO_REFERENCE_PRICE),
    ],
)
async def test_add_order_rejected(
    server: FakeKrakenServer,
    engine: FakeMatchingEngine,
    fields: dict[str, Any],
    error: str,
) -> None:
    args: dict[str, Any] = {**RESTING, "price": "25000", **fields}
    async with open_kraken(server.url, token="tok-1") as conn:
        with anyio.fail_after(10):
            with pytest.raises(KrakenError) as info:
                await conn.add_order(**args, reqid=11)
            assert await conn.ping()  # the connection goes on
    assert info.value.error_message == error
    assert info.value.replies == [
        {"errorMessage": error, "event": "addOrderStatus", "reqid": 11, "status": "error"}
    ]
    assert engine.orders == {}


@pytest.mark.anyio
async def test_every_order_method_error(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with open_kraken(server.url, token="tok-1") as conn:
        with anyio.fail_after(10):
            with pytest.raises(KrakenError, match="EOrder:Unknown order") as info:
                await conn.edit_order(orderid="OAAAAA-BBBBB-CCCCCC", pair="XBT/USD", price="1")
            assert info.value.replies[0]["event"] == "editOrderStatus"
            with pytest.raises(KrakenError, match="EOrder:Unknown order") as info:
                await conn.cancel_order(txid="OAAAAA-BBBBB-CCCCCC")
            assert info.value.replies == [
                {
                    "errorMessage": ERR_UNKNOWN_ORDER,
                    "event": "cancelOrderStatus",
                    "reqid": info.value.replies[0]["reqid"],
                    "status": "error",
                }
            ]
            engine.expire_token("tok-1")
            with pytest.raises(KrakenError) as info:
                await conn.cancel_all()
            assert info.value.error_message == ERR_INVALID_SESSION
            assert info.value.replies[0]["event"] == "cancelAllStatus"
            with pytest.raises(KrakenError) as info:
                await conn.cancel_all_orders_after(timeout=60)
            assert info.value.error_message == ERR_INVALID_SESSION
            assert info.value.replies[0]["event"] == "cancelAllOrdersAfterStatus"
            with pytest.raises(KrakenError) as info:
                await conn.add_order(**RESTING, price="1")
            assert info.value.error_message == ERR_INVALID_SESSION
            # A fresh token is fine.
            reply = await conn.cancel_all(token="tok-2", reqid=99)
    assert reply == {"count": 0, "event": "cancelAllStatus", "reqid": 99, "status": "ok"}
    assert engine.dead_man_switch() is None
    assert conn.stats.kraken_errors == 5


@pytest.mark.anyio
async def test_cancel_three_with_one_unknown_carries_all_replies_in_order(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with open_kraken(server.url, token="tok-1") as conn:
        with anyio.fail_after(10):
            a = (await conn.add_order(**RESTING, price="25000"))["txid"]
            b = (await conn.add_order(**RESTING, price="25001"))["txid"]
            keep = (await conn.add_order(**RESTING, price="25002"))["txid"]
            unknown = "OUNKNO-WN000-000000"
            with pytest.raises(KrakenError) as info:
                await conn.cancel_order(txid=[a, unknown, b], reqid=9)
    assert info.value.error_message == ERR_UNKNOWN_ORDER
    assert info.value.replies == [
        {"event": "cancelOrderStatus", "reqid": 9, "status": "ok"},
        {
            "errorMessage": ERR_UNKNOWN_ORDER,
            "event": "cancelOrderStatus",
            "reqid": 9,
            "status": "error",
        },
        {"event": "cancelOrderStatus", "reqid": 9, "status": "ok"},
    ]
    assert [received(server, "cancelOrder")[0]["txid"]] == [[a, unknown, b]]
    assert (engine.orders[a].status, engine.orders[b].status) == ("canceled", "canceled")
    assert [o.txid for o in engine.open_orders()] == [keep]


@pytest.mark.anyio
async def test_cancel_all_counts_open_orders_only(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with open_kraken(server.url, token="tok-1") as conn:
        with anyio.fail_after(10):
            for price in ("25000", "25001", "25002"):
                await conn.add_order(**RESTING, price=price)
            filled = await conn.add_order(pair="XBT/USD", type="buy", ordertype="market", volume=1)
            assert engine.orders[filled["txid"]].status == "closed"
            assert (await conn.cancel_all())["count"] == 3
            assert (await conn.cancel_all())["count"] == 0


@pytest.mark.anyio
async def test_rate_limit_surfaces_as_kraken_error(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with open_kraken(server.url, token="tok-1") as conn:
        with anyio.fail_after(10):
            a = (await conn.add_order(**RESTING, price="25000"))["txid"]
            b = (await conn.add_order(**RESTING, price="25001"))["txid"]
            engine.rate_limit_orders(2)
            with pytest.raises(KrakenError) as info:
                await conn.add_order(**RESTING, price="25002")
            assert info.value.error_message == ERR_RATE_LIMIT == "EOrder:Rate limit exceeded"
            with pytest.raises(KrakenError) as info:
                await conn.cancel_order(txid=[a, b])
            # One reply per txid, so the caller is not left waiting.
            assert [r["errorMessage"] for r in info.value.replies] == [ERR_RATE_LIMIT] * 2
            assert len(engine.open_orders()) == 2
            assert (await conn.cancel_order(txid=[a, b]))[1]["status"] == "ok"
    assert conn.stats.kraken_errors == 3
    assert conn.stats.rate_limit_errors == 0  # that counts {"Error": ...} frames only


# -- private feeds -----------------------------------------------------------------


@pytest.mark.anyio
async def test_fills_and_resting_orders_reach_private_feeds(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with (
        open_kraken(server.url, token="tok-1") as conn,
        conn.messages(channel=PRIVATE) as stream,
    ):
        await subscribe_private(conn, server)
        with anyio.fail_after(10):
            market = (
                await conn.add_order(
                    pair="XBT/USD", type="sell", ordertype="market", volume="0.5", userref=3
                )
            )["txid"]
            private = []
            while len(private) < 6:  # 2 snapshots, pending, open, trade, closed
                msg = await next_of(stream, is_private)
                private.append(msg)
        snapshots = {m[1]: m for m in private[:2]}
        assert snapshots == {
            "openOrders": [[], "openOrders", {"sequence": 1}],
            "ownTrades": [[], "ownTrades", {"sequence": 1}],
        }
        pending, opened, trade, closed = private[2:]
        [[pending_fields]] = [list(item.values()) for item in pending[0]]
        assert pending_fields["status"] == "pending"
        assert pending_fields["descr"]["order"] == "sell 0.50000000 XBT/USD @ market"
        assert (pending_fields["vol"], pending_fields["userref"]) == ("0.50000000", 3)
        assert opened == [
            [{market: {"status": "open", "userref": 3}}],
            "openOrders",
            {"sequence": 3},
        ]
        [[(trade_id, trade_fields)]] = [list(item.items()) for item in trade[0]]
        assert TRADE_ID.fullmatch(trade_id)
        assert trade[1:] == ["ownTrades", {"sequence": 2}]
        assert trade_fields["ordertxid"] == market
        assert (trade_fields["price"], trade_fields["vol"], trade_fields["cost"]) == (
            "30000.00000",
            "0.50000000",
            "15000.00000",
        )
        assert closed[0][0][market]["status"] == "closed"
        assert closed[0][0][market]["vol_exec"] == "0.50000000"
        assert closed[2] == {"sequence": 4}

        # A resting order fills when the market comes to it.
        with anyio.fail_after(10):
            resting = (await conn.add_order(**RESTING, price="29000"))["txid"]
            await next_of(stream, lambda m: order_update(m, resting, "open"))
        engine.set_reference_price("XBT/USD", "28500")
        with anyio.fail_after(10):
            msg = await next_of(stream, lambda m: order_update(m, resting, "closed"))
        assert msg[0][0][resting]["avg_price"] == "29000.00000"
    assert [t.ordertxid for t in engine.trades] == [market, resting]


@pytest.mark.anyio
async def test_private_data_reach_every_connection_of_the_account(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    engine.assign_token("other-tok", "someone else")
    async with (
        open_kraken(server.url, token="tok-a") as trader,
        open_kraken(server.url, token="tok-b") as watcher,
        open_kraken(server.url, token="other-tok") as stranger,
    ):
        with anyio.fail_after(10):
            for conn in (watcher, stranger):
                await conn.subscribe(OPEN_ORDERS)
            await server.wait_for(
                lambda: (
                    sum(("openOrders", None) in c.session.subscriptions for c in server.sessions)
                    == 2
                )
            )
        async with watcher.messages() as seen, stranger.messages() as not_seen:
            with anyio.fail_after(10):
                txid = (await trader.add_order(**RESTING, price="25000"))["txid"]
                await next_of(seen, lambda m: order_update(m, txid, "open"))
                # Anything queued to the stranger before is delivered before its pong.
                await stranger.ping()
            assert not any(order_update(m, txid) for m in not_seen.receive_nowait())
            assert engine.orders[txid].account == DEFAULT_ACCOUNT
            # Nor can it touch the order.
            with anyio.fail_after(10), pytest.raises(KrakenError, match="Unknown order"):
                await stranger.cancel_order(txid=txid)
            assert engine.orders[txid].status == "open"


@pytest.mark.anyio
async def test_dead_man_switch_fires_in_virtual_time_and_zero_disarms(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with (
        open_kraken(server.url, token="tok-1") as conn,
        conn.messages(channel="openOrders") as stream,
    ):
        await subscribe_private(conn, server)
        with anyio.fail_after(10):
            a = (await conn.add_order(**RESTING, price="25000"))["txid"]
            b = (await conn.add_order(**RESTING, price="25001"))["txid"]
            reply = await conn.cancel_all_orders_after(timeout=60)
        armed_at = anyio.current_time()
        assert engine.dead_man_switch() == pytest.approx(armed_at + 60, abs=1)
        await anyio.sleep(58)
        assert len(engine.open_orders()) == 2
        with anyio.fail_after(10):
            first = await next_of(stream, lambda m: order_update(m, a, "canceled"))
            second = await next_of(stream, lambda m: order_update(m, b, "canceled"))
        assert 59 <= anyio.current_time() - armed_at <= 61
        for msg, txid in ((first, a), (second, b)):
            assert msg[0][0][txid]["cancel_reason"] == "Dead man's switch"
        assert engine.open_orders() == []
        assert engine.dead_man_switch() is None
        assert reply["triggerTime"] != "0"

        # Disarmed with 0: nothing is cancelled, however long we wait.
        with anyio.fail_after(10):
            c = (await conn.add_order(**RESTING, price="25000"))["txid"]
            await conn.cancel_all_orders_after(timeout=30)
            off = await conn.cancel_all_orders_after(timeout=0)
        assert off["triggerTime"] == "0"
        await anyio.sleep(300)
        assert [o.txid for o in engine.open_orders()] == [c]

        # Re-arming moves the deadline.
        with anyio.fail_after(10):
            await conn.cancel_all_orders_after(timeout=30)
        await anyio.sleep(20)
        with anyio.fail_after(10):
            await conn.cancel_all_orders_after(timeout=30)
        rearmed_at = anyio.current_time()
        await anyio.sleep(25)  # past the first deadline
        assert [o.txid for o in engine.open_orders()] == [c]
        with anyio.fail_after(10):
            await next_of(stream, lambda m: order_update(m, c, "canceled"))
        assert 29 <= anyio.current_time() - rearmed_at <= 31


@pytest.mark.anyio
async def test_private_sequences_are_consecutive_and_restart_after_reconnect(
    server: FakeKrakenServer,
) -> None:
    tracker = SequenceTracker()
    verdicts: dict[int, list[tuple[str, int, SequenceStatus]]] = {}
    async with (
        open_kraken(server.url, token="tok-1") as conn,
        conn.messages(channel=PRIVATE) as stream,
    ):
        generation = 1

        async def take(n: int) -> None:
            nonlocal generation
            got = 0
            with anyio.fail_after(60):
                async for msg in stream:
                    if isinstance(msg, Connected):
                        generation = msg.generation
                    if is_private(msg):
                        check = tracker.feed(msg)
                        verdicts.setdefault(generation, []).append(
                            (check.channel, check.sequence, check.status)
                        )
                        got += 1
                        if got == n:
                            return

        await subscribe_private(conn, server)
        with anyio.fail_after(10):
            await conn.add_order(**RESTING, price="25000")  # pending, open
            await conn.add_order(pair="XBT/USD", type="buy", ordertype="market", volume=1)
        await take(2 + 2 + 4)  # snapshots; pending+open; pending+open+trade+closed
        await drop_and_wait_reconnect(server, conn)
        with anyio.fail_after(10):
            await server.wait_for_subscription("openOrders", None)
            await server.wait_for_subscription("ownTrades", None)
            await conn.cancel_all()
        await take(2 + 1)  # snapshots again, then the cancel
    for gen in (1, 2):
        for channel in PRIVATE:
            numbers = [seq for ch, seq, _ in verdicts[gen] if ch == channel]
            assert numbers == list(range(1, len(numbers) + 1)), (gen, channel, numbers)
    statuses = {
        (gen, ch): [status for c, _, status in verdicts[gen] if c == ch]
        for gen in (1, 2)
        for ch in PRIVATE
    }
    assert statuses[1, "openOrders"] == [SequenceStatus.FIRST] + [SequenceStatus.IN_ORDER] * 5
    assert statuses[1, "ownTrades"] == [SequenceStatus.FIRST, SequenceStatus.IN_ORDER]
    assert statuses[2, "openOrders"] == [SequenceStatus.RESTART, SequenceStatus.IN_ORDER]
    assert statuses[2, "ownTrades"] == [SequenceStatus.RESTART]


# -- tokens ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_token_omitted_uses_the_connection_token(server: FakeKrakenServer) -> None:
    provider, issued = token_counter()
    async with open_kraken(server.url, token="fixed-tok") as fixed:
        with anyio.fail_after(10):
            txid = (await fixed.add_order(**RESTING, price="25000"))["txid"]
            await fixed.edit_order(orderid=txid, pair="XBT/USD", price="25001")
            with pytest.raises(KrakenError, match="Unknown order"):
                await fixed.cancel_order(txid=["OAAAAA-AAAAA-AAAAAA"], token="explicit")
    assert [f["token"] for f in server.all_received()] == ["fixed-tok", "fixed-tok", "explicit"]
    async with open_kraken(server.url, token=provider) as fetched:
        with anyio.fail_after(10):
            await fetched.wait_connected()
            await fetched.cancel_all()
            await fetched.cancel_all_orders_after(timeout=0)
    assert issued == ["tok-1"]  # once per socket
    assert [f["token"] for f in server.all_received()[3:]] == ["tok-1", "tok-1"]


@pytest.mark.anyio
async def test_no_token_at_all_fails_before_sending(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn:
        await conn.wait_connected()
        calls: list[Any] = [
            conn.add_order(**RESTING, price="25000"),
            conn.edit_order(orderid="OAAAAA-AAAAA-AAAAAA", pair="XBT/USD"),
            conn.cancel_order(txid="OAAAAA-AAAAA-AAAAAA"),
            conn.cancel_all(),
            conn.cancel_all_orders_after(timeout=10),
        ]
        for call in calls:
            with pytest.raises(ValueError, match="token"):
                await call
        with anyio.fail_after(10):
            assert await conn.ping()
    assert [f["event"] for f in server.all_received()] == ["ping"]
    assert conn.stats.requests_sent == 1


@pytest.mark.anyio
async def test_token_refresh_across_three_reconnects(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    provider, issued = token_counter()
    expired_at: dict[str, int] = {}  # token -> index in all_received() when it expired
    async with open_kraken(server.url, token=provider) as conn, conn.messages() as notices:
        await subscribe_private(conn, server)
        for n in (2, 3, 4):
            old = f"tok-{n - 1}"
            engine.expire_token(old)
            expired_at[old] = len(server.all_received())
            await drop_and_wait_reconnect(server, conn)
            with anyio.fail_after(10):
                await server.wait_for_subscription("openOrders", None)
                await server.wait_for_subscription("ownTrades", None)
            replay = received(server, "subscribe")[-2:]
            assert sorted(f["subscription"]["name"] for f in replay) == sorted(PRIVATE)
            assert {f["subscription"]["token"] for f in replay} == {f"tok-{n}"}
            # The expired token is refused by the exchange...
            with anyio.fail_after(10), pytest.raises(KrakenError, match="Invalid session"):
                await conn.add_order(**RESTING, price="25000", token=old)
            # ...and the connection's own token is the fresh one.
            with anyio.fail_after(10):
                txid = (await conn.add_order(**RESTING, price="25000"))["txid"]
                await next_of(notices, lambda m, t=txid: order_update(m, t, "open"))
        assert not any(isinstance(m, SubscriptionLost) for m in notices.receive_nowait())
    assert issued == ["tok-1", "tok-2", "tok-3", "tok-4"]
    assert len(received(server, "subscribe")) == 2 * 4
    frames = server.all_received()
    for token, index in expired_at.items():
        for frame in frames[index:]:
            used = frame.get("token") or frame.get("subscription", {}).get("token")
            # Only the test's own deliberate use of the old token.
            assert used != token or (frame["event"] == "addOrder"), frame
    assert conn.stats.token_failures == 0
    assert conn.stats.replay_failures == 0


@pytest.mark.anyio
async def test_token_provider_failure_loses_private_subscriptions(
    server: FakeKrakenServer,
) -> None:
    calls = 0

    async def provider() -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("token service down")
        return f"tok-{calls}"

    async with open_kraken(server.url, token=provider) as conn:
        with anyio.fail_after(10):
            await conn.subscribe({"name": "ticker"}, pair=["XBT/USD"])
        await subscribe_private(conn, server)
        async with conn.messages() as stream:
            mark = len(server.all_received())
            await server.drop()
            lost = []
            with anyio.fail_after(60):
                while len(lost) < 2:
                    lost.append(await next_of(stream, lambda m: isinstance(m, SubscriptionLost)))
        with anyio.fail_after(60):
            await conn.wait_connected()
            await server.wait_for_subscription("ticker", "XBT/USD")
        assert sorted(n.subscription["name"] for n in lost) == sorted(PRIVATE)
        assert all(n.pair is None for n in lost)
        assert conn.stats.token_failures == 1
        assert conn.live_subscriptions() == [({"name": "ticker"}, "XBT/USD")]
        [connection] = server.sessions
        assert connection.session.subscriptions == {("ticker", "XBT/USD")}
        after = server.all_received()[mark:]
        assert [f["subscription"]["name"] for f in after if f["event"] == "subscribe"] == ["ticker"]
        # The next call that needs a token asks the provider again.
        with anyio.fail_after(10):
            await conn.cancel_all()
        assert received(server, "cancelAll")[0]["token"] == "tok-3"


@pytest.mark.anyio
async def test_order_made_while_disconnected_gets_the_new_sockets_token(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    """An order made with no socket open goes out with the token of the socket
    it is sent on, not the previous socket's (expired here)."""
    provider, issued = token_counter()
    async with open_kraken(server.url, token=provider) as conn:
        await subscribe_private(conn, server)  # socket 1: tok-1
        engine.expire_token("tok-1")
        server.refuse(None)
        async with conn.messages() as stream:
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Disconnected))
        outcome: dict[str, Any] = {}

        async def place() -> None:
            try:
                outcome["reply"] = await conn.add_order(**RESTING, price="25000")
            except KrakenError as exc:
                outcome["error"] = exc.error_message

        async with anyio.create_task_group() as tg:
            tg.start_soon(place)
            await anyio.wait_all_tasks_blocked()  # built and queued while disconnected
            server.refuse(0)
        [frame] = received(server, "addOrder")
        assert frame["token"] == issued[-1] == "tok-2"
        assert "error" not in outcome, outcome
        assert TXID.fullmatch(outcome["reply"]["txid"])


@pytest.mark.anyio
async def test_private_subscribes_before_the_first_socket_share_one_token(
    server: FakeKrakenServer,
) -> None:
    """One socket, one token: subscribes made before the first socket opens
    do not fetch a token of their own."""
    provider, issued = token_counter()
    async with open_kraken(server.url, token=provider) as conn:
        with anyio.fail_after(10):
            await conn.subscribe(OPEN_ORDERS)  # not connected yet
            await conn.subscribe(OWN_TRADES)
        assert conn.generation == 1
    assert {f["subscription"]["token"] for f in received(server, "subscribe")} == {"tok-1"}
    assert issued == ["tok-1"]


# -- orders and disconnects ----------------------------------------------------------


class ReplyLosingEngine(FakeMatchingEngine):
    """Executes every order but never answers reqid ``LOST`` (as if the socket
    died between Kraken's execution and its reply)."""

    LOST = 4242

    def __call__(
        self, session: FakeKrakenSession, request: dict[str, Any], now: float
    ) -> list[OutgoingMessage]:
        out = super().__call__(session, request, now)
        return [] if request.get("reqid") == self.LOST else out


@pytest.mark.anyio
@pytest.mark.parametrize("executed", [False, True], ids=["stalled", "executed"])
async def test_drop_with_an_order_in_flight_is_outcome_unknown_and_never_resent(
    executed: bool,
) -> None:
    engine = ReplyLosingEngine(reference_prices={"XBT/USD": REF_XBT})
    async with open_fake_kraken(order_handler=engine) as server:
        async with open_kraken(server.url, token="tok-1") as conn:
            await conn.wait_connected()
            if not executed:
                server.stall(True)

            async def drop_on_arrival() -> None:
                await server.wait_for_received(lambda f: f.get("reqid") == engine.LOST)
                await server.drop()

            async with anyio.create_task_group() as tg:
                tg.start_soon(drop_on_arrival)
                with anyio.fail_after(60), pytest.raises(OrderOutcomeUnknownError) as info:
                    await conn.add_order(**RESTING, price="25000", reqid=engine.LOST)
            assert "will not be re-sent" in str(info.value)
            assert conn.stats.replies_lost == 1
            server.stall(False)
            with anyio.fail_after(60):
                await conn.wait_connected()
                assert await conn.ping()  # anything queued before it has been written
                # Reconcile: the snapshot tells whether the order exists.
                async with conn.messages(channel="openOrders") as stream:
                    await conn.subscribe(OPEN_ORDERS)
                    snapshot = await next_of(stream, is_private)
            assert conn.generation == 2
        sent = received(server, "addOrder")
        assert [f["reqid"] for f in sent] == [engine.LOST]  # exactly once
        assert len(engine.orders) == int(executed)
        assert len(snapshot[0]) == int(executed)
        if executed:
            [txid] = engine.orders
            assert snapshot[0] == [{txid: snapshot[0][0][txid]}]


@pytest.mark.anyio
async def test_order_cancelled_before_the_wire_is_never_sent(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with open_kraken(server.url, token="tok-1") as conn:
        await conn.wait_connected()
        server.refuse(None)
        async with conn.messages() as stream:
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Disconnected))
        with anyio.move_on_after(5) as scope:
            await conn.add_order(**RESTING, price="25000")
        assert scope.cancelled_caught
        with anyio.move_on_after(5) as scope:
            await conn.cancel_all()
        assert scope.cancelled_caught
        assert conn.stats.requests_abandoned == 2
        server.refuse(0)
        with anyio.fail_after(120):
            await conn.wait_connected()
            # The writer sends in order: anything still queued would precede the pong.
            assert await conn.ping()
    assert [f["event"] for f in server.all_received()] == ["ping"]
    assert engine.orders == {}
    assert engine.requests == {}


# -- the engine alone, sans-I/O -------------------------------------------------------


def _session(engine: FakeMatchingEngine, **kwargs: Any) -> FakeKrakenSession:
    return FakeKrakenSession(order_handler=engine, **kwargs)


def _send(session: FakeKrakenSession, request: Any, now: float = 0.0) -> list[OutgoingMessage]:
    return session.on_text(json.dumps(request), now)


def _add(price: str = "25000", **fields: Any) -> dict[str, Any]:
    return {"event": "addOrder", "token": "t", **RESTING, "price": price, **fields}


def test_engine_ids_are_deterministic() -> None:
    def txids(seed: int) -> list[Any]:
        session = _session(FakeMatchingEngine(seed=seed))
        return [_send(session, _add())[0]["txid"] for _ in range(5)]

    assert txids(7) == txids(7)
    assert txids(7) != txids(8)
    assert len(set(txids(7))) == 5
    assert all(TXID.fullmatch(t) for t in txids(0))


def test_engine_reqid_echo_and_key_order() -> None:
    session = _session(FakeMatchingEngine())
    [without] = _send(session, _add(validate="true"))
    assert "reqid" not in without
    [zero] = _send(session, {**_add(), "reqid": 0})
    assert zero["reqid"] == 0
    assert list(zero) == sorted(zero)


def test_engine_token_checks() -> None:
    engine = FakeMatchingEngine()
    session = _session(engine, valid_tokens={"good", "old"})
    assert _send(session, _add(token=""))[0]["errorMessage"] == ERR_INVALID_TOKEN
    assert _send(session, {**_add(), "token": None})[0]["errorMessage"] == ERR_INVALID_TOKEN
    assert _send(session, _add(token="bad"))[0]["errorMessage"] == ERR_INVALID_SESSION
    assert _send(session, _add(token="old"))[0]["status"] == "ok"
    engine.expire_token("old")
    assert _send(session, _add(token="old"))[0]["errorMessage"] == ERR_INVALID_SESSION
    assert _send(session, _add(token="good"))[0]["status"] == "ok"


def test_engine_system_status() -> None:
    engine = FakeMatchingEngine(reference_prices={"XBT/USD": "30000"})
    session = _session(engine, status="cancel_only")
    assert _send(session, _add())[0]["errorMessage"] == ERR_CANCEL_ONLY
    assert _send(session, {"event": "cancelAll", "token": "t"})[0]["status"] == "ok"
    session.status = "post_only"
    market = _add(ordertype="market")
    assert _send(session, market)[0]["errorMessage"] == ERR_POST_ONLY
    assert _send(session, _add())[0]["status"] == "ok"
    session.status = "maintenance"
    assert _send(session, {"event": "cancelAll", "token": "t"})[0]["errorMessage"] == (
        "EService:Unavailable"
    )


def test_engine_cancel_order_one_reply_per_txid_in_order() -> None:
    session = _session(FakeMatchingEngine())
    a = _send(session, _add())[0]["txid"]
    replies = _send(
        session, {"event": "cancelOrder", "token": "t", "txid": ["nope", a, a], "reqid": 1}
    )
    assert [r.get("errorMessage", r["status"]) for r in replies] == [  # type: ignore[union-attr]
        ERR_UNKNOWN_ORDER,
        "ok",
        ERR_UNKNOWN_ORDER,  # already cancelled
    ]


def test_engine_accounts_are_separate() -> None:
    engine = FakeMatchingEngine(accounts={"alice-1": "alice", "alice-2": "alice"})
    session = _session(engine)
    a = _send(session, _add(token="alice-1"))[0]["txid"]
    b = _send(session, _add(token="bob"))[0]["txid"]
    cancel = {"event": "cancelAll", "token": "alice-2"}
    assert _send(session, cancel)[0]["count"] == 1
    assert engine.orders[a].status == "canceled" and engine.orders[b].status == "open"
    assert [o.txid for o in engine.open_orders("default")] == [b]


def test_engine_dead_man_switch_without_a_server_fires_on_the_next_request() -> None:
    engine = FakeMatchingEngine()
    session = _session(engine)
    _send(session, {"event": "subscribe", "subscription": {"name": "openOrders", "token": "t"}})
    a = _send(session, _add(), now=100.0)[0]["txid"]
    [reply] = _send(session, {"event": "cancelAllOrdersAfter", "token": "t", "timeout": 10}, 100.0)
    assert (reply["currentTime"], reply["triggerTime"]) == (
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:15Z",
    )
    assert engine.dead_man_switch() == 110.0
    assert _send(session, {"event": "cancelAll", "token": "x"}, 109.0)[0]["count"] == 1  # type: ignore[index]
    a2 = _send(session, _add(), now=109.5)[0]["txid"]
    out = _send(session, {"event": "cancelAllOrdersAfter", "token": "t", "timeout": 0}, 111.0)
    assert out[0]["triggerTime"] == "0"  # type: ignore[index]
    canceled = [m for m in out[1:] if order_update(m, a2, "canceled")]
    assert canceled and canceled[0][0][0][a2]["cancel_reason"] == "Dead man's switch"
    assert engine.orders[a].cancel_reason == "User requested"


def test_engine_bad_arguments() -> None:
    session = _session(FakeMatchingEngine())
    cases = {
        "EGeneral:Invalid arguments:type": _add(type="hold"),
        "EGeneral:Invalid arguments:volume": _add(volume=0.01),
        "EGeneral:Invalid arguments:price": _add(price="-5"),
        "EGeneral:Invalid arguments:userref": _add(userref="x"),
        "EGeneral:Invalid arguments:txid": {"event": "cancelOrder", "token": "t", "txid": []},
        "EGeneral:Invalid arguments:timeout": {
            "event": "cancelAllOrdersAfter",
            "token": "t",
            "timeout": "10",
        },
        ERR_UNKNOWN_PAIR: _add(pair="XBTUSD"),
    }
    for error, request in cases.items():
        assert _send(session, request)[0]["errorMessage"] == error, request  # type: ignore[index]


# -- bugs found on the way -------------------------------------------------------------


def _looptime_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop = looptime.make_event_loop_class(asyncio.SelectorEventLoop)()
    return loop


@pytest.mark.anyio
@pytest.mark.parametrize(
    "anyio_backend", [pytest.param(("asyncio", {"loop_factory": _looptime_loop}), id="looptime")]
)
async def test_idle_watchdog_does_not_freeze_a_quantised_clock(server: FakeKrakenServer) -> None:
    loop = asyncio.get_running_loop()
    finished = threading.Event()
    with anyio.CancelScope() as scope:

        def guard() -> None:  # real time: virtual time may be frozen
            if not finished.wait(3):
                loop.call_soon_threadsafe(scope.cancel)

        threading.Thread(target=guard, daemon=True).start()
        try:
            # A short idle_timeout only makes the rounding frequent (with the
            # default 5 s it is about one idle period in 200).
            async with open_kraken(server.url, idle_timeout=0.1, ping_timeout=0.1) as conn:
                await conn.wait_connected()
                await anyio.sleep(30)
        finally:
            finished.set()
    assert not scope.cancelled_caught, "virtual time froze"
    assert conn.stats.pings_sent > 100


@pytest.mark.anyio
async def test_krakys_spellings_through_the_connection(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    """The connection's methods take kraky's unambiguous spellings (the same
    rules as kraky_anyio.trading) and refuse the rest before sending."""
    async with open_kraken(server.url, token="tok-1") as conn:
        with anyio.fail_after(10):
            checked = await conn.add_order(**RESTING, price="25000", validate="true")
            placed = await conn.add_order(**RESTING, price="25000", oflags="post, fciq")
            edited = await conn.edit_order(orderid=[placed["txid"]], pair="XBT/USD", price="25001")
            after = await conn.cancel_all_orders_after(timeout=60.0)
            with pytest.raises(ValueError, match="GTC, GTD or IOC"):
                await conn.add_order(**RESTING, price="1", timeinforce="FOK")
            with pytest.raises(ValueError, match="whole seconds"):
                await conn.cancel_all_orders_after(timeout=0.5)
    assert checked["status"] == "ok" and "txid" not in checked
    assert engine.orders[placed["txid"]].status == "canceled"  # replaced by the edit
    assert engine.orders[edited["txid"]].price == Decimal("25001")
    assert after["status"] == "ok"
    sent = [
        m for m in server.all_received() if isinstance(m, dict) and m.get("event") == "addOrder"
    ]
    assert [m.get("validate") for m in sent] == ["true", None]
    assert sent[1]["oflags"] == "post,fciq"
