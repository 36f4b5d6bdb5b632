"""The shell against scripted servers: hangs, close, watchdog, tokens, status
(regressions of issue 11; both backends, virtual time)."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import pytest
from helpers import (
    accept_and_never_read,
    accept_then_close_glued,
    flood_then_vanish,
    kraken_like,
    next_of,
    scripted_server,
)

from kraky_anyio import (
    AuthError,
    Connected,
    ConnectionFailedError,
    Disconnected,
    KrakyError,
    ReconnectPolicy,
    SequenceGap,
    open_kraken,
)
from kraky_anyio.transport import accept_websocket

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio

TICKER = {"name": "ticker"}
SLOW = ReconnectPolicy(immediate_retries=0, base_delay=1.0, max_delay=2.0)
REFUSED = "ws://127.0.0.1:1"  # nothing listens on port 1


async def test_a_socket_dying_during_its_replay_does_not_strand_waiters() -> None:
    # Regression (11.1): socket 2 closes in its 101 so the replay write fails;
    # wait_connected() and ping() waiting meanwhile hung even after socket 3.
    drop_after_subscribe = functools.partial(kraken_like, drop_after=1)
    async with (
        scripted_server(drop_after_subscribe, accept_then_close_glued, kraken_like) as (
            url,
            seen,
        ),
        open_kraken(url, reconnect_policy=SLOW) as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(120):
            await conn.subscribe(TICKER, ["XBT/USD"])
            await next_of(stream, lambda m: isinstance(m, Disconnected))
            assert not conn.connected
            pong: list[dict[str, Any]] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(conn.wait_connected)
                tg.start_soon(lambda: _append(pong, conn.ping()))
        assert pong[0]["event"] == "pong"
        assert len(seen) == 3 and conn.generation == 3


async def _append(out: list[Any], call: Awaitable[Any]) -> None:
    out.append(await call)


async def _outcome(out: list[BaseException | None], call: Callable[[], Awaitable[Any]]) -> None:
    try:
        await call()
    except Exception as exc:
        out.append(exc)
    else:
        out.append(None)


async def test_calls_waiting_at_block_exit_get_the_closed_error() -> None:
    # Regression (11.3): a queued request and wait_connected() waited forever
    # once the block was left; a full send queue surfaced raw anyio errors.
    outcomes: list[BaseException | None] = []
    with anyio.fail_after(60):
        async with (
            anyio.create_task_group() as outer,
            open_kraken(REFUSED, send_buffer=0) as conn,
        ):
            for _ in range(3):  # the first waits in the writer, two in the queue
                outer.start_soon(_outcome, outcomes, conn.ping)
            outer.start_soon(_outcome, outcomes, conn.wait_connected)
            await anyio.wait_all_tasks_blocked()
    assert len(outcomes) == 4
    for exc in outcomes:
        assert type(exc) is KrakyError and "the connection is closed" in str(exc)
    with pytest.raises(KrakyError, match="the connection is closed"):
        await conn.wait_connected()
    with pytest.raises(KrakyError, match="the connection is closed"):
        await conn.ping()


async def test_a_ping_that_cannot_be_sent_in_time_means_a_dead_socket() -> None:
    # Regression (11.2): the watchdog's ping waited for the send lock before
    # its ping_timeout started, so a server that never reads hung us for good.
    async with scripted_server(accept_and_never_read) as (url, _):
        with anyio.fail_after(600), pytest.raises(ConnectionFailedError, match="ping"):
            async with (
                open_kraken(url, reconnect=False, idle_timeout=1, ping_timeout=1) as conn,
                anyio.create_task_group() as tg,
            ):
                await conn.wait_connected()
                lost: list[BaseException | None] = []
                # A frame bigger than every socket buffer: the writer blocks
                # holding the transport's send lock, as a pong flood would.
                big = {"event": "ping", "pad": "x" * (64 * 1024 * 1024)}
                tg.start_soon(_outcome, lost, lambda: conn.request_raw(big))
                await anyio.sleep_forever()
    assert conn.stats.dead_connections == 1


async def test_token_provider_errors_are_auth_errors_without_its_message() -> None:
    # 11.12: one rule, documented in docs/concepts/errors.md.
    async def failing() -> str:
        raise RuntimeError("SECRET-in-the-message")

    original = AuthError("EAPI:Invalid key")

    async def auth_failing() -> str:
        raise original

    async def not_a_str() -> str:
        return 42  # type: ignore[return-value]

    async with scripted_server(kraken_like) as (url, _):
        for provider, expected in ((failing, "RuntimeError"), (not_a_str, "int")):
            async with open_kraken(url, token=provider) as conn:
                with anyio.fail_after(30), pytest.raises(AuthError) as info:
                    await conn.subscribe({"name": "ownTrades"})
                assert expected in str(info.value)
                assert "SECRET" not in str(info.value)
                assert info.value.__cause__ is None
                assert info.value.__suppress_context__ or info.value.__context__ is None
                with pytest.raises(AuthError):
                    await conn.current_token()
                assert conn.stats.token_failures == 1
        async with open_kraken(url, token=auth_failing) as conn:
            with anyio.fail_after(30), pytest.raises(AuthError) as info:
                await conn.subscribe({"name": "ownTrades"})
            assert info.value is original


async def test_status_follows_the_connection() -> None:
    async with scripted_server(kraken_like) as (url, _):
        async with open_kraken(url) as conn:
            first = conn.status
            assert first.state == "connecting" and first.disconnected_since is not None
            with anyio.fail_after(30):
                await conn.wait_connected()
            up = conn.status
            assert up.state == "connected" and up.attempt == 1
            assert up.disconnected_since is None and up.next_attempt_at is None
        assert conn.status.state == "closed"
    async with open_kraken(REFUSED, reconnect_policy=SLOW) as conn:
        with anyio.fail_after(30):
            while conn.status.state != "backoff":
                await anyio.wait_all_tasks_blocked()
        st = conn.status
        assert st.attempt >= 1 and st.last_error
        assert st.next_attempt_at is not None and st.next_attempt_at > anyio.current_time()


async def test_request_raw_sends_any_event_and_returns_its_reply() -> None:
    async with scripted_server(kraken_like) as (url, _), open_kraken(url) as conn:
        with anyio.fail_after(30):
            replies = await conn.request_raw({"event": "ping", "reqid": 41})
        assert replies == [{"event": "pong", "reqid": 41}]
        with pytest.raises(ValueError):
            await conn.request_raw({"event": "subscribe"})


async def test_a_users_exception_group_comes_out_as_the_same_object() -> None:
    # Regression (11.15): on trio a plain copy came out.
    group = ExceptionGroup("mine", [ValueError("a"), KeyError("b")])
    with pytest.raises(ExceptionGroup) as info:
        async with open_kraken(REFUSED):
            raise group
    assert info.value is group


async def test_connected_notice_counts_replayed_entries() -> None:
    drop_after_subscribe = functools.partial(kraken_like, drop_after=1)
    async with (
        scripted_server(drop_after_subscribe, kraken_like) as (url, _),
        open_kraken(url, reconnect_policy=SLOW) as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(60):
            await conn.subscribe(TICKER, ["XBT/USD", "ETH/USD"])
            again = await next_of(stream, lambda m: isinstance(m, Connected) and m.generation == 2)
        assert again.replayed == 2


async def test_an_order_never_written_is_sent_on_the_next_socket() -> None:
    # Regression (11.10): a close frame glued to the 101 was absorbed by the
    # transport before the writer's check; the order was marked sent and came
    # back as OrderOutcomeUnknownError although no byte of it left.
    async with (
        scripted_server(accept_then_close_glued, kraken_like) as (url, seen),
        open_kraken(url, token="T", reconnect_policy=SLOW) as conn,
    ):
        with anyio.fail_after(60):
            reply = await conn.cancel_all()
        assert reply["status"] == "ok"
        assert len(seen) == 2


async def test_a_failed_write_hands_the_socket_back_while_the_reader_is_blocked() -> None:
    # Regression (11.6): with the reader blocked on a full consumer ("block"),
    # a failed write left the socket "connected" and the writer spun at 100% CPU.
    async with (
        scripted_server(flood_then_vanish, kraken_like) as (url, _),
        open_kraken(url, reply_timeout=1, reconnect_policy=SLOW) as conn,
    ):
        stalled = conn.messages(buffer_size=1)  # never read: the reader blocks
        with anyio.fail_after(120):
            await conn.wait_connected()
            while conn.generation == 1:
                # Each ping is bounded: once socket 2 exists, a new ping waits
                # for a Connected that the stalled consumer holds up.
                with anyio.move_on_after(5), contextlib.suppress(KrakyError):
                    await conn.ping()
        assert conn.generation == 2
        await stalled.aclose()


async def test_a_private_feed_gap_reaches_consumers_and_resubscribes() -> None:
    # Regression (12.6): sequence.py was wired to nothing.
    received: list[dict[str, Any]] = []

    async def private_feed(stream: anyio.abc.ByteStream) -> None:
        ws = await accept_websocket(stream)
        subscribes = 0
        while True:
            for raw in await ws.receive_batch():
                msg = json.loads(raw)
                received.append(msg)
                event, reqid = msg["event"], msg["reqid"]
                status = "subscribed" if event == "subscribe" else "unsubscribed"
                reply = {"event": "subscriptionStatus", "reqid": reqid, "status": status}
                await ws.send_text(json.dumps(reply))
                if event == "subscribe":
                    subscribes += 1
                    seqs = [1, 2, 5] if subscribes == 1 else [1]
                    for seq in seqs:
                        data = [[{"O1": {"status": "open"}}], "openOrders", {"sequence": seq}]
                        await ws.send_text(json.dumps(data))

    async with (
        scripted_server(private_feed) as (url, _),
        open_kraken(url, token="T") as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(60):
            await conn.subscribe({"name": "openOrders"})
            gap = await next_of(stream, lambda m: isinstance(m, SequenceGap))
            assert (gap.channel, gap.expected, gap.got, gap.missing) == ("openOrders", 3, 5, 2)
            fresh = await next_of(stream, lambda m: isinstance(m, list))
            assert fresh[2] == {"sequence": 5}  # the message that showed the gap
            fresh = await next_of(stream, lambda m: isinstance(m, list))
            assert fresh[2] == {"sequence": 1}  # the fresh snapshot
        assert [m["event"] for m in received] == ["subscribe", "unsubscribe", "subscribe"]
        assert all(m["subscription"]["token"] == "T" for m in received)
        assert conn.stats.sequence_gaps == 1
        assert [s["name"] for s, _ in conn.live_subscriptions()] == ["openOrders"]
