"""v2.open_kraken against the fake exchange's ``/v2`` path (both backends,
virtual time): acks, replay, pacing, liveness, maintenance, typed data."""

from __future__ import annotations

import itertools
import logging
from decimal import Decimal
from typing import Any

import anyio
import pytest
from helpers import next_of

from kraky_anyio import (
    Connected,
    ConnectionFailedError,
    Disconnected,
    KrakenError,
    KrakyError,
    ReconnectPolicy,
    ReplyLostError,
    ReplyTimeoutError,
    v2,
)
from kraky_anyio.options import resolve_url
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.v2.messages import HeartbeatMessage, Response, StatusMessage, TickerMessage
from kraky_anyio.v2.protocol import INTERNAL_REQ_ID_BASE

pytestmark = pytest.mark.anyio

SLOW = ReconnectPolicy(immediate_retries=0, base_delay=1.0, max_delay=2.0)


def ticker(symbol: str, bid: str, bid_qty: str) -> dict[str, Any]:
    one = Decimal("1.0")
    return {
        "symbol": symbol,
        "bid": Decimal(bid),
        "bid_qty": Decimal(bid_qty),
        "ask": one,
        "ask_qty": one,
        "last": one,
        "volume": one,
        "vwap": one,
        "low": one,
        "high": one,
        "change": one,
        "change_pct": one,
    }


def subscribes(server: FakeKrakenServer, *, replay: bool) -> list[dict[str, Any]]:
    """The subscribe requests the server received (the library's own, or the user's)."""
    return [
        f
        for f in server.all_received()
        if isinstance(f, dict)
        and f.get("method") == "subscribe"
        and (f["req_id"] >= INTERNAL_REQ_ID_BASE) == replay
    ]


async def test_per_symbol_acks_with_one_symbol_rejected() -> None:
    async with (
        open_fake_kraken() as server,
        v2.open_kraken(server.v2_url) as conn,
    ):
        with anyio.fail_after(60):
            acks = await conn.subscribe("ticker", ["BTC/USD", "ETH/USD"])
            assert [a.result["symbol"] for a in acks] == ["BTC/USD", "ETH/USD"]
            assert all(isinstance(a, Response) and a.success for a in acks)
            with pytest.raises(KrakenError) as info:
                await conn.subscribe("book", ["BTC/USD", "BTC/XYZ"], depth=25)
        assert info.value.error_message == "Currency pair not supported BTC/XYZ"
        assert [(r.success, r.symbol) for r in info.value.replies] == [
            (True, None),
            (False, "BTC/XYZ"),
        ]
        assert sorted(conn.live_subscriptions(), key=repr) == sorted(
            [
                ({"channel": "ticker"}, "BTC/USD"),
                ({"channel": "ticker"}, "ETH/USD"),
                ({"channel": "book", "depth": 25}, "BTC/USD"),
            ],
            key=repr,
        )


async def test_a_whole_request_error_is_matched_by_req_id() -> None:
    async with (
        open_fake_kraken(valid_tokens={"good"}) as server,
        v2.open_kraken(server.v2_url, token="expired") as conn,
    ):
        with anyio.fail_after(60), pytest.raises(KrakenError) as info:
            await conn.subscribe("level3", ["BTC/USD", "ETH/USD"])
        assert info.value.error_message == "ESession:Invalid session"
        assert len(info.value.replies) == 1 and info.value.replies[0].symbol is None
        assert conn.live_subscriptions() == []


async def test_ping_returns_the_pong() -> None:
    async with open_fake_kraken() as server, v2.open_kraken(server.v2_url) as conn:
        with anyio.fail_after(60):
            pong = await conn.ping(req_id=5)
        assert (pong.method, pong.req_id, pong.success) == ("pong", 5, None)


async def test_bad_params_are_rejected_before_sending() -> None:
    async with open_fake_kraken() as server, v2.open_kraken(server.v2_url) as conn:
        with pytest.raises(ValueError, match="depth"):
            await conn.subscribe("book", ["BTC/USD"], depth=7)
        with pytest.raises(ValueError, match="unknown channel"):
            await conn.subscribe("tickers", ["BTC/USD"])
        with pytest.raises(TypeError, match="symbols"):
            await conn.subscribe("ticker", {"BTC/USD"})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="interval"):
            await conn.subscribe("ohlc", ["BTC/USD"], interval=2)
        with pytest.raises(ValueError, match="XBT"):
            await conn.unsubscribe("ticker", "XBT/USD")
        with pytest.raises(TypeError, match="floats"):
            await conn.request("add_order", {"order_qty": 0.5})
        with anyio.fail_after(60):
            await conn.ping()  # everything before it reached the server by now
        methods = [f.get("method") for f in server.all_received()]
        assert methods == ["ping"]


async def test_a_rate_limited_subscribe_raises_and_is_counted() -> None:
    async with open_fake_kraken() as server, v2.open_kraken(server.v2_url) as conn:
        with anyio.fail_after(60):
            await conn.wait_connected()
            server.rate_limit(1)
            with pytest.raises(KrakenError, match="rate_limited"):
                await conn.subscribe("trade", ["BTC/USD"])
        assert conn.stats.rate_limit_errors == 1
        assert conn.live_subscriptions() == []


@pytest.mark.parametrize("drops", [1, 5])
async def test_replay_after_drops_with_an_unsubscribe_while_disconnected(drops: int) -> None:
    async with (
        open_fake_kraken() as server,
        v2.open_kraken(server.v2_url, reconnect_policy=SLOW) as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(600):
            await conn.subscribe("ticker", ["BTC/USD", "ETH/USD"])
            await conn.subscribe("book", ["BTC/USD"], depth=25)
            for i in range(drops):
                server.refuse(None)
                await server.drop()
                await next_of(stream, lambda m: isinstance(m, Disconnected))
                if i == 0:
                    assert await conn.unsubscribe("ticker", ["ETH/USD"]) == []
                server.refuse(0)
                await next_of(stream, lambda m: isinstance(m, Connected))
                await conn.ping()  # the replay was processed before the pong
                (session,) = server.sessions
                assert session.session.subscriptions == {
                    ("ticker", "BTC/USD"),
                    ("book", "BTC/USD"),
                }
                assert session.session.subscription_params("book", "BTC/USD") == {
                    "depth": 25,
                    "snapshot": True,
                }
        assert conn.generation == drops + 1
        # Grouped: one request per subscription, each socket; no unsubscribe sent.
        assert len(subscribes(server, replay=True)) == 2 * drops
        assert not any(f.get("method") == "unsubscribe" for f in server.all_received())
        assert conn.stats.replayed == 2 * drops


async def test_replay_is_paced() -> None:
    async with (
        open_fake_kraken(pairs=None) as server,
        v2.open_kraken(server.v2_url, reconnect_policy=SLOW) as conn,
    ):
        conn.protocol.replay_burst, conn.protocol.replay_window = 2, 1.0
        arrived: list[float] = []

        async def record() -> None:
            for n in range(1, 6):
                await server.wait_for_received(
                    lambda f: (
                        isinstance(f, dict)
                        and f.get("method") == "subscribe"
                        and f["req_id"] >= INTERNAL_REQ_ID_BASE
                    ),
                    count=n,
                )
                arrived.append(anyio.current_time())

        with anyio.fail_after(600):
            await conn.subscribe("ticker", ["BTC/USD"])
            await conn.subscribe("trade", ["BTC/USD"])
            await conn.subscribe("book", ["ETH/USD"], depth=100)
            await conn.subscribe("ohlc", ["SOL/USD"], interval=5)
            await conn.subscribe("ohlc", ["DOT/USD"], interval=15)
            async with anyio.create_task_group() as tg:
                tg.start_soon(record)
                await anyio.wait_all_tasks_blocked()
                await server.drop()
            await conn.ping()
        assert len(arrived) == 5
        # At most 2 requests in any 1-second window (float clocks: a rounding
        # error of margin), and no more waiting than that.
        gaps = [later - first for first, later in zip(arrived, arrived[2:], strict=False)]
        assert all(gap > 1.0 - 1e-6 for gap in gaps)
        assert arrived[-1] - arrived[0] < 3.0
        assert len(server.sessions[0].session.subscriptions) == 5
        assert conn.stats.rate_limit_errors == 0


async def test_liveness_pings_use_the_librarys_req_ids_and_heartbeats_count() -> None:
    async with (
        open_fake_kraken(heartbeat_interval=0.5) as server,
        v2.open_kraken(server.v2_url, idle_timeout=1, ping_timeout=1) as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(600):
            # Idle (no subscription, so no heartbeat): the watchdog pings.
            ping = await server.wait_for_received(
                lambda f: isinstance(f, dict) and f.get("method") == "ping", count=3
            )
            assert ping["req_id"] >= INTERNAL_REQ_ID_BASE
            assert conn.stats.dead_connections == 0 and conn.generation == 1
            # Subscribed: Kraken's heartbeats keep it alive without pings.
            await conn.subscribe("trade", ["BTC/USD"])
            pings = conn.stats.pings_sent
            for _ in range(10):
                await next_of(stream, lambda m: isinstance(m, HeartbeatMessage))
            assert conn.stats.pings_sent == pings
            # A hung server: dead after idle + ping timeouts, then a new socket.
            server.stall()
            await next_of(stream, lambda m: isinstance(m, Disconnected))
            server.stall(False)
            await next_of(stream, lambda m: isinstance(m, Connected))
        assert conn.stats.dead_connections == 1


async def test_status_frames_drive_maintenance_spacing() -> None:
    interval = 5.0
    policy = ReconnectPolicy(immediate_retries=3, maintenance_interval=interval)
    async with (
        open_fake_kraken(status="maintenance") as server,
        v2.open_kraken(server.v2_url, reconnect_policy=policy) as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(600):
            status = await next_of(stream, lambda m: isinstance(m, StatusMessage))
            assert status.data[0].system == "maintenance" and status.data[0].connection_id is None
            assert conn.system_status == "maintenance"
            server.refuse(2)
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Connected) and m.generation == 2)
        times = server.attempt_times
        assert len(times) == 4
        assert all(b - a >= interval for a, b in itertools.pairwise(times[1:]))
        await server.set_status("online")
        with anyio.fail_after(600):
            await next_of(
                stream, lambda m: isinstance(m, StatusMessage) and m.data[0].system == "online"
            )
        assert conn.system_status == "online" and not conn.protocol.maintenance


async def test_typed_messages_with_exact_numbers_filtered_by_channel_and_symbol() -> None:
    async with (
        open_fake_kraken() as server,
        v2.open_kraken(server.v2_url) as conn,
        conn.messages(channel="ticker", symbol="BTC/USD") as stream,
    ):
        with anyio.fail_after(60):
            await conn.subscribe("ticker", ["BTC/USD", "ETH/USD"])
            await server.publish_v2("ticker", "ETH/USD", [ticker("ETH/USD", "2.5", "1")])
            await server.publish_v2(
                "ticker", "BTC/USD", [ticker("BTC/USD", "0.00000001", "0.00000050")]
            )
            msg = await next_of(stream, lambda m: not isinstance(m, Connected))
        assert isinstance(msg, TickerMessage)
        (entry,) = msg.data
        assert entry.symbol == "BTC/USD"
        assert entry.bid == Decimal("0.00000001") and entry.bid_qty == Decimal("0.00000050")
        assert format(entry.bid_qty, "f") == "0.00000050"  # str() would say 5.0E-7
        await server.send_raw("not json")
        with anyio.fail_after(60):
            await conn.ping()
        # Every frame accounted for: published as one message, or counted as dropped.
        s = conn.stats
        assert s.malformed_frames == 1
        published = s.messages_published - s.notices_published
        assert s.frames_received == s.binary_frames + s.malformed_frames + published


async def test_the_block_owns_everything() -> None:
    async with open_fake_kraken() as server:
        with pytest.raises(KeyError):
            async with v2.open_kraken(server.v2_url) as conn:
                await conn.wait_connected()
                raise KeyError("mine")
        with pytest.raises(KrakyError, match="the connection is closed"):
            await conn.ping()
        with pytest.raises(ConnectionFailedError, match="lost"):
            async with v2.open_kraken(server.v2_url, reconnect=False) as conn:
                with anyio.fail_after(60):
                    await conn.wait_connected()
                    await server.drop()
                    await anyio.sleep_forever()


async def test_environments_and_bad_options_fail_on_entry() -> None:
    assert v2.ENVIRONMENTS["level3"] == "wss://ws-l3.kraken.com/v2"
    with pytest.raises(ValueError, match="level3"):
        async with v2.open_kraken("mars"):
            pass
    with pytest.raises(TypeError, match="unknown option"):
        async with v2.open_kraken("production", pairs=1):
            pass
    assert resolve_url("beta-auth", v2.ENVIRONMENTS) == "wss://beta-ws-auth.kraken.com/v2"
    assert resolve_url("beta-auth") == "wss://beta-ws-auth.kraken.com"  # v1 unchanged


async def test_a_subscribe_cancelled_while_disconnected_is_never_sent() -> None:
    async with (
        open_fake_kraken() as server,
        v2.open_kraken(server.v2_url, reconnect_policy=SLOW) as conn,
        conn.messages() as stream,
    ):
        server.refuse(None)
        with anyio.fail_after(600):
            await server.wait_for(lambda: server.refused >= 1)
            with anyio.move_on_after(1):
                await conn.subscribe("ticker", ["BTC/USD"])
            server.refuse(0)
            await next_of(stream, lambda m: isinstance(m, Connected))
            await conn.ping()
        assert [f["method"] for f in server.all_received()] == ["ping"]
        assert conn.live_subscriptions() == [] and conn.stats.requests_abandoned == 1


async def test_a_drop_before_the_acks_loses_the_reply_and_the_entries() -> None:
    lost: list[ReplyLostError] = []

    async def subscribe(conn: v2.KrakenV2Connection) -> None:
        try:
            await conn.subscribe("ticker", ["BTC/USD"])
        except ReplyLostError as exc:
            lost.append(exc)

    async with (
        open_fake_kraken() as server,
        # Liveness slower than reply_timeout: the ping times out, no dead socket.
        v2.open_kraken(server.v2_url, reconnect_policy=SLOW, idle_timeout=60) as conn,
    ):
        with anyio.fail_after(600):
            await conn.wait_connected()
            server.stall()
            async with anyio.create_task_group() as tg:
                tg.start_soon(subscribe, conn)
                await server.wait_for_received(
                    lambda f: isinstance(f, dict) and f.get("method") == "subscribe"
                )
                await server.drop()
            server.stall(False)
            await conn.wait_connected()
        assert len(lost) == 1 and lost[0].replies == []
        assert conn.live_subscriptions() == [] and conn.stats.replies_lost == 1
        server.stall()
        with anyio.fail_after(600), pytest.raises(ReplyTimeoutError):
            await conn.ping()


async def test_private_channels_use_a_fresh_provider_token_per_socket() -> None:
    tokens = iter(["t1", "t2", "t3"])

    async def provider() -> str:
        return next(tokens)

    async with (
        open_fake_kraken(valid_tokens={"t1", "t2", "t3"}) as server,
        v2.open_kraken(server.v2_url, token=provider, reconnect_policy=SLOW) as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(600):
            await conn.subscribe("level3", ["BTC/USD"], depth=100)
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Connected) and m.generation == 2)
            await conn.ping()
            with pytest.raises(KrakenError, match="Subscription Not Found"):
                await conn.unsubscribe("ticker", ["BTC/USD"])
        sent = [f["params"] for f in server.all_received() if f.get("method") == "subscribe"]
        assert [s["token"] for s in sent] == ["t1", "t2"]
        assert sent[1] == {"channel": "level3", "symbol": ["BTC/USD"], "depth": 100, "token": "t2"}
        assert ("level3", "BTC/USD") in server.sessions[0].session.subscriptions


async def test_a_token_never_reaches_a_log_line_an_error_or_a_repr(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "SECRET-TOKEN-v2"
    caplog.set_level(logging.DEBUG, logger="kraky_anyio")
    async with (
        open_fake_kraken(valid_tokens={"other"}) as server,
        v2.open_kraken(server.v2_url, token=secret) as conn,
    ):
        with anyio.fail_after(60), pytest.raises(KrakenError) as info:
            await conn.subscribe("level3", ["BTC/USD"])
        texts = [str(info.value), repr(info.value.replies), repr(conn), repr(conn.options)]
        texts += [repr(r) for r in conn.protocol.requests]
    assert any("subscribe" in r.getMessage() for r in caplog.records)  # DEBUG frames logged
    for text in [*texts, *(r.getMessage() for r in caplog.records)]:
        assert secret not in text


async def test_a_drop_in_the_middle_of_a_paced_replay_keeps_every_entry() -> None:
    async with (
        open_fake_kraken() as server,
        v2.open_kraken(server.v2_url, reconnect_policy=SLOW) as conn,
        conn.messages() as stream,
    ):
        conn.protocol.replay_burst, conn.protocol.replay_window = 1, 5.0
        with anyio.fail_after(600):
            await conn.subscribe("ticker", ["BTC/USD"])
            await conn.subscribe("trade", ["ETH/USD"])
            await conn.subscribe("book", ["BTC/USD"], depth=25)
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Connected) and m.generation == 2)
            await server.wait_for(lambda: len(subscribes(server, replay=True)) == 1)
            assert not conn.connected  # still pacing
            await server.drop()  # two requests of the replay were never written
            await next_of(stream, lambda m: isinstance(m, Connected) and m.generation == 3)
            await conn.wait_connected()
            await conn.ping()
        assert server.sessions[0].session.subscriptions == {
            ("ticker", "BTC/USD"),
            ("trade", "ETH/USD"),
            ("book", "BTC/USD"),
        }
        assert len(subscribes(server, replay=True)) == 1 + 3
        assert len(conn.live_subscriptions()) == 3
