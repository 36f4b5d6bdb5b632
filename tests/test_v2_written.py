"""The v2 connection's "written" signal: ``await tg.start(partial(conn.call,
...))`` returns once the frame was handed to the socket, before the reply;
the call goes on in ``tg`` (as v1's, see test_written.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus

from kraky_anyio import v2
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

pytestmark = pytest.mark.anyio


def sent(server: FakeKrakenServer, method: str) -> list[dict[str, Any]]:
    return [f for f in server.all_received() if isinstance(f, dict) and f.get("method") == method]


async def test_start_returns_once_written_before_any_reply() -> None:
    async with open_fake_kraken() as server, v2.open_kraken(server.v2_url) as conn:
        with anyio.fail_after(30):
            await conn.wait_connected()
            server.stall()  # reads and records every frame, answers nothing
            async with anyio.create_task_group() as tg:
                await tg.start(partial(conn.subscribe, "ticker", "BTC/USD"))
                # Written (the held-write proof of the order is v1's
                # test_written.py: the same shell), not answered: the call waits on.
                assert conn.stats.requests_sent == 1
                await server.wait_for_received(lambda f: f.get("method") == "subscribe")
                assert conn.live_subscriptions() == []
                tg.cancel_scope.cancel()


async def test_the_started_call_goes_on_to_its_reply() -> None:
    replies: list[Any] = []

    async def subscribe(*, task_status: TaskStatus[None]) -> None:
        replies.extend(await conn.subscribe("ticker", "BTC/USD", task_status=task_status))

    async with open_fake_kraken() as server, v2.open_kraken(server.v2_url) as conn:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                await tg.start(subscribe)
                assert conn.stats.requests_sent == 1
    assert [r.success for r in replies] == [True]
    assert conn.live_subscriptions() == [({"channel": "ticker"}, "BTC/USD")]


async def test_ping_and_request_take_task_status() -> None:
    async with open_fake_kraken() as server, v2.open_kraken(server.v2_url) as conn:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                await tg.start(partial(conn.ping, 41))
                await tg.start(partial(conn.request, "ping", None, req_id=42))
                assert conn.stats.requests_sent == 2
        assert [f["req_id"] for f in sent(server, "ping")] == [41, 42]


async def test_cancelled_before_the_write_nothing_is_sent() -> None:
    async with open_fake_kraken() as server:
        server.refuse(None)  # every connection attempt refused: no socket
        async with v2.open_kraken(server.v2_url) as conn, anyio.create_task_group() as tg:
            with anyio.move_on_after(5):
                await tg.start(partial(conn.subscribe, "ticker", "BTC/USD"))
            assert conn.stats.requests_sent == 0
            server.refuse(0)
            with anyio.fail_after(30):
                await conn.wait_connected()
                await conn.ping()  # the socket works; the subscribe never went out
    assert sent(server, "subscribe") == []
