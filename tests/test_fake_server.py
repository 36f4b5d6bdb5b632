"""The fake Kraken v1 server: the sans-I/O session without a loop, then the
server over real loopback sockets on asyncio and on trio (MockClock)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import trio
import trio.testing
import trio_websocket

from kraky_anyio.errors import ConnectionClosedError, HandshakeError
from kraky_anyio.testing import FakeKrakenSession, OutgoingMessage, open_fake_kraken
from kraky_anyio.testing.server import FakeKrakenServer
from kraky_anyio.testing.v1_messages import (
    ERR_ALREADY_SUBSCRIBED,
    ERR_DEPTH_NOT_INTEGER,
    ERR_DEPTH_NOT_SUPPORTED,
    ERR_EVENT_NOT_FOUND,
    ERR_INTERVAL_NOT_INTEGER,
    ERR_INTERVAL_NOT_SUPPORTED,
    ERR_INVALID_SESSION,
    ERR_INVALID_TOKEN,
    ERR_MALFORMED,
    ERR_PAIR_NOT_ARRAY,
    ERR_PAIR_UNSUPPORTED_FOR_TYPE,
    ERR_PAIRS_NOT_FOUND,
    ERR_REQID,
    ERR_SUBSCRIPTION_NAME,
    ERR_SUBSCRIPTION_NOT_FOUND,
    ERR_SUBSCRIPTION_NOT_OBJECT,
    ERR_UNKNOWN_METHOD,
    ERR_UNSUPPORTED_EVENT,
    FIRST_CONNECTION_ID,
)
from kraky_anyio.transport import WebSocket, connect_websocket


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


@pytest.fixture
def interval(anyio_backend_name: str) -> float:
    """Heartbeat interval: Kraken's 1 s on trio's virtual clock; short on
    asyncio, which runs on real time here."""
    return 1.0 if anyio_backend_name == "trio" else 0.05


@pytest.fixture
def quiet(interval: float) -> float:
    """How long to wait before concluding that nothing will arrive."""
    return 5 * interval


# -- sans-I/O ----------------------------------------------------------------


def _session(**kwargs: Any) -> FakeKrakenSession:
    return FakeKrakenSession(**kwargs)


def _send(session: FakeKrakenSession, request: Any, now: float = 0.0) -> list[OutgoingMessage]:
    return session.on_text(json.dumps(request), now)


def _sub(name: str, pairs: Any = None, reqid: int | None = None, **fields: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"event": "subscribe", "subscription": {"name": name, **fields}}
    if pairs is not None:
        request["pair"] = pairs
    if reqid is not None:
        request["reqid"] = reqid
    return request


def test_session_on_open() -> None:
    session = _session(connection_id=2**64 - 1, status="post_only")
    assert session.on_open(0.0) == [
        {
            "connectionID": 2**64 - 1,
            "event": "systemStatus",
            "status": "post_only",
            "version": "1.9.1",
        }
    ]
    with pytest.raises(ValueError):
        _session(status="sleeping")


def test_session_ping_reqid_echo() -> None:
    session = _session()
    assert _send(session, {"event": "ping"}) == [{"event": "pong"}]
    assert _send(session, {"event": "ping", "reqid": 0}) == [{"event": "pong", "reqid": 0}]
    assert _send(session, {"event": "ping", "reqid": 2**64 - 1}) == [
        {"event": "pong", "reqid": 2**64 - 1}
    ]
    for bad in ("a", -1, 2**64, True, 1.5):
        assert _send(session, {"event": "ping", "reqid": bad}) == [
            {"errorMessage": ERR_REQID, "event": "pingStatus", "reqid": bad, "status": "error"}
        ]
    assert session.counters["ping"] == 8
    assert session.received[1] == {"event": "ping", "reqid": 0}


def test_session_malformed_and_unknown_events() -> None:
    session = _session()
    malformed = [{"errorMessage": ERR_MALFORMED, "event": "error"}]
    assert session.on_text("not json", 0.0) == malformed
    assert session.on_text(b"\xff\xfe", 0.0) == malformed
    assert session.on_text("[1, 2]", 0.0) == malformed
    assert session.counters["malformed"] == 3
    assert session.received == [[1, 2]]
    assert _send(session, {"reqid": 4}) == [
        {"errorMessage": ERR_EVENT_NOT_FOUND, "event": "error", "reqid": 4}
    ]
    assert _send(session, {"event": "ping ", "reqid": 5}) == [
        {"errorMessage": ERR_UNSUPPORTED_EVENT, "event": "error", "reqid": 5}
    ]
    assert _send(session, {"event": "nope"}) == [
        {"errorMessage": ERR_UNSUPPORTED_EVENT, "event": "error"}
    ]


def test_session_subscribe_one_reply_per_pair() -> None:
    session = _session(first_channel_id=336)
    replies = _send(session, _sub("book", ["XBT/USD", "ETH/USD"], reqid=7, depth=25))
    assert replies == [
        {
            "channelID": 336,
            "channelName": "book-25",
            "event": "subscriptionStatus",
            "pair": "XBT/USD",
            "status": "subscribed",
            "subscription": {"depth": 25, "name": "book"},
            "reqid": 7,
        },
        {
            "channelID": 337,
            "channelName": "book-25",
            "event": "subscriptionStatus",
            "pair": "ETH/USD",
            "status": "subscribed",
            "subscription": {"depth": 25, "name": "book"},
            "reqid": 7,
        },
    ]
    assert session.subscriptions == {("book-25", "XBT/USD"), ("book-25", "ETH/USD")}


@pytest.mark.parametrize(
    ("fields", "channel", "echo"),
    [
        ({"name": "ticker"}, "ticker", {"name": "ticker"}),
        ({"name": "trade"}, "trade", {"name": "trade"}),
        ({"name": "spread"}, "spread", {"name": "spread"}),
        ({"name": "book"}, "book-10", {"depth": 10, "name": "book"}),
        ({"name": "book", "depth": 1000}, "book-1000", {"depth": 1000, "name": "book"}),
        ({"name": "ohlc"}, "ohlc-1", {"interval": 1, "name": "ohlc"}),
        ({"name": "ohlc", "interval": 21600}, "ohlc-21600", {"interval": 21600, "name": "ohlc"}),
    ],
)
def test_session_channel_names(fields: dict[str, Any], channel: str, echo: dict[str, Any]) -> None:
    session = _session()
    request = {"event": "subscribe", "pair": ["XBT/USD"], "subscription": fields}
    [reply] = _send(session, request)
    assert isinstance(reply, dict)
    assert reply["channelName"] == channel
    assert reply["subscription"] == echo
    assert "reqid" not in reply


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            _sub("tickers", ["XBT/USD", "ETH/USD"]),
            [(ERR_SUBSCRIPTION_NAME, "XBT/USD"), (ERR_SUBSCRIPTION_NAME, "ETH/USD")],
        ),
        (_sub("tickers"), [(ERR_SUBSCRIPTION_NAME, None)]),
        (_sub("book", ["XBT/USD"], depth=42), [(ERR_DEPTH_NOT_SUPPORTED, "XBT/USD")]),
        (_sub("book", ["XBT/USD"], depth="10"), [(ERR_DEPTH_NOT_INTEGER, "XBT/USD")]),
        (_sub("ohlc", ["XBT/USD"], interval=2), [(ERR_INTERVAL_NOT_SUPPORTED, "XBT/USD")]),
        (_sub("ohlc", ["XBT/USD"], interval="5"), [(ERR_INTERVAL_NOT_INTEGER, "XBT/USD")]),
        (
            _sub("ticker", ["XBT/USD", "FOO/BAR"]),
            [(None, "XBT/USD"), ("Currency pair not supported FOO/BAR", "FOO/BAR")],
        ),
        (
            _sub("ticker", ["XBTUSD"]),
            [("Currency pair not in ISO 4217-A3 format XBTUSD", "XBTUSD")],
        ),
        (
            _sub("ticker", ["XBT/USD", "XBT/USD"]),
            [(None, "XBT/USD"), (ERR_ALREADY_SUBSCRIBED, "XBT/USD")],
        ),
        (_sub("ticker"), [(ERR_PAIRS_NOT_FOUND, None)]),
        (_sub("ticker", []), [(ERR_PAIRS_NOT_FOUND, None)]),
        (_sub("ticker", [1]), [(ERR_PAIRS_NOT_FOUND, None)]),
        (_sub("ticker", "XBT/USD"), [(ERR_PAIR_NOT_ARRAY, None)]),
        ({"event": "subscribe", "pair": ["XBT/USD"]}, [(ERR_SUBSCRIPTION_NOT_OBJECT, None)]),
        (_sub("ownTrades"), [(ERR_INVALID_TOKEN, None)]),
        (_sub("ownTrades", token=""), [(ERR_INVALID_TOKEN, None)]),
        (_sub("openOrders", ["XBT/USD"], token="t"), [(ERR_PAIR_UNSUPPORTED_FOR_TYPE, None)]),
        (_sub("openOrders", token="wrong"), [(ERR_INVALID_SESSION, None)]),
        (_sub("openOrders", token="good"), [(None, None)]),
    ],
)
def test_session_subscribe_errors(
    request_: dict[str, Any], expected: list[tuple[str | None, str | None]]
) -> None:
    session = _session(valid_tokens={"good"})
    replies = _send(session, {**request_, "reqid": 9})
    got = []
    for reply in replies:
        assert isinstance(reply, dict)
        assert reply["event"] == "subscriptionStatus"
        assert reply["reqid"] == 9
        assert reply["status"] == ("error" if "errorMessage" in reply else "subscribed")
        got.append((reply.get("errorMessage"), reply.get("pair")))
    assert got == expected
    for reply in replies:  # a token is never echoed
        assert isinstance(reply, dict)
        assert "token" not in reply.get("subscription", {})


def test_session_unsubscribe() -> None:
    session = _session()
    [subscribed] = _send(session, _sub("ohlc", ["XBT/USD"], interval=5))
    assert isinstance(subscribed, dict)
    request = {**_sub("ohlc", ["XBT/USD"], interval=5), "event": "unsubscribe", "reqid": 3}
    [reply] = _send(session, request)
    assert reply == {
        "channelID": subscribed["channelID"],
        "channelName": "ohlc-5",
        "event": "subscriptionStatus",
        "pair": "XBT/USD",
        "status": "unsubscribed",
        "subscription": {"interval": 5, "name": "ohlc"},
        "reqid": 3,
    }
    assert session.subscriptions == frozenset()
    [again] = _send(session, request)
    assert isinstance(again, dict)
    assert (again["errorMessage"], again["pair"], again["status"]) == (
        ERR_SUBSCRIPTION_NOT_FOUND,
        "XBT/USD",
        "error",
    )


def test_session_private_subscribe_and_unsubscribe() -> None:
    session = _session()
    request = _sub("ownTrades", token="any")
    assert _send(session, request) == [
        {
            "channelName": "ownTrades",
            "event": "subscriptionStatus",
            "status": "subscribed",
            "subscription": {"name": "ownTrades"},
        }
    ]
    assert session.subscriptions == {("ownTrades", None)}
    [again] = _send(session, request)
    assert isinstance(again, dict) and again["errorMessage"] == ERR_ALREADY_SUBSCRIBED
    unsubscribe = {**request, "event": "unsubscribe"}
    [reply] = _send(session, unsubscribe)
    assert isinstance(reply, dict) and reply["status"] == "unsubscribed"
    [missing] = _send(session, unsubscribe)
    assert isinstance(missing, dict) and missing["errorMessage"] == ERR_SUBSCRIPTION_NOT_FOUND


def test_session_publish_routes_and_shapes() -> None:
    session = _session(first_channel_id=42)
    _send(session, _sub("book", ["XBT/USD"]))
    _send(session, _sub("openOrders", token="t"))
    assert session.publish("book-10", "ETH/USD", {"a": []}) == []
    assert session.publish("book-25", "XBT/USD", {"a": []}) == []
    assert session.publish("book-10", "XBT/USD", {"a": []}) == [
        [42, {"a": []}, "book-10", "XBT/USD"]
    ]
    assert session.publish("book-10", "XBT/USD", {"a": []}, {"b": [], "c": "1"}) == [
        [42, {"a": []}, {"b": [], "c": "1"}, "book-10", "XBT/USD"]
    ]
    assert session.publish("openOrders", None, [{"O1": {}}]) == [
        [[{"O1": {}}], "openOrders", {"sequence": 1}]
    ]
    assert session.publish("openOrders", None, []) == [[[], "openOrders", {"sequence": 2}]]
    assert session.publish("ownTrades", None, []) == []
    with pytest.raises(ValueError):
        session.publish("ticker", None, {})
    with pytest.raises(ValueError):
        session.publish("openOrders", "XBT/USD", [])
    assert session.counters["published"] == 4


def test_session_heartbeat_only_while_subscribed_and_silent() -> None:
    session = _session(heartbeat_interval=1.0)
    session.on_open(0.0)
    assert session.heartbeat_due() is None
    assert session.tick(10.0) == []
    _send(session, _sub("ticker", ["XBT/USD"]), now=10.0)
    assert session.heartbeat_due() == 11.0
    assert session.tick(10.9) == []
    assert session.tick(11.0) == [{"event": "heartbeat"}]
    assert session.tick(11.5) == []
    # Traffic fills the silence: no heartbeat a second after the last heartbeat.
    session.publish("ticker", "XBT/USD", {}, now=11.8)
    assert session.tick(12.0) == []
    assert session.tick(12.8) == [{"event": "heartbeat"}]
    session.note_sent(13.5)
    assert session.heartbeat_due() == 14.5
    session.stalled = True
    assert session.heartbeat_due() is None
    assert session.tick(20.0) == []
    session.stalled = False
    _send(session, {**_sub("ticker", ["XBT/USD"]), "event": "unsubscribe"}, now=21.0)
    assert session.tick(30.0) == []
    assert session.counters["heartbeat"] == 2


def test_session_rate_limit_and_stall() -> None:
    session = _session()
    session.rate_limit(2)
    assert _send(session, {"event": "ping"}) == [{"Error": "Exceeded msg rate"}]
    assert session.on_text("garbage", 0.0) == [{"Error": "Exceeded msg rate"}]
    assert _send(session, {"event": "ping"}) == [{"event": "pong"}]
    assert session.counters["rate_limited"] == 2

    session.stalled = True
    assert session.on_open(0.0) == []
    assert _send(session, {"event": "ping", "reqid": 1}) == []
    assert session.set_status("maintenance", 0.0) == []
    assert session.status == "maintenance"
    assert session.received[-1] == {"event": "ping", "reqid": 1}
    assert session.counters["stalled"] == 1
    session.stalled = False
    assert _send(session, {"event": "ping", "reqid": 2}) == [{"event": "pong", "reqid": 2}]


def test_session_order_events_hook() -> None:
    session = _session()
    assert _send(session, {"event": "addOrder", "token": "t", "reqid": 5}) == [
        {
            "errorMessage": ERR_UNKNOWN_METHOD,
            "event": "addOrderStatus",
            "status": "error",
            "reqid": 5,
        }
    ]
    assert _send(session, {"event": "cancelAll"}) == [
        {"errorMessage": ERR_UNKNOWN_METHOD, "event": "cancelAllStatus", "status": "error"}
    ]
    seen: list[tuple[dict[str, Any], float]] = []

    def engine(
        session: FakeKrakenSession, request: dict[str, Any], now: float
    ) -> list[OutgoingMessage]:
        seen.append((request, now))
        return [{"event": "addOrderStatus", "status": "ok", "txid": "OABC"}]

    session = _session(order_handler=engine)
    assert _send(session, {"event": "addOrder"}, now=3.0) == [
        {"event": "addOrderStatus", "status": "ok", "txid": "OABC"}
    ]
    assert seen == [({"event": "addOrder"}, 3.0)]


# -- over sockets ------------------------------------------------------------


_RECEIVE_TIMEOUT = 10.0


class RawClient:
    """A bare client on our transport: JSON in, JSON out, one message at a time."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._buffer: deque[str | bytes] = deque()

    async def recv_raw(self) -> str | bytes:
        with anyio.fail_after(_RECEIVE_TIMEOUT):
            while not self._buffer:
                self._buffer.extend(await self.ws.receive_batch())
        return self._buffer.popleft()

    async def recv(self) -> Any:
        message = await self.recv_raw()
        assert isinstance(message, str)
        return json.loads(message)

    async def nothing_within(self, seconds: float) -> bool:
        with anyio.move_on_after(seconds):
            got = await self.recv()
            raise AssertionError(f"unexpected message {got!r}")
        return True

    async def send(self, message: Any) -> None:
        await self.ws.send_text(json.dumps(message))

    async def request(self, message: Any, replies: int = 1) -> list[Any]:
        await self.send(message)
        return [await self.recv() for _ in range(replies)]


@asynccontextmanager
async def open_client(server: FakeKrakenServer, greeting: bool = True) -> AsyncIterator[RawClient]:
    client = RawClient(await connect_websocket(server.url))
    try:
        if greeting:
            assert (await client.recv())["event"] == "systemStatus"
        yield client
    finally:
        await client.ws.aclose()


@pytest.mark.anyio
async def test_system_status_on_connect() -> None:
    async with open_fake_kraken() as server:
        assert server.url == f"ws://127.0.0.1:{server.port}"
        async with open_client(server, greeting=False) as client:
            status = await client.recv()
            assert status == {
                "connectionID": FIRST_CONNECTION_ID,
                "event": "systemStatus",
                "status": "online",
                "version": "1.9.1",
            }
            assert status["connectionID"] > 2**63
            [connection] = await server.wait_for_connections(1)
            assert connection.connection_id == FIRST_CONNECTION_ID
        async with open_client(server, greeting=False) as client:
            assert (await client.recv())["connectionID"] == FIRST_CONNECTION_ID + 1
        assert server.connections_total == 2


@pytest.mark.anyio
async def test_ping_pong_with_and_without_reqid() -> None:
    async with open_fake_kraken() as server, open_client(server) as client:
        assert await client.request({"event": "ping"}) == [{"event": "pong"}]
        assert await client.request({"event": "ping", "reqid": 0}) == [
            {"event": "pong", "reqid": 0}
        ]
        assert await client.request({"event": "ping", "reqid": 2**64 - 1}) == [
            {"event": "pong", "reqid": 2**64 - 1}
        ]
        frame = await server.wait_for_received(lambda f: f.get("reqid") == 0)
        assert frame == {"event": "ping", "reqid": 0}


@pytest.mark.anyio
async def test_subscribe_several_pairs_one_reply_each() -> None:
    async with open_fake_kraken() as server, open_client(server) as client:
        pairs = ["XBT/USD", "XBT/EUR", "ETH/USD"]
        request = {"event": "subscribe", "pair": pairs, "subscription": {"name": "ticker"}}
        replies = await client.request({**request, "reqid": 11}, replies=3)
        assert [r["pair"] for r in replies] == pairs
        assert {r["reqid"] for r in replies} == {11}
        assert {r["status"] for r in replies} == {"subscribed"}
        assert {r["channelName"] for r in replies} == {"ticker"}
        assert len({r["channelID"] for r in replies}) == 3
        assert all(isinstance(r["channelID"], int) for r in replies)
        connection = await server.wait_for_subscription("ticker", "ETH/USD")
        assert connection.session.subscriptions == {("ticker", p) for p in pairs}
        # The same request again: one error per pair.
        again = await client.request(request, replies=3)
        assert [(r["errorMessage"], r["pair"]) for r in again] == [
            (ERR_ALREADY_SUBSCRIBED, p) for p in pairs
        ]
        assert all("reqid" not in r for r in again)


@pytest.mark.anyio
async def test_error_replies_over_the_wire() -> None:
    async with open_fake_kraken(valid_tokens={"good"}) as server, open_client(server) as client:
        await client.ws.send_text("{not json")
        assert await client.recv() == {"errorMessage": ERR_MALFORMED, "event": "error"}
        await client.ws.send_bytes(b"\x00\x01")
        assert await client.recv() == {"errorMessage": ERR_MALFORMED, "event": "error"}
        assert await client.request({"event": "fly", "reqid": 1}) == [
            {"errorMessage": ERR_UNSUPPORTED_EVENT, "event": "error", "reqid": 1}
        ]
        [depth] = await client.request(_sub("book", ["XBT/USD"], reqid=2, depth=42))
        assert depth == {
            "errorMessage": ERR_DEPTH_NOT_SUPPORTED,
            "event": "subscriptionStatus",
            "pair": "XBT/USD",
            "status": "error",
            "subscription": {"depth": 42, "name": "book"},
            "reqid": 2,
        }
        [pair] = await client.request(_sub("trade", ["NOT/REAL"]))
        assert (pair["errorMessage"], pair["pair"]) == (
            "Currency pair not supported NOT/REAL",
            "NOT/REAL",
        )
        [token] = await client.request(_sub("ownTrades", token="bad"))
        assert token["errorMessage"] == ERR_INVALID_SESSION
        [order] = await client.request({"event": "addOrder", "reqid": 3})
        assert order == {
            "errorMessage": ERR_UNKNOWN_METHOD,
            "event": "addOrderStatus",
            "status": "error",
            "reqid": 3,
        }
        connection = (await server.wait_for_connections(1))[0]
        assert connection.session.counters["malformed"] == 2


@pytest.mark.anyio
async def test_unsubscribe() -> None:
    async with open_fake_kraken() as server, open_client(server) as client:
        [subscribed] = await client.request(_sub("spread", ["XBT/USD"]))
        unsubscribe = {**_sub("spread", ["XBT/USD"]), "event": "unsubscribe", "reqid": 0}
        [reply] = await client.request(unsubscribe)
        assert (reply["status"], reply["channelID"], reply["reqid"]) == (
            "unsubscribed",
            subscribed["channelID"],
            0,
        )
        [again] = await client.request(unsubscribe)
        assert again["errorMessage"] == ERR_SUBSCRIPTION_NOT_FOUND
        assert server.sessions[0].session.subscriptions == frozenset()


@pytest.mark.anyio
async def test_heartbeats_only_while_subscribed(
    interval: float, quiet: float, anyio_backend_name: str
) -> None:
    async with (
        open_fake_kraken(heartbeat_interval=interval) as server,
        open_client(server) as client,
    ):
        assert await client.nothing_within(quiet)  # no subscription: no traffic at all
        await client.request(_sub("ticker", ["XBT/USD"]))
        start = anyio.current_time()
        for _ in range(3):
            assert await client.recv() == {"event": "heartbeat"}
        elapsed = anyio.current_time() - start
        assert elapsed >= 2.5 * interval
        if anyio_backend_name == "trio":  # virtual time: exact
            assert elapsed == pytest.approx(3 * interval)
        await client.send({**_sub("ticker", ["XBT/USD"]), "event": "unsubscribe"})
        reply = await client.recv()
        while reply == {"event": "heartbeat"}:  # one may have been on its way
            reply = await client.recv()
        assert reply["status"] == "unsubscribed"
        assert await client.nothing_within(quiet)
        assert server.sessions[0].session.counters["heartbeat"] >= 3


@pytest.mark.anyio
async def test_publish_reaches_subscribers_only() -> None:
    async with open_fake_kraken() as server, open_client(server) as a, open_client(server) as b:
        await a.request(_sub("ticker", ["XBT/USD"]))
        await b.request(_sub("ticker", ["ETH/USD"]))
        await a.request(_sub("book", ["XBT/USD"]))
        await server.wait_for_subscription("ticker", "ETH/USD")
        assert await server.publish("ticker", "XBT/USD", {"c": ["1.0", "2"]}) == 1
        assert await server.publish("ticker", "ETH/USD", {"c": ["3.0", "4"]}) == 1
        assert await server.publish("trade", "XBT/USD", []) == 0
        assert await server.publish("book-10", "XBT/USD", {"a": []}, {"b": [], "c": "7"}) == 1
        got_a = await a.recv()
        assert got_a[1:] == [{"c": ["1.0", "2"]}, "ticker", "XBT/USD"]
        assert isinstance(got_a[0], int)
        assert (await a.recv())[1:] == [{"a": []}, {"b": [], "c": "7"}, "book-10", "XBT/USD"]
        # b's first data message is its own pair's: nothing else was routed to it.
        assert (await b.recv())[1:] == [{"c": ["3.0", "4"]}, "ticker", "ETH/USD"]


@pytest.mark.anyio
async def test_private_channel_publish() -> None:
    async with open_fake_kraken() as server, open_client(server) as client:
        [reply] = await client.request(_sub("openOrders", token="anything"))
        assert reply["status"] == "subscribed" and "pair" not in reply
        assert await server.publish("openOrders", None, [{"O1": {"status": "open"}}]) == 1
        assert await client.recv() == [[{"O1": {"status": "open"}}], "openOrders", {"sequence": 1}]


@pytest.mark.anyio
async def test_drop_closes_tcp_without_close_frame() -> None:
    async with open_fake_kraken() as server, open_client(server) as client:
        await server.wait_for_connections(1)
        await server.drop()
        assert server.sessions == []
        with pytest.raises(ConnectionClosedError) as caught:
            await client.recv()
        assert caught.value.code is None


@pytest.mark.anyio
async def test_close_sends_close_frame() -> None:
    async with open_fake_kraken() as server, open_client(server) as client:
        await server.wait_for_connections(1)
        codes: list[int | None] = []

        async def read() -> None:
            with pytest.raises(ConnectionClosedError) as caught:
                await client.recv()
            codes.append(caught.value.code)
            assert caught.value.reason == "bye"

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await server.close(4000, "bye")
        assert codes == [4000]
        assert server.sessions == []


@pytest.mark.anyio
async def test_stall_answers_nothing(interval: float, quiet: float) -> None:
    async with (
        open_fake_kraken(heartbeat_interval=interval) as server,
        open_client(server) as client,
    ):
        await client.request(_sub("ticker", ["XBT/USD"]))
        server.stall(True)
        assert server.stalled
        await client.send({"event": "ping", "reqid": 1})
        await server.wait_for_received(lambda f: f.get("reqid") == 1)
        assert await server.publish("ticker", "XBT/USD", {}) == 0
        assert await client.nothing_within(quiet)  # no pong, no data, no heartbeat
        server.stall(False)
        reply = await client.request({"event": "ping", "reqid": 2})
        while reply == [{"event": "heartbeat"}]:
            reply = [await client.recv()]
        assert reply == [{"event": "pong", "reqid": 2}]  # the stalled ping is lost
        assert server.sessions[0].session.counters["stalled"] == 1


@pytest.mark.anyio
async def test_stalled_server_greets_nobody(quiet: float) -> None:
    async with open_fake_kraken() as server:
        server.stall()
        async with open_client(server, greeting=False) as client:
            assert await client.nothing_within(quiet)
            server.stall(False)
            assert await client.request({"event": "ping"}) == [{"event": "pong"}]


@pytest.mark.anyio
async def test_refuse_then_accept() -> None:
    async with open_fake_kraken() as server:
        server.refuse(2)
        for _ in range(2):
            with pytest.raises(HandshakeError, match="503"):
                await connect_websocket(server.url)
        async with open_client(server):
            pass
        assert (server.connection_attempts, server.refused, server.connections_total) == (3, 2, 1)
        assert len(server.attempt_times) == 3
        assert server.attempt_times == sorted(server.attempt_times)

        server.refuse(None)
        for _ in range(3):
            with pytest.raises(HandshakeError):
                await connect_websocket(server.url)
        server.refuse(0)
        async with open_client(server):
            pass
        assert server.connection_attempts == 7
        with pytest.raises(ValueError):
            server.refuse(-1)


@pytest.mark.anyio
async def test_maintenance_status() -> None:
    async with open_fake_kraken() as server, open_client(server) as client:
        await server.wait_for_connections(1)
        await server.set_status("maintenance")
        assert server.status == "maintenance"
        status = await client.recv()
        assert (status["event"], status["status"]) == ("systemStatus", "maintenance")
        async with open_client(server, greeting=False) as late:
            assert (await late.recv())["status"] == "maintenance"
        with pytest.raises(ValueError):
            await server.set_status("down")
    async with open_fake_kraken(status="cancel_only") as server, open_client(server, False) as c:
        assert (await c.recv())["status"] == "cancel_only"


@pytest.mark.anyio
async def test_send_raw_garbage_and_binary() -> None:
    async with open_fake_kraken() as server, open_client(server) as client:
        await server.wait_for_connections(1)
        assert await server.send_raw("}{ not json") == 1
        assert await server.send_raw(b"\x00\xff") == 1
        assert await client.recv_raw() == "}{ not json"
        assert await client.recv_raw() == b"\x00\xff"
        assert await client.request({"event": "ping"}) == [{"event": "pong"}]


@pytest.mark.anyio
async def test_rate_limit() -> None:
    async with open_fake_kraken() as server, open_client(server) as client:
        await server.wait_for_connections(1)
        server.rate_limit(2)
        for reqid in (1, 2):
            assert await client.request({"event": "ping", "reqid": reqid}) == [
                {"Error": "Exceeded msg rate"}
            ]
        assert await client.request({"event": "ping", "reqid": 3}) == [
            {"event": "pong", "reqid": 3}
        ]


@pytest.mark.anyio
async def test_all_received_and_waiters_across_connections() -> None:
    async with open_fake_kraken() as server, open_client(server) as a, open_client(server) as b:
        await a.request({"event": "ping", "reqid": 1})
        await b.request({"event": "ping", "reqid": 2})
        await a.request({"event": "ping", "reqid": 3})
        second = await server.wait_for_received(lambda f: f.get("event") == "ping", count=2)
        assert second == {"event": "ping", "reqid": 2}
        assert [f["reqid"] for f in server.all_received()] == [1, 2, 3]
        assert len(await server.wait_for_connections(2)) == 2


@pytest.mark.anyio
async def test_order_handler_hook() -> None:
    def engine(
        session: FakeKrakenSession, request: dict[str, Any], now: float
    ) -> list[OutgoingMessage]:
        reply = {"event": "addOrderStatus", "status": "ok", "txid": "OTEST-1"}
        return [{**reply, "reqid": request["reqid"]}]

    async with open_fake_kraken(order_handler=engine) as server, open_client(server) as client:
        assert await client.request({"event": "addOrder", "reqid": 8}) == [
            {"event": "addOrderStatus", "status": "ok", "txid": "OTEST-1", "reqid": 8}
        ]


@pytest.mark.anyio
async def test_leaving_the_block_stops_everything() -> None:
    before = {task.id for task in anyio.get_running_tasks()}
    codes: list[int | None] = []
    async with anyio.create_task_group() as tg, open_fake_kraken() as server:
        client = RawClient(await connect_websocket(server.url))
        await client.recv()

        async def read() -> None:
            with pytest.raises(ConnectionClosedError) as caught:
                await client.recv()
            codes.append(caught.value.code)

        tg.start_soon(read)
        port = server.port
    await client.ws.aclose()
    assert codes == [1001]
    assert server.sessions == []
    assert {task.id for task in anyio.get_running_tasks()} == before
    with pytest.raises(OSError):
        await connect_websocket(f"ws://127.0.0.1:{port}")


@pytest.mark.anyio
async def test_crash_in_server_task_is_not_swallowed() -> None:
    def engine(
        session: FakeKrakenSession, request: dict[str, Any], now: float
    ) -> list[OutgoingMessage]:
        raise KeyError("engine bug")

    with pytest.raises(Exception) as caught:  # checked below
        async with open_fake_kraken(order_handler=engine) as server, open_client(server) as c:
            await c.send({"event": "addOrder"})
            await c.recv()  # closed with 1001 as the server goes down
    assert isinstance(caught.value, KeyError) or caught.group_contains(KeyError)


@pytest.mark.anyio
async def test_exception_in_block_propagates_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with open_fake_kraken():
            raise KeyError("boom")


@pytest.mark.trio
async def test_trio_websocket_client_interop(autojump_clock: trio.testing.MockClock) -> None:
    async with (
        open_fake_kraken() as server,
        trio_websocket.open_websocket_url(server.url) as ws,
    ):
        status = json.loads(await ws.get_message())
        assert (status["event"], status["status"]) == ("systemStatus", "online")
        await ws.send_message(json.dumps({"event": "ping", "reqid": 0}))
        assert json.loads(await ws.get_message()) == {"event": "pong", "reqid": 0}
        # A stalled app still answers WebSocket pings (the transport does),
        # but not application pings.
        server.stall()
        with trio.fail_after(5):
            await ws.ping(b"alive?")
        await ws.send_message(json.dumps({"event": "ping", "reqid": 1}))
        with trio.move_on_after(2) as scope:
            await ws.get_message()
        assert scope.cancelled_caught
