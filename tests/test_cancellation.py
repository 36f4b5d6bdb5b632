"""Cancellation at every checkpoint of every public call.

On trio an Instrument counts the scheduler steps of the calling task, so each
call can be cancelled at its 1st, 2nd, ... checkpoint in turn until it
completes. After every cut: no task leaked, nothing left pending, the
connection serves the next call, and a request cancelled before the wire was
never sent (the server never saw its reqid). On asyncio the main await points
are covered by cutting a call while it waits for the connection and while it
waits for its reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
import trio
import trio.lowlevel
import trio.testing

from kraky_anyio import KrakenConnection, KrakyError, open_kraken
from kraky_anyio.protocol import RequestState
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

TOKEN = "tok-cancellation"


class _CancelAtStep(trio.abc.Instrument):
    def __init__(self, task: trio.lowlevel.Task, step: int, scope: trio.CancelScope) -> None:
        self.task, self.step, self.scope, self.seen = task, step, scope, 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.seen += 1
            if self.seen == self.step:
                self.scope.cancel()


async def _cut_at(step: int, call: Callable[[], Awaitable[Any]]) -> bool:
    """Run ``call`` and cancel it at its ``step``-th checkpoint; True if cut."""
    with trio.CancelScope() as scope:
        inst = _CancelAtStep(trio.lowlevel.current_task(), step, scope)
        trio.lowlevel.add_instrument(inst)
        try:
            await call()
        except KrakyError:
            pass  # e.g. the fake exchange has no matching engine: an error reply
        finally:
            trio.lowlevel.remove_instrument(inst)
    return scope.cancelled_caught


async def _settled(conn: KrakenConnection, server: FakeKrakenServer) -> None:
    """A ping round trip: every earlier reply has been processed."""
    with trio.fail_after(30):
        await conn.ping()
    assert [r for r in conn.protocol.pending() if r.state is RequestState.QUEUED] == []


def _calls(conn: KrakenConnection, reqid: int) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def messages() -> None:
        async with conn.messages() as stream:
            await conn.ping(reqid)
            async for _ in stream:
                break

    async def book() -> None:
        async with conn.book("ETH/USD", depth=25):
            pass

    return {
        "ping": lambda: conn.ping(reqid),
        "subscribe": lambda: conn.subscribe({"name": "trade"}, ["XBT/USD"], reqid),
        "unsubscribe": lambda: conn.unsubscribe({"name": "trade"}, ["XBT/USD"], reqid),
        "add_order": lambda: conn.add_order(
            TOKEN,
            pair="XBT/USD",
            type="buy",
            ordertype="limit",
            volume="0.01",
            price="100",
            reqid=reqid,
        ),
        "cancel_order": lambda: conn.cancel_order(TOKEN, ["A", "B"], reqid),
        "cancel_all": lambda: conn.cancel_all(TOKEN, reqid),
        "messages": messages,
        "book": book,
    }


@pytest.mark.trio
@pytest.mark.parametrize(
    "name",
    [
        "ping",
        "subscribe",
        "unsubscribe",
        "add_order",
        "cancel_order",
        "cancel_all",
        "messages",
        "book",
    ],
)
async def test_cancel_each_call_at_every_checkpoint(name: str, autojump_clock: Any) -> None:
    async with open_fake_kraken() as server, open_kraken(server.url) as conn:
        await conn.wait_connected()
        tasks = {t.id for t in anyio.get_running_tasks()}
        cut_reqids: list[int] = []
        for step in range(1, 200):
            reqid = 10_000 + step
            abandoned = conn.stats.requests_abandoned
            cut = await _cut_at(step, _calls(conn, reqid)[name])
            await _settled(conn, server)
            await trio.testing.wait_all_tasks_blocked()
            assert {t.id for t in anyio.get_running_tasks()} == tasks, f"task leaked at {step}"
            if conn.stats.requests_abandoned > abandoned:
                cut_reqids.append(reqid)
            if not cut:
                break
        else:
            pytest.fail(f"{name} never completed")
        assert step > 1, "the call had no checkpoint to cut"
        # Requests cancelled before the wire were never sent.
        seen = {f.get("reqid") for f in server.all_received()}
        assert not seen & set(cut_reqids)
        # The connection still serves, and holds exactly what the server has.
        await _settled(conn, server)
        live = {(s.get("name"), p) for s, p in conn.live_subscriptions()}
        on_server = set()
        for c in server.sessions:
            on_server |= c.session.subscriptions
        assert {(("book-25" if n == "book" else n), p) for n, p in live} == {
            k for k in on_server if k[0] != "ownTrades"
        }


@pytest.mark.trio
async def test_cancel_leaving_open_kraken_at_every_checkpoint(autojump_clock: Any) -> None:
    async with open_fake_kraken() as server:

        async def session() -> None:
            async with open_kraken(server.url) as conn:
                await conn.subscribe({"name": "ticker"}, ["XBT/USD"])
                async with conn.book("XBT/USD"):
                    await conn.ping()

        tasks = {t.id for t in anyio.get_running_tasks()}
        for step in range(1, 400):
            cut = await _cut_at(step, session)
            # The server notices the close on its own time: let it settle.
            with trio.fail_after(30):
                await server.wait_for(lambda: not server.sessions)
            await trio.testing.wait_all_tasks_blocked()
            assert {t.id for t in anyio.get_running_tasks()} == tasks, f"task leaked at {step}"
            if not cut:
                break
        else:
            pytest.fail("the session never completed")
        assert step > 10


@pytest.mark.anyio
async def test_cancelled_while_waiting_for_a_connection_or_a_reply(anyio_backend: Any) -> None:
    async with open_fake_kraken() as server:
        server.refuse(None)
        async with open_kraken(server.url, reply_timeout=60) as conn:
            with anyio.move_on_after(2):
                await conn.add_order(
                    TOKEN,
                    pair="XBT/USD",
                    type="buy",
                    ordertype="limit",
                    volume="1",
                    price="1",
                    reqid=7,
                )
            server.refuse(0)
            await conn.wait_connected()
            server.stall(True)
            with anyio.move_on_after(2):
                await conn.subscribe({"name": "trade"}, ["XBT/USD"], reqid=8)
            server.stall(False)
            await server.drop()
            with anyio.fail_after(60):
                await conn.wait_connected()
                assert await conn.ping()
            sent = [f.get("reqid") for f in server.all_received()]
            assert 7 not in sent  # cancelled before the wire: never sent
            assert 8 in sent  # cancelled after the wire: not replayed either
            assert conn.live_subscriptions() == []
            assert conn.stats.requests_abandoned == 1
