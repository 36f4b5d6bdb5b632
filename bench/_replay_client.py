"""One replay measurement, in its own process (run by bench/replay.py).

    python bench/_replay_client.py --kind replay-v1-asyncio --passes 10

Prints one JSON line. Kinds:

``read-v1``, ``read-v2``   read + sort the example recording
                           (``read_recording`` + ``Tape``), ``--reads`` times
``replay-API-BACKEND``     ``open_fake_kraken(replay=<recording>, speed="max",
                           loop=True)`` and, in the same process, one client
                           (``open_kraken`` / ``v2.open_kraken``) keeping a
                           checksum-verified book of the recorded pair for
                           ``--passes`` passes of the tape
``live-API-trio``          the same client against the live simulated market
                           (``open_fake_kraken`` + ``run_market``, the market
                           the recordings were made from) for as much market
                           time as ``--passes`` passes of the recording, on
                           trio's ``MockClock(autojump_threshold=0)``: the
                           market's steps come as fast as the loop goes, as
                           the replay's frames do

Server and client share the process, as in a test suite: frames/s and CPU
µs per frame are of both. Timed from the book's subscribe to the pong of a
ping sent after the last pass (the fake answers it after every frame queued
before it), so every frame played has reached the client's book.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from _client_process import add_to_result, emit, start_watchdogs

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = ROOT / "docs" / "recordings"
PATHS = {"v1": RECORDINGS / "sim-v1-book.jsonl.gz", "v2": RECORDINGS / "sim-v2-book.jsonl.gz"}
PAIR = {"v1": "XBT/USD", "v2": "BTC/USD"}
#: Market seconds in one example recording (docs/recordings/make.py: DURATION).
RECORDED_SECONDS = 30.0
STEP = 0.25  # make.py's market step


def read(api: str, reads: int) -> dict[str, Any]:
    """Read + sort the recording ``reads`` times: wall and CPU of each."""
    from kraky_anyio.testing.replay_formats import read_recording
    from kraky_anyio.testing.replay_tape import Tape

    walls, cpus = [], []
    frames = 0
    for _ in range(reads):
        t0, c0 = time.perf_counter(), time.process_time()
        tape = Tape(read_recording(PATHS[api]))
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        frames = len(tape.frames)
    return {"frames": frames, "read_s": walls, "read_cpu_s": cpus}


async def follow(conn: Any, api: str, until: Any, played: Any = None) -> dict[str, Any]:
    """Keep the pair's book until ``until()`` returns, then ping: timed.
    v2's book is given the pair's precisions: without them it subscribes to
    ``instrument`` first and waits 10 s for a snapshot no recording here has."""
    if api == "v2":
        book_cm = conn.book(PAIR[api], 10, price_precision=1, qty_precision=8)
    else:
        book_cm = conn.book(PAIR[api], 10)
    received0 = conn.stats.frames_received
    t0, c0 = time.perf_counter(), time.process_time()
    async with book_cm as book:
        await until()
        await conn.ping()  # answered after every frame queued before it
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        frames = conn.stats.frames_received - received0
        sent = played.sent if played is not None else None
        state = {
            "valid": bool(book.valid),
            "updates": book.book.updates,
            "checksum_mismatches": book.checksum_mismatches,
            "resyncs": book.resyncs,
        }
    return {
        "frames": frames,
        "played": sent,
        "wall_s": wall,
        "cpu_s": cpu,
        "frames_per_s": frames / wall if wall > 0 else 0.0,
        "cpu_us_per_frame": cpu / frames * 1e6 if frames else 0.0,
        "book": state,
        "verified": state["valid"]
        and state["checksum_mismatches"] == 0
        and state["resyncs"] == 0
        and state["updates"] > 0,
    }


def client(api: str, server: Any) -> Any:
    from kraky_anyio import open_kraken, v2

    if api == "v2":
        return v2.open_kraken(server.v2_url, reconnect=False)
    return open_kraken(server.url, reconnect=False)


async def replay(api: str, passes: int) -> dict[str, Any]:
    from kraky_anyio.testing.replay_formats import read_recording
    from kraky_anyio.testing.server import open_fake_kraken

    recording = read_recording(PATHS[api])
    async with (
        open_fake_kraken(replay=recording, speed="max", loop=True) as server,
        client(api, server) as conn,
    ):
        played = server.replay
        assert played is not None

        async def until() -> None:
            await played.wait_for(lambda: played.passes >= passes)

        return await follow(conn, api, until, played)


async def live(api: str, passes: int) -> dict[str, Any]:
    import anyio

    from kraky_anyio.testing.market import MarketSimulator, run_market
    from kraky_anyio.testing.server import open_fake_kraken

    sim = MarketSimulator(["XBT/USD"], seed=1, start_time=1_700_000_000)
    async with (
        open_fake_kraken(
            pairs=sim.pairs, snapshot_provider=sim.snapshot, v2_snapshot_provider=sim.v2_snapshot
        ) as server,
        client(api, server) as conn,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(lambda: run_market(server, sim, interval=STEP))

        async def until() -> None:
            await anyio.sleep(RECORDED_SECONDS * passes)

        result = await follow(conn, api, until)
        tg.cancel_scope.cancel()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one replay measurement (used by bench/replay.py)")
    p.add_argument("--kind", required=True)
    p.add_argument("--passes", type=int, default=10)
    p.add_argument("--reads", type=int, default=5)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    args = p.parse_args(argv)
    start_watchdogs(args.timeout, args.watch_stdin)
    what, api, *rest = args.kind.split("-")
    if api not in PATHS:
        raise SystemExit(f"unknown API in {args.kind!r}")
    add_to_result(kind=args.kind, api=api)
    if what == "read":
        emit(read(api, args.reads))
        return 0
    import anyio

    backend = rest[0] if rest else ""
    add_to_result(backend=backend, passes=args.passes)
    if what == "replay" and backend in ("asyncio", "trio"):
        result = anyio.run(replay, api, args.passes, backend=backend)
    elif what == "live" and backend == "trio":
        import trio.testing

        clock = trio.testing.MockClock(autojump_threshold=0)
        result = anyio.run(live, api, args.passes, backend="trio", backend_options={"clock": clock})
    else:
        raise SystemExit(f"unknown kind {args.kind!r}")
    emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
