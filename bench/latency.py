"""Latency: server-stamped delay to each consumer at a steady message rate.

    python bench/latency.py [--rates 1000,10000] [--seconds 2] [--repeats 3]
                            [--no-kraky] [--json PATH] [--smoke]

The server sends at a steady R msgs/s (message i is due at t0 + i/R; what is
due is written at once, so at 10k msgs/s a wake-up sends about ten) and puts
``time.time_ns()`` (µs) in each message at the moment it writes it, in the
time field of the first price level. The client subtracts it from its own
``time.time_ns()`` when its handler gets the decoded message: the system-wide
realtime clock is shared by both processes on Linux, so the delay is
socket + client stack + event loop. The first 5 % of each run (warm-up) is
left out; the samples of all rounds are pooled.

Clients: raw (websockets' sans-I/O protocol over anyio,
``connect_websocket(..., fast_path=False)``, + ``json.loads``) and rawfast
(the same with our frame fast path) on asyncio and trio,
kraky_anyio on asyncio and trio, websockets, and kraky if its venv exists or
can be made (what-ifs of throughput.py only when named in ``--clients``).
Round-robin over ``--repeats`` rounds.
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import (
    RAW_OF,
    Procs,
    Server,
    backend_of,
    kraky_python,
    median,
    percentile,
    render_text,
    rotated,
    run_client,
    table,
    write_json,
)

CLIENTS = [
    "raw-asyncio",
    "raw-trio",
    "rawfast-asyncio",
    "rawfast-trio",
    "kraky_anyio-asyncio",
    "kraky_anyio-trio",
    "websockets",
    "kraky",
]
# What-ifs (see throughput.py) run only when named in --clients: the last one,
# the JSON decoder built once, has shipped.
WARMUP = 0.05


def _trimmed(r: dict[str, Any]) -> list[int]:
    lat = r["lat_us"]
    return sorted(lat[int(len(lat) * WARMUP) :])


def summarise(runs: dict[int, dict[str, list[dict]]]) -> tuple[dict[str, Any], list[dict]]:
    """Per client and rate: the median over rounds of each round's p50, p90 and
    p99 (one disturbed round moves the median little), the overall max, and the
    pooled percentiles for reference."""
    summary: dict[str, Any] = {}
    tables = []
    for rate, by_kind in runs.items():
        srate: dict[str, Any] = {}
        for kind, rs in by_kind.items():
            ok = [r for r in rs if "error" not in r]
            rounds = [_trimmed(r) for r in ok]
            pooled = sorted(x for xs in rounds for x in xs)
            srate[kind] = {
                "backend": backend_of(kind),
                "samples": len(pooled),
                "ok_runs": len(ok),
                "runs": len(rs),
                "missing": sum(
                    r.get("server", {}).get("sent", len(r["lat_us"])) - len(r["lat_us"]) for r in ok
                ),
                "p50_us": median([percentile(xs, 50) for xs in rounds]),
                "p90_us": median([percentile(xs, 90) for xs in rounds]),
                "p99_us": median([percentile(xs, 99) for xs in rounds]),
                "max_us": pooled[-1] if pooled else float("nan"),
                "pooled_p50_us": percentile(pooled, 50),
                "pooled_p99_us": percentile(pooled, 99),
                "p50_by_round": [percentile(xs, 50) for xs in rounds],
                "p99_by_round": [percentile(xs, 99) for xs in rounds],
                "errors": [r["error"] for r in rs if "error" in r],
            }
        for s in srate.values():
            raw = srate.get(RAW_OF[s["backend"]])
            s["p50_vs_raw"] = s["p50_us"] / raw["p50_us"] if raw and raw["p50_us"] else None
            s["p99_vs_raw"] = s["p99_us"] / raw["p99_us"] if raw and raw["p99_us"] else None
        summary[str(rate)] = srate
        rows = [
            [
                kind,
                s["backend"],
                s["p50_us"],
                s["p90_us"],
                s["p99_us"],
                s["max_us"],
                s["p50_vs_raw"],
                s["p99_vs_raw"],
                s["samples"],
            ]
            for kind, s in srate.items()
        ]
        tables.append(
            table(
                f"Latency at {rate:,} msgs/s (µs, server stamp to handler), median of rounds",
                [
                    "client",
                    "backend",
                    "p50",
                    "p90",
                    "p99",
                    "max",
                    "p50 x raw",
                    "p99 x raw",
                    "samples",
                ],
                rows,
                "p50/p90/p99: median over rounds of each round's percentile; max: of all."
                " x raw: the client's / the raw client's of the same backend (lower is"
                " better, 1.00 = raw).",
            )
        )
    return summary, tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="1000,10000", help="msgs/s, comma-separated")
    p.add_argument("--seconds", type=float, default=2.0, help="per run")
    p.add_argument("--repeats", type=int, default=3, help="round-robin rounds")
    p.add_argument("--clients", default=",".join(CLIENTS))
    p.add_argument("--no-kraky", action="store_true")
    p.add_argument("--kraky-python")
    p.add_argument("--json")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    rates = [int(float(r)) for r in args.rates.split(",") if r]
    seconds, repeats = (0.2, 1) if args.smoke else (args.seconds, max(1, args.repeats))
    clients = [c for c in args.clients.split(",") if c]
    if args.smoke:
        seconds, clients = 0.2, ["raw-trio", "kraky_anyio-asyncio"]
    kraky_py = None
    skipped: dict[str, str] = {}
    if "kraky" in clients:
        kraky_py, why = kraky_python(
            create=not (args.smoke or args.no_kraky), given=args.kraky_python
        )
        if kraky_py is None or args.no_kraky or args.smoke:
            clients.remove("kraky")
            skipped["kraky"] = why or "skipped (--no-kraky or --smoke)"
            print(f"kraky skipped: {skipped['kraky']}", flush=True)

    runs: dict[int, dict[str, list[dict]]] = {r: {c: [] for c in clients} for r in rates}
    with Procs() as procs:
        server = Server(procs)
        print(
            f"latency: rates {rates} msgs/s, {seconds:g} s/run, {repeats} round(s),"
            f" clients {', '.join(clients)}",
            flush=True,
        )
        for rnd in range(repeats):
            for rate in rates:
                for kind in rotated(clients, rnd):
                    res = run_client(
                        procs,
                        server,
                        kind,
                        "paced",
                        f"/paced?rate={rate}&seconds={seconds}",
                        timeout=seconds + 60,
                        python=kraky_py if kind == "kraky" else None,
                    )
                    res["round"] = rnd
                    runs[rate][kind].append(res)
                    if "error" in res:
                        print(f"  {rate:>6}/s {kind:<20} ERROR {res['error'][:300]}", flush=True)
                    else:
                        lat = sorted(res["lat_us"])
                        print(
                            f"  {rate:>6}/s {kind:<20} p50 {percentile(lat, 50):>7,} µs"
                            f"  p99 {percentile(lat, 99):>8,} µs  n {len(lat):,}",
                            flush=True,
                        )
    summary, tables = summarise(runs)
    print()
    for t in tables:
        print(render_text(t))
        print()
    # Raw samples are large: keep the per-run percentiles only.
    slim = {
        str(rate): {
            k: [
                {key: v for key, v in r.items() if key != "lat_us"}
                | (
                    {
                        "p50_us": percentile(sorted(r["lat_us"]), 50),
                        "p99_us": percentile(sorted(r["lat_us"]), 99),
                    }
                    if "lat_us" in r
                    else {}
                )
                for r in rs
            ]
            for k, rs in by_kind.items()
        }
        for rate, by_kind in runs.items()
    }
    write_json(
        args.json,
        {
            "name": "latency",
            "params": {
                "rates": rates,
                "seconds": seconds,
                "repeats": repeats,
                "clients": clients,
                "warmup_dropped": WARMUP,
                "smoke": args.smoke,
            },
            "skipped": skipped,
            "runs": slim,
            "summary": summary,
            "tables": tables,
        },
    )
    bad = [
        f"{rate}/{k}"
        for rate, srate in summary.items()
        for k, s in srate.items()
        if not s["ok_runs"]
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
