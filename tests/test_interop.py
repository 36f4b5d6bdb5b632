"""Interop with an independent WebSocket implementation: trio-websocket.

Our client against a trio-websocket server (trio only: trio-websocket runs on
trio). The reverse direction (a trio-websocket client against our fake server)
lives in test_fake_server.py.
"""

from __future__ import annotations

import json

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from kraky_anyio import Connected, ConnectionClosedError, open_kraken
from kraky_anyio.transport import connect_websocket


async def _kraken_like(request: WebSocketRequest) -> None:
    ws = await request.accept()
    await ws.send_message(json.dumps({"event": "systemStatus", "status": "online"}))
    try:
        while True:
            msg = json.loads(await ws.get_message())
            if msg["event"] == "ping":
                await ws.send_message(json.dumps({"event": "pong", "reqid": msg["reqid"]}))
            elif msg["event"] == "subscribe":
                for pair in msg["pair"]:
                    reply = {
                        "event": "subscriptionStatus",
                        "status": "subscribed",
                        "pair": pair,
                        "reqid": msg["reqid"],
                        "channelName": "ticker",
                        "subscription": msg["subscription"],
                    }
                    await ws.send_message(json.dumps(reply))
                    # A fragmented-size payload: trio-websocket may split it.
                    await ws.send_message(json.dumps([1, {"c": ["1.0" * 5000]}, "ticker", pair]))
    except ConnectionClosed:
        pass


@pytest.mark.trio
async def test_our_client_against_trio_websocket_server() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, _kraken_like, "127.0.0.1", 0, None)
        port = server.port
        async with open_kraken(f"ws://127.0.0.1:{port}") as conn:
            stream = conn.messages()
            with trio.fail_after(10):
                pong = await conn.ping(reqid=0)
                assert pong == {"event": "pong", "reqid": 0}
                replies = await conn.subscribe({"name": "ticker"}, pair=["XBT/USD", "ETH/USD"])
                assert [r["pair"] for r in replies] == ["XBT/USD", "ETH/USD"]
                seen = []
                async for msg in stream:
                    if isinstance(msg, list):
                        seen.append(msg[-1])
                        assert len(msg[1]["c"][0]) == 15000
                        if len(seen) == 2:
                            break
                    elif not isinstance(msg, Connected):
                        assert isinstance(msg, dict)
            assert seen == ["XBT/USD", "ETH/USD"]
            assert conn.stats.malformed_frames == 0
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_transport_close_handshake_with_trio_websocket() -> None:
    closed = trio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except ConnectionClosed as exc:
            assert exc.reason is not None
            assert exc.reason.code == 1000
            closed.set()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        ws = await connect_websocket(f"ws://127.0.0.1:{server.port}")
        with trio.fail_after(5):
            await ws.aclose()
            await closed.wait()
        assert ws.closed
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_fast_path_hand_over_against_trio_websocket() -> None:
    """Texts, a binary message and pings interleaved by an independent server,
    then a close: every message in order, every ping answered, the code kept."""
    pongs = 0

    async def handler(request: WebSocketRequest) -> None:
        nonlocal pongs
        ws = await request.accept()
        for i in range(300):
            await ws.send_message(json.dumps({"n": i, "pad": "x" * (i % 7) * 40}))
            if i % 50 == 0:
                await ws.ping(str(i).encode())  # returns once our pong arrives
                pongs += 1
            if i == 120:
                await ws.send_message(b"\x00binary")
        await ws.aclose(code=1001, reason="going away")

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        ws = await connect_websocket(f"ws://127.0.0.1:{server.port}")
        got: list[str | bytes] = []
        with trio.fail_after(10), pytest.raises(ConnectionClosedError) as info:
            while True:
                got.extend(await ws.receive_batch())
        assert info.value.code == 1001
        texts = [json.loads(m)["n"] for m in got if isinstance(m, str)]
        assert texts == list(range(300))
        assert [m for m in got if isinstance(m, bytes)] == [b"\x00binary"]
        assert pongs == 6
        nursery.cancel_scope.cancel()
