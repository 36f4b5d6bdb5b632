"""Interop: v2.open_kraken against a trio-websocket peer serving v2 frames
(trio only: trio-websocket runs on trio). The peer reads the client's frames
as raw text, so the exponent trap is checked on the wire in both directions."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from kraky_anyio import KrakenError, v2
from kraky_anyio.v2.messages import TickerMessage

# Numbers as Kraken writes them: bare JSON numbers whose text matters.
TICKER = (
    '{"channel":"ticker","type":"snapshot","data":[{"symbol":"%s","bid":0.00000001,'
    '"bid_qty":0.00000050,"ask":62797.0,"ask_qty":1.50000000,"last":62797.0,'
    '"volume":12.00000000,"vwap":62000.5,"low":61000.0,"high":63000.0,'
    '"change":-10.0,"change_pct":-0.02}]}'
)


def _peer(raw_frames: list[str]) -> Callable[[WebSocketRequest], Awaitable[None]]:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(
            '{"channel":"status","type":"update","data":[{"version":"2.0.10",'
            '"system":"online","api_version":"v2","connection_id":9769405522530892351}]}'
        )
        try:
            while True:
                text = await ws.get_message()
                assert isinstance(text, str)
                raw_frames.append(text)
                msg = json.loads(text)
                method, req_id = msg["method"], msg.get("req_id")
                if method == "ping":
                    await ws.send_message(
                        json.dumps({"method": "pong", "req_id": req_id, "time_in": "t"})
                    )
                elif method == "subscribe":
                    params = msg["params"]
                    for symbol in params["symbol"]:
                        result = {"channel": params["channel"], "symbol": symbol}
                        ack = {"method": method, "req_id": req_id, "result": result}
                        await ws.send_message(json.dumps({**ack, "success": True}))
                        await ws.send_message(TICKER % symbol)
                else:
                    error = {"error": "EGeneral:Invalid arguments", "method": method}
                    await ws.send_message(json.dumps({**error, "req_id": req_id, "success": False}))
        except ConnectionClosed:
            pass

    return handler


@pytest.mark.trio
async def test_v2_client_against_a_trio_websocket_peer() -> None:
    raw_frames: list[str] = []
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, _peer(raw_frames), "127.0.0.1", 0, None)
        async with v2.open_kraken(f"ws://127.0.0.1:{server.port}/v2") as conn:
            with trio.fail_after(30):
                async with conn.messages(channel="ticker") as stream:
                    pong = await conn.ping(req_id=0)
                    assert (pong.method, pong.req_id, pong.success) == ("pong", 0, None)
                    acks = await conn.subscribe("ticker", ["BTC/USD", "ETH/USD"])
                    assert [a.result["symbol"] for a in acks] == ["BTC/USD", "ETH/USD"]
                    seen: list[TickerMessage] = []
                    async for msg in stream:
                        if isinstance(msg, TickerMessage):
                            seen.append(msg)
                        if len(seen) == 2:
                            break
                with pytest.raises(KrakenError, match="Invalid arguments"):
                    qty = Decimal("0.00000050")
                    await conn.request("add_order", {"order_qty": qty, "limit_price": Decimal(1)})
            assert conn.system_status == "online"
        nursery.cancel_scope.cancel()
    entry = seen[0].data[0]
    assert format(entry.bid, "f") == "0.00000001" and format(entry.bid_qty, "f") == "0.00000050"
    assert format(entry.ask, "f") == "62797.0" and format(entry.ask_qty, "f") == "1.50000000"
    order = next(f for f in raw_frames if '"add_order"' in f)
    assert '"order_qty":0.00000050' in order and "E-" not in order
    assert json.loads(raw_frames[1])["params"] == {
        "channel": "ticker",
        "symbol": ["BTC/USD", "ETH/USD"],
    }
