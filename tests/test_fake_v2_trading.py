"""The fake exchange's matching engine over Kraken v2: every trading method's
success and error shapes, ``executions``/``balances`` with sequences, the
dead man's switch and expiry on virtual time, Kraken's rate counter; over
loopback on asyncio and trio (virtual time on both: see conftest), through
a raw WebSocket or the client's ``request`` escape hatch."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest

from kraky_anyio import KrakenError, v2
from kraky_anyio.testing.engine import FakeMatchingEngine
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.testing.v2_engine import ERR_DEADLINE, ERR_INSUFFICIENT_FUNDS
from kraky_anyio.testing.v2_messages import encode
from kraky_anyio.testing.v2_private import wall_rfc3339
from kraky_anyio.transport import WebSocket, connect_websocket

ORDER_ID = re.compile(r"O[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{6}")
TOKEN, OTHER_TOKEN = "tok-1", "tok-other"
RESTING = {"order_type": "limit", "side": "buy", "symbol": "BTC/USD", "order_qty": Decimal("0.01")}
_TIMEOUT = 10.0


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
