"""Soak with random faults, on virtual time (bounded: seconds of real time in CI;
``SOAK_MINUTES=600`` for ten virtual hours).

The fake exchange streams numbered messages on several channels and pairs at a
steady rate while a seeded fault schedule drops, stalls, refuses, sends garbage
and flips maintenance status. Three consumers: a fast reference, a slow one
under the blocking policy, a slow one under the failing policy. Asserted: the
blocking consumer gets exactly what the reference got, once and in order; the
failing one gets a prefix and then ConsumerOverflowError; within one socket no
message repeats or goes backwards; the attempt budget holds in every window;
memory stays bounded. The figures are printed (run with -s to see them).
"""

from __future__ import annotations

import functools
import os
import random
import tracemalloc
from typing import Any

import anyio
import pytest

from kraky_anyio import (
    BookResync,
    Connected,
    ConsumerOverflowError,
    Disconnected,
    Notice,
    ReconnectPolicy,
    open_kraken,
)
from kraky_anyio.testing.market import MarketSimulator, run_market
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

pytestmark = pytest.mark.anyio

MINUTES = float(os.environ.get("SOAK_MINUTES", "5"))
RATE = 20.0  # messages per virtual second, over all streams
STREAMS = [
    ("ticker", "XBT/USD"),
    ("ticker", "ETH/USD"),
    ("trade", "XBT/USD"),
    ("spread", "ETH/USD"),
]


async def _publisher(server: FakeKrakenServer, counter: list[int]) -> None:
    while True:
        channel, pair = STREAMS[counter[0] % len(STREAMS)]
        await server.publish(channel, pair, {"n": counter[0]})
        counter[0] += 1
        await anyio.sleep(1 / RATE)


async def _faults(server: FakeKrakenServer, rng: random.Random, log: list[str]) -> None:
    while True:
        await anyio.sleep(rng.uniform(10, 40))
        fault = rng.choice(["drop", "stall", "refuse", "garbage", "maintenance", "close"])
        log.append(fault)
        if fault == "drop":
            await server.drop()
        elif fault == "close":
            await server.close(1001, "going away")
        elif fault == "stall":
            server.stall(True)
            await anyio.sleep(rng.uniform(5, 30))
            server.stall(False)
        elif fault == "refuse":
            server.refuse(rng.randint(1, 6))
            await server.drop()
        elif fault == "garbage":
            await server.send_raw(rng.choice(["not json", "[1,2]", '{"x":1}', "\x00"]))
        else:
            await server.set_status("maintenance")
            await server.drop()
            await anyio.sleep(rng.uniform(10, 40))
            await server.set_status("online")


def _data(msg: Any) -> int | None:
    if isinstance(msg, list) and isinstance(msg[1], dict) and "n" in msg[1]:
        n: int = msg[1]["n"]
        return n
    return None


async def test_soak_with_random_faults(anyio_backend: Any) -> None:
    if anyio_backend[0] == "asyncio":
        pytest.skip("the soak runs on trio's MockClock; asyncio's path is the same code")
    rng = random.Random(20261123)
    faults: list[str] = []
    counter = [0]
    market = MarketSimulator(["XBT/USD", "ETH/USD"], seed=7, book_levels=100, depths=(10, 25))
    tracemalloc.start()
    try:
        async with (
            open_fake_kraken(snapshot_provider=market.snapshot) as server,
            open_kraken(
                server.url, buffer_size=200, reconnect_policy=ReconnectPolicy(budget=150)
            ) as conn,
        ):
            reference = conn.messages(buffer_size=10**6)
            slow_block = conn.messages(buffer_size=50)
            slow_fail = conn.messages(buffer_size=50, overflow="fail")
            got: dict[str, list[Any]] = {"reference": [], "block": [], "fail": []}
            failed: list[ConsumerOverflowError] = []

            async def consume(name: str, stream: Any, delay: float) -> None:
                try:
                    async for msg in stream:
                        got[name].append(msg)
                        if delay and _data(msg) is not None:
                            await anyio.sleep(delay)
                except ConsumerOverflowError as exc:
                    failed.append(exc)

            for sub in ({"name": "ticker"}, {"name": "trade"}, {"name": "spread"}):
                pairs = sorted({p for c, p in STREAMS if c == sub["name"]})
                with anyio.fail_after(30):
                    await conn.subscribe(sub, pairs)
            book_checks: list[tuple[bool, Any, Any]] = []

            async def watch_book(pair: str, depth: int) -> None:
                async with conn.book(pair, depth) as book:
                    async for state in book:
                        # Every state the book shows is one Kraken's checksum vouched for.
                        book_checks.append((state.valid, state.best_bid, state.best_ask))

            async with anyio.create_task_group() as tg:
                tg.start_soon(functools.partial(run_market, server, market, interval=0.5))
                tg.start_soon(watch_book, "XBT/USD", 10)
                tg.start_soon(watch_book, "ETH/USD", 25)
                tg.start_soon(consume, "reference", reference, 0)
                tg.start_soon(consume, "block", slow_block, 0.04)  # slower than the feed
                tg.start_soon(consume, "fail", slow_fail, 0.2)
                tg.start_soon(_publisher, server, counter)
                tg.start_soon(_faults, server, rng, faults)
                await anyio.sleep(MINUTES * 60)
                server.refuse(0)
                server.stall(False)
                await server.set_status("online")
                tg.cancel_scope.cancel()
            with anyio.fail_after(600):
                await conn.wait_connected()
            attempts = list(server.attempt_times)
            stats = conn.stats
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    ref = got["reference"]
    data = [n for n in map(_data, ref) if n is not None]
    # Per socket: no message twice, none out of order.
    generation_data: list[int] = []
    for msg in ref:
        if isinstance(msg, Connected):
            generation_data = []
        n = _data(msg)
        if n is not None:
            assert not generation_data or n > generation_data[-1]
            generation_data.append(n)
    assert len(data) == len(set(data))
    # The blocking consumer got exactly the reference's stream so far, in order.
    block = got["block"]
    assert block == ref[: len(block)]
    assert sum(_data(m) is not None for m in block) > 1000
    # The failing consumer got a prefix, then the documented error.
    assert failed and failed[0].dropped > 0
    assert got["fail"] == ref[: len(got["fail"])]
    # Attempt budget: at most 150 in any closed 600 s window.
    worst = max((sum(1 for u in attempts if t <= u <= t + 600) for t in attempts), default=0)
    assert worst <= 150
    notices = [m for m in ref if isinstance(m, Notice)]
    disconnects = sum(isinstance(m, Disconnected) for m in notices)
    assert disconnects >= 5 and len(faults) >= 10
    assert stats.malformed_frames >= 1
    # Books: many verified states, none crossed, and no checksum ever failed
    # (resyncs come from reconnects only).
    resyncs = [m for m in notices if isinstance(m, BookResync)]
    assert len(book_checks) > 100
    assert all(valid and bid.price < ask.price for valid, bid, ask in book_checks)
    assert {r.reason for r in resyncs} <= {"reconnect"}
    assert peak < 64 * 1024 * 1024, peak
    print(
        f"\nsoak: {MINUTES:g} virtual min, faults {len(faults)} "
        f"({', '.join(f'{f}={faults.count(f)}' for f in sorted(set(faults)))}), "
        f"published {counter[0]}, received by the client {len(data)}, "
        f"delivered to the blocking consumer {sum(_data(m) is not None for m in block)} "
        f"(0 lost, 0 duplicated), fail consumer dropped after {len(got['fail'])} messages, "
        f"disconnects {disconnects}, connection attempts {len(attempts)} "
        f"(worst 600 s window {worst}), dead sockets detected {stats.dead_connections}, "
        f"malformed frames {stats.malformed_frames}, book states verified "
        f"{len(book_checks)} (book resyncs {len(resyncs)}, all after reconnects), "
        f"peak traced memory {peak / 1e6:.1f} MB"
    )
