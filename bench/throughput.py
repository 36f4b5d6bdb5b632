"""Throughput: messages/second and CPU µs/message of each client, side by side.

    python bench/throughput.py [--n 40000] [--repeats 7] [--no-kraky] [--json PATH] [--smoke]

One server process (bench/_server.py) pushes N recorded-shaped Kraken messages
(the fixture's book-10 updates with a trade message after every four; 85 to
609 bytes, 121 on average) after each client's subscribe, as fast as the
client reads. Each client runs in its own process, one at a time, in
round-robin order over ``--repeats`` rounds:

* ``raw-asyncio``, ``raw-trio``: the ceiling, ``kraky_anyio.transport.connect_websocket``
  + ``json.loads`` per message, no library above the transport;
* ``kraky_anyio-trio``, ``kraky_anyio-asyncio``: ``open_kraken`` + ``async for msg
  in conn.messages()``;
* ``kraky``: ``kraky.KrakyWsClient`` from PyPI with a no-op handler, in its own
  venv ``bench/.venv-kraky`` (created on first use; kraky pins websockets<12);
* ``websockets``: ``websockets.asyncio.client.connect`` + ``json.loads``.

Wall time runs from the server's first write of the flood (a system-wide
``time.time_ns`` stamp carried in the end marker) to the client's handler
seeing the end marker; CPU time (``time.process_time`` of the client process)
from the start marker, sent 50 ms before the flood, to the end marker. So
every client is timed on the same work whatever its batching. Ratios are
paired: in each round, client / the raw client of the same backend in that
round; the table gives the median of those ratios.

``KIND+cached-decoder`` rows are a what-if, not the shipped library:
kraky_anyio with ``kraky_anyio.protocol.decode`` replaced by a
``json.JSONDecoder(parse_float=Decimal)`` built once (monkeypatched in the
client process). ``--smoke`` runs a few thousand messages once, without
kraky or what-ifs, and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _common import (
    BACKEND,
    RAW_OF,
    Procs,
    Server,
    backend_of,
    kraky_python,
    median,
    render_text,
    rotated,
    run_client,
    table,
    write_json,
)

CLIENTS = [
    "raw-asyncio",
    "raw-trio",
    "kraky_anyio-trio",
    "kraky_anyio-asyncio",
    "kraky",
    "websockets",
    # What-if: kraky_anyio with its JSON decoder built once (bench/_client.py
    # --what-if); not the shipped library, shown to size a fix.
    "kraky_anyio-asyncio+cached-decoder",
    "kraky_anyio-trio+cached-decoder",
]
GOAL = 0.85


def paired(runs: dict[str, list[dict]], a: str, b: str, key: str, invert: bool = False) -> float:
    """Median over rounds of runs[a][key] / runs[b][key] (b / a with ``invert``)."""
    by_round = {r["round"]: r for r in runs.get(b, []) if "error" not in r}
    ratios = []
    for r in runs.get(a, []):
        other = by_round.get(r["round"])
        if "error" in r or other is None or not r[key] or not other[key]:
            continue
        ratios.append(other[key] / r[key] if invert else r[key] / other[key])
    return median(ratios)


def summarise(runs: dict[str, list[dict]], n: int) -> tuple[dict[str, Any], list[dict]]:
    summary: dict[str, Any] = {}
    rows = []
    for kind, rs in runs.items():
        ok = [r for r in rs if "error" not in r and r.get("n") == n]
        backend = backend_of(kind)
        raw = RAW_OF[backend]
        s = {
            "backend": backend,
            "runs": len(rs),
            "ok": len(ok),
            "errors": [r["error"] for r in rs if "error" in r],
            "msgs_per_s_median": median([r["msgs_per_s"] for r in ok]),
            "msgs_per_s_best": max((r["msgs_per_s"] for r in ok), default=float("nan")),
            "cpu_us_median": median([r["cpu_us_per_msg"] for r in ok]),
            "cpu_us_best": min((r["cpu_us_per_msg"] for r in ok), default=float("nan")),
            "rate_vs_raw": paired(runs, kind, raw, "msgs_per_s"),
            "cpu_vs_raw": paired(runs, kind, raw, "cpu_us_per_msg", invert=True),
            "server_cpu_us": median(
                [r["server"]["cpu_s"] / n * 1e6 for r in ok if r.get("server", {}).get("cpu_s")]
            ),
        }
        summary[kind] = s
    for kind, s in summary.items():
        raw_s = summary.get(RAW_OF[s["backend"]], {})
        s["best_rate_vs_raw"] = s["msgs_per_s_best"] / raw_s.get("msgs_per_s_best", float("nan"))
        s["best_cpu_vs_raw"] = raw_s.get("cpu_us_best", float("nan")) / s["cpu_us_best"]
        rows.append(
            [
                kind,
                s["backend"],
                s["msgs_per_s_median"],
                s["msgs_per_s_best"],
                s["cpu_us_median"],
                s["cpu_us_best"],
                s["rate_vs_raw"],
                s["cpu_vs_raw"],
                s["best_rate_vs_raw"],
                s["best_cpu_vs_raw"],
                f"{s['ok']}/{s['runs']}",
            ]
        )
    t = table(
        f"Throughput: {n:,} messages per run, median of the rounds",
        [
            "client",
            "backend",
            "msgs/s",
            "best msgs/s",
            "CPU µs/msg",
            "best CPU µs",
            "x raw msgs/s",
            "x raw CPU",
            "best/best msgs/s",
            "best/best CPU",
            "ok runs",
        ],
        rows,
        "x raw: median over rounds of (client / raw client of the same backend, same round);"
        " for CPU, raw µs / client µs. best/best: the same ratios from each client's best"
        " round. 1.00 = as fast as raw, higher is better.",
    )
    tables = [t]
    if "kraky" in summary and summary["kraky"]["ok"]:
        krows = []
        for kind in ("kraky_anyio-asyncio", "kraky_anyio-trio", "websockets"):
            if kind in runs:
                krows.append(
                    [
                        kind,
                        paired(runs, kind, "kraky", "msgs_per_s"),
                        paired(runs, kind, "kraky", "cpu_us_per_msg", invert=True),
                    ]
                )
        tables.append(
            table(
                "Against kraky (KrakyWsClient), paired per round",
                ["client", "x kraky msgs/s", "x kraky CPU"],
                krows,
                "> 1.00: faster (msgs/s) or cheaper (CPU) than kraky.",
            )
        )
    return summary, tables


def goals(summary: dict[str, Any], runs: dict[str, list[dict]]) -> dict[str, Any]:
    """Each goal: {"met": bool, "ratio": the measured paired ratio, "target": ...}."""
    out: dict[str, Any] = {}
    for backend in ("asyncio", "trio"):
        s = summary.get(f"kraky_anyio-{backend}")
        if s:
            for what, key in (("msgs/s", "rate_vs_raw"), ("CPU", "cpu_vs_raw")):
                r = s[key]
                out[f"kraky_anyio-{backend} >= {GOAL}x raw {what}"] = {
                    "met": r >= GOAL,
                    "ratio": r,
                    "target": GOAL,
                }
    k = summary.get("kraky")
    if k and k["ok"]:
        for backend in ("asyncio", "trio"):
            kind = f"kraky_anyio-{backend}"
            if kind in summary:
                for what, key, inv in (
                    ("msgs/s", "msgs_per_s", False),
                    ("CPU", "cpu_us_per_msg", True),
                ):
                    r = paired(runs, kind, "kraky", key, invert=inv)
                    out[f"{kind} ahead of kraky ({what})"] = {
                        "met": r > 1.0,
                        "ratio": r,
                        "target": 1.0,
                    }
    return out


def goal_line(name: str, g: dict[str, Any]) -> str:
    return f"goal: {name}: {'yes' if g['met'] else 'NO'} (measured {g['ratio']:.2f}x)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=40000, help="messages per run")
    p.add_argument("--repeats", type=int, default=7, help="round-robin rounds")
    p.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated kinds")
    p.add_argument("--no-kraky", action="store_true", help="skip kraky (no venv creation)")
    p.add_argument("--kraky-python", help="a Python that has kraky installed")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--smoke", action="store_true", help="tiny and fast, for CI")
    args = p.parse_args(argv)
    n, repeats = (3000, 1) if args.smoke else (args.n, max(1, args.repeats))
    clients = [c for c in args.clients.split(",") if c]
    if args.smoke:
        clients = [c for c in clients if "+" not in c]
    unknown = [c for c in clients if c.split("+", 1)[0] not in BACKEND]
    if unknown:
        p.error(f"unknown clients {unknown}; known: {list(BACKEND)}")
    for c in clients:
        if RAW_OF[backend_of(c)] not in clients:
            clients.insert(0, RAW_OF[backend_of(c)])  # every ratio needs its raw
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

    runs: dict[str, list[dict]] = {c: [] for c in clients}
    timeout = 60 + n / 2000
    with Procs() as procs:
        server = Server(procs)
        print(
            f"throughput: {n:,} msgs/run, {repeats} round(s), clients {', '.join(clients)}",
            flush=True,
        )
        for r in range(repeats):
            for kind in rotated(clients, r):
                res = run_client(
                    procs,
                    server,
                    kind,
                    "flood",
                    f"/flood?n={n}",
                    timeout=timeout,
                    python=kraky_py if kind == "kraky" else None,
                )
                res["round"] = r
                runs[kind].append(res)
                if "error" in res:
                    print(f"  round {r} {kind:<20} ERROR {res['error'][:300]}", flush=True)
                else:
                    print(
                        f"  round {r} {kind:<20} {res['msgs_per_s']:>9,.0f} msgs/s"
                        f" {res['cpu_us_per_msg']:>6.2f} CPU µs/msg",
                        flush=True,
                    )
        payload_info = server.info
    summary, tables = summarise(runs, n)
    verdict = goals(summary, runs)
    print()
    for t in tables:
        print(render_text(t))
        print()
    for k, v in verdict.items():
        print(goal_line(k, v))
    write_json(
        args.json,
        {
            "name": "throughput",
            "params": {"n": n, "repeats": repeats, "clients": clients, "smoke": args.smoke},
            "payloads": payload_info,
            "skipped": skipped,
            "runs": {k: [{**r, "server": r.get("server")} for r in v] for k, v in runs.items()},
            "summary": summary,
            "goals": verdict,
            "tables": tables,
        },
    )
    failed = [k for k, s in summary.items() if s["ok"] == 0]
    if failed:
        print(f"no successful run for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
