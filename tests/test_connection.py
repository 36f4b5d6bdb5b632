"""open_kraken against the fake exchange, on asyncio and trio, on virtual time."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from helpers import drop_and_wait_reconnect, next_of

from kraky_anyio import (
    Connected,
    ConnectionFailedError,
    ConsumerOverflowError,
    Disconnected,
    KrakenError,
    KrakyError,
    ReconnectPolicy,
    ReplyLostError,
    ReplyTimeoutError,
    SubscriptionLost,
    open_kraken,
)
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

pytestmark = pytest.mark.anyio

TICKER = {"name": "ticker"}


@pytest.fixture
async def server() -> AsyncIterator[FakeKrakenServer]:
    async with open_fake_kraken() as srv:
        yield srv


def subscribes(server: FakeKrakenServer) -> list[dict[str, Any]]:
    return [f for f in server.all_received() if f.get("event") == "subscribe"]


def live_keys(server: FakeKrakenServer) -> set[tuple[str, str | None]]:
    out: set[tuple[str, str | None]] = set()
    for c in server.sessions:
        out |= set(c.session.subscriptions)
    return out


async def test_ping_subscribe_and_messages(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn:
        stream = conn.messages()
        with anyio.fail_after(10):
            assert await conn.ping(reqid=0) == {"event": "pong", "reqid": 0}
            replies = await conn.subscribe(TICKER, pair=["XBT/USD", "ETH/USD"], reqid=7)
            assert [(r["pair"], r["status"], r["reqid"]) for r in replies] == [
                ("XBT/USD", "subscribed", 7),
                ("ETH/USD", "subscribed", 7),
            ]
            await server.publish("ticker", "XBT/USD", {"c": ["1.5", "0.1"]})
            seen: list[Any] = []
            async for msg in stream:
                seen.append(msg)
                if isinstance(msg, list):
                    break
        assert isinstance(seen[0], Connected)
        assert seen[1]["event"] == "systemStatus"
        assert seen[-1][1:] == [{"c": ["1.5", "0.1"]}, "ticker", "XBT/USD"]
        assert sorted(p for _, p in conn.live_subscriptions()) == ["ETH/USD", "XBT/USD"]
    sent = subscribes(server)
    assert sent == [
        {"event": "subscribe", "reqid": 7, "subscription": TICKER, "pair": ["XBT/USD", "ETH/USD"]}
    ]


async def test_bare_string_pair_is_one_pair(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn:
        with anyio.fail_after(10):
            replies = await conn.subscribe(TICKER, pair="XBT/USD")
        assert [r["pair"] for r in replies] == ["XBT/USD"]
    assert subscribes(server)[0]["pair"] == ["XBT/USD"]


@pytest.mark.parametrize(
    ("subscription", "pair", "exc"),
    [
        ("ticker", ["XBT/USD"], TypeError),
        ({"name": ""}, ["XBT/USD"], ValueError),
        (TICKER, None, ValueError),
        (TICKER, [], ValueError),
        (TICKER, [1], TypeError),
        ({"name": "book", "depth": "10"}, ["XBT/USD"], TypeError),
        ({"name": "ownTrades"}, None, ValueError),  # no token
    ],
)
async def test_bad_arguments_fail_before_sending(
    server: FakeKrakenServer, subscription: Any, pair: Any, exc: type[Exception]
) -> None:
    async with open_kraken(server.url) as conn:
        await conn.wait_connected()
        with pytest.raises(exc):
            await conn.subscribe(subscription, pair=pair)
        with pytest.raises((TypeError, ValueError)):
            await conn.ping(reqid=-1)
        assert await conn.ping()  # the connection still serves
    assert subscribes(server) == []


async def test_duplicate_pending_reqid_is_refused(server: FakeKrakenServer) -> None:
    server.stall(True)
    async with open_kraken(server.url, reply_timeout=30) as conn, anyio.create_task_group() as tg:
        tg.start_soon(conn.ping, 5)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(ValueError, match="already pending"):
            await conn.ping(reqid=5)
        tg.cancel_scope.cancel()


async def test_rejected_and_partly_rejected_subscriptions(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn:
        with anyio.fail_after(10):
            with pytest.raises(KrakenError) as info:
                await conn.subscribe({"name": "book", "depth": 42}, pair=["XBT/USD"])
            assert info.value.error_message == "Subscription depth not supported"
            with pytest.raises(KrakenError) as info:
                await conn.subscribe(TICKER, pair=["XBT/USD", "NOPE/USD"])
            assert "NOPE/USD" in info.value.error_message
            assert {r["pair"]: r["status"] for r in info.value.replies} == {
                "XBT/USD": "subscribed",
                "NOPE/USD": "error",
            }
        assert conn.live_subscriptions() == [(TICKER, "XBT/USD")]
        before = len(subscribes(server))
        await drop_and_wait_reconnect(server, conn)
        with anyio.fail_after(10):
            await server.wait_for_subscription("ticker", "XBT/USD")
        replay = subscribes(server)[before:]
        assert [(r["pair"], r["subscription"]) for r in replay] == [(["XBT/USD"], TICKER)]


@pytest.mark.parametrize("drops", [1, 5])
async def test_reconnect_replays_exactly_the_live_subscriptions(
    server: FakeKrakenServer, drops: int
) -> None:
    async with open_kraken(server.url) as conn:
        with anyio.fail_after(10):
            await conn.subscribe(TICKER, pair=["XBT/USD", "ETH/USD"])
            await conn.subscribe({"name": "book", "depth": 10}, pair=["XBT/USD"])
            await conn.subscribe({"name": "trade"}, pair=["XBT/USD"])
            await conn.unsubscribe({"name": "trade"}, pair=["XBT/USD"])
            await conn.unsubscribe(TICKER, pair=["ETH/USD"])
            with pytest.raises(KrakenError):
                await conn.subscribe({"name": "spread"}, pair=["NOPE/USD"])
        for _ in range(drops):
            before = len(subscribes(server))
            await drop_and_wait_reconnect(server, conn)
            with anyio.fail_after(10):
                await server.wait_for_subscription("book-10", "XBT/USD")
                await server.wait_for_subscription("ticker", "XBT/USD")
            replay = subscribes(server)[before:]
            # Grouped: one request per subscription, only live pairs.
            assert sorted((json.dumps(r["subscription"]), tuple(r["pair"])) for r in replay) == [
                ('{"depth": 10, "name": "book"}', ("XBT/USD",)),
                ('{"name": "ticker"}', ("XBT/USD",)),
            ]
            assert live_keys(server) == {("book-10", "XBT/USD"), ("ticker", "XBT/USD")}
        assert conn.stats.replayed == 2 * drops
        assert conn.generation == drops + 1


async def test_unsubscribe_while_disconnected_is_settled_locally(
    server: FakeKrakenServer,
) -> None:
    async with open_kraken(server.url) as conn:
        with anyio.fail_after(10):
            await conn.subscribe(TICKER, pair=["XBT/USD", "ETH/USD"])
        server.refuse(None)
        async with conn.messages() as stream:
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Disconnected))
        assert not conn.connected
        assert await conn.unsubscribe(TICKER, pair=["ETH/USD"]) == []
        server.refuse(0)
        with anyio.fail_after(120):
            await conn.wait_connected()
            await server.wait_for_subscription("ticker", "XBT/USD")
        assert live_keys(server) == {("ticker", "XBT/USD")}
    assert not [f for f in server.all_received() if f.get("event") == "unsubscribe"]


async def test_request_waits_for_connection_and_cancelled_one_is_never_sent() -> None:
    async with open_fake_kraken() as server:
        server.refuse(None)
        async with open_kraken(server.url) as conn:
            with anyio.move_on_after(3):
                await conn.subscribe({"name": "trade"}, pair=["XBT/USD"])
                pytest.fail("subscribe returned without a connection")
            assert conn.stats.requests_abandoned == 1
            server.refuse(0)
            with anyio.fail_after(120):
                replies = await conn.subscribe(TICKER, pair=["XBT/USD"])
            assert replies[0]["status"] == "subscribed"
        assert [f["subscription"]["name"] for f in subscribes(server)] == ["ticker"]


async def test_reply_lost_to_a_drop_and_reply_timeout(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url, reply_timeout=3) as conn:
        await conn.wait_connected()
        server.stall(True)
        with pytest.raises(ReplyTimeoutError):
            await conn.ping()
        assert conn.stats.reply_timeouts == 1

        async def drop_soon() -> None:
            await server.wait_for_received(lambda f: f.get("reqid") == 99)
            await server.drop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(drop_soon)
            with pytest.raises(ReplyLostError):
                await conn.subscribe(TICKER, pair=["XBT/USD"], reqid=99)
        server.stall(False)
        with anyio.fail_after(60):
            await conn.wait_connected()
        # The lost subscribe is not live and is not replayed.
        assert conn.live_subscriptions() == []
        assert [f.get("reqid") for f in subscribes(server)] == [99]


async def test_stalled_server_is_detected_and_replaced(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url, idle_timeout=5, ping_timeout=5) as conn:
        with anyio.fail_after(10):
            await conn.subscribe(TICKER, pair=["XBT/USD"])
        stream = conn.messages()
        server.stall(True)
        start = anyio.current_time()
        with anyio.fail_after(60):
            async for msg in stream:
                if isinstance(msg, Disconnected):
                    break
        elapsed = anyio.current_time() - start
        # One heartbeat interval may pass before silence starts.
        assert 10 <= elapsed <= 12, elapsed
        assert "no message from Kraken" in msg.reason
        assert conn.stats.dead_connections == 1
        assert conn.stats.pings_sent >= 1
        server.stall(False)
        with anyio.fail_after(60):
            await conn.wait_connected()
            await server.wait_for_subscription("ticker", "XBT/USD")


async def test_heartbeats_keep_an_idle_subscribed_connection_alive(
    server: FakeKrakenServer,
) -> None:
    async with open_kraken(server.url, idle_timeout=5) as conn:
        with anyio.fail_after(10):
            await conn.subscribe(TICKER, pair=["XBT/USD"])
        await anyio.sleep(120)
        assert conn.stats.pings_sent == 0
        assert conn.generation == 1


async def test_unsubscribed_idle_connection_is_kept_alive_by_pings(
    server: FakeKrakenServer,
) -> None:
    async with open_kraken(server.url, idle_timeout=5, ping_timeout=5) as conn:
        await conn.wait_connected()
        await anyio.sleep(60)
        assert conn.stats.pings_sent >= 10
        assert conn.stats.dead_connections == 0
        assert conn.generation == 1
        assert conn.stats.unmatched_replies == 0


async def test_many_consumers_each_get_everything_in_order(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn:
        streams = [conn.messages() for _ in range(5)]
        filtered = conn.messages(channel="ticker", pair="ETH/USD")
        with anyio.fail_after(10):
            await conn.subscribe(TICKER, pair=["XBT/USD", "ETH/USD"])
            await server.wait_for_subscription("ticker", "ETH/USD")
            for i in range(50):
                await server.publish("ticker", "XBT/USD" if i % 2 else "ETH/USD", {"i": i})
            results = []
            for s in streams:
                got = []
                async for msg in s:
                    if isinstance(msg, list):
                        got.append(msg[1]["i"])
                        if len(got) == 50:
                            break
                results.append(got)
            only = []
            async for msg in filtered:
                if isinstance(msg, Connected):
                    continue
                assert isinstance(msg, list) and msg[-1] == "ETH/USD"
                only.append(msg[1]["i"])
                if len(only) == 25:
                    break
        assert results == [list(range(50))] * 5
        assert only == list(range(0, 50, 2))


async def test_slow_consumer_blocking_policy_loses_nothing(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url, buffer_size=4, idle_timeout=5, ping_timeout=5) as conn:
        slow = conn.messages()
        fast_count = 0
        with anyio.fail_after(10):
            await conn.subscribe(TICKER, pair=["XBT/USD"])
        for i in range(40):
            await server.publish("ticker", "XBT/USD", {"i": i})
        got = []
        with anyio.fail_after(600):
            async for msg in slow:
                if isinstance(msg, list):
                    got.append(msg[1]["i"])
                    await anyio.sleep(1)  # slower than liveness allows
                    if len(got) == 40:
                        break
        assert got == list(range(40))
        assert fast_count == 0
        assert conn.stats.dead_connections == 0
        assert conn.generation == 1


async def test_slow_consumer_fail_policy(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url, buffer_size=5, overflow="fail") as conn:
        slow = conn.messages()
        other = conn.messages(buffer_size=1000)
        with anyio.fail_after(10):
            await conn.subscribe(TICKER, pair=["XBT/USD"])
            for i in range(30):
                await server.publish("ticker", "XBT/USD", {"i": i})
            got = []
            async for msg in other:
                if isinstance(msg, list):
                    got.append(msg[1]["i"])
                    if len(got) == 30:
                        break
        assert got == list(range(30))
        received = []
        with pytest.raises(ConsumerOverflowError) as info:
            async for msg in slow:
                received.append(msg)
        assert len(received) == 5
        assert info.value.dropped > 0
        assert conn.stats.consumer_overflows == 1


async def test_broken_out_consumer_does_not_block_the_reader(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url, buffer_size=2) as conn:
        async for _msg in conn.messages():
            break  # the stream is unreferenced now
        keep = conn.messages(buffer_size=100)
        with anyio.fail_after(10):
            await conn.subscribe(TICKER, pair=["XBT/USD"])
            for i in range(10):
                await server.publish("ticker", "XBT/USD", {"i": i})
            n = 0
            async for msg in keep:
                n += isinstance(msg, list)
                if n == 10:
                    break
        async with conn.messages() as s:
            assert len(s) == 0
        assert conn.consumers == 1


async def test_garbage_frames_are_counted_and_the_connection_goes_on(
    server: FakeKrakenServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "kraky_anyio")
    async with open_kraken(server.url) as conn:
        await conn.wait_connected()
        stream = conn.messages()
        for garbage in [
            "not json",
            b"\x00binary",
            "[1,2]",
            '{"no":"event"}',
            '{"event":"surprise"}',
            '{"event":"pong","reqid":424242}',
            '{"Error":"Exceeded msg rate"}',
            "[]",
            '[{"a":1},"ownTrades",7]',
        ]:
            await server.send_raw(garbage)
        with anyio.fail_after(10):
            assert await conn.ping()
        s = conn.stats
        assert (s.malformed_frames, s.binary_frames) == (5, 1)
        assert (s.unknown_events, s.unmatched_replies, s.rate_limit_errors) == (1, 1, 1)
        delivered = stream.receive_nowait()
        assert {"Error": "Exceeded msg rate"} in delivered
        assert not any(m == [1, 2] for m in delivered)
        assert conn.generation == 1
    assert "not JSON" in caplog.text


async def test_reconnect_budget_and_backoff_when_refused_for_an_hour(
    server: FakeKrakenServer,
) -> None:
    server.refuse(None)
    policy = ReconnectPolicy(budget=150, window=600)
    async with open_kraken(server.url, reconnect_policy=policy) as conn:
        await anyio.sleep(3600)
        times = server.attempt_times
        assert conn.stats.connection_attempts == len(times)
        for i, t in enumerate(times):
            in_window = [u for u in times[i:] if u < t + 600]
            assert len(in_window) <= 150
        assert len(times) >= 60  # it keeps trying
        # Immediate retries first, then spaced out.
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[0] < 0.5 and max(gaps) <= 60.5


async def test_maintenance_spaces_attempts(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn:
        await conn.wait_connected()
        async with conn.messages() as stream:
            await server.set_status("maintenance")
            await next_of(
                stream, lambda m: isinstance(m, dict) and m.get("status") == "maintenance"
            )
        assert conn.system_status == "maintenance"
        server.refuse(None)
        start = len(server.attempt_times)
        await server.drop()
        await anyio.sleep(120)
        times = server.attempt_times[start:]
        assert len(times) >= 5
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 5 - 1e-6


async def test_enter_returns_at_once_without_a_server() -> None:
    async with open_fake_kraken() as server:
        server.refuse(None)
        async with open_kraken(server.url) as conn:
            assert not conn.connected
            with pytest.raises(TimeoutError):
                with anyio.fail_after(30):
                    await conn.wait_connected()


async def test_user_exception_comes_out_as_itself(server: FakeKrakenServer) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with open_kraken(server.url) as conn:
            await conn.wait_connected()
            raise Boom()


async def test_lost_socket_without_reconnect_is_one_documented_error(
    server: FakeKrakenServer,
) -> None:
    with pytest.raises(ConnectionFailedError, match="lost"):
        async with open_kraken(server.url, reconnect=False) as conn:
            await conn.wait_connected()
            await server.drop()
            await anyio.sleep_forever()


async def test_unreachable_without_reconnect_fails() -> None:
    async with open_fake_kraken() as server:
        url = server.url
    with pytest.raises(ConnectionFailedError, match="could not connect"):
        async with open_kraken(url, reconnect=False):
            await anyio.sleep_forever()


async def test_calls_after_the_block_raise(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn:
        stream = conn.messages()
        await conn.wait_connected()
    with pytest.raises(KrakyError, match="closed"):
        await conn.ping()
    # The stream drains what it had, then ends.
    assert [m async for m in stream][-1].__class__ is Disconnected


async def test_replay_rejected_is_reported(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url, token="tok-1") as conn:
        stream = conn.messages()
        with anyio.fail_after(10):
            await conn.subscribe({"name": "ownTrades"})
        server.valid_tokens = frozenset({"other"})
        await drop_and_wait_reconnect(server, conn)
        with anyio.fail_after(10):
            async for msg in stream:
                if isinstance(msg, SubscriptionLost):
                    break
        assert msg.subscription["name"] == "ownTrades"
        assert conn.live_subscriptions() == []
        assert conn.stats.replay_failures == 1


@pytest.mark.parametrize("at", [0.0, 0.001, 0.5, 1.0, 5.0, 30.0])
async def test_cancel_the_block_at_any_point_leaves_no_task(
    server: FakeKrakenServer, at: float
) -> None:
    before = {t.id for t in anyio.get_running_tasks()}
    with anyio.move_on_after(at):
        async with open_kraken(server.url) as conn:
            stream = conn.messages()
            await conn.subscribe(TICKER, pair=["XBT/USD"])
            async for _ in stream:
                pass
    await anyio.wait_all_tasks_blocked()
    after = {t.id for t in anyio.get_running_tasks()}
    assert after - before == set()
