"""python-kraken-sdk's order book handler, in-process, against bare json.loads.

    bench/.venv-peers/bin/python bench/_v2_book_handler.py FRAMES.json [--repeat 20]

Not meant to be run by hand (bench/peers.py writes FRAMES.json: the v2 server's
book snapshot and updates, as text). Runs in the peers venv. Prints one JSON
line: best-of-``--repeat`` µs per message of

* ``json.loads`` of each frame (what every client pays at least), and
* ``json.loads`` + ``await SpotOrderBookClient.on_message(msg)``: the SDK's
  book (apply, sort, truncate, checksum), with a no-op callback.

A fresh client per repetition gets the snapshot first (untimed). The SDK
asks Kraken's REST API once per pair for the decimals it renders the
checksum with; ``Market.get_asset_pairs`` is replaced by the answer for
BTC/USD (1 and 8), so nothing leaves the machine. The line says whether every
checksum verified.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("frames")
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args(argv)
    with open(args.frames) as f:
        texts: list[str] = json.load(f)
    snapshot, updates = texts[0], texts[1:]

    from kraken.spot import Market, SpotOrderBookClient

    def asset_pairs(self: Any, pair: Any = None, **kw: Any) -> dict[str, Any]:
        return {"BTC/USD": {"pair_decimals": 1, "lot_decimals": 8}}

    Market.get_asset_pairs = asset_pairs  # type: ignore[method-assign]

    async def noop(pair: str, message: dict[str, Any]) -> None:
        return None

    loads = json.loads
    n = len(updates)
    valid = True

    async def run() -> dict[str, float]:
        nonlocal valid
        best = {"json.loads": float("inf"), "json.loads + SpotOrderBookClient": float("inf")}
        for _ in range(args.repeat):
            t = time.perf_counter()
            for text in updates:
                loads(text)
            best["json.loads"] = min(best["json.loads"], time.perf_counter() - t)

            client = SpotOrderBookClient(depth=10, callback=noop)
            on_message = client.on_message
            await on_message(loads(snapshot))
            t = time.perf_counter()
            for text in updates:
                await on_message(loads(text))
            dt = time.perf_counter() - t
            book = client.get("BTC/USD")
            valid = valid and bool(book and book["valid"])
            best["json.loads + SpotOrderBookClient"] = min(
                best["json.loads + SpotOrderBookClient"], dt
            )
        return {k: v / n * 1e6 for k, v in best.items()}

    us = asyncio.run(run())
    sys.stdout.write(
        json.dumps({"updates": n, "repeat": args.repeat, "us_per_msg": us, "checksums_ok": valid})
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
