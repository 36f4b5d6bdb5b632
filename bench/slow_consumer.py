"""Slow consumer: memory and the fate of every message when the consumer lags.

    python bench/slow_consumer.py [--seconds 10] [--rate 20000] [--sleep-ms 1]
                                  [--no-kraky] [--json PATH] [--smoke]

For ``--seconds`` the server offers ``--rate`` msgs/s (20k/s: far more than a
consumer taking ``--sleep-ms`` = 1 ms per message can take) and writes them
as fast as the socket takes them. A message it could not write within 10 ms
of its due time, because the socket stayed full, is skipped and counted as
*not sent*: what an exchange does to a slow reader. Then the end marker.

The consumer awaits a 1 ms sleep per message for ``--seconds`` from its first
data message, then drains what is left as fast as it can, up to the end
marker, so every message the server sent ends up counted:

    sent = delivered + dropped (the library's overflow counter) + unaccounted

``unaccounted`` should be 0: a message that vanished without a counter
saying so. RSS is sampled every 0.1 s (VmRSS) in the client process; growth
is the peak minus the RSS at the first data message.

Clients: kraky_anyio with ``overflow="block"`` and ``overflow="fail"`` (a
failed consumer is reopened at once, as an app would), on asyncio and trio;
the websockets client with its default buffering (``max_queue=16``) and
unbounded (``max_queue=None``); kraky when its venv is there.
"""

from __future__ import annotations

import argparse
from typing import Any

from _common import Procs, Server, kraky_python, render_text, run_client, table, write_json

# (label, kind, extra client arguments)
CONFIGS: list[tuple[str, str, list[str]]] = [
    ("kraky_anyio-asyncio block", "kraky_anyio-asyncio", ["--overflow", "block"]),
    ("kraky_anyio-asyncio fail", "kraky_anyio-asyncio", ["--overflow", "fail"]),
    ("kraky_anyio-trio block", "kraky_anyio-trio", ["--overflow", "block"]),
    ("kraky_anyio-trio fail", "kraky_anyio-trio", ["--overflow", "fail"]),
    ("websockets max_queue=16", "websockets", ["--max-queue", "16"]),
    ("websockets max_queue=None", "websockets", ["--max-queue", "none"]),
    ("kraky", "kraky", []),
]
SMOKE = ["kraky_anyio-asyncio block", "kraky_anyio-trio fail", "websockets max_queue=16"]


def account(res: dict[str, Any]) -> dict[str, Any]:
    srv = res.get("server") or {}
    stats = res.get("library_stats") or {}
    sent = srv.get("sent")
    delivered = res.get("delivered", 0)
    dropped = stats.get("messages_dropped_by_overflow", 0)
    unaccounted = None if sent is None else sent - delivered - dropped
    return {
        "produced": srv.get("produced"),
        "not_sent": srv.get("not_sent"),
        "sent": sent,
        "delivered_slow": res.get("delivered_slow"),
        "delivered_drain": res.get("delivered_drain"),
        "delivered": delivered,
        "dropped": dropped,
        "overflows": res.get("overflows", 0),
        "unaccounted": unaccounted,
        "rss_start_mib": res.get("rss_start_kb", 0) / 1024,
        "rss_peak_mib": res.get("rss_peak_kb", 0) / 1024,
        "rss_growth_mib": (res.get("rss_peak_kb", 0) - res.get("rss_start_kb", 0)) / 1024,
        "max_rss_mib": res.get("max_rss_kb", 0) / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="how long the server floods")
    p.add_argument("--rate", type=float, default=20000, help="msgs/s the server offers")
    p.add_argument("--sleep-ms", type=float, default=1.0, help="consumer time per message")
    p.add_argument("--configs", default=",".join(c[0] for c in CONFIGS))
    p.add_argument("--no-kraky", action="store_true")
    p.add_argument("--kraky-python")
    p.add_argument("--json")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    seconds = 0.5 if args.smoke else args.seconds
    wanted = SMOKE if args.smoke else [c for c in args.configs.split(",") if c]
    configs = [c for c in CONFIGS if c[0] in wanted]
    kraky_py = None
    skipped: dict[str, str] = {}
    if any(kind == "kraky" for _, kind, _ in configs):
        kraky_py, why = kraky_python(
            create=not (args.smoke or args.no_kraky), given=args.kraky_python
        )
        if kraky_py is None or args.no_kraky:
            configs = [c for c in configs if c[1] != "kraky"]
            skipped["kraky"] = why or "skipped (--no-kraky)"
            print(f"kraky skipped: {skipped['kraky']}", flush=True)

    results: dict[str, dict[str, Any]] = {}
    with Procs() as procs:
        server = Server(procs)
        print(
            f"slow consumer: server offers {args.rate:,.0f} msgs/s for {seconds:g} s,"
            f" consumer takes {args.sleep_ms:g} ms/msg",
            flush=True,
        )
        for label, kind, extra in configs:
            res = run_client(
                procs,
                server,
                kind,
                "slow",
                f"/slow?rate={args.rate:g}&seconds={seconds:g}",
                timeout=seconds + 90,
                python=kraky_py if kind == "kraky" else None,
                extra=[*extra, "--sleep-ms", str(args.sleep_ms), "--seconds", str(seconds)],
            )
            res["label"] = label
            if "error" not in res:
                res["accounting"] = account(res)
            results[label] = res
            if "error" in res:
                print(f"  {label:<28} ERROR {res['error'][:300]}", flush=True)
            else:
                a = res["accounting"]
                print(
                    f"  {label:<28} peak RSS {a['rss_peak_mib']:6.1f} MiB"
                    f" (+{a['rss_growth_mib']:.1f}), sent {a['sent']:,},"
                    f" delivered {a['delivered']:,}, dropped {a['dropped']:,},"
                    f" unaccounted {a['unaccounted']:,}",
                    flush=True,
                )
    rows = []
    for label, res in results.items():
        if "error" in res:
            rows.append([label, *([None] * 7), "error"])
            continue
        a = res["accounting"]
        rows.append(
            [
                label,
                a["rss_peak_mib"],
                a["rss_growth_mib"],
                a["sent"],
                a["not_sent"],
                a["delivered_slow"] + a["delivered_drain"],
                a["dropped"],
                a["unaccounted"],
                "yes" if a["unaccounted"] == 0 else "NO",
            ]
        )
    t = table(
        f"Slow consumer: {args.rate:,.0f} msgs/s offered for {seconds:g} s,"
        f" consumer {args.sleep_ms:g} ms/msg",
        [
            "client",
            "peak RSS MiB",
            "RSS growth",
            "sent",
            "not sent",
            "delivered",
            "dropped",
            "unaccounted",
            "all counted",
        ],
        rows,
        f"{int(args.rate * seconds):,} offered. not sent: skipped by the server, its socket full"
        " for > 10 ms. delivered: handed to the consumer's handler (slow phase + drain; the"
        " split and the overflow count are in the JSON). dropped:"
        " stats.messages_dropped_by_overflow. unaccounted = sent - delivered - dropped.",
    )
    print()
    print(render_text(t))
    write_json(
        args.json,
        {
            "name": "slow_consumer",
            "params": {
                "seconds": seconds,
                "rate": args.rate,
                "sleep_ms": args.sleep_ms,
                "configs": [c[0] for c in configs],
                "smoke": args.smoke,
            },
            "skipped": skipped,
            "runs": results,
            "tables": [t],
        },
    )
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
