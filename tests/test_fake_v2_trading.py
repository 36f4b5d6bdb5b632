"""The fake exchange's matching engine over Kraken v2: every trading method's
success and error shapes, ``executions``/``balances`` with sequences, the
dead man's switch and expiry on virtual time, Kraken's rate counter; over
loopback on asyncio and trio (virtual time on both: see conftest), through
a raw WebSocket or the client's ``request`` escape hatch."""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest

from kraky_anyio import KrakenError, open_kraken, v2
from kraky_anyio.testing.engine import ERR_NO_REFERENCE_PRICE, FakeMatchingEngine
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.testing.v2_messages import encode
from kraky_anyio.testing.v2_orders import ERR_DEADLINE, ERR_INSUFFICIENT_FUNDS
from kraky_anyio.testing.v2_private import wall_rfc3339
from kraky_anyio.transport import WebSocket, connect_websocket
from kraky_anyio.v2.messages import ExecutionsMessage

ORDER_ID = re.compile(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")
TOKEN, OTHER_TOKEN = "tok-1", "tok-other"
RESTING = {"order_type": "limit", "side": "buy", "symbol": "BTC/USD", "order_qty": Decimal("0.01")}
MARKET_SOL = {**RESTING, "symbol": "SOL/USD", "order_type": "market"}
_TIMEOUT = 10.0
_CLI_TIMEOUT = 30.0  # real seconds: a bound for the served process, never a synchronisation


@pytest.fixture
def engine() -> FakeMatchingEngine:
    return FakeMatchingEngine(
        reference_prices={"XBT/USD": "30000", "ETH/USD": "2000"},
        balances={"USD": "1000000", "BTC": "10", "ETH": "100"},
        accounts={OTHER_TOKEN: "other"},
    )


@pytest.fixture
async def server(engine: FakeMatchingEngine) -> AsyncIterator[FakeKrakenServer]:
    tokens = {TOKEN, "tok-2", OTHER_TOKEN}
    async with open_fake_kraken(order_handler=engine, valid_tokens=tokens) as srv:
        yield srv


class Client:
    """A raw v2 client: requests out, responses matched by ``req_id``,
    channel messages kept in arrival order for :meth:`channel`."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.pushed: list[dict[str, Any]] = []
        self._responses: list[dict[str, Any]] = []
        self._next_id = 100

    async def _read(self) -> None:
        with anyio.fail_after(_TIMEOUT):
            batch = await self.ws.receive_batch()
        for frame in batch:
            assert isinstance(frame, str)
            message = json.loads(frame, parse_float=Decimal)
            target = self._responses if "method" in message else self.pushed
            target.append(message)

    async def call(self, method: str, replies: int = 1, **params: Any) -> list[dict[str, Any]]:
        """Send ``method`` with ``params`` (and the token unless given), and
        return its ``replies`` responses."""
        self._next_id += 1
        req_id = self._next_id
        params.setdefault("token", TOKEN)
        return await self.raw({"method": method, "params": params, "req_id": req_id}, replies)

    async def raw(self, request: dict[str, Any], replies: int = 1) -> list[dict[str, Any]]:
        """Send ``request`` as is; its ``replies`` responses."""
        req_id = request["req_id"]
        await self.ws.send_text(encode(request))
        while sum(r.get("req_id") == req_id for r in self._responses) < replies:
            await self._read()
        mine = [r for r in self._responses if r.get("req_id") == req_id]
        self._responses = [r for r in self._responses if r.get("req_id") != req_id]
        return mine

    async def one(self, method: str, **params: Any) -> dict[str, Any]:
        [response] = await self.call(method, **params)
        return response

    async def channel(
        self, channel: str, match: Callable[[dict[str, Any]], bool] = lambda m: True
    ) -> dict[str, Any]:
        """The first kept message of ``channel`` matching ``match`` (removed)."""
        while True:
            for i, message in enumerate(self.pushed):
                if message.get("channel") == channel and match(message):
                    return self.pushed.pop(i)
            await self._read()

    async def subscribe(self, channel: str, **params: Any) -> dict[str, Any]:
        params.setdefault("token", TOKEN)
        ack = await self.one("subscribe", channel=channel, **params)
        assert ack["success"], ack
        return ack


@asynccontextmanager
async def client(server: FakeKrakenServer) -> AsyncIterator[Client]:
    ws = await connect_websocket(server.v2_url)
    try:
        c = Client(ws)
        status = await c.channel("status")
        assert status["data"][0]["system"] == "online"
        yield c
    finally:
        await ws.aclose()


def exec_types(message: dict[str, Any]) -> list[str]:
    return [entry.get("exec_type", "ratecount") for entry in message["data"]]


def about(order_id: str, exec_type: str) -> Callable[[dict[str, Any]], bool]:
    def match(message: dict[str, Any]) -> bool:
        return any(
            e.get("order_id") == order_id and e.get("exec_type") == exec_type
            for e in message["data"]
        )

    return match


# -- add_order through the client's escape hatch -----------------------------------


@pytest.mark.anyio
async def test_add_order_through_the_client_rests_fills_and_validates(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with v2.open_kraken(server.v2_url, token=TOKEN) as conn:
        with anyio.fail_after(_TIMEOUT):
            await conn.wait_connected()
            rest = await conn.request(
                "add_order",
                {
                    **RESTING,
                    "limit_price": Decimal("25000.5"),
                    "cl_ord_id": "grid-7",
                    "order_userref": 7,
                    "token": TOKEN,
                },
            )
            market = await conn.request(
                "add_order", {**RESTING, "order_type": "market", "token": TOKEN}
            )
            checked = await conn.request(
                "add_order", {**RESTING, "limit_price": 25000, "validate": True, "token": TOKEN}
            )
            with pytest.raises(KrakenError) as refused:
                await conn.request("add_order", {**RESTING, "token": TOKEN})
    assert rest.success and rest.result["cl_ord_id"] == "grid-7"
    assert rest.result["order_userref"] == 7
    order = engine.orders[rest.result["order_id"]]
    assert ORDER_ID.fullmatch(order.txid)
    assert (order.status, order.price, order.volume) == (
        "open",
        Decimal("25000.5"),
        Decimal("0.01"),
    )
    filled = engine.orders[market.result["order_id"]]
    assert (filled.status, filled.avg_price) == ("closed", Decimal(30000))
    assert checked.result == {"order_id": ""}
    assert len(engine.orders) == 2  # validate placed nothing
    assert refused.value.error_message == "EGeneral:Invalid arguments:limit_price"


@pytest.mark.anyio
async def test_numbers_must_be_json_numbers(server: FakeKrakenServer) -> None:
    async with client(server) as c:
        reply = await c.one("add_order", **{**RESTING, "limit_price": "25000"})
    assert reply["success"] is False
    assert reply["error"] == "EGeneral:Invalid arguments:Limit_price field must be a number_float"
    assert "result" not in reply


# -- every method, success shapes ----------------------------------------------------


@pytest.mark.anyio
async def test_amend_keeps_ids_edit_replaces_and_the_cancels_count(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with client(server) as c:
        first = await c.one("add_order", **RESTING, limit_price=25000, cl_ord_id="a")
        oid = first["result"]["order_id"]
        amended = await c.one("amend_order", order_id=oid, limit_price=Decimal("25010.5"))
        assert amended["success"] and amended["result"]["order_id"] == oid
        assert re.fullmatch(r"A[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}", amended["result"]["amend_id"])
        assert engine.orders[oid].price == Decimal("25010.5") and engine.orders[oid].is_open

        by_client_id = await c.one("amend_order", cl_ord_id="a", order_qty=Decimal("0.02"))
        assert by_client_id["result"]["order_id"] == oid
        assert by_client_id["result"]["cl_ord_id"] == "a"
        assert engine.orders[oid].volume == Decimal("0.02")

        edited = await c.one(
            "edit_order", order_id=oid, symbol="BTC/USD", limit_price=24000, order_qty=0.5
        )
        new = edited["result"]["order_id"]
        assert edited["result"] == {"order_id": new, "original_order_id": oid}
        assert (engine.orders[oid].status, engine.orders[oid].cancel_reason) == (
            "canceled",
            "Order replaced",
        )
        replacement = engine.orders[new]
        assert (replacement.price, replacement.volume) == (Decimal(24000), Decimal("0.5"))
        assert replacement.cl_ord_id == "a"

        batch = await c.one(
            "batch_add",
            symbol="BTC/USD",
            orders=[
                {"order_type": "limit", "side": "sell", "order_qty": 1, "limit_price": 40000},
                {
                    "order_type": "limit",
                    "side": "sell",
                    "order_qty": 1,
                    "limit_price": 41000,
                    "cl_ord_id": "b2",
                },
            ],
        )
        assert batch["success"] and isinstance(batch["result"], list)
        assert [set(r) for r in batch["result"]] == [{"order_id"}, {"order_id", "cl_ord_id"}]
        ids = [r["order_id"] for r in batch["result"]]
        assert all(engine.orders[i].is_open for i in ids)

        cancelled = await c.one("batch_cancel", orders=[ids[0], "b2"])
        assert cancelled["success"] and cancelled["orders_cancelled"] == 2
        assert "result" not in cancelled
        assert not any(engine.orders[i].is_open for i in ids)

        await c.one("add_order", **RESTING, limit_price=20000)
        everything = await c.one("cancel_all")
        assert everything["result"] == {"count": 2}
        assert engine.open_orders() == []


@pytest.mark.anyio
async def test_cancel_with_one_unknown_among_three(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with client(server) as c:
        a = (await c.one("add_order", **RESTING, limit_price=25000))["result"]["order_id"]
        b = (await c.one("add_order", **RESTING, limit_price=25001))["result"]["order_id"]
        keep = (await c.one("add_order", **RESTING, limit_price=25002))["result"]["order_id"]
        replies = await c.call("cancel_order", replies=3, order_id=[a, "OUNKNO-WNORD-ER0000", b])
    assert [r["req_id"] for r in replies] == [replies[0]["req_id"]] * 3
    assert [r["success"] for r in replies] == [True, False, True]
    assert replies[0]["result"] == {"order_id": a} and replies[2]["result"] == {"order_id": b}
    assert replies[1]["error"] == "EOrder:Unknown order"
    assert replies[1]["order_id"] == "OUNKNO-WNORD-ER0000" and "result" not in replies[1]
    assert [o.txid for o in engine.open_orders()] == [keep]


@pytest.mark.anyio
async def test_cancel_by_client_id_and_userref(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with client(server) as c:
        a = await c.one("add_order", **RESTING, limit_price=25000, cl_ord_id="x")
        await c.one("add_order", **RESTING, limit_price=25001, order_userref=5)
        await c.one("add_order", **RESTING, limit_price=25002, order_userref=5)
        replies = await c.call("cancel_order", replies=4, cl_ord_id=["x"], order_userref=[5, 6])
    assert replies[0]["result"] == {"order_id": a["result"]["order_id"], "cl_ord_id": "x"}
    assert [r["result"]["order_userref"] for r in replies[1:3]] == [5, 5]
    assert (replies[3]["error"], replies[3]["order_userref"]) == ("EOrder:Unknown order", 6)
    assert engine.open_orders() == []


# -- errors ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_error_shapes(server: FakeKrakenServer, engine: FakeMatchingEngine) -> None:
    limit = {**RESTING, "limit_price": 25000}
    async with client(server) as c:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("add_order", {**limit, "token": ""}, "EGeneral:Invalid arguments:token"),
            ("add_order", {**limit, "token": "nope"}, "ESession:Invalid session"),
            ("add_order", {**limit, "symbol": "BTC/XYZ"}, "EQuery:Unknown asset pair"),
            (
                "add_order",
                {**limit, "order_qty": Decimal("0.00001")},
                "EOrder:Order minimum not met",
            ),
            ("add_order", {**limit, "order_type": "wild"}, "EGeneral:Invalid arguments:order_type"),
            ("add_order", {**limit, "order_qty": 1000}, ERR_INSUFFICIENT_FUNDS),
            (
                "add_order",
                {**limit, "time_in_force": "gtd"},
                "EGeneral:Invalid arguments:expire_time",
            ),
            (
                "add_order",
                {
                    **RESTING,
                    "order_type": "iceberg",
                    "limit_price": 1,
                    "display_qty": Decimal("0.0001"),
                },
                "EGeneral:Invalid arguments:display_qty",
            ),
            (
                "amend_order",
                {"order_id": "OUNKNO-WNORD-ER0000", "order_qty": 1},
                "EOrder:Unknown order",
            ),
            (
                "edit_order",
                {"order_id": "OUNKNO-WNORD-ER0000", "symbol": "BTC/USD"},
                "EOrder:Unknown order",
            ),
            (
                "batch_add",
                {"symbol": "BTC/USD", "orders": [limit]},
                "EGeneral:Invalid arguments:orders",
            ),
            (
                "batch_cancel",
                {"orders": ["OUNKNO-WNORD-ER0000"]},
                "EGeneral:Invalid arguments:orders",
            ),
            ("cancel_all_orders_after", {"timeout": 86400}, "EGeneral:Invalid arguments:timeout"),
            ("cancel_order", {}, "EGeneral:Invalid arguments:order_id"),
            (
                "batch_add",
                {"symbol": "SOL/USD", "orders": [{**limit, "symbol": "SOL/USD"}, MARKET_SOL]},
                ERR_NO_REFERENCE_PRICE,
            ),
        ]
        for method, params, error in cases:
            reply = await c.one(method, **params)
            assert (reply["method"], reply["success"], reply.get("error")) == (method, False, error)
            assert "result" not in reply
        [no_params] = await c.raw({"method": "cancel_all", "req_id": 1})
        assert no_params["error"] == "EGeneral:Invalid arguments:params"
        # One bad order refuses the whole batch: nothing placed.
        batch = await c.one("batch_add", symbol="BTC/USD", orders=[limit, {**limit, "side": "up"}])
        assert batch["error"] == "EGeneral:Invalid arguments:side"
    assert engine.orders == {}


@pytest.mark.anyio
async def test_system_status_refuses_what_kraken_refuses(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with client(server) as c:
        oid = (await c.one("add_order", **RESTING, limit_price=25000))["result"]["order_id"]
        await server.set_status("cancel_only")
        await c.channel("status", lambda m: m["data"][0]["system"] == "cancel_only")
        refused = await c.one("add_order", **RESTING, limit_price=25000)
        assert refused["error"] == "EService:Market in cancel_only mode"
        assert (await c.one("cancel_order", order_id=[oid]))["success"]
        await server.set_status("post_only")
        await c.channel("status", lambda m: m["data"][0]["system"] == "post_only")
        market = await c.one("add_order", **{**RESTING, "order_type": "market"})
        assert market["error"] == "EService:Market in post_only mode"
        await server.set_status("maintenance")
        await c.channel("status", lambda m: m["data"][0]["system"] == "maintenance")
        assert (await c.one("cancel_all"))["error"] == "EService:Unavailable"
    assert engine.open_orders() == []


@pytest.mark.anyio
async def test_deadline_and_validate(server: FakeKrakenServer, engine: FakeMatchingEngine) -> None:
    async with client(server) as c:
        now = engine.wall_time(anyio.current_time())
        late = await c.one(
            "add_order", **RESTING, limit_price=25000, deadline=wall_rfc3339(now - 1)
        )
        assert late["error"] == ERR_DEADLINE
        far = await c.one(
            "add_order", **RESTING, limit_price=25000, deadline=wall_rfc3339(now + 61)
        )
        assert far["error"] == "EGeneral:Invalid arguments:deadline"
        assert engine.orders == {}
        ok = await c.one("add_order", **RESTING, limit_price=25000, deadline=wall_rfc3339(now + 5))
        assert ORDER_ID.fullmatch(ok["result"]["order_id"])
        batch = await c.one(
            "batch_add",
            symbol="BTC/USD",
            validate=True,
            orders=[{**RESTING, "limit_price": 1}, {**RESTING, "limit_price": 2}],
        )
        assert batch["result"] == [{"order_id": ""}, {"order_id": ""}]
        edit = await c.one(
            "edit_order",
            order_id=ok["result"]["order_id"],
            symbol="BTC/USD",
            order_qty=1,
            validate=True,
        )
        assert edit["result"] == {"order_id": "", "original_order_id": ok["result"]["order_id"]}
    assert len(engine.orders) == 1 and engine.orders[ok["result"]["order_id"]].volume == Decimal(
        "0.01"
    )


# -- executions and balances -------------------------------------------------------------


@pytest.mark.anyio
async def test_executions_and_balances_snapshots_then_updates_in_sequence(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with client(server) as c:
        resting = (await c.one("add_order", **RESTING, limit_price=25000))["result"]["order_id"]
        ack = await c.subscribe("executions", snap_trades=True)
        assert ack["result"] == {"channel": "executions", "snapshot": True, "maxratecount": 60}
        snapshot = await c.channel("executions")
        assert (snapshot["type"], snapshot["sequence"]) == ("snapshot", 1)
        [entry] = snapshot["data"]
        assert entry["order_id"] == resting
        assert (entry["order_status"], entry["symbol"], entry["side"]) == ("new", "BTC/USD", "buy")
        assert (entry["order_qty"], entry["limit_price"]) == (Decimal("0.01"), 25000)
        await c.subscribe("balances")
        balances = await c.channel("balances")
        assert (balances["type"], balances["sequence"]) == ("snapshot", 1)
        assert {e["asset"]: e["balance"] for e in balances["data"]} == {
            "BTC": 10,
            "ETH": 100,
            "USD": 1000000,
        }
        assert balances["data"][0]["wallets"] == [{"type": "spot", "id": "main", "balance": 10}]

        market = await c.one("add_order", **{**RESTING, "order_type": "market"})
        oid = market["result"]["order_id"]
        seen = [await c.channel("executions") for _ in range(4)]
        assert [exec_types(m) for m in seen] == [["pending_new"], ["new"], ["trade"], ["filled"]]
        assert [m["sequence"] for m in seen] == [2, 3, 4, 5]
        trade = seen[2]["data"][0]
        assert trade["order_id"] == oid and trade["exec_id"].startswith("T")
        assert (trade["last_qty"], trade["last_price"], trade["cost"]) == (
            Decimal("0.01"),
            30000,
            Decimal("300.00"),
        )
        assert trade["fees"] == [{"asset": "USD", "qty": Decimal("0.78")}]
        assert (trade["liquidity_ind"], trade["order_status"]) == ("t", "filled")
        filled = seen[3]["data"][0]
        assert (filled["cum_qty"], filled["avg_price"]) == (Decimal("0.01"), 30000)
        moved = await c.channel("balances")
        assert (moved["type"], moved["sequence"]) == ("update", 2)
        by_asset = {e["asset"]: e for e in moved["data"]}
        assert (by_asset["BTC"]["amount"], by_asset["BTC"]["balance"]) == (
            Decimal("0.01"),
            Decimal("10.01"),
        )
        usd = by_asset["USD"]
        assert (usd["amount"], usd["fee"], usd["balance"]) == (
            -300,
            Decimal("0.78"),
            Decimal("999699.22"),
        )
        assert usd["ref_id"] == trade["exec_id"] and usd["ledger_id"].startswith("L")
        assert usd["type"] == usd["category"] == "trade"

        # A resting order filled by the market moving is a maker fill at its price.
        engine.set_reference_price("XBT/USD", "24000")
        made = await c.channel("executions", about(resting, "trade"))
        assert (made["sequence"], made["data"][0]["liquidity_ind"]) == (6, "m")
        assert made["data"][0]["last_price"] == 25000
        assert (await c.channel("executions"))["sequence"] == 7  # filled

        # A late executions subscriber with snap_trades gets both trades.
        async with client(server) as late:
            await late.subscribe("executions", snap_trades=True, snap_orders=False)
            trades = (await late.channel("executions"))["data"]
        assert [t["exec_type"] for t in trades] == ["trade", "trade"]
        assert [t["trade_id"] for t in trades] == [1, 2]


@pytest.mark.anyio
async def test_private_data_reach_every_connection_of_the_account_v1_included(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with (
        client(server) as a,
        client(server) as b,
        client(server) as other,
        open_kraken(server.url, token="tok-2") as v1,
        v1.messages(channel="openOrders") as v1_orders,
    ):
        await a.subscribe("executions")
        await b.subscribe("executions", token="tok-2")
        await other.subscribe("executions", token=OTHER_TOKEN)
        for conn in (a, b, other):
            assert (await conn.channel("executions"))["type"] == "snapshot"
        with anyio.fail_after(_TIMEOUT):
            await v1.subscribe({"name": "openOrders"})
        oid = (await a.one("add_order", **RESTING, limit_price=25000))["result"]["order_id"]
        for conn in (a, b):
            got = await conn.channel("executions", about(oid, "new"))
            assert got["sequence"] == 3  # after the snapshot and pending_new
        with anyio.fail_after(_TIMEOUT):
            async for msg in v1_orders:
                if isinstance(msg, list) and any(oid in item for item in msg[0]):
                    break
        # The other account saw nothing of it: its next message is its own order.
        mine = await other.one("add_order", **RESTING, limit_price=24000, token=OTHER_TOKEN)
        first = await other.channel("executions")
        assert first["data"][0]["order_id"] == mine["result"]["order_id"]
        assert first["sequence"] == 2
        assert engine.orders[mine["result"]["order_id"]].account == "other"
        # ...and cannot cancel this one.
        refused = await other.call("cancel_order", order_id=[oid], token=OTHER_TOKEN)
        assert refused[0]["error"] == "EOrder:Unknown order"


@pytest.mark.anyio
async def test_order_status_false_and_ratecounter(server: FakeKrakenServer) -> None:
    async with client(server) as c:
        await c.subscribe("executions", order_status=False, ratecounter=True, snap_orders=False)
        assert (await c.channel("executions"))["data"] == []
        oid = (await c.one("add_order", **RESTING, limit_price=25000))["result"]["order_id"]
        new, count = await c.channel("executions"), await c.channel("executions")
        assert exec_types(new) == ["new"]  # no pending_new without order_status
        assert count["data"] == [
            {"symbol": "BTC/USD", "ratecount": 1, "timestamp": count["data"][0]["timestamp"]}
        ]
        await c.one("amend_order", order_id=oid, limit_price=25001)
        after_amend = await c.channel("executions")
        assert after_amend["data"][0]["ratecount"] == 5  # 1 + amend (1 + 3: younger than 5 s)
        assert [new["sequence"], count["sequence"], after_amend["sequence"]] == [2, 3, 4]
        await c.one("cancel_order", order_id=[oid])
        canceled, after_cancel = await c.channel("executions"), await c.channel("executions")
        assert exec_types(canceled) == ["canceled"]
        assert canceled["data"][0]["reason"] == "User requested"
        assert after_cancel["data"][0]["ratecount"] == 13  # cancel < 5 s: 8


@pytest.mark.anyio
async def test_bad_private_subscription_flags_are_refused(server: FakeKrakenServer) -> None:
    async with client(server) as c:
        reply = await c.one("subscribe", channel="executions", snap_orders="yes")
    assert reply["error"] == "EGeneral:Invalid arguments:snap_orders"


# -- time: the dead man's switch, expiry, effective time ------------------------------------


@pytest.mark.anyio
async def test_dead_man_switch_fires_in_virtual_time_and_zero_disarms(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with client(server) as c:
        await c.subscribe("executions")
        await c.channel("executions")
        a = (await c.one("add_order", **RESTING, limit_price=25000))["result"]["order_id"]
        armed = await c.one("cancel_all_orders_after", timeout=60)
        armed_at = anyio.current_time()
        assert armed["result"] == {
            "currentTime": engine.iso_time(armed_at),
            "triggerTime": engine.iso_time(armed_at + 60),
        }
        await anyio.sleep(59)
        assert engine.orders[a].is_open
        canceled = await c.channel("executions", about(a, "canceled"))
        assert 60 <= anyio.current_time() - armed_at < 61
        assert canceled["data"][0]["reason"] == "Dead man's switch"
        assert engine.dead_man_switch() is None

        b = (await c.one("add_order", **RESTING, limit_price=25000))["result"]["order_id"]
        await c.one("cancel_all_orders_after", timeout=30)
        off = await c.one("cancel_all_orders_after", timeout=0)
        assert off["result"]["triggerTime"] == "0"
        await anyio.sleep(300)
        assert [o.txid for o in engine.open_orders()] == [b]


@pytest.mark.anyio
async def test_expire_time_and_effective_time_fire_in_virtual_time(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with client(server) as c:
        await c.subscribe("executions", order_status=False)
        await c.channel("executions")
        start = anyio.current_time()
        wall = engine.wall_time(start)
        gtd = await c.one(
            "add_order",
            **RESTING,
            limit_price=25000,
            time_in_force="gtd",
            expire_time=wall_rfc3339(wall + 30),
        )
        later = await c.one(
            "add_order", **RESTING, limit_price=31000, effective_time=wall_rfc3339(wall + 10)
        )
        late_id = later["result"]["order_id"]
        assert engine.orders[late_id].is_open  # crosses, but not before its time
        filled = await c.channel("executions", about(late_id, "trade"))
        assert 10 <= anyio.current_time() - start < 11
        assert filled["data"][0]["last_price"] == 30000
        expired = await c.channel("executions", about(gtd["result"]["order_id"], "expired"))
        assert 30 <= anyio.current_time() - start < 31
        assert expired["data"][0]["order_status"] == "expired"
        assert engine.orders[gtd["result"]["order_id"]].status == "expired"


# -- Kraken's rate counter -----------------------------------------------------------------


@pytest.mark.anyio
async def test_rate_counter_refuses_the_61st_young_add_on_starter_and_recovers(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with client(server) as c:
        await c.subscribe("executions", ratecounter=True, order_status=False)
        await c.channel("executions")
        start = anyio.current_time()
        for _ in range(60):
            assert (await c.one("add_order", **RESTING, limit_price=20000))["success"]
        refused = await c.one("add_order", **RESTING, limit_price=20000)
        # Loopback in one process: the virtual clock did not move meanwhile.
        assert anyio.current_time() == start
        assert refused["error"] == "EOrder:Rate limit exceeded"
        assert engine.rate_count("BTC/USD") == 60  # the refusal was not charged
        assert engine.rate_count("ETH/USD") == 0  # per pair
        other_pair = await c.one("add_order", **{**RESTING, "symbol": "ETH/USD"}, limit_price=1000)
        assert other_pair["success"]
        eth = await c.channel("executions", lambda m: m["data"][0].get("symbol") == "ETH/USD")
        assert eth["data"][0]["ratecount"] == 1
        reports = [m for m in c.pushed if m["data"] and "ratecount" in m["data"][0]]
        assert [m["data"][0]["ratecount"] for m in reports][-2:] == [59, 60]

        await anyio.sleep(1)  # decays 1/s on starter
        assert engine.rate_count("BTC/USD") == 59
        assert (await c.one("add_order", **RESTING, limit_price=20000))["success"]
        # Validation failures are charged too, the refused ones are not.
        bad = await c.one("add_order", **{**RESTING, "order_type": "wild"})
        assert bad["error"] == "EOrder:Rate limit exceeded"
        await anyio.sleep(2)
        bad = await c.one("add_order", **{**RESTING, "order_type": "wild"})
        assert bad["error"] == "EGeneral:Invalid arguments:order_type"
        assert engine.rate_count("BTC/USD") == 59
        # Cancelling a young order costs 8: refused near the ceiling, the order stays.
        oid = engine.open_orders()[0].txid
        [cancel] = await c.call("cancel_order", order_id=[oid])
        assert (cancel["error"], cancel["order_id"]) == ("EOrder:Rate limit exceeded", oid)
        assert engine.orders[oid].is_open
        await anyio.sleep(60)
        assert engine.rate_count("BTC/USD") == 0
        await anyio.sleep(240)
        # Older than 5 minutes: a cancel is free.
        [cancel] = await c.call("cancel_order", order_id=[oid])
        assert cancel["success"] and engine.rate_count("BTC/USD") == 0


def _session(engine: FakeMatchingEngine) -> Any:
    from kraky_anyio.testing.v2_session import FakeKrakenV2Session

    return FakeKrakenV2Session(order_handler=engine)


def _send(session: Any, method: str, now: float = 0.0, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("token", TOKEN)
    frame = encode({"method": method, "params": params, "req_id": 1})
    return [json.loads(session.encode(m), parse_float=Decimal) for m in session.on_text(frame, now)]


def _result(session: Any, method: str, now: float = 0.0, **params: Any) -> Any:
    reply = _send(session, method, now, **params)[0]
    assert reply["success"], reply
    return reply["result"]


@pytest.mark.parametrize(
    ("tier", "ceiling"), [("starter", 60), ("intermediate", 125), ("pro", 180)]
)
def test_each_tier_has_its_ceiling(tier: str, ceiling: int) -> None:
    engine = FakeMatchingEngine(reference_prices={"BTC/USD": "30000"}, tier=tier)
    session = _session(engine)
    ack = _send(session, "subscribe", channel="executions")[0]
    assert ack["result"]["maxratecount"] == ceiling
    for _ in range(ceiling):
        _result(session, "add_order", **RESTING, limit_price=20000)
    assert _send(session, "add_order", **RESTING, limit_price=20000)[0]["error"] == (
        "EOrder:Rate limit exceeded"
    )
    assert engine.rate_count("BTC/USD", now=0.0) == ceiling


def test_no_tier_no_counter() -> None:
    engine = FakeMatchingEngine(reference_prices={"BTC/USD": "30000"}, tier=None)
    session = _session(engine)
    assert "maxratecount" not in _send(session, "subscribe", channel="executions")[0]["result"]
    for _ in range(100):
        _result(session, "add_order", **RESTING, limit_price=20000)
    assert engine.rate_count("BTC/USD", now=0.0) == 0
    with pytest.raises(ValueError, match="tier must be one of"):
        FakeMatchingEngine(tier="gold")


def test_amend_and_edit_cost_by_the_order_age() -> None:
    engine = FakeMatchingEngine(reference_prices={"BTC/USD": "30000"}, tier="pro")
    session = _session(engine)
    oid = _result(session, "add_order", **RESTING, limit_price=20000)["order_id"]
    _result(session, "amend_order", 12.0, order_id=oid, limit_price=20001)  # age 12: 1 + 1
    assert engine.rate_count("BTC/USD", now=12.0) == 2  # the add's 1 decayed away by then
    new = _result(session, "edit_order", 12.0, order_id=oid, symbol="BTC/USD", order_qty=1)
    assert engine.rate_count("BTC/USD", now=12.0) == 2 + 1 + 4  # edit at 12 s: 1 + 4
    assert new["original_order_id"] == oid


# -- order types (the engine alone, sans I/O) ---------------------------------------------------


def _engine() -> tuple[FakeMatchingEngine, Any]:
    engine = FakeMatchingEngine(
        reference_prices={"BTC/USD": "30000"}, balances={"USD": "1000000", "BTC": "10"}
    )
    session = _session(engine)
    _send(session, "subscribe", channel="executions")
    return engine, session


def _exec_log(session: Any, method: str, now: float = 0.0, **params: Any) -> list[Any]:
    """The response, then each executions entry sent, as (exec_type, entry)."""
    out = _send(session, method, now, **params)
    entries = [e for m in out[1:] if m.get("channel") == "executions" for e in m["data"]]
    return [out[0], [(e.get("exec_type"), e) for e in entries if "exec_type" in e]]


SELL = {**RESTING, "side": "sell"}


def test_stop_loss_and_take_profit_wait_for_their_trigger() -> None:
    engine, session = _engine()
    stop = _result(
        session, "add_order", **{**SELL, "order_type": "stop-loss"}, triggers={"price": 29000}
    )["order_id"]
    take = _result(
        session, "add_order", **{**SELL, "order_type": "take-profit"}, triggers={"price": 31000}
    )["order_id"]
    stop_limit = _result(
        session,
        "add_order",
        **{**SELL, "order_type": "stop-loss-limit"},
        limit_price=28500,
        triggers={"price": 29000, "reference": "index"},
    )["order_id"]
    assert all(engine.orders[o].is_open for o in (stop, take, stop_limit))
    engine.set_reference_price("BTC/USD", "30500")  # neither trigger reached
    assert all(engine.orders[o].is_open for o in (stop, take, stop_limit))
    engine.set_reference_price("BTC/USD", "28900")  # the stops fire
    assert (engine.orders[stop].status, engine.orders[stop].avg_price) == ("closed", 28900)
    assert engine.orders[stop_limit].status == "closed"  # sell limit 28500 <= 28900
    assert engine.orders[take].is_open
    engine.set_reference_price("XBT/USD", "31000")  # either spelling moves the market
    assert (engine.orders[take].status, engine.orders[take].avg_price) == ("closed", 31000)


def test_trailing_stop_follows_the_best_price() -> None:
    engine, session = _engine()
    oid = _result(
        session,
        "add_order",
        **{**SELL, "order_type": "trailing-stop"},
        triggers={"price": 5, "price_type": "pct"},
    )["order_id"]
    engine.set_reference_price("BTC/USD", "32000")  # new high: triggers at 30400
    engine.set_reference_price("BTC/USD", "30500")
    assert engine.orders[oid].is_open
    engine.set_reference_price("BTC/USD", "30400")
    assert (engine.orders[oid].status, engine.orders[oid].avg_price) == ("closed", 30400)
    static = _send(
        session, "add_order", **{**SELL, "order_type": "trailing-stop"}, triggers={"price": 5}
    )[0]
    assert static["error"] == "EGeneral:Invalid arguments:triggers.price_type"
    missing = _send(session, "add_order", **{**SELL, "order_type": "stop-loss"})[0]
    assert missing["error"] == "EGeneral:Invalid arguments:triggers"


def test_post_only_ioc_iceberg_cash_qty_and_fee_preference() -> None:
    engine, session = _engine()
    reply, log = _exec_log(session, "add_order", **RESTING, limit_price=31000, post_only=True)
    assert [t for t, _ in log] == ["pending_new", "new", "canceled"]
    assert log[-1][1]["reason"] == "Post only order"
    assert engine.orders[reply["result"]["order_id"]].status == "canceled"

    reply, log = _exec_log(session, "add_order", **RESTING, limit_price=29000, time_in_force="ioc")
    assert [t for t, _ in log] == ["pending_new", "new", "canceled"]
    assert log[-1][1]["reason"] == "Immediate or cancel"

    reply, log = _exec_log(
        session,
        "add_order",
        **{**RESTING, "order_type": "iceberg", "order_qty": Decimal("1.5")},
        limit_price=29000,
        display_qty=Decimal("0.1"),
    )
    assert log[0][1]["display_qty"] == Decimal("0.1") and log[0][1]["order_type"] == "iceberg"
    assert engine.orders[reply["result"]["order_id"]].is_open

    cash = {"order_type": "market", "side": "buy", "symbol": "BTC/USD", "cash_order_qty": 300}
    order_id = _result(session, "add_order", **cash)["order_id"]
    assert engine.orders[order_id].volume == Decimal("0.01")

    reply, log = _exec_log(session, "add_order", **{**SELL, "order_type": "market"})
    trade = dict(log)["trade"]
    assert trade["fees"] == [{"asset": "BTC", "qty": Decimal("0.000026")}]  # sells: base
    reply, log = _exec_log(
        session, "add_order", **{**SELL, "order_type": "market"}, fee_preference="quote"
    )
    assert dict(log)["trade"]["fees"] == [{"asset": "USD", "qty": Decimal("0.78")}]

    settle = _result(session, "add_order", **{**SELL, "order_type": "settle-position"})
    assert engine.orders[settle["order_id"]].status == "closed"
    for bad, error in [
        ({"stp_type": "cancel_all"}, "stp_type"),
        ({"post_only": True, "time_in_force": "ioc"}, "post_only"),
        ({"reduce_only": "yes"}, "reduce_only"),
        ({"order_userref": 2**31}, "order_userref"),
        ({"cash_order_qty": 10}, "order_qty"),
    ]:
        reply = _send(session, "add_order", **RESTING, limit_price=20000, **bad)[0]
        assert reply["error"] == f"EGeneral:Invalid arguments:{error}", bad


def test_amend_into_the_market_fills_and_post_only_refuses_it() -> None:
    engine, session = _engine()
    oid = _result(session, "add_order", **RESTING, limit_price=20000)["order_id"]
    maker = _result(session, "add_order", **RESTING, limit_price=20000, post_only=True)["order_id"]
    refused = _send(session, "amend_order", order_id=maker, limit_price=31000)[0]
    assert refused["error"] == "EOrder:Post only order"
    assert engine.orders[maker].price == 20000
    reply, log = _exec_log(session, "amend_order", order_id=oid, limit_price=31000)
    assert reply["result"]["order_id"] == oid
    assert [t for t, _ in log] == ["amended", "trade", "filled"]
    assert engine.orders[oid].status == "closed"
    nothing = _send(session, "amend_order", order_id=maker)[0]
    assert nothing["error"] == "EGeneral:Invalid arguments:order_qty"


# -- kraky-anyio serve --trading -------------------------------------------------------------


def _line(stream: Any, deadline: float) -> str:
    """One line of an unbuffered pipe, or fail at ``deadline`` (monotonic)."""
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            pytest.fail(f"no complete line before the deadline; got {line!r}")
        chunk = stream.read(1)
        if not chunk:
            pytest.fail(f"end of output; got {line!r}")
        line += chunk
    return line.decode().strip()


async def _trade_against(v2_url: str, token: str) -> None:
    async with (
        v2.open_kraken(v2_url, token=token) as conn,
        conn.messages(channel="executions") as executions,
    ):
        with anyio.fail_after(_CLI_TIMEOUT):
            [ack] = await conn.subscribe("executions", token=token)
            assert ack.result["maxratecount"] == 60
            reply = await conn.request(
                "add_order",
                {
                    "order_type": "market",
                    "side": "buy",
                    "symbol": "BTC/USD",
                    "order_qty": Decimal("0.01"),
                    "token": token,
                },
            )
            order_id = reply.result["order_id"]
            async for message in executions:
                if isinstance(message, ExecutionsMessage) and any(
                    e.order_id == order_id and e.exec_type == "filled" for e in message.data
                ):
                    break
            with pytest.raises(KrakenError) as refused:
                await conn.request("cancel_all", {"token": "not-the-test-token"})
    assert refused.value.error_message == "ESession:Invalid session"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_serve_trading_end_to_end(backend: str) -> None:
    """``serve --trading`` prints both URLs and the test token, then trades
    v2 with that token only."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [sys.executable, "-m", "kraky_anyio", "serve", "--trading", "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--backend", backend], stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + _CLI_TIMEOUT
        url, v2_url, token = (_line(proc.stdout, deadline) for _ in range(3))
        assert (url, v2_url, token) == (
            f"ws://127.0.0.1:{port}",
            f"ws://127.0.0.1:{port}/v2",
            "kraky-test-token",
        )
        anyio.run(_trade_against, v2_url, token, backend=backend)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=_CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    text = err.decode()
    assert "Traceback" not in text, text
    assert "'kraky-test-token' only" in text and "tier starter, ceiling 60" in text


# -- more refusals and sharing ------------------------------------------------------------


@pytest.mark.anyio
async def test_a_refused_cancel_answers_once_per_id_naming_it(server: FakeKrakenServer) -> None:
    async with client(server) as c:
        replies = await c.call(
            "cancel_order", replies=3, token="expired", order_id=["OA"], cl_ord_id=["c1", "c2"]
        )
    assert [r["error"] for r in replies] == ["ESession:Invalid session"] * 3
    assert [r.get("order_id") or r.get("cl_ord_id") for r in replies] == ["OA", "c1", "c2"]


@pytest.mark.anyio
async def test_batch_cancel_is_refused_whole_near_the_ceiling(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with client(server) as c:
        ids = [
            (await c.one("add_order", **RESTING, limit_price=20000 + i))["result"]["order_id"]
            for i in range(7)
        ]
        await c.one("add_order", **RESTING, limit_price=1)
        # 8 adds, then 7 young orders at 8 each: 8 + 56 > 60, so none is cancelled.
        refused = await c.one("batch_cancel", orders=ids)
        assert refused["error"] == "EOrder:Rate limit exceeded"
        assert engine.rate_count("BTC/USD") == 8 and all(engine.orders[i].is_open for i in ids)
        ok = await c.one("batch_cancel", orders=ids[:2], cl_ord_id=["unknown"])
        assert ok["orders_cancelled"] == 2  # the unknown id is skipped
        assert engine.rate_count("BTC/USD") == 8 + 16


@pytest.mark.anyio
async def test_v1_orders_reach_v2_executions_and_resubscribing_restarts_the_sequence(
    server: FakeKrakenServer, engine: FakeMatchingEngine
) -> None:
    async with client(server) as c, open_kraken(server.url, token=TOKEN) as v1:
        await c.subscribe("executions")
        await c.channel("executions")
        with anyio.fail_after(_TIMEOUT):
            reply = await v1.add_order(
                pair="XBT/USD", type="buy", ordertype="limit", volume="0.01", price="25000"
            )
        txid = reply["txid"]
        pending = await c.channel("executions", about(txid, "pending_new"))
        assert pending["data"][0]["symbol"] == "BTC/USD"
        assert pending["data"][0]["limit_price"] == 25000
        cancel = await c.call("cancel_order", order_id=[txid])
        assert cancel[0]["success"] and engine.orders[txid].status == "canceled"
        assert engine.rate_count("BTC/USD") == 8  # v1 adds are not counted; a young cancel is
        unsubscribed = await c.one("unsubscribe", channel="executions")
        assert unsubscribed["success"]
        await c.subscribe("executions")
        again = await c.channel("executions", lambda m: m["type"] == "snapshot")
        assert again["sequence"] == 1


@pytest.mark.anyio
async def test_balances_without_snapshot_and_unknown_client_ids(server: FakeKrakenServer) -> None:
    async with client(server) as c:
        await c.subscribe("balances", snapshot=False)
        await c.one("add_order", **{**RESTING, "order_type": "market"})
        first = await c.channel("balances")
        assert (first["type"], first["sequence"]) == ("update", 1)
        amend = await c.one("amend_order", cl_ord_id="nobody", order_qty=1)
        assert amend["error"] == "EOrder:Unknown order"
        both = await c.one("amend_order", cl_ord_id="x", order_id="y", order_qty=1)
        assert both["error"] == "EGeneral:Invalid arguments:order_id"
