"""The fake exchange's v2 endpoint: the sans-I/O session without a loop, then
the ``/v2`` path of ``open_fake_kraken`` over loopback on asyncio and trio
(virtual time on both: see conftest)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest
import trio
import trio.testing
import trio_websocket

from kraky_anyio.errors import ConnectionClosedError, HandshakeError
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.testing.v2_messages import (
    ERR_ALREADY_SUBSCRIBED,
    ERR_CHANNEL,
    ERR_DEPTH,
    ERR_EVENT_TRIGGER,
    ERR_INTERVAL,
    ERR_INVALID_SESSION,
    ERR_MALFORMED,
    ERR_PARAMS,
    ERR_RATE_LIMITED,
    ERR_REQ_ID,
    ERR_SNAPSHOT,
    ERR_SUBSCRIPTION_NOT_FOUND,
    ERR_SYMBOL,
    ERR_SYMBOL_UNSUPPORTED,
    ERR_TOKEN,
    ERR_UNKNOWN_METHOD,
    FIRST_V2_CONNECTION_ID,
    encode,
    v2_symbol,
)
from kraky_anyio.testing.v2_session import FakeKrakenV2Session
from kraky_anyio.transport import WebSocket, connect_websocket

# -- sans-I/O ----------------------------------------------------------------


def _send(session: FakeKrakenV2Session, request: Any, now: float = 0.0) -> list[Any]:
    return session.on_text(json.dumps(request), now)


def _sub(channel: str, symbols: Any = None, req_id: int | None = 1, **params: Any) -> Any:
    body: dict[str, Any] = {"channel": channel, **params}
    if symbols is not None:
        body["symbol"] = symbols
    request: dict[str, Any] = {"method": "subscribe", "params": body}
    if req_id is not None:
        request["req_id"] = req_id
    return request


def _unsub(channel: str, symbols: Any = None, req_id: int | None = 1, **params: Any) -> Any:
    return {**_sub(channel, symbols, req_id, **params), "method": "unsubscribe"}


def _errors(replies: list[Any]) -> list[tuple[str | None, str | None]]:
    return [(r.get("error"), r.get("symbol", r.get("result", {}).get("symbol"))) for r in replies]


def test_status_on_open_and_on_change() -> None:
    session = FakeKrakenV2Session(connection_id=2**64 - 1)
    assert session.on_open(0.0) == [
        {
            "channel": "status",
            "type": "update",
            "data": [
                {
                    "api_version": "v2",
                    "connection_id": 2**64 - 1,
                    "system": "online",
                    "version": "2.0.10",
                }
            ],
        }
    ]
    [maintenance] = session.set_status("maintenance", 1.0)
    assert maintenance["data"] == [
        {"api_version": "v2", "system": "maintenance", "version": "2.0.10"}
    ]
    with pytest.raises(ValueError):
        session.set_status("sleeping", 1.0)
    assert (
        FakeKrakenV2Session(status="post_only").on_open(0.0)[0]["data"][0]["system"] == "post_only"
    )


def test_ping_pong_has_no_success_field() -> None:
    session = FakeKrakenV2Session()
    [pong] = _send(session, {"method": "ping", "req_id": 7}, now=1.5)
    assert pong == {
        "method": "pong",
        "req_id": 7,
        "time_in": "2026-01-01T00:00:01.500000Z",
        "time_out": "2026-01-01T00:00:01.500000Z",
    }
    [bare] = _send(session, {"method": "ping"})
    assert "req_id" not in bare and bare["method"] == "pong"
    [bad] = _send(session, {"method": "ping", "req_id": "x"})
    assert (bad["error"], bad["success"], bad["req_id"]) == (ERR_REQ_ID, False, "x")
    assert session.counters["ping"] == 3


def test_subscribe_one_ack_per_symbol() -> None:
    session = FakeKrakenV2Session()
    replies = _send(session, _sub("book", ["BTC/USD", "ETH/USD"], req_id=42, depth=25), now=2.0)
    assert [r["result"] for r in replies] == [
        {"channel": "book", "depth": 25, "snapshot": True, "symbol": "BTC/USD"},
        {"channel": "book", "depth": 25, "snapshot": True, "symbol": "ETH/USD"},
    ]
    for reply in replies:
        assert (reply["method"], reply["req_id"], reply["success"]) == ("subscribe", 42, True)
        assert reply["time_in"] == reply["time_out"] == "2026-01-01T00:00:02.000000Z"
        assert "error" not in reply
    assert session.subscriptions == {("book", "BTC/USD"), ("book", "ETH/USD")}
    assert session.subscription_params("book", "ETH/USD") == {"depth": 25, "snapshot": True}


@pytest.mark.parametrize(
    ("request_", "result"),
    [
        (_sub("ticker", ["BTC/USD"]), {"event_trigger": "trades", "snapshot": True}),
        (
            _sub("ticker", ["BTC/USD"], event_trigger="bbo"),
            {"event_trigger": "bbo", "snapshot": True},
        ),
        (_sub("book", ["BTC/USD"]), {"depth": 10, "snapshot": True}),
        (_sub("trade", ["BTC/USD"]), {"snapshot": False}),
        (_sub("trade", ["BTC/USD"], snapshot=True), {"snapshot": True}),
        (_sub("ohlc", ["BTC/USD"], interval=60), {"interval": 60, "snapshot": True}),
        (_sub("instrument"), {"snapshot": True}),
        (_sub("level3", ["BTC/USD"], depth=100, token="t"), {"depth": 100, "snapshot": True}),
        (_sub("executions", token="t"), {"snapshot": True}),
    ],
)
def test_ack_result_per_channel(request_: Any, result: dict[str, Any]) -> None:
    [reply] = _send(FakeKrakenV2Session(), request_)
    channel = request_["params"]["channel"]
    expected = {"channel": channel, **result}
    if "symbol" in request_["params"]:
        expected["symbol"] = "BTC/USD"
    assert reply["result"] == expected
    assert "token" not in reply["result"]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        # Errors about one symbol carry it; the others stay live.
        (
            _sub("ticker", ["BTC/USD", "XBT/USD", "FOO/BAR"]),
            [
                (None, "BTC/USD"),
                ("Currency pair not supported XBT/USD", "XBT/USD"),
                ("Currency pair not supported FOO/BAR", "FOO/BAR"),
            ],
        ),
        (_sub("ticker", ["BTCUSD"]), [("Currency pair not supported BTCUSD", "BTCUSD")]),
        (
            _sub("ticker", ["BTC/USD", "BTC/USD"]),
            [(None, "BTC/USD"), (ERR_ALREADY_SUBSCRIBED, "BTC/USD")],
        ),
        # Errors about the whole request: one response, no symbol.
        (_sub("book", ["BTC/USD", "ETH/USD"], depth=42), [(ERR_DEPTH, None)]),
        (_sub("book", ["BTC/USD"], depth="10"), [(ERR_DEPTH, None)]),
        (_sub("level3", ["BTC/USD"], depth=25, token="t"), [(ERR_DEPTH, None)]),
        (_sub("ohlc", ["BTC/USD"], interval=2), [(ERR_INTERVAL, None)]),
        (_sub("ohlc", ["BTC/USD"], interval=[1]), [(ERR_INTERVAL, None)]),
        (_sub("ticker", ["BTC/USD"], event_trigger="all"), [(ERR_EVENT_TRIGGER, None)]),
        (_sub("ticker", ["BTC/USD"], event_trigger=["bbo"]), [(ERR_EVENT_TRIGGER, None)]),
        (_sub("ticker", ["BTC/USD"], snapshot="yes"), [(ERR_SNAPSHOT, None)]),
        (_sub("tickers", ["BTC/USD", "ETH/USD"]), [(ERR_CHANNEL, None)]),
        (_sub("heartbeat"), [(ERR_CHANNEL, None)]),
        (_sub("ticker"), [(ERR_SYMBOL, None)]),
        (_sub("ticker", []), [(ERR_SYMBOL, None)]),
        (_sub("ticker", "BTC/USD"), [(ERR_SYMBOL, None)]),
        (_sub("ticker", [1]), [(ERR_SYMBOL, None)]),
        (_sub("instrument", ["BTC/USD"]), [(ERR_SYMBOL_UNSUPPORTED, None)]),
        (_sub("executions"), [(ERR_TOKEN, None)]),
        (_sub("balances", token=""), [(ERR_TOKEN, None)]),
        (_sub("executions", token="wrong"), [(ERR_INVALID_SESSION, None)]),
        (_sub("level3", ["BTC/USD"], token="revoked"), [(ERR_INVALID_SESSION, None)]),
        (_sub("executions", token="good"), [(None, None)]),
        ({"method": "subscribe", "req_id": 1}, [(ERR_PARAMS, None)]),
        ({"method": "subscribe", "params": [], "req_id": 1}, [(ERR_PARAMS, None)]),
    ],
)
def test_subscribe_errors(request_: Any, expected: list[tuple[str | None, str | None]]) -> None:
    session = FakeKrakenV2Session(
        valid_tokens={"good", "revoked"}, revoked_tokens={"revoked"}, pairs={"XBT/USD", "ETH/USD"}
    )
    replies = _send(session, request_)
    assert _errors(replies) == expected
    for reply in replies:
        assert reply["method"] == "subscribe"
        assert reply["req_id"] == 1
        assert reply["success"] is ("error" not in reply)
        assert ("result" in reply) is reply["success"]
    live = {r["result"].get("symbol") for r in replies if r["success"]}
    assert {symbol for _, symbol in session.subscriptions} == live


def test_unsubscribe_one_response_per_symbol() -> None:
    session = FakeKrakenV2Session()
    _send(session, _sub("ticker", ["BTC/USD", "ETH/USD"]))
    replies = _send(session, _unsub("ticker", ["ETH/USD", "SOL/USD"], req_id=5))
    assert _errors(replies) == [(None, "ETH/USD"), (ERR_SUBSCRIPTION_NOT_FOUND, "SOL/USD")]
    # The real unsubscribe ack carries no snapshot key.
    assert replies[0]["result"] == {
        "channel": "ticker",
        "event_trigger": "trades",
        "symbol": "ETH/USD",
    }
    assert {r["method"] for r in replies} == {"unsubscribe"}
    assert session.subscriptions == {("ticker", "BTC/USD")}
    [again] = _send(session, _unsub("instrument"))
    assert (again["error"], "symbol" in again) == (ERR_SUBSCRIPTION_NOT_FOUND, False)


def test_malformed_and_unknown_methods() -> None:
    session = FakeKrakenV2Session()
    for frame in ("not json", b"\xff", "[1, 2]", "3"):
        [reply] = session.on_text(frame, 0.0)
        assert (reply["error"], reply["success"], "method" in reply) == (
            ERR_MALFORMED,
            False,
            False,
        )
    assert session.counters["malformed"] == 4
    assert session.received == [[1, 2], 3]
    [unknown] = _send(session, {"method": "fly", "req_id": 3})
    assert (unknown["error"], unknown["method"], unknown["req_id"]) == (
        ERR_UNKNOWN_METHOD,
        "fly",
        3,
    )
    [missing] = _send(session, {"params": {}})
    assert (missing["error"], "method" in missing) == (ERR_UNKNOWN_METHOD, False)
    # A v1 request on the v2 endpoint is not understood either.
    [v1] = _send(session, {"event": "ping", "reqid": 1})
    assert v1["error"] == ERR_UNKNOWN_METHOD


def test_heartbeat_only_while_subscribed_and_silent() -> None:
    session = FakeKrakenV2Session(heartbeat_interval=1.0)
    session.on_open(0.0)
    assert session.heartbeat_due() is None
    _send(session, _sub("ticker", ["BTC/USD"]), now=10.0)
    assert session.heartbeat_due() == 11.0
    assert session.tick(10.9) == []
    assert session.tick(11.0) == [{"channel": "heartbeat"}]
    session.publish("ticker", "BTC/USD", [{"symbol": "BTC/USD"}], now=11.8)
    assert session.tick(12.0) == []
    assert session.tick(12.8) == [{"channel": "heartbeat"}]
    _send(session, _unsub("ticker", ["BTC/USD"]), now=13.0)
    assert session.heartbeat_due() is None
    assert session.counters["heartbeat"] == 2


def test_publish_routes_by_channel_and_symbol() -> None:
    session = FakeKrakenV2Session()
    _send(session, _sub("book", ["BTC/USD"]))
    _send(session, _sub("instrument"))
    _send(session, _sub("executions", token="t"))
    entry = [{"symbol": "BTC/USD", "bids": [], "asks": [], "checksum": 0}]
    assert session.publish("book", "ETH/USD", entry) == []
    assert session.publish("ticker", "BTC/USD", entry) == []
    assert session.publish("book", "BTC/USD", entry, type="snapshot") == [
        {"channel": "book", "type": "snapshot", "data": entry}
    ]
    assert session.publish("instrument", None, {"assets": [], "pairs": []}) == [
        {"channel": "instrument", "type": "update", "data": {"assets": [], "pairs": []}}
    ]
    sequences = [session.publish("executions", None, [])[0]["sequence"] for _ in range(2)]
    assert sequences == [1, 2]
    with pytest.raises(ValueError):
        session.publish("book", "BTC/USD", entry, type="delta")
    assert session.counters["published"] == 4


def test_snapshot_provider_after_each_ack() -> None:
    calls: list[tuple[str, str | None, dict[str, Any]]] = []

    def provider(channel: str, symbol: str | None, params: dict[str, Any]) -> list[Any]:
        calls.append((channel, symbol, params))
        return [[{"symbol": symbol, "n": 1}]]

    session = FakeKrakenV2Session(v2_snapshot_provider=provider)
    replies = _send(session, _sub("book", ["BTC/USD", "ETH/USD"], depth=100))
    assert [r.get("channel") or r["method"] for r in replies] == [
        "subscribe",
        "book",
        "subscribe",
        "book",
    ]
    assert replies[1] == {
        "channel": "book",
        "type": "snapshot",
        "data": [{"symbol": "BTC/USD", "n": 1}],
    }
    assert calls[0] == ("book", "BTC/USD", {"depth": 100, "snapshot": True})
    # snapshot: false asks for none.
    assert len(_send(session, _sub("ticker", ["BTC/USD"], snapshot=False))) == 1
    assert len(calls) == 2


def test_stall_and_rate_limit() -> None:
    session = FakeKrakenV2Session()
    session.rate_limit(1)
    [limited] = _send(session, {"method": "ping", "req_id": 1})
    assert (limited["error"], limited["method"], limited["req_id"]) == (ERR_RATE_LIMITED, "ping", 1)
    assert session.counters["rate_limited"] == 1
    session.stalled = True
    assert session.on_open(0.0) == []
    assert _send(session, {"method": "ping", "req_id": 2}) == []
    assert session.set_status("maintenance", 0.0) == []
    assert session.status == "maintenance"
    session.stalled = False
    assert _send(session, {"method": "ping", "req_id": 3})[0]["req_id"] == 3
    with pytest.raises(ValueError):
        session.rate_limit(-1)


def test_symbols_follow_the_pairs_option() -> None:
    assert v2_symbol("XBT/USD") == "BTC/USD"
    assert v2_symbol("XDG/USD") == "DOGE/USD"
    assert v2_symbol("ETH/XBT") == "ETH/BTC"
    session = FakeKrakenV2Session(pairs={"XBT/EUR"})
    assert session.symbols == {"BTC/EUR"}
    assert _errors(_send(session, _sub("trade", ["BTC/EUR", "BTC/USD"]))) == [
        (None, "BTC/EUR"),
        ("Currency pair not supported BTC/USD", "BTC/USD"),
    ]
    # pairs=None: any BASE/QUOTE, but never v1's XBT or XDG.
    anything = FakeKrakenV2Session(pairs=None)
    assert _errors(_send(anything, _sub("trade", ["ABC/DEF", "XDG/USD"]))) == [
        (None, "ABC/DEF"),
        ("Currency pair not supported XDG/USD", "XDG/USD"),
    ]


def test_encode_writes_decimals_with_their_digits() -> None:
    message = {"data": [{"qty": Decimal("0.00000050"), "price": Decimal("62797.0")}]}
    assert encode(message) == '{"data":[{"qty":0.00000050,"price":62797.0}]}'
    assert encode({"q": Decimal("1E-8"), "s": "a\x00b"}) == '{"q":0.00000001,"s":"a\\u0000b"}'
    with pytest.raises(TypeError):
        encode({"q": Decimal("NaN")})
    with pytest.raises(TypeError):
        encode({"f": object()})


# -- over sockets ------------------------------------------------------------

_RECEIVE_TIMEOUT = 10.0


class Client:
    """A plain WebSocket client on our transport: JSON in, JSON out."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._buffer: deque[str | bytes] = deque()

    async def recv(self) -> Any:
        with anyio.fail_after(_RECEIVE_TIMEOUT):
            while not self._buffer:
                self._buffer.extend(await self.ws.receive_batch())
        message = self._buffer.popleft()
        assert isinstance(message, str)
        return json.loads(message)

    async def request(self, message: Any, replies: int = 1) -> list[Any]:
        await self.ws.send_text(json.dumps(message))
        return [await self.recv() for _ in range(replies)]


@asynccontextmanager
async def v2_client(server: FakeKrakenServer, path: str = "/v2") -> AsyncIterator[Client]:
    client = Client(await connect_websocket(server.url + path))
    try:
        yield client
    finally:
        await client.ws.aclose()


@pytest.mark.anyio
async def test_v2_path_greets_with_status_and_v1_path_is_unchanged() -> None:
    async with open_fake_kraken() as server:
        assert server.v2_url == server.url + "/v2"
        async with v2_client(server) as client:
            status = await client.recv()
            assert status["channel"] == "status"
            assert status["data"][0]["connection_id"] == FIRST_V2_CONNECTION_ID
            [connection] = await server.wait_for_connections(1)
            assert connection.session.api == "v2"
        async with v2_client(server, "/v2?x=1") as client:
            assert (await client.recv())["channel"] == "status"
        async with v2_client(server, "/") as client:
            assert (await client.recv())["event"] == "systemStatus"
        assert server.connections_total == 3


@pytest.mark.anyio
async def test_subscribe_publish_heartbeat_over_the_wire() -> None:
    async with open_fake_kraken() as server, v2_client(server) as c:
        await c.recv()
        replies = await c.request(_sub("book", ["BTC/USD", "XBT/USD"], req_id=9), replies=2)
        assert _errors(replies) == [
            (None, "BTC/USD"),
            ("Currency pair not supported XBT/USD", "XBT/USD"),
        ]
        connection = await server.wait_for_subscription("book", "BTC/USD", api="v2")
        assert connection.session.subscriptions == {("book", "BTC/USD")}
        entry = [
            {
                "symbol": "BTC/USD",
                "bids": [{"price": Decimal("62797.0"), "qty": Decimal("0.50000000")}],
            }
        ]
        # v1 publish does not reach a v2 connection; publish_v2 does.
        assert await server.publish("book-10", "XBT/USD", {}) == 0
        assert await server.publish_v2("book", "BTC/USD", entry, type="snapshot") == 1
        raw = await c.ws.receive_batch()
        assert raw == [
            '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":62797.0,"qty":0.50000000}]}]}'
        ]
        assert await c.recv() == {"channel": "heartbeat"}
        [pong] = await c.request({"method": "ping", "req_id": 2**64 - 1})
        while pong == {"channel": "heartbeat"}:
            pong = await c.recv()
        assert (pong["method"], pong["req_id"], "success" in pong) == ("pong", 2**64 - 1, False)
        assert server.all_received()[-1] == {"method": "ping", "req_id": 2**64 - 1}


@pytest.mark.anyio
async def test_faults_reach_v2_connections() -> None:
    async with open_fake_kraken() as server:
        server.refuse(1)
        with pytest.raises(HandshakeError, match="503"):
            await connect_websocket(server.v2_url)
        async with v2_client(server) as client:
            await client.recv()
            await server.wait_for_connections(1)
            await server.set_status("maintenance")
            status = await client.recv()
            assert status["data"][0]["system"] == "maintenance"
            assert "connection_id" not in status["data"][0]
            assert await server.send_raw("}{ garbage") == 1
            assert await client.ws.receive_batch() == ["}{ garbage"]
            server.rate_limit(1)
            [limited] = await client.request({"method": "ping", "req_id": 1})
            assert limited["error"] == ERR_RATE_LIMITED
            server.stall()
            await client.ws.send_text(json.dumps({"method": "ping", "req_id": 2}))
            await server.wait_for_received(lambda f: f.get("req_id") == 2)
            server.stall(False)
            [pong] = await client.request({"method": "ping", "req_id": 3})
            assert pong["req_id"] == 3  # the stalled ping was never answered
            await server.drop()
            with pytest.raises(ConnectionClosedError):
                await client.recv()


@pytest.mark.trio
async def test_v2_stall_silences_heartbeats(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_kraken() as server, v2_client(server) as client:
        await client.recv()
        await client.request(_sub("ticker", ["BTC/USD"]))
        assert await client.recv() == {"channel": "heartbeat"}
        server.stall()
        with trio.move_on_after(5) as scope:
            await client.recv()
        assert scope.cancelled_caught


@pytest.mark.anyio
async def test_v1_only_hooks_leave_v2_connections_alone() -> None:
    async with open_fake_kraken() as server, v2_client(server) as client:
        await client.recv()
        [connection] = await server.wait_for_connections(1)
        # v1 channel data and the engine's private-data hook skip v2 sessions.
        assert connection.publish_nowait("openOrders", None, []) is False
        assert await server.publish("ticker", "XBT/USD", {}) == 0
        with pytest.raises(TimeoutError):
            with anyio.fail_after(1):
                await server.wait_for_subscription("ticker", "BTC/USD")  # api="v1"
        await client.request(_sub("ticker", ["BTC/USD"]))
        with anyio.fail_after(1):
            assert await server.wait_for_subscription("ticker", "BTC/USD", api="v2") is connection


@pytest.mark.trio
async def test_trio_websocket_client_on_v2(autojump_clock: trio.testing.MockClock) -> None:
    async with (
        open_fake_kraken() as server,
        trio_websocket.open_websocket_url(server.v2_url) as ws,
    ):
        status = json.loads(await ws.get_message())
        assert (status["channel"], status["data"][0]["system"]) == ("status", "online")
        await ws.send_message(json.dumps(_sub("trade", ["ETH/USD"], req_id=4)))
        ack = json.loads(await ws.get_message())
        assert (ack["success"], ack["req_id"], ack["result"]["symbol"]) == (True, 4, "ETH/USD")
        assert await server.publish_v2("trade", "ETH/USD", [{"symbol": "ETH/USD"}]) == 1
        assert json.loads(await ws.get_message()) == {
            "channel": "trade",
            "type": "update",
            "data": [{"symbol": "ETH/USD"}],
        }
