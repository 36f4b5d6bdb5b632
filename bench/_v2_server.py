"""The v2 benchmark server process: a Kraken-v2-shaped feed for the peers.

    python bench/_v2_server.py [--lifetime SECONDS]

Not meant to be run by hand (bench/peers.py starts it). Listens on 127.0.0.1
(a free port), prints ``{"port": N, ...}`` on stdout, then one JSON line per
finished connection. Same machinery as bench/_server.py (asyncio,
kraky_anyio's ``accept_websocket``, data frames framed once and written in
~64 KiB chunks, about 0.1 µs of server CPU per message), but speaking v2:

* on connect, a ``status`` frame, as Kraken sends;
* ``{"method":"ping"}`` gets a ``pong`` at any time (python-kraken-sdk pings
  first thing); ``subscribe`` gets one ack per symbol;
* after the subscribe, the subscribed channel's frames: ``book`` sends the
  snapshot and then the 509 updates of ``shared/fixtures/kraken-v2-book10-btcusd.json``
  over and over; ``ticker`` sends ticker updates derived from the same book.
  Numbers are written at BTC/USD's precision (price 1 decimal, qty 8), as
  Kraken writes them (the fixture itself lost its trailing zeros to a float
  round trip).

The URL's path picks the run, as ``/flood/n=N`` path segments (python-kraken-sdk
appends ``/v2`` to its URL, so a query string would be mangled) or a query
``?n=N``. A flood starts with a start marker (a message of the subscribed
channel whose ``timestamp`` is ``START``), a 50 ms pause, N messages and the end
marker (``timestamp`` ``END t0=<time_ns of the first flood write>``), which is
repeated every 0.05 s until the client hangs up.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from itertools import cycle
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
from _server import CHUNK, frame, run_server
from websockets.http11 import Request, Response

from kraky_anyio.errors import ConnectionClosedError
from kraky_anyio.transport import WebSocket, accept_websocket

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "kraken-v2-book10-btcusd.json"
SYMBOL = "BTC/USD"
PRICE_DP, QTY_DP = 1, 8


def _num(x: float, dp: int) -> str:
    return format(Decimal(repr(x)).quantize(Decimal(1).scaleb(-dp)), "f")


def _levels(levels: list[dict[str, float]]) -> str:
    return ",".join(
        f'{{"price":{_num(lv["price"], PRICE_DP)},"qty":{_num(lv["qty"], QTY_DP)}}}'
        for lv in levels
    )


def book_text(msg: dict[str, Any], timestamp: str | None = None) -> str:
    """A book message as Kraken writes it (key order and number text)."""
    d = msg["data"][0]
    ts = timestamp if timestamp is not None else d.get("timestamp")
    tail = f',"timestamp":"{ts}"' if ts is not None else ""
    return (
        f'{{"channel":"book","type":"{msg["type"]}","data":[{{"symbol":"{d["symbol"]}",'
        f'"bids":[{_levels(d["bids"])}],"asks":[{_levels(d["asks"])}],'
        f'"checksum":{d["checksum"]}{tail}}}]}}'
    )


def ticker_text(i: int, bid: float, bid_qty: float, ask: float, ask_qty: float, ts: str) -> str:
    """A ticker update shaped like Kraken's (fields and number text)."""
    last = bid if i % 2 else ask
    return (
        f'{{"channel":"ticker","type":"update","data":[{{"symbol":"{SYMBOL}",'
        f'"bid":{_num(bid, PRICE_DP)},"bid_qty":{_num(bid_qty, QTY_DP)},'
        f'"ask":{_num(ask, PRICE_DP)},"ask_qty":{_num(ask_qty, QTY_DP)},'
        f'"last":{_num(last, PRICE_DP)},"volume":{_num(2158.32346723 + i * 0.01, QTY_DP)},'
        f'"vwap":{_num(29411.5 + (i % 7) * 0.1, PRICE_DP)},"low":29100.0,"high":29600.1,'
        f'"change":{_num(-120.4 + (i % 11) * 0.1, PRICE_DP)},"change_pct":-0.41,'
        f'"timestamp":"{ts}"}}]}}'
    )


def marker(channel: str, stamp: str) -> str:
    """A start/end marker: an empty message of the subscribed channel."""
    if channel == "book":
        return (
            f'{{"channel":"book","type":"update","data":[{{"symbol":"{SYMBOL}","bids":[],'
            f'"asks":[],"checksum":0,"timestamp":"{stamp}"}}]}}'
        )
    return ticker_text(0, 29430.2, 0.1, 29430.3, 0.1, stamp)


class Feeds:
    """Every frame a connection may get, built and framed once per channel."""

    def __init__(self) -> None:
        if not FIXTURE.is_file():
            raise SystemExit(f"fixture not found: {FIXTURE} (shared/ must sit beside the repo)")
        data = json.loads(FIXTURE.read_text())
        self.snapshot = book_text(data["init"])
        updates = [book_text(m) for m in data["updates"]]
        tickers = []
        bids = {lv["price"]: lv["qty"] for lv in data["init"]["data"][0]["bids"]}
        asks = {lv["price"]: lv["qty"] for lv in data["init"]["data"][0]["asks"]}
        for i, m in enumerate(data["updates"]):
            d = m["data"][0]
            for side, book in (("bids", bids), ("asks", asks)):
                for lv in d[side]:
                    if lv["qty"]:
                        book[lv["price"]] = lv["qty"]
                    else:
                        book.pop(lv["price"], None)
            b, a = max(bids), min(asks)
            tickers.append(ticker_text(i, b, bids[b], a, asks[a], d["timestamp"]))
        self.texts = {"book": updates, "ticker": tickers}
        self.frames = {k: [frame(t) for t in v] for k, v in self.texts.items()}
        self.chunks = {k: self._chunks(v) for k, v in self.frames.items()}

    @staticmethod
    def _chunks(frames: list[bytes]) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        buf: list[bytes] = []
        size = 0
        for f in frames:
            buf.append(f)
            size += len(f)
            if size >= CHUNK:
                out.append((len(buf), b"".join(buf)))
                buf, size = [], 0
        if buf:
            out.append((len(buf), b"".join(buf)))
        return out

    def sizes(self, channel: str) -> dict[str, float]:
        s = [len(t) for t in self.texts[channel]]
        return {"min": min(s), "max": max(s), "mean": round(sum(s) / len(s), 1)}


def status_text() -> str:
    return (
        '{"channel":"status","type":"update","data":[{"version":"2.0.10","system":"online",'
        '"api_version":"v2","connection_id":769405522530892351}]}'
    )


def now_iso() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def reply(request: dict[str, Any]) -> list[str]:
    """The responses to one request: pong, or one ack per symbol."""
    method = request.get("method")
    base: dict[str, Any] = {"method": method}
    if "req_id" in request:
        base["req_id"] = request["req_id"]
    stamps = {"time_in": now_iso(), "time_out": now_iso()}
    if method == "ping":
        return [json.dumps({**base, "method": "pong", **stamps})]
    if method in ("subscribe", "unsubscribe"):
        params = request.get("params") or {}
        out = []
        for symbol in params.get("symbol") or [SYMBOL]:
            result = {k: v for k, v in params.items() if k not in ("symbol", "token")}
            result["symbol"] = symbol
            if method == "subscribe":
                result.setdefault("snapshot", True)
            out.append(json.dumps({**base, "result": result, "success": True, **stamps}))
        return out
    return [json.dumps({**base, "error": "EGeneral:Invalid arguments", "success": False})]


def run_params(path: str) -> dict[str, str]:
    """``/flood/n=1000/v2`` or ``/flood?n=1000``: mode and parameters."""
    url = urlsplit(path)
    q = {k: v[-1] for k, v in parse_qs(url.query).items()}
    for seg in url.path.split("/"):
        if "=" in seg:
            k, v = seg.split("=", 1)
            q[k] = v
        elif seg and seg != "v2":
            q.setdefault("mode", seg)
    q.setdefault("mode", "flood")
    return q


async def push_flood(
    stream: anyio.abc.ByteStream, feeds: Feeds, channel: str, n: int
) -> dict[str, Any]:
    await stream.send(frame(marker(channel, "START")))
    await anyio.sleep(0.05)
    t0 = time.time_ns()
    sent = 0
    frames = feeds.frames[channel]
    for count, chunk in cycle(feeds.chunks[channel]):
        if sent + count > n:
            break
        await stream.send(chunk)
        sent += count
    rest = n - sent
    if rest:
        nf = len(frames)
        start = sent % nf
        await stream.send(b"".join(frames[(start + j) % nf] for j in range(rest)))
        sent += rest
    await stream.send(frame(marker(channel, f"END t0={t0}")))
    return {"sent": sent, "t0": t0}


async def handle(
    stream: anyio.abc.ByteStream, feeds: Feeds, report: Callable[[dict], None]
) -> None:
    paths: list[str] = []

    def capture(request: Request) -> Response | None:
        paths.append(request.path)
        return None

    info: dict[str, Any] = {}
    try:
        ws = await accept_websocket(stream, process_request=capture)
    except Exception as exc:
        report({"error": f"handshake: {exc!r}"})
        return
    try:
        q = run_params(paths[0] if paths else "/flood")
        info.update(path=paths[0] if paths else "", mode=q["mode"])
        if q["mode"] != "flood":
            raise ValueError(f"unknown mode {q['mode']!r}")
        await ws.send_text(status_text())
        channel = ""
        with anyio.fail_after(30):
            while not channel:
                for text in await ws.receive_batch():
                    request = json.loads(text)
                    for r in reply(request):
                        await ws.send_text(r)
                    if request.get("method") == "subscribe":
                        channel = (request.get("params") or {}).get("channel", "")
        if channel not in feeds.frames:
            raise ValueError(f"no feed for channel {channel!r}")
        info["channel"] = channel
        if channel == "book":
            await ws.send_text(feeds.snapshot)
        c0 = time.process_time()
        info.update(await push_flood(stream, feeds, channel, int(q.get("n", 10000))))
        info["cpu_s"] = time.process_time() - c0
        await _until_hangup(ws, marker(channel, f"END t0={info['t0']}"))
    except (ConnectionClosedError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        info["error"] = f"client went away: {exc!r}"
    except Exception as exc:
        info["error"] = repr(exc)
    finally:
        with anyio.CancelScope(shield=True):
            await ws.aclose()
        report(info)


async def _until_hangup(ws: WebSocket, end: str) -> None:
    """Repeat the end marker every 0.05 s and answer pings until the client
    closes (60 s at most). A ccxt watcher can be woken by an earlier message
    than the end marker and then see only its repeat: 0.05 s at most late."""

    async def repeat_end() -> None:
        try:
            while True:
                await anyio.sleep(0.05)
                await ws.send_text(end)
        except ConnectionClosedError:
            pass

    with anyio.move_on_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(repeat_end)
            try:
                while True:
                    for text in await ws.receive_batch():
                        try:
                            request = json.loads(text)
                        except ValueError:
                            continue
                        for r in reply(request):
                            await ws.send_text(r)
            except ConnectionClosedError:
                pass
            finally:
                tg.cancel_scope.cancel()


async def serve(lifetime: float) -> None:
    feeds = Feeds()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    def report(info: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()

    report(
        {
            "port": port,
            "pid": os.getpid(),
            "book_bytes": feeds.sizes("book"),
            "ticker_bytes": feeds.sizes("ticker"),
            "messages": {k: len(v) for k, v in feeds.texts.items()},
        }
    )

    async def on_stream(stream: anyio.abc.ByteStream) -> None:
        await handle(stream, feeds, report)

    with anyio.move_on_after(lifetime):
        async with listener:
            await listener.serve(on_stream)


def main(argv: list[str] | None = None) -> int:
    return run_server(serve, "v2 benchmark server (used by bench/peers.py)", argv)


if __name__ == "__main__":
    raise SystemExit(main())
