"""Fan-out: 1, 10 and 100 consumers on one kraky_anyio connection.

    python bench/fanout.py [--n 20000] [--consumers 1,10,100] [--repeats 3]
                           [--json PATH] [--smoke]

One connection, K tasks each iterating its own ``conn.messages()`` (the
default ``overflow="block"``, 1000-message buffers); the server pushes N
messages as fast as the socket takes them. Reported: deliveries/second over
all consumers (K x N / time from the first data message to the last
consumer's end marker), what each consumer gets per second, and CPU µs per
delivery. ``x 1 consumer`` compares total deliveries/s with the 1-consumer
run of the same backend and round (median over rounds). Both backends,
round-robin.
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import Procs, Server, median, render_text, rotated, run_client, table, write_json

BACKENDS = ["asyncio", "trio"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20000, help="messages per run")
    p.add_argument("--consumers", default="1,10,100")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    counts = [int(c) for c in args.consumers.split(",") if c]
    n, repeats = (args.n, max(1, args.repeats))
    cases = [(b, k) for b in BACKENDS for k in counts]
    if args.smoke:
        n, repeats = 500, 1
        cases = [("asyncio", 1), ("asyncio", 10), ("trio", 10)]
    labels = [f"{b}:{k}" for b, k in cases]
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    with Procs() as procs:
        server = Server(procs)
        print(f"fanout: {n:,} msgs/run, cases {labels}, {repeats} round(s)", flush=True)
        for rnd in range(repeats):
            for label in rotated(labels, rnd):
                backend, k = label.split(":")
                res = run_client(
                    procs,
                    server,
                    f"kraky_anyio-{backend}",
                    "fanout",
                    f"/flood?n={n}",
                    timeout=60 + n * int(k) / 20000,
                    extra=["--consumers", k],
                )
                res["round"] = rnd
                if "error" not in res and (res["per_consumer"] != n or not res["all_equal"]):
                    res["error"] = f"a consumer got {res['per_consumer']} of {n} messages"
                runs[label].append(res)
                if "error" in res:
                    print(f"  {label:<12} ERROR {res['error'][:300]}", flush=True)
                else:
                    print(
                        f"  {backend:<8} {k:>4} consumers {res['deliveries_per_s']:>11,.0f}"
                        f" deliveries/s {res['cpu_us_per_delivery']:>6.2f} CPU µs/delivery",
                        flush=True,
                    )
    summary: dict[str, Any] = {}
    rows = []
    for label, rs in runs.items():
        backend, k = label.split(":")
        ok = [r for r in rs if "error" not in r]
        base = {r["round"]: r for r in runs.get(f"{backend}:1", []) if "error" not in r}
        vs1 = median(
            [
                r["deliveries_per_s"] / base[r["round"]]["deliveries_per_s"]
                for r in ok
                if r["round"] in base
            ]
        )
        s = {
            "backend": backend,
            "consumers": int(k),
            "ok": len(ok),
            "runs": len(rs),
            "deliveries_per_s": median([r["deliveries_per_s"] for r in ok]),
            "msgs_per_s_each": median([r["msgs_per_s"] for r in ok]),
            "cpu_us_per_delivery": median([r["cpu_us_per_delivery"] for r in ok]),
            "vs_1_consumer": vs1,
        }
        summary[label] = s
        rows.append(
            [
                backend,
                int(k),
                s["deliveries_per_s"],
                s["msgs_per_s_each"],
                s["cpu_us_per_delivery"],
                s["vs_1_consumer"],
                f"{s['ok']}/{s['runs']}",
            ]
        )
    t = table(
        f"Fan-out: {n:,} messages to K consumers on one connection, median of the rounds",
        [
            "backend",
            "consumers",
            "deliveries/s (total)",
            "msgs/s each",
            "CPU µs/delivery",
            "x 1 consumer",
            "ok runs",
        ],
        rows,
        "deliveries/s = K x N / time; x 1 consumer: total deliveries/s over the"
        " 1-consumer run's, same backend and round.",
    )
    print()
    print(render_text(t))
    write_json(
        args.json,
        {
            "name": "fanout",
            "params": {"n": n, "repeats": repeats, "cases": labels, "smoke": args.smoke},
            "runs": runs,
            "summary": summary,
            "tables": [t],
        },
    )
    return 1 if any(s["ok"] == 0 for s in summary.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
