"""The "written" signal of the v1 connection: ``await tg.start(partial(conn.call,
...))`` returns once the frame was handed to the socket, before any reply; the
call goes on in ``tg`` to its reply. Also pings without a reqid (kraky's)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio
import anyio.abc
import pytest
from helpers import scripted_server

from kraky_anyio import AuthError, Disconnected, KrakenConnection, open_kraken
from kraky_anyio.errors import ConnectionClosedError
from kraky_anyio.requests import RequestState
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.transport import accept_websocket
from kraky_anyio.websocket import WebSocket

pytestmark = pytest.mark.anyio

TRADE = {"name": "trade"}


class HeldServer:
    """A scripted server that reads every frame at once (``frames``) but
    answers pings and subscribes only after :meth:`release`."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self._released = anyio.Event()
        self._changed = anyio.Event()

    def release(self) -> None:
        self._released.set()

    async def wait_for(self, event: str) -> dict[str, Any]:
        with anyio.fail_after(60):
            while True:
                changed = self._changed
                for frame in self.frames:
                    if frame.get("event") == event:
                        return frame
                await changed.wait()

    async def script(self, stream: anyio.abc.ByteStream) -> None:
        ws = await accept_websocket(stream)
        tx, rx = anyio.create_memory_object_stream[dict[str, Any]](100)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._answer, ws, rx)
            try:
                while True:
                    for raw in await ws.receive_batch():
                        msg = json.loads(raw)
                        self.frames.append(msg)
                        self._changed.set()
                        self._changed = anyio.Event()
                        await tx.send(msg)
            except ConnectionClosedError:
                tg.cancel_scope.cancel()

    async def _answer(self, ws: WebSocket, rx: Any) -> None:
        await self._released.wait()
        try:
            async for msg in rx:
                await self._reply(ws, msg)
        except ConnectionClosedError:
            pass  # the client left: the reader ends the session

    @staticmethod
    async def _reply(ws: WebSocket, msg: dict[str, Any]) -> None:
        event, reqid = msg.get("event"), msg.get("reqid")
        if event == "ping":
            await ws.send_text(json.dumps({"event": "pong", "reqid": reqid}))
        elif event == "subscribe":
            for pair in msg["pair"]:
                out = {"event": "subscriptionStatus", "reqid": reqid, "status": "subscribed"}
                out.update(pair=pair, channelName="trade", subscription=msg["subscription"])
                await ws.send_text(json.dumps(out))


@pytest.fixture
async def fake() -> AsyncIterator[FakeKrakenServer]:
    async with open_fake_kraken() as srv:
        yield srv


def frames(server: FakeKrakenServer, event: str) -> list[dict[str, Any]]:
    return [f for f in server.all_received() if isinstance(f, dict) and f.get("event") == event]


async def test_start_returns_once_written_before_the_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = HeldServer()
    gate = anyio.Event()
    send_text = WebSocket.send_text

    async def gated(self: WebSocket, text: str) -> None:
        if json.loads(text).get("reqid") == 7:
            await gate.wait()  # the write of this frame is held here
        await send_text(self, text)

    monkeypatch.setattr(WebSocket, "send_text", gated)
    replies: list[dict[str, Any]] = []
    started, replied = anyio.Event(), anyio.Event()

    async def ping(conn: KrakenConnection, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        replies.append(await conn.ping(7, task_status=task_status))
        replied.set()

    async def starter(tg: anyio.abc.TaskGroup, conn: KrakenConnection) -> None:
        await tg.start(partial(ping, conn))
        started.set()

    async with (
        scripted_server(held.script) as (url, _),
        open_kraken(url, idle_timeout=600) as conn,
        anyio.create_task_group() as tg,
    ):
        await conn.wait_connected()
        tg.start_soon(starter, tg, conn)
        with anyio.move_on_after(1):
            await started.wait()
        assert not started.is_set(), "tg.start returned before the frame was written"
        assert [r.state for r in conn.protocol.pending()] == [RequestState.SENT]
        gate.set()
        with anyio.fail_after(60):
            await started.wait()
        assert replies == []  # written, not answered: the server holds the pong
        assert (await held.wait_for("ping"))["reqid"] == 7
        held.release()
        with anyio.fail_after(60):
            await replied.wait()
    assert replies == [{"event": "pong", "reqid": 7}]
    assert conn.stats.unmatched_replies == 0


async def test_cancelled_before_the_wire_nothing_is_sent(fake: FakeKrakenServer) -> None:
    fake.refuse(None)
    async with open_kraken(fake.url) as conn, anyio.create_task_group() as tg:
        with anyio.move_on_after(2) as scope:
            await tg.start(partial(conn.subscribe, TRADE, ["XBT/USD"]))
        assert scope.cancelled_caught
        fake.refuse(0)
        with anyio.fail_after(60):
            await conn.wait_connected()
        await conn.ping()  # one writer, in order: a subscribe would have gone first
    assert frames(fake, "subscribe") == []
    assert conn.stats.requests_abandoned == 1
    assert conn.live_subscriptions() == []


async def test_waits_for_the_next_socket_then_reports_written_there(
    fake: FakeKrakenServer,
) -> None:
    generations: list[int] = []
    replies: list[list[dict[str, Any]]] = []
    written, replied = anyio.Event(), anyio.Event()

    async def subscribe(conn: KrakenConnection, *, task_status: Any) -> None:
        replies.append(await conn.subscribe(TRADE, ["XBT/USD"], task_status=task_status))
        replied.set()

    async def starter(tg: anyio.abc.TaskGroup, conn: KrakenConnection) -> None:
        await tg.start(partial(subscribe, conn))
        generations.append(conn.generation)
        written.set()

    async with open_kraken(fake.url) as conn, anyio.create_task_group() as tg:
        await conn.wait_connected()
        async with conn.messages() as stream:
            fake.refuse(None)
            await fake.drop()
            with anyio.fail_after(60):
                async for msg in stream:
                    if isinstance(msg, Disconnected):
                        break
        # Nothing to write while disconnected: started at once, nothing sent.
        await tg.start(partial(conn.unsubscribe, TRADE, ["ETH/USD"]))
        tg.start_soon(starter, tg, conn)
        with anyio.move_on_after(2):
            await written.wait()
        assert generations == [], "reported written while no socket was open"
        fake.refuse(0)
        with anyio.fail_after(60):
            await written.wait()
            await replied.wait()
    assert generations == [2]
    assert [r["status"] for r in replies[0]] == ["subscribed"]
    assert frames(fake, "unsubscribe") == []


async def test_a_written_call_cancelled_before_its_reply_is_still_tracked() -> None:
    held = HeldServer()
    scopes: list[anyio.CancelScope] = []
    gone = anyio.Event()

    async def subscribe(conn: KrakenConnection, *, task_status: Any) -> None:
        try:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                await conn.subscribe(TRADE, ["XBT/USD"], task_status=task_status)
        finally:
            gone.set()

    async with (
        scripted_server(held.script) as (url, _),
        open_kraken(url, idle_timeout=600) as conn,
        anyio.create_task_group() as tg,
        conn.messages() as stream,
    ):
        await tg.start(partial(subscribe, conn))
        scopes[0].cancel()  # the caller goes after the write, before the reply
        await held.wait_for("subscribe")
        with anyio.fail_after(60):
            await gone.wait()
        assert [r.state for r in conn.protocol.pending()] == [RequestState.ORPHANED]
        held.release()
        with anyio.fail_after(60):
            async for msg in stream:
                if isinstance(msg, dict) and msg.get("event") == "subscriptionStatus":
                    break
    assert conn.protocol.pending() == []
    assert conn.stats.unmatched_replies == 0
    assert conn.live_subscriptions() == [({"name": "trade"}, "XBT/USD")]


async def test_an_error_before_the_write_comes_out_of_start(fake: FakeKrakenServer) -> None:
    async def no_token() -> str:
        raise RuntimeError("the REST call failed")

    async with open_kraken(fake.url, token=no_token) as conn, anyio.create_task_group() as tg:
        with anyio.fail_after(60), pytest.raises(AuthError):
            await tg.start(partial(conn.subscribe, {"name": "ownTrades"}))
    assert frames(fake, "subscribe") == []


async def test_pings_without_reqid_are_answered_in_order(fake: FakeKrakenServer) -> None:
    async with open_kraken(fake.url) as conn, anyio.create_task_group() as tg:
        results: list[dict[str, Any]] = []

        async def ping() -> None:
            results.append(await conn.ping(send_reqid=False))

        tg.start_soon(ping)
        tg.start_soon(ping)
        with pytest.raises(ValueError, match="send_reqid=False"):
            await conn.ping(5, send_reqid=False)
    assert results == [{"event": "pong"}, {"event": "pong"}]
    assert frames(fake, "ping") == [{"event": "ping"}, {"event": "ping"}]
    assert conn.stats.unmatched_replies == 0
    assert conn.protocol.pending() == []
