"""Make the example recordings in this folder from the simulated market.

    python docs/recordings/make.py

Serves :class:`~kraky_anyio.testing.market.MarketSimulator` (seed 1,
XBT/USD, v2 BTC/USD) on the fake exchange, on trio's virtual clock, and
records what a bare WebSocket client subscribed to ``book`` (depth 10) and
``ticker`` receives for ``DURATION`` seconds, in kraky-anyio's recording
format (see docs/record-replay.md): ``sim-v1-book.jsonl.gz`` and
``sim-v2-book.jsonl.gz``. The same code gives the same bytes every time
(seeded market, virtual clock, wall times from the simulator's start, gzip
without a timestamp).
"""

from __future__ import annotations

import functools
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import trio.testing

from kraky_anyio import __version__
from kraky_anyio.testing.market import MarketSimulator, run_market
from kraky_anyio.testing.server import open_fake_kraken
from kraky_anyio.transport import connect_websocket

HERE = Path(__file__).resolve().parent
DURATION = 30.0  # seconds of market recorded
STEP = 0.25  # seconds between market steps
START = 1_700_000_000  # the simulator's epoch, and the recordings' wall clock
BOOK, TICKER = {"channel": "book"}, {"channel": "ticker"}
SUBSCRIBE = {
    "v1": [
        {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "book"}, "reqid": 1},
        {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "ticker"}, "reqid": 2},
    ],
    "v2": [
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}, "req_id": 1},
        {
            "method": "subscribe",
            "params": {"channel": "ticker", "symbol": ["BTC/USD"]},
            "req_id": 2,
        },
    ],
}


def _line(kind: str, t: float, **fields: Any) -> str:
    entry = {"kind": kind, "t": round(t, 6), "wall": round(START + t, 6), **fields}
    return json.dumps(entry, separators=(",", ":"))


async def record(api: str) -> list[str]:
    """The lines of one recording of ``api``."""
    sim = MarketSimulator(["XBT/USD"], seed=1, start_time=START)
    lines = [
        json.dumps(
            {
                "kind": "header",
                "format": "kraky-anyio-recording",
                "version": 1,
                "library": __version__,
                "api": api,
                "url": "wss://ws.kraken.com" + ("/v2" if api == "v2" else ""),
                "started": "2023-11-14T22:13:20.000000Z",  # START
                "part": 0,
            },
            separators=(",", ":"),
        )
    ]
    async with (
        open_fake_kraken(
            pairs=sim.pairs, snapshot_provider=sim.snapshot, v2_snapshot_provider=sim.v2_snapshot
        ) as server,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(functools.partial(run_market, server, sim, interval=STEP))
        t0 = anyio.current_time()
        ws = await connect_websocket(server.v2_url if api == "v2" else server.url)
        lines.append(_line("open", anyio.current_time() - t0, gen=1))
        for request in SUBSCRIBE[api]:
            text = json.dumps(request, separators=(",", ":"))
            await ws.send_text(text)
            lines.append(_line("sent", anyio.current_time() - t0, gen=1, text=text))
        with anyio.move_on_after(DURATION):
            while True:
                batch = await ws.receive_batch()
                now = anyio.current_time() - t0
                lines.extend(_line("recv", now, gen=1, text=str(frame)) for frame in batch)
        lines.append(_line("close", anyio.current_time() - t0, gen=1, reason="done"))
        await ws.aclose()
        tg.cancel_scope.cancel()
    return lines


def main() -> None:
    for api in ("v1", "v2"):
        clock = trio.testing.MockClock(autojump_threshold=0)
        lines = anyio.run(record, api, backend="trio", backend_options={"clock": clock})
        path = HERE / f"sim-{api}-book.jsonl.gz"
        data = ("\n".join(lines) + "\n").encode()
        with path.open("wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as f:
            f.write(data)
        print(f"{path.name}: {len(lines)} lines, {path.stat().st_size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
