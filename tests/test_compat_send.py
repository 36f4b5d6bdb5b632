"""KrakyWsClient's calls return once their frame was written, then pause like
kraky's ``_send`` (``pause_after_send``, on virtual time); frames as kraky
sent them (pings without a reqid)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from kraky_anyio.compat import KrakyWsClient
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

pytestmark = pytest.mark.anyio

OHLC = {"name": "ohlc", "interval": 30}
PAIRS = ["XBT/USD", "ETH/USD"]


@pytest.fixture
async def server() -> AsyncIterator[FakeKrakenServer]:
    async with open_fake_kraken() as srv:
        yield srv


def dicts(server: FakeKrakenServer) -> list[dict[str, Any]]:
    return [f for f in server.all_received() if isinstance(f, dict)]


async def connected(client: KrakyWsClient, server: FakeKrakenServer) -> None:
    """Wait until ``main`` is connected (a ping the server has read)."""
    await client.ping(reqid=1)
    with anyio.fail_after(60):
        await server.wait_for_received(lambda f: f.get("reqid") == 1)


async def test_a_call_returns_after_the_write_and_krakys_pause(
    server: FakeKrakenServer,
) -> None:
    """kraky's test_subscribe on virtual time: the frame is at the server when
    the call returns (no waiting for it), and no reply was needed."""
    client = KrakyWsClient(server.url)
    assert client.pause_after_send == 0.1  # kraky's
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, None)
        await connected(client, server)
        server.stall(True)  # no reply from now on
        before = anyio.current_time()
        await client.subscribe(OHLC, PAIRS)
        elapsed = anyio.current_time() - before
        last = dicts(server)[-1]
        await client.unsubscribe(OHLC, PAIRS)
        last_unsub = dicts(server)[-1]
        await client.disconnect()
    assert elapsed >= 0.1
    assert last == {"event": "subscribe", "subscription": OHLC, "pair": PAIRS}
    assert last_unsub == {"event": "unsubscribe", "subscription": OHLC, "pair": PAIRS}
    assert client.failed_requests == 2  # both abandoned unanswered at disconnect


async def test_pause_after_send_zero_returns_once_written(server: FakeKrakenServer) -> None:
    client = KrakyWsClient(server.url)
    client.pause_after_send = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, None)
        await connected(client, server)
        server.stall(True)
        before = anyio.current_time()
        await client.subscribe(OHLC, PAIRS)
        elapsed = anyio.current_time() - before
        with anyio.fail_after(60):
            await server.wait_for_received(lambda f: f.get("event") == "subscribe")
        await client.disconnect()
    assert elapsed < 0.1
    assert KrakyWsClient.pause_after_send == 0.1  # the class keeps kraky's


async def test_cancelled_before_the_write_nothing_is_sent(server: FakeKrakenServer) -> None:
    client = KrakyWsClient(server.url)
    server.refuse(None)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, None)
        with anyio.move_on_after(2) as scope:
            await client.subscribe(OHLC, PAIRS)
        assert scope.cancelled_caught
        server.refuse(0)
        await connected(client, server)
        assert client.connections["main"]["subscriptions"] == []
        await client.disconnect()
    assert [f["event"] for f in dicts(server)] == ["ping"]
    assert client.failed_requests == 0  # called off by its caller: not a failure


async def test_pings_go_out_without_a_reqid_like_krakys(server: FakeKrakenServer) -> None:
    client = KrakyWsClient(server.url)
    pongs: list[Any] = []
    got = anyio.Event()

    async def handler(message: Any) -> None:
        if isinstance(message, dict) and message.get("event") == "pong":
            pongs.append(message)
            got.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(client.connect, handler)
        await client.ping()
        with anyio.fail_after(60):
            await got.wait()
        await client.disconnect()
    assert dicts(server) == [{"event": "ping"}]
    assert pongs == [{"event": "pong"}]
    assert client.failed_requests == 0  # the pong settled it: nothing abandoned
