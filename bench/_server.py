"""The benchmark server process: a fake Kraken that pushes recorded-shaped data.

    python bench/_server.py [--lifetime SECONDS]

Not meant to be run by hand. Listens on 127.0.0.1 (a free port), prints
``{"port": N}`` on stdout, then one JSON line per finished connection (what it
sent, what it could not send, its own CPU time). It runs on asyncio with
kraky_anyio's own transport: ``accept_websocket`` for the handshake and the
client's subscribe, ``WebSocket.send_text`` for the replies.

The data frames themselves are framed once, up front (server frames are not
masked: RFC 6455), and written straight to the TCP stream in ~64 KiB chunks,
so the server spends well under a microsecond per message and the client is
what is measured. ``stream.send`` waits while the socket is full, so the
server sends "as fast as the client reads".

The URL path chooses what a connection gets, after the subscribe:

``/flood?n=N``                  N messages as fast as the socket takes them.
``/paced?rate=R&seconds=S``     R msgs/s for S seconds, each stamped with
                                ``time.time_ns()`` (µs) at the moment of sending.
``/slow?rate=R&seconds=S``      like paced, but a message that could not be
                                written within 10 ms of its due time (the
                                socket was full) is skipped and counted as
                                not sent: what an exchange does to a slow reader.

A flood starts with ``[0,{},"start","XBT/USD"]`` and a 50 ms pause, and its
end marker carries ``t0`` (``time.time_ns()`` at the first flood write), so a
client times the flood alone from the server's first byte, whatever its own
batching. Every run ends with the end marker ``[0,{...},"end","XBT/USD"]``,
repeated every 0.25 s until the client hangs up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from itertools import cycle
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
from websockets.http11 import Request, Response

from kraky_anyio.errors import ConnectionClosedError
from kraky_anyio.transport import WebSocket, accept_websocket

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "kraken-v1-book10-xbtusd.json"
END_TEXT = '[0,{},"end","XBT/USD"]'
START_TEXT = '[0,{},"start","XBT/USD"]'
STAMP_PLACEHOLDER = "@@STAMP@@"
STAMP_LEN = 17  # "1693415330.621700": seconds, a dot, microseconds
CHUNK = 65536


def _frame_header(length: int) -> bytes:
    if length < 126:
        return bytes((0x81, length))
    if length < 65536:
        return bytes((0x81, 126)) + length.to_bytes(2, "big")
    return bytes((0x81, 127)) + length.to_bytes(8, "big")


def frame(text: str) -> bytes:
    """One unmasked, final text frame (server to client)."""
    data = text.encode()
    return _frame_header(len(data)) + data


def _trades(count: int) -> list[list[Any]]:
    """Trade messages shaped like Kraken's (1 to 3 trades each), deterministic."""
    out = []
    price = 27120.0
    for i in range(count):
        trades = []
        for k in range(1 + i % 3):
            price += ((i * 7 + k * 3) % 11 - 5) * 0.1
            vol = ((i * 131 + k * 17) % 9973) / 1000.0 + 0.0001
            side = "b" if (i + k) % 2 else "s"
            kind = "m" if (i + k) % 5 == 0 else "l"
            ts = f"{1693415330 + i // 10}.{(i * 37 + k) % 1000000:06d}"
            trades.append([f"{price:.5f}", f"{vol:.8f}", ts, side, kind, ""])
        out.append([337, trades, "trade", "XBT/USD"])
    return out


def load_messages(fixture: Path = FIXTURE) -> list[list[Any]]:
    """The fixture's book updates, one trade message after every four of them."""
    if not fixture.is_file():
        raise SystemExit(f"fixture not found: {fixture} (shared/ must sit beside the repo)")
    data = json.loads(fixture.read_text())
    book = [m for m in data["updates"] if isinstance(m, list)]
    trades = _trades(len(book) // 4 + 1)
    out: list[list[Any]] = []
    for i, m in enumerate(book):
        out.append(m)
        if i % 4 == 3:
            out.append(trades[i // 4])
    return out


def compact(msg: Any) -> str:
    return json.dumps(msg, separators=(",", ":"))


def stamped_templates(messages: list[list[Any]]) -> list[tuple[bytes, bytes]]:
    """(header + text before the stamp, text after it) per message: the stamp
    replaces the time of the first level, so a frame is ``head + stamp + tail``."""
    out = []
    for m in messages:
        m = json.loads(json.dumps(m))  # a deep copy
        payload = m[1]
        if isinstance(payload, dict):
            levels = payload.get("a") or payload.get("b")
            levels[0][2] = STAMP_PLACEHOLDER
        else:
            payload[0][2] = STAMP_PLACEHOLDER
        head, tail = compact(m).encode().split(STAMP_PLACEHOLDER.encode())
        out.append((_frame_header(len(head) + STAMP_LEN + len(tail)) + head, tail))
    return out


def stamp_now() -> bytes:
    us = time.time_ns() // 1000
    return f"{us // 1_000_000}.{us % 1_000_000:06d}".encode()


class Payloads:
    """Everything a connection may send, framed once."""

    def __init__(self) -> None:
        self.messages = load_messages()
        self.frames = [frame(compact(m)) for m in self.messages]
        self.sizes = [len(compact(m)) for m in self.messages]
        self.templates = stamped_templates(self.messages)
        self.end = frame(END_TEXT)
        # The frame cycle cut into ~CHUNK-byte pieces: (messages, bytes).
        self.chunks: list[tuple[int, bytes]] = []
        buf: list[bytes] = []
        size = 0
        for f in self.frames:
            buf.append(f)
            size += len(f)
            if size >= CHUNK:
                self.chunks.append((len(buf), b"".join(buf)))
                buf, size = [], 0
        if buf:
            self.chunks.append((len(buf), b"".join(buf)))


def subscription_replies(request: dict[str, Any]) -> list[str]:
    sub = request.get("subscription") or {}
    name = sub.get("name", "book")
    channel = f"book-{sub.get('depth', 10)}" if name == "book" else name
    out = []
    for pair in request.get("pair") or ["XBT/USD"]:
        reply: dict[str, Any] = {
            "channelID": 336,
            "channelName": channel,
            "event": "subscriptionStatus",
            "pair": pair,
            "status": "subscribed",
            "subscription": sub,
        }
        if "reqid" in request:
            reply["reqid"] = request["reqid"]
        out.append(json.dumps(reply))
    return out


async def push_flood(stream: anyio.abc.ByteStream, p: Payloads, n: int) -> dict[str, Any]:
    """The start marker, a 50 ms pause (so the client meets the flood already
    waiting for it, whatever its batching), N messages, and the end marker
    carrying ``t0``: ``time.time_ns()`` just before the first flood write."""
    await stream.send(frame(START_TEXT))
    await anyio.sleep(0.05)
    t0 = time.time_ns()
    sent = 0
    nbytes = 0
    for count, chunk in cycle(p.chunks):
        if sent + count > n:
            break
        await stream.send(chunk)
        sent += count
        nbytes += len(chunk)
    rest = n - sent
    if rest:
        nf = len(p.frames)
        start = sent % nf  # the chunks hold the frame cycle in order
        chunk = b"".join(p.frames[(start + j) % nf] for j in range(rest))
        await stream.send(chunk)
        sent += rest
        nbytes += len(chunk)
    await stream.send(frame(f'[0,{{"t0":{t0}}},"end","XBT/USD"]'))
    return {"produced": n, "sent": sent, "not_sent": 0, "bytes": nbytes}


async def push_paced(
    stream: anyio.abc.ByteStream, p: Payloads, rate: float, seconds: float, max_lag: float | None
) -> dict[str, Any]:
    """Send message i at t0 + i/rate, stamped when written. With ``max_lag``,
    messages more than ``max_lag`` s overdue (the socket was full) are skipped."""
    total = int(rate * seconds)
    max_batch = max(1, int(rate * max_lag)) if max_lag is not None else total
    templates = p.templates
    nt = len(templates)
    i = sent = skipped = nbytes = 0
    t0 = time.monotonic()
    while i < total:
        elapsed = time.monotonic() - t0
        due = min(total, int(elapsed * rate) + 1)
        if due <= i:
            await anyio.sleep(i / rate - elapsed)
            continue
        k = due - i
        if k > max_batch:
            skipped += k - max_batch
            i += k - max_batch
            k = max_batch
        stamp = stamp_now()
        parts = []
        for j in range(i, i + k):
            head, tail = templates[j % nt]
            parts.append(head)
            parts.append(stamp)
            parts.append(tail)
        chunk = b"".join(parts)
        await stream.send(chunk)
        i += k
        sent += k
        nbytes += len(chunk)
    return {"produced": total, "sent": sent, "not_sent": skipped, "bytes": nbytes}


async def handle(stream: anyio.abc.ByteStream, p: Payloads, report: Callable[[dict], None]) -> None:
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
        url = urlsplit(paths[0] if paths else "/flood")
        mode = url.path.strip("/") or "flood"
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        info.update(path=paths[0] if paths else "", mode=mode)
        with anyio.fail_after(30):
            batch = await ws.receive_batch()
        request = json.loads(batch[0])
        for reply in subscription_replies(request):
            await ws.send_text(reply)
        c0, t0 = time.process_time(), time.perf_counter()
        if mode == "flood":
            info.update(await push_flood(stream, p, int(q.get("n", 10000))))
        elif mode in ("paced", "slow"):
            rate = float(q.get("rate", 1000))
            seconds = float(q.get("seconds", 3))
            lag = 0.010 if mode == "slow" else None
            info.update(await push_paced(stream, p, rate, seconds, lag))
            await stream.send(p.end)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        info.update(cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0)
        await _until_hangup(ws)
    except (ConnectionClosedError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        info["error"] = f"client went away: {exc!r}"
    except Exception as exc:
        info["error"] = repr(exc)
    finally:
        with anyio.CancelScope(shield=True):
            await ws.aclose()
        report(info)


async def _until_hangup(ws: WebSocket) -> None:
    """Repeat the end marker until the client closes (at most 60 s)."""

    async def repeat_end() -> None:
        try:
            while True:
                await anyio.sleep(0.25)
                await ws.send_text(END_TEXT)
        except ConnectionClosedError:
            pass

    with anyio.move_on_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(repeat_end)
            try:
                while True:
                    await ws.receive_batch()
            except ConnectionClosedError:
                pass
            finally:
                tg.cancel_scope.cancel()


def _parent_watchdog() -> None:
    """Exit when the parent goes away (our stdin closes)."""

    def run() -> None:
        # The raw fd, not sys.stdin: a daemon thread blocked in a buffered
        # read makes interpreter shutdown abort.
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            return
        os._exit(3)

    threading.Thread(target=run, daemon=True).start()


async def serve(lifetime: float) -> None:
    payloads = Payloads()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    def report(info: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()

    report(
        {
            "port": port,
            "pid": os.getpid(),
            "messages": len(payloads.messages),
            "bytes_min": min(payloads.sizes),
            "bytes_max": max(payloads.sizes),
            "bytes_mean": sum(payloads.sizes) / len(payloads.sizes),
        }
    )

    async def on_stream(stream: anyio.abc.ByteStream) -> None:
        await handle(stream, payloads, report)

    with anyio.move_on_after(lifetime):
        async with listener:
            await listener.serve(on_stream)


def run_server(
    serve_for: Callable[[float], Any], description: str, argv: list[str] | None = None
) -> int:
    """The command line both bench servers share: ``--lifetime`` bounds the
    run, ``--watch-stdin`` ends it with the parent process."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--lifetime", type=float, default=1800, help="exit after this many s")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    args = parser.parse_args(argv)
    if args.watch_stdin:
        _parent_watchdog()
    anyio.run(serve_for, args.lifetime, backend="asyncio")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_server(serve, "benchmark server (used by bench/*.py)", argv)


if __name__ == "__main__":
    raise SystemExit(main())
