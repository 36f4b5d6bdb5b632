"""Helpers shared by the connection-level tests (importable: pytest puts
``tests/`` on ``sys.path``)."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import IO, Any

import anyio
import anyio.abc
import pytest
from websockets.http11 import Request
from websockets.server import ServerProtocol

from kraky_anyio import Connected, ConnectionClosedError, KrakenConnection, MessageStream
from kraky_anyio.testing.server import FakeKrakenServer
from kraky_anyio.transport import accept_websocket


async def next_of(stream: MessageStream, match: Callable[[Any], bool]) -> Any:
    """The next message of ``stream`` for which ``match(msg)`` holds."""
    with anyio.fail_after(600):
        async for msg in stream:
            if match(msg):
                return msg
    raise AssertionError("stream ended")


async def drop_and_wait_reconnect(server: FakeKrakenServer, conn: KrakenConnection) -> None:
    """Drop every socket and wait until the client is connected again."""
    gen = conn.generation
    async with conn.messages() as stream:
        await server.drop()
        await next_of(stream, lambda m: isinstance(m, Connected) and m.generation > gen)
    with anyio.fail_after(60):
        await conn.wait_connected()


# --------------------------------------------------------------------------- scripted servers

Script = Callable[[anyio.abc.ByteStream], Awaitable[None]]


async def kraken_like(stream: anyio.abc.ByteStream, *, drop_after: int | None = None) -> None:
    """A minimal healthy server: pongs and subscriptionStatus, per pair.
    With ``drop_after``, the TCP connection is cut after that many requests."""
    ws = await accept_websocket(stream)
    seen = 0
    try:
        while True:
            for raw in await ws.receive_batch():
                msg = json.loads(raw)
                seen += 1
                event, reqid = msg.get("event"), msg.get("reqid")
                if event == "ping":
                    await ws.send_text(json.dumps({"event": "pong", "reqid": reqid}))
                elif event in ("subscribe", "unsubscribe"):
                    status = "subscribed" if event == "subscribe" else "unsubscribed"
                    for pair in msg.get("pair") or [None]:
                        out = {"event": "subscriptionStatus", "reqid": reqid, "status": status}
                        if pair is not None:
                            out["pair"] = pair
                        await ws.send_text(json.dumps(out))
                elif event == "cancelAll":
                    out = {"event": "cancelAllStatus", "reqid": reqid, "status": "ok", "count": 0}
                    await ws.send_text(json.dumps(out))
                if drop_after is not None and seen >= drop_after:
                    await ws.abort()
                    return
    except ConnectionClosedError:
        pass
    finally:
        await ws.abort()


async def accept_then_close_glued(stream: anyio.abc.ByteStream) -> None:
    """Complete the handshake with a close frame in the same write as the 101."""
    protocol = ServerProtocol()
    request = None
    async with stream:
        while request is None:
            protocol.receive_data(await stream.receive())
            request = next((e for e in protocol.events_received() if isinstance(e, Request)), None)
        protocol.send_response(protocol.accept(request))
        protocol.send_close(1001, "going away")
        await stream.send(b"".join(protocol.data_to_send()))
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            while await stream.receive():
                pass


async def flood_then_vanish(stream: anyio.abc.ByteStream) -> None:
    """Send a burst of channel data, then close the TCP connection at once."""
    ws = await accept_websocket(stream)
    for i in range(20):
        await ws.send_text(json.dumps([1, {"c": [str(i), "1"]}, "ticker", "XBT/USD"]))
    await ws.abort()


async def accept_and_never_read(stream: anyio.abc.ByteStream) -> None:
    """Complete the handshake, then never read or write again."""
    await accept_websocket(stream)
    await anyio.sleep_forever()


@asynccontextmanager
async def scripted_server(*scripts: Script) -> AsyncIterator[tuple[str, list[int]]]:
    """Serve on 127.0.0.1: the n-th connection runs ``scripts[n]`` (the last
    one for every later connection). Yields the URL and a list of the
    connection numbers seen so far."""
    seen: list[int] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.ByteStream) -> None:
        n = len(seen)
        seen.append(n)
        with contextlib.suppress(Exception):
            await scripts[min(n, len(scripts) - 1)](stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"ws://127.0.0.1:{port}", seen
        tg.cancel_scope.cancel()


# -- CLI processes -------------------------------------------------------------


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a child process to listen on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_line(stream: IO[bytes], deadline: float) -> str:
    """One line (newline included) from an unbuffered pipe, or fail the test
    at ``deadline`` (``time.monotonic()``): a bound, never a synchronisation."""
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            pytest.fail(f"no complete line before the deadline; got {line!r}")
        chunk = stream.read(1)
        if not chunk:
            pytest.fail(f"end of output; got {line!r}")
        line += chunk
    return line.decode()
