"""Record, then replay: a client recording the simulated market on the fake
exchange (``record=``, v1 and v2, both backends, virtual time) and the same
client on a replay of that file see the same messages in the same order."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from kraky_anyio import v2
from kraky_anyio.connection import open_kraken
from kraky_anyio.notices import Notice
from kraky_anyio.recording import RecordOptions
from kraky_anyio.testing.market import MarketSimulator, run_market
from kraky_anyio.testing.replay_formats import read_recording
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

pytestmark = pytest.mark.anyio

MESSAGES = 300  # channel messages compared, after the acks
LIMIT = 600  # virtual seconds: a bound, never a synchronisation


@asynccontextmanager
async def live_market() -> AsyncIterator[FakeKrakenServer]:
    sim = MarketSimulator(["XBT/USD"], seed=3)
    async with (
        open_fake_kraken(
            pairs=sim.pairs, snapshot_provider=sim.snapshot, v2_snapshot_provider=sim.v2_snapshot
        ) as server,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(functools.partial(run_market, server, sim, interval=0.1))
        yield server
        tg.cancel_scope.cancel()


async def collect(conn: Any, subscribe: Callable[[], Awaitable[list[Any]]]) -> list[Any]:
    """The subscribe replies, then every message but notices up to ``MESSAGES``."""
    async with conn.messages() as stream:
        with anyio.fail_after(LIMIT):
            got = await subscribe()
            async for message in stream:
                if not isinstance(message, Notice):
                    got.append(message)
                if len(got) == MESSAGES:
                    break
    return got


async def session(server: FakeKrakenServer, api: str, record: Path | None) -> list[Any]:
    """What the client gets (book and ticker), recording to ``record`` if given."""
    options: dict[str, Any] = {}
    if record is not None:
        options["record"] = RecordOptions(record, io="inline")  # virtual time: no thread
    if api == "v2":
        async with v2.open_kraken(server.v2_url, **options) as conn2:

            async def subscribe_v2() -> list[Any]:
                book = await conn2.subscribe("book", "BTC/USD", depth=10)
                return [*book, *await conn2.subscribe("ticker", "BTC/USD")]

            return await collect(conn2, subscribe_v2)
    async with open_kraken(server.url, **options) as conn:

        async def subscribe_v1() -> list[Any]:
            book = await conn.subscribe({"name": "book", "depth": 10}, "XBT/USD")
            return [*book, *await conn.subscribe({"name": "ticker"}, "XBT/USD")]

        return await collect(conn, subscribe_v1)


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_a_replayed_recording_gives_the_client_the_same_messages(
    api: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{api}.jsonl.gz"
    async with live_market() as server:
        live = await session(server, api, path)
    recording = read_recording(path)
    assert recording.api == api and recording.format == "kraky"
    async with open_fake_kraken(replay=path) as server:
        replayed = await session(server, api, None)
        assert server.replay is not None and server.replay.tape.skipped["ack"] == 2
    assert len(replayed) == len(live) == MESSAGES
    assert replayed == live  # the same messages in the same order, acks included
