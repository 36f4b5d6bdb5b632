"""Helpers shared by the connection-level tests (importable: pytest puts
``tests/`` on ``sys.path``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from kraky_anyio import Connected, KrakenConnection, MessageStream
from kraky_anyio.testing.server import FakeKrakenServer


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
