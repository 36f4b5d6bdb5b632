"""Where kraky_anyio's receive path spends its time, stage by stage, in-process.

    python bench/pipeline.py [--repeat 20] [--json PATH] [--smoke]

No network: the benchmark server's messages (bench/_server.py: the fixture's
book-10 updates and trades) as JSON strings, each stage timed on all of them,
best of ``--repeat``, the stages interleaved so machine load hits them alike:

* ``json.loads``: what the raw client does per message;
* ``json.JSONDecoder(parse_float=Decimal)``: the stdlib decoder kraky_anyio used
  before msgspec (the same objects);
* ``protocol.decode``: kraky_anyio's decoder (msgspec, ``float_hook=Decimal``);
* ``KrakenProtocol.receive_frames``: decode + classify + counters, on batches of
  512 frames (about one 64 KiB socket read), as the reader calls it;
* ``fan-out, 1 consumer``: ``Fanout.publish`` of 512-message batches and one
  task iterating ``MessageStream`` (already decoded messages), on asyncio.

The throughput benchmark's "x raw CPU" is, roughly, json.loads plus the
transport's frame parsing over the sum of these stages plus that parsing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from _common import render_text, table, write_json
from _server import compact, load_messages


def best_of(repeat: int, fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def fanout_run(decoded: list[Any]) -> Callable[[], object]:
    import anyio

    from kraky_anyio.fanout import Fanout
    from kraky_anyio.protocol import Stats

    batches = [decoded[i : i + 512] for i in range(0, len(decoded), 512)]

    async def main() -> None:
        fan = Fanout(Stats(), buffer_size=1000)
        stream = fan.open()
        total = sum(len(b) for b in batches)

        async def consume() -> None:
            n = 0
            async for _ in stream:
                n += 1
                if n == total:
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            for b in batches:
                await fan.publish(b)

    def run() -> None:
        anyio.run(main, backend="asyncio")

    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=60)
    p.add_argument("--json")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    repeat = 1 if args.smoke else max(1, args.repeat)

    import kraky_anyio.protocol as proto

    texts = [compact(m) for m in load_messages()]
    n = len(texts)
    loads = json.loads
    decode = proto.decode
    stdlib = json.JSONDecoder(parse_float=Decimal).decode
    decoded = [decode(t) for t in texts]
    batches = [texts[i : i + 512] for i in range(0, n, 512)]

    def receive_run() -> Callable[[], object]:
        proto_obj = proto.KrakenProtocol()

        def run() -> None:
            r = proto_obj.receive_frames
            for b in batches:
                r(b)

        return run

    stages: dict[str, Callable[[], object]] = {
        "json.loads (raw client)": lambda: [loads(t) for t in texts],
        "stdlib JSONDecoder(parse_float=Decimal)": lambda: [stdlib(t) for t in texts],
        "protocol.decode (msgspec)": lambda: [decode(t) for t in texts],
        "KrakenProtocol.receive_frames": receive_run(),
        "fan-out + 1 consumer": fanout_run(decoded),
    }
    best = best_of(repeat, stages)
    base = best["json.loads (raw client)"]
    rows = [[name, t / n * 1e6, t / base] for name, t in best.items()]
    t = table(
        f"Receive path, stage by stage: {n:,} messages, best of {repeat}, in-process",
        ["stage", "µs/msg", "x json.loads"],
        rows,
        "Each stage alone (receive includes decode). kraky_anyio per message ~ receive +"
        " fan-out; the raw client ~ json.loads; both also parse frames (shared).",
    )
    print(render_text(t))
    write_json(
        args.json,
        {
            "name": "pipeline",
            "params": {"messages": n, "repeat": repeat, "smoke": args.smoke},
            "us_per_msg": {k: v / n * 1e6 for k, v in best.items()},
            "tables": [t],
            "python": sys.version.split()[0],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
