"""kraky_anyio.compat.KrakyWsClient: kraky's client on open_kraken, against the fake exchange."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import anyio
import pytest

from kraky_anyio import ReconnectPolicy
from kraky_anyio.compat import KrakyWsClient, reconnect_policy_for
from kraky_anyio.testing.engine import FakeMatchingEngine
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

pytestmark = pytest.mark.anyio

TOKEN = "tok-compat"
TRADE = {"name": "trade"}


@pytest.fixture
def engine() -> FakeMatchingEngine:
    return FakeMatchingEngine(reference_prices={"XBT/USD": "30000"})


@pytest.fixture
async def server(engine: FakeMatchingEngine) -> AsyncIterator[FakeKrakenServer]:
    async with open_fake_kraken(order_handler=engine, valid_tokens=[TOKEN]) as srv:
        yield srv


class Inbox:
    """A kraky handler that keeps what it got and lets a test wait for one."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, match: Callable[[Any], bool]) -> Any:
        with anyio.fail_after(60):
            while True:
                changed = self._changed
                for message in self.messages:
                    if match(message):
                        return message
                await changed.wait()


class Warnings(logging.Handler):
    """Collects the shim's warnings; a test waits for the n-th."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self._changed: anyio.Event | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self._changed is not None:
            self._changed.set()

    async def wait_for(self, n: int) -> None:
        with anyio.fail_after(60):
            while len(self.records) < n:
                self._changed = anyio.Event()
                await self._changed.wait()


@pytest.fixture(autouse=True)
def _keep_logger_level() -> Any:
    """``KrakyWsClient(logging_level=...)`` sets its logger's level: restore it."""
    logger = logging.getLogger("kraky_anyio.compat")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.fixture
def warnings() -> Any:
    handler = Warnings()
    logger = logging.getLogger("kraky_anyio.compat")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def frames(server: FakeKrakenServer, event: str) -> list[dict[str, Any]]:
    return [f for f in server.all_received() if isinstance(f, dict) and f.get("event") == event]


def trade_data(pair: str) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, list) and m[-2] == "trade" and m[-1] == pair


async def ping_into_a_stall(
    client: KrakyWsClient, server: FakeKrakenServer, *, answered: int, stalled: int
) -> None:
    """Ping (the server reads it), stall the server, ping again: that reply never comes."""
    await client.ping(reqid=answered)
    await server.wait_for_received(has_reqid(answered))
    server.stall(True)
    await client.ping(reqid=stalled)
    await server.wait_for_received(has_reqid(stalled))


def has_reqid(reqid: int) -> Callable[[Any], bool]:
    return lambda f: isinstance(f, dict) and f.get("reqid") == reqid


async def test_handler_gets_decoded_messages_and_disconnect_ends_connect(
    server: FakeKrakenServer,
) -> None:
    client = KrakyWsClient(server.url)
    inbox = Inbox()
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, inbox)
        await client.subscribe(TRADE, ["XBT/USD"])
        await server.wait_for_subscription("trade", "XBT/USD")
        assert client.connections["main"]["websocket"].open
        assert client.connections["main"]["subscriptions"] == [
            {"event": "subscribe", "pair": ["XBT/USD"], "subscription": TRADE}
        ]
        await server.publish("trade", "XBT/USD", [["30000.1", "0.5", "1.0", "b", "l", ""]])
        data = await inbox.wait_for(trade_data("XBT/USD"))
        await client.disconnect()
        assert "main" not in client.connections
    assert data[1][0][0] == "30000.1"
    status = await inbox.wait_for(
        lambda m: isinstance(m, dict) and m.get("event") == "subscriptionStatus"
    )
    assert status["status"] == "subscribed"
    # kraky passed systemStatus on too; numbers arrive as Decimal, never float.
    system = await inbox.wait_for(
        lambda m: isinstance(m, dict) and m.get("event") == "systemStatus"
    )
    assert isinstance(system.get("connectionID"), Decimal | int | str)
    assert client.failed_requests == 0


async def test_named_connections_on_one_object(server: FakeKrakenServer) -> None:
    client = KrakyWsClient(server.url)
    public, other = Inbox(), Inbox()
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, public, "public")
        tg.start_soon(client.connect, other, "other")
        await client.subscribe(TRADE, ["XBT/USD"], connection_name="public")
        await client.subscribe(TRADE, ["ETH/USD"], connection_name="other")
        await server.wait_for_subscription("trade", "XBT/USD")
        await server.wait_for_subscription("trade", "ETH/USD")
        assert set(client.connections) == {"public", "other"}
        await client.disconnect("public")
        assert set(client.connections) == {"other"}
        await server.publish("trade", "ETH/USD", [["2000.5", "1", "1.0", "s", "m", ""]])
        await other.wait_for(trade_data("ETH/USD"))
        await client.disconnect("other")
        await client.disconnect("never-opened")  # ignored, like kraky
    assert not client.connections
    assert not any(trade_data("ETH/USD")(m) for m in public.messages)
    assert not any(trade_data("XBT/USD")(m) for m in other.messages)


async def test_a_name_can_connect_again_after_disconnect(server: FakeKrakenServer) -> None:
    client = KrakyWsClient(server.url)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, None)
        await client.ping(reqid=1)
        await server.wait_for_received(has_reqid(1))
        with pytest.raises(ValueError, match="already open"):
            await client.connect(None)
        await client.disconnect()
        tg.start_soon(client.connect, None)
        await client.ping(reqid=2)
        await server.wait_for_received(has_reqid(2))
        await client.disconnect()
    assert [f["reqid"] for f in frames(server, "ping")] == [1, 2]


async def test_a_failed_request_is_counted_and_logged_not_lost(
    server: FakeKrakenServer, warnings: Warnings
) -> None:
    client = KrakyWsClient(server.url)
    inbox = Inbox()
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, inbox)
        await client.subscribe(TRADE, ["NOPE/USD"])
        await warnings.wait_for(1)
        await client.disconnect()
    assert client.failed_requests == 1
    (record,) = warnings.records
    assert record.levelno == logging.WARNING
    assert "subscribe on connection 'main' failed: KrakenError" in record.getMessage()
    # kraky did not pass error replies to the handler; the request reports it.
    assert not any(isinstance(m, dict) and "errorMessage" in m for m in inbox.messages)


async def test_disconnect_abandons_pending_requests_visibly(
    server: FakeKrakenServer, warnings: Warnings
) -> None:
    client = KrakyWsClient(server.url)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, None)
        await ping_into_a_stall(client, server, answered=5, stalled=6)
        await client.disconnect()
    assert client.failed_requests == 1
    assert "ping on connection 'main' abandoned" in warnings.records[-1].getMessage()


async def test_orders_go_out_with_krakys_positional_arguments(
    server: FakeKrakenServer, engine: FakeMatchingEngine, warnings: Warnings
) -> None:
    client = KrakyWsClient(server.url)
    inbox = Inbox()
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, inbox)
        # kraky's order: token, pair, type, ordertype, volume, price, ...
        await client.add_order(TOKEN, "XBT/USD", "buy", "limit", 0.01, 25000.5, reqid=10)
        add = await server.wait_for_received(has_reqid(10))
        (txid,) = [order.txid for order in engine.open_orders()]
        await client.edit_order(TOKEN, [txid], "XBT/USD", None, "25001", validate="false", reqid=11)
        await client.cancel_all_orders_after(TOKEN, 60.0, reqid=12)
        await client.cancel_order(TOKEN, ["OXXXXX-XXXXX-XXXXXX"], reqid=13)
        await client.cancel_all(TOKEN, reqid=14)
        await inbox.wait_for(lambda m: isinstance(m, dict) and m.get("reqid") == 14)
        await warnings.wait_for(1)  # the unknown txid's cancel
        await client.disconnect()
    assert add["volume"] == "0.01" and add["price"] == "25000.5"
    (edit,) = frames(server, "editOrder")
    assert edit["orderid"] == txid and edit["validate"] == "false" and "volume" not in edit
    assert frames(server, "cancelAllOrdersAfter")[0]["timeout"] == 60
    assert client.failed_requests == 1
    assert "cancelOrder on connection 'main' failed" in warnings.records[0].getMessage()


async def test_bad_order_arguments_raise_at_once_and_send_nothing(
    server: FakeKrakenServer,
) -> None:
    client = KrakyWsClient(server.url)
    inbox = Inbox()
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, inbox)
        with pytest.raises(ValueError, match="GTC, GTD or IOC"):
            await client.add_order(TOKEN, "XBT/USD", "buy", "limit", 1, 1, timeinforce="FOK")
        with pytest.raises(ValueError, match="edits one order"):
            await client.edit_order(TOKEN, ["A", "B"], "XBT/USD", 1)
        with pytest.raises(ValueError, match="whole seconds"):
            await client.cancel_all_orders_after(TOKEN, 0.5)
        with pytest.raises(ValueError, match="use subscribe"):
            await client.add_order(TOKEN, "XBT/USD", "buy", "limit", 1, event="subscribe")
        with pytest.raises(ValueError, match=r"needs pair=\[\.\.\.\].*pair=\['XBT/USD'\]"):
            await client.subscribe({"name": "ticker"})
        with pytest.raises(ValueError, match="needs a token inside the subscription"):
            await client.subscribe({"name": "ownTrades"})
        with pytest.raises(ValueError, match="private channel: it takes no pair"):
            await client.unsubscribe({"name": "ownTrades", "token": TOKEN}, ["XBT/USD"])
        with pytest.raises(TypeError, match="token must be a str"):
            await client.cancel_all(None)  # type: ignore[arg-type]
        await client.ping(reqid=99)
        await inbox.wait_for(lambda m: isinstance(m, dict) and m.get("event") == "pong")
        await client.disconnect()
    assert [f["event"] for f in server.all_received() if isinstance(f, dict)] == ["ping"]
    assert client.failed_requests == 0


async def test_reconnect_replays_live_subscriptions_once_not_krakys_storm(
    server: FakeKrakenServer,
) -> None:
    """kraky: one drop after 2 subscribes and 1 unsubscribe re-sent every call
    (the unsubscribed one included), in a loop. Here: the live one, once."""
    client = KrakyWsClient(server.url)
    inbox = Inbox()
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, inbox)
        await client.subscribe(TRADE, ["XBT/USD"])
        await client.subscribe(TRADE, ["ETH/USD"])
        await server.wait_for_subscription("trade", "ETH/USD")
        await client.unsubscribe(TRADE, ["ETH/USD"])
        await inbox.wait_for(lambda m: isinstance(m, dict) and m.get("status") == "unsubscribed")
        before = len(frames(server, "subscribe"))
        await server.drop()
        await server.wait_for_subscription("trade", "XBT/USD")
        await server.publish("trade", "XBT/USD", [["30000.1", "0.5", "1.0", "b", "l", ""]])
        await inbox.wait_for(trade_data("XBT/USD"))
        await client.disconnect()
    replayed = frames(server, "subscribe")[before:]
    assert len(replayed) == 1
    assert replayed[0]["pair"] == ["XBT/USD"]
    assert client.connections == {}


def test_logging_level_sets_the_shims_logger_only() -> None:
    shim, library = logging.getLogger("kraky_anyio.compat"), logging.getLogger("kraky_anyio")
    before = library.level
    KrakyWsClient("production", logging_level="DEBUG")
    assert shim.level == logging.DEBUG
    assert library.level == before
    with pytest.raises(ValueError):
        KrakyWsClient("production", logging_level="LOUD")


def test_sleep_time_maps_to_a_reconnect_policy() -> None:
    assert reconnect_policy_for(5) == ReconnectPolicy(
        immediate_retries=0, base_delay=5.0, max_delay=60.0
    )
    assert reconnect_policy_for(120).max_delay == 120
    with pytest.raises(ValueError):
        reconnect_policy_for(-1)
    with pytest.raises(ValueError):
        reconnect_policy_for(float("inf"))
    with pytest.raises(TypeError):
        reconnect_policy_for("5")  # type: ignore[arg-type]


async def test_connect_with_a_malformed_url_fails_at_once() -> None:
    client = KrakyWsClient("http://example.invalid")
    with anyio.fail_after(5), pytest.raises(ValueError):
        await client.connect(None)
    assert client.connections == {}


async def test_a_handler_error_ends_connect_with_it(server: FakeKrakenServer) -> None:
    client = KrakyWsClient(server.url)

    async def handler(message: Any) -> None:
        if isinstance(message, dict) and message.get("event") == "pong":
            raise RuntimeError("handler bug")

    errors: list[Exception] = []

    async def run() -> None:
        try:
            await client.connect(handler)
        except RuntimeError as exc:  # as itself, not inside an ExceptionGroup
            errors.append(exc)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await client.ping()
    assert [str(e) for e in errors] == ["handler bug"]
    assert client.connections == {}
    assert client.failed_requests == 0  # the ping got its pong


async def test_cancelling_connect_closes_the_connection(
    server: FakeKrakenServer, warnings: Warnings
) -> None:
    client = KrakyWsClient(server.url)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, None)
        await ping_into_a_stall(client, server, answered=3, stalled=4)
        tg.cancel_scope.cancel()
    assert client.connections == {}
    await server.wait_for(lambda: not server.sessions)
    assert client.failed_requests == 1
    assert "abandoned" in warnings.records[-1].getMessage()


async def test_private_subscription_with_the_token_inside_survives_a_reconnect(
    server: FakeKrakenServer,
) -> None:
    """kraky's only way to subscribe to a private feed: the token inside the
    subscription dict is remembered for the replay."""
    client = KrakyWsClient(server.url)
    inbox = Inbox()
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, inbox)
        await client.subscribe({"name": "openOrders", "token": TOKEN})
        first = await server.wait_for_subscription("openOrders", None)
        await inbox.wait_for(lambda m: isinstance(m, dict) and m.get("status") == "subscribed")
        await server.drop()
        again = None
        with anyio.move_on_after(60):
            again = await server.wait_for_subscription("openOrders", None)
        await client.disconnect()
    assert again is not None, "the openOrders subscription was not restored"
    assert again is not first
    assert client.failed_requests == 0


async def test_subscribe_and_unsubscribe_send_krakys_frames_without_reqid(
    server: FakeKrakenServer,
) -> None:
    """kraky's test_subscribe/test_unsubscribe expect exactly these frames; the
    replies (without reqid) settle the requests: nothing is left to abandon."""
    client = KrakyWsClient(server.url)
    inbox = Inbox()
    ohlc = {"name": "ohlc", "interval": 30}
    pairs = ["XBT/USD", "ETH/USD"]
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, inbox)
        await client.subscribe(subscription=ohlc, pair=pairs)
        sub = await server.wait_for_received(lambda f: f.get("event") == "subscribe")
        await server.wait_for_subscription("ohlc-30", "ETH/USD")
        await client.unsubscribe(subscription=ohlc, pair=pairs)
        unsub = await server.wait_for_received(lambda f: f.get("event") == "unsubscribe")
        await inbox.wait_for(
            lambda m: (
                isinstance(m, dict) and m.get("status") == "unsubscribed" and m["pair"] == "ETH/USD"
            )
        )
        await client.disconnect()
    assert sub == {"event": "subscribe", "subscription": ohlc, "pair": pairs}
    assert unsub == {"event": "unsubscribe", "subscription": ohlc, "pair": pairs}
    assert client.failed_requests == 0


async def test_an_event_override_is_sent_raw_and_its_reply_matched_by_reqid(
    server: FakeKrakenServer, warnings: Warnings
) -> None:
    """kraky's escape hatch: the method's fields with another event, through
    ``conn.request_raw``; the server's answer settles it (not a timeout)."""
    client = KrakyWsClient(server.url)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, None)
        await client.add_order(
            TOKEN, "XBT/USD", "buy", "limit", "0.01", "25000", reqid=30, event="addOrderV9"
        )
        frame = await server.wait_for_received(has_reqid(30))
        await warnings.wait_for(1)
        await client.disconnect()
    assert frame == {
        "event": "addOrderV9",
        "token": TOKEN,
        "pair": "XBT/USD",
        "type": "buy",
        "ordertype": "limit",
        "volume": "0.01",
        "price": "25000",
        "reqid": 30,
    }
    assert client.failed_requests == 1
    message = warnings.records[0].getMessage()
    assert "addOrderV9 (raw) on connection 'main' failed: KrakenError" in message
    assert TOKEN not in message
