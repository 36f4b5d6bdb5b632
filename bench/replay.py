"""Replay speed: the example recordings served at ``speed="max"`` to a book.

    python bench/replay.py [--passes 10] [--repeats 5] [--no-live] [--json PATH] [--smoke]

Each measurement runs in its own process (bench/_replay_client.py), one at a
time, round-robin over ``--repeats`` rounds:

* ``read-v1``, ``read-v2``: reading and sorting ``docs/recordings/
  sim-v1-book.jsonl.gz`` / ``sim-v2-book.jsonl.gz`` (``read_recording`` +
  ``Tape``): what ``open_fake_kraken(replay=PATH)`` does before it serves;
* ``replay-v1-BACKEND``, ``replay-v2-BACKEND``: ``open_fake_kraken(replay=...,
  speed="max", loop=True)`` and one client keeping a checksum-verified book
  of the recorded pair for ``--passes`` passes, server and client in one
  process as in a test suite; frames/s and CPU µs per frame of both;
* ``live-v1-trio``, ``live-v2-trio`` (unless ``--no-live``): the same client
  against the live simulated market the recordings were made from
  (``open_fake_kraken`` + ``run_market``, same seed and step) for the same
  market time, on trio's ``MockClock(autojump_threshold=0)`` so its steps
  come as fast as the loop goes. trio only: asyncio has no virtual clock
  without a test plugin, and on the real clock the market runs at its pace.

Ratios are paired per round: ``x live`` = replay frames/s over the live
market's, and live CPU µs/frame over the replay's (higher: replay faster),
against the trio row of the same API. Every run must keep the book verified
(no checksum mismatch, no resync); nothing about time is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from _common import BENCH, PYTHON, Procs, median, render_text, rotated, table, write_json

APIS = ("v1", "v2")


def kinds(live: bool) -> list[str]:
    out = [f"replay-{api}-{b}" for api in APIS for b in ("asyncio", "trio")]
    if live:
        out += [f"live-{api}-trio" for api in APIS]
    return out


def run_one(procs: Procs, kind: str, passes: int, reads: int, timeout: float) -> dict[str, Any]:
    argv = [
        PYTHON,
        str(BENCH / "_replay_client.py"),
        "--watch-stdin",
        "--kind",
        kind,
        "--passes",
        str(passes),
        "--reads",
        str(reads),
        "--timeout",
        str(timeout),
    ]
    code, out, err = procs.run(argv, timeout + 10)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if code != 0 or not lines:
        return {"kind": kind, "error": f"exit code {code}: {err.strip()[-800:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def spread(xs: list[float], fmt: str = ".2f") -> str:
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return format(xs[0], fmt)
    return f"{format(median(xs), fmt)} ({format(min(xs), fmt)}-{format(max(xs), fmt)})"


def summarise(runs: dict[str, list[dict]], reads: dict[str, list[dict]]) -> list[dict]:
    tables = []
    rows = []
    for api, rs in reads.items():
        ok = [r for r in rs if "error" not in r]
        walls = [w * 1e3 for r in ok for w in r["read_s"]]
        cpus = [c * 1e3 for r in ok for c in r["read_cpu_s"]]
        frames = ok[0]["frames"] if ok else 0
        rows.append([f"sim-{api}-book.jsonl.gz", frames, spread(walls), spread(cpus)])
    tables.append(
        table(
            "Reading and sorting a recording (read_recording + Tape)",
            ["recording", "frames", "ms, median (min-max)", "CPU ms"],
            rows,
            "Every read of every round. What open_fake_kraken(replay=PATH) does before it serves.",
        )
    )
    rows = []
    for kind, rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        api = kind.split("-")[1]
        live = f"live-{api}-trio"
        by_round = {r["round"]: r for r in runs.get(live, []) if "error" not in r}
        rate_x = [
            r["frames_per_s"] / by_round[r["round"]]["frames_per_s"]
            for r in ok
            if r["round"] in by_round and not kind.startswith("live-")
        ]
        cpu_x = [
            by_round[r["round"]]["cpu_us_per_frame"] / r["cpu_us_per_frame"]
            for r in ok
            if r["round"] in by_round and not kind.startswith("live-")
        ]
        verified = sum(1 for r in ok if r["verified"])
        rows.append(
            [
                kind,
                median([r["frames"] for r in ok]),
                spread([r["frames_per_s"] for r in ok], ",.0f"),
                spread([r["cpu_us_per_frame"] for r in ok], ".0f"),
                spread(rate_x),
                spread(cpu_x),
                f"{verified}/{len(rs)}",
            ]
        )
    tables.append(
        table(
            "Replay at speed='max' against the live simulated market, same client",
            ["run", "frames", "frames/s", "CPU µs/frame", "x live frames/s", "x live CPU", "ok"],
            rows,
            "frames: received by the client (book updates, acks, the pong) over --passes"
            " passes; server and client in one process, both counted. x live: per round,"
            " replay / live-API-trio frames/s, and live CPU µs / replay CPU µs (higher: the"
            " replay is faster); median (min-max) over rounds. ok: runs whose book stayed"
            " verified (no checksum mismatch, no resync).",
        )
    )
    return tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--passes", type=int, default=10, help="passes of the tape per run")
    p.add_argument("--repeats", type=int, default=5, help="round-robin rounds")
    p.add_argument("--reads", type=int, default=5, help="reads of each recording per round")
    p.add_argument("--no-live", action="store_true", help="skip the live simulated market")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--smoke", action="store_true", help="tiny and fast, for CI")
    args = p.parse_args(argv)
    passes, repeats, reads = (1, 1, 1) if args.smoke else (args.passes, args.repeats, args.reads)
    clients = kinds(not args.no_live)
    runs: dict[str, list[dict]] = {k: [] for k in clients}
    read_runs: dict[str, list[dict]] = {api: [] for api in APIS}
    timeout = 60 + 30 * passes
    print(f"replay: {passes} pass(es)/run, {repeats} round(s), {', '.join(clients)}", flush=True)
    with Procs() as procs:
        for r in range(repeats):
            for api in APIS:
                res = run_one(procs, f"read-{api}", passes, reads, timeout)
                res["round"] = r
                read_runs[api].append(res)
                if "error" in res:
                    print(f"  round {r} read-{api} ERROR {res['error'][:300]}", flush=True)
            for kind in rotated(clients, r):
                res = run_one(procs, kind, passes, reads, timeout)
                res["round"] = r
                runs[kind].append(res)
                if "error" in res:
                    print(f"  round {r} {kind:<18} ERROR {res['error'][:300]}", flush=True)
                else:
                    print(
                        f"  round {r} {kind:<18} {res['frames']:>6} frames"
                        f" {res['frames_per_s']:>8,.0f} frames/s"
                        f" {res['cpu_us_per_frame']:>6.0f} CPU µs/frame"
                        f" verified={res['verified']}",
                        flush=True,
                    )
    tables = summarise(runs, read_runs)
    print()
    for t in tables:
        print(render_text(t))
        print()
    write_json(
        args.json,
        {
            "name": "replay",
            "params": {"passes": passes, "repeats": repeats, "reads": reads, "smoke": args.smoke},
            "runs": runs,
            "reads": read_runs,
            "tables": tables,
        },
    )
    bad = [k for k, rs in {**runs, **read_runs}.items() for r in rs if "error" in r]
    bad += [k for k, rs in runs.items() for r in rs if "error" not in r and not r["verified"]]
    if bad:
        print(f"failed or unverified: {', '.join(sorted(set(bad)))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
