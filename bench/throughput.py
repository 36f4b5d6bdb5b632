"""Throughput: messages/second and CPU µs/message of each client, side by side.

    python bench/throughput.py [--n 40000] [--repeats 7] [--no-kraky] [--no-instructions]
                               [--json PATH] [--smoke]

One server process (bench/_server.py) pushes N recorded-shaped Kraken messages
(the fixture's book-10 updates with a trade message after every four; 85 to
609 bytes, 121 on average) after each client's subscribe, as fast as the
client reads (pre-framed, written in ~64 KiB chunks: about 0.1 µs of server
CPU per message, reported with each run). Each client runs in its own
process, one at a time, in round-robin order over ``--repeats`` rounds:

* ``null-asyncio``, ``null-trio``: read the socket and discard the bytes (no
  frame parsing, no JSON): the physical ceiling of this machine and server;
* ``raw-asyncio``, ``raw-trio``: issue 16's raw transport, websockets' sans-I/O
  protocol over anyio (``connect_websocket(..., fast_path=False)``) +
  ``json.loads`` per message, no library above the transport;
* ``rawfast-asyncio``, ``rawfast-trio``: the same with our frame fast path
  (``fast_path=True``, the library's default): the ceiling for anything built
  on kraky_anyio's transport;
* ``floor-asyncio``, ``floor-trio``: our fast path + kraky_anyio's decoder
  (``kraky_anyio.v1.codec.decode``, msgspec) and nothing else: the least any
  client that frames and decodes every message can do here. The honest
  comparison for "within 1.5x of the null reader", which parses nothing;
* ``kraky_anyio-trio``, ``kraky_anyio-asyncio``: ``open_kraken`` + ``async for msg
  in conn.messages()``;
* ``kraky``: ``kraky.KrakyWsClient`` from PyPI with a no-op handler, in its own
  venv ``bench/.venv-kraky`` (created on first use; kraky pins websockets<12);
* ``websockets``: ``websockets.asyncio.client.connect`` + ``json.loads``;
* ``kraky_anyio-BACKEND+record-gz`` / ``+record-plain`` (and, when named,
  ``+record-gz-drop``, ``+record-zst``): kraky_anyio recording the whole
  flood with ``conn.record()``; timed to the recording's close, the file read
  back after each timed run, and a "Recording" table of ratios against the
  same client without recording (bench/_recording.py).

Wall time runs from the server's first write of the flood (a system-wide
``time.time_ns`` stamp carried in the end marker) to the client's handler
seeing the end marker; CPU time (``time.process_time`` of the client process)
from the start marker, sent 50 ms before the flood, to the end marker. So
every client is timed on the same work whatever its batching. Ratios are
paired: in each round, client / the raw client of the same backend in that
round; the table gives the median of those ratios.

Instruction counts (the noise-free figure, unless ``--no-instructions`` or
valgrind is missing): every client once more under ``valgrind
--tool=callgrind`` at two message counts (2,000 and 10,000); instructions per
message = (I(10,000) - I(2,000)) / 8,000, so start-up and imports cancel out.
Other processes on the machine change how long that takes, not the count.

``KIND+WHAT_IF`` kinds (only when named in ``--clients``) are experiments on
kraky_anyio monkeypatched in the client process (bench/_client.py
``--what-if``), not the shipped library. ``--smoke`` runs a few thousand
messages once, without kraky, what-ifs or valgrind (the recording rows stay,
and an incomplete recording fails it), and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
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
from _recording import (
    RECORD_CLIENTS,
    is_record,
    recording_failures,
    recording_summary,
    recording_table,
)

CLIENTS = [
    "null-asyncio",
    "null-trio",
    "raw-asyncio",
    "raw-trio",
    "rawfast-asyncio",
    "rawfast-trio",
    "floor-asyncio",
    "floor-trio",
    "kraky_anyio-trio",
    "kraky_anyio-asyncio",
    "kraky",
    "websockets",
    *RECORD_CLIENTS,
]
#: What-if rows (bench/_client.py --what-if), not the shipped library; pass
#: them in --clients to size a fix, e.g. kraky_anyio-asyncio+cached-decoder.
WHAT_IF_EXAMPLES = ["kraky_anyio-asyncio+cached-decoder", "kraky_anyio-trio+cached-decoder"]
NULL_OF = {"asyncio": "null-asyncio", "trio": "null-trio"}
#: Message counts of the two callgrind runs per client: instructions per
#: message = (I(n2) - I(n1)) / (n2 - n1), so start-up and imports cancel out.
INSTR_NS = (2000, 10000)
GOAL = 0.85


def paired_all(
    runs: dict[str, list[dict]], a: str, b: str, key: str, invert: bool = False
) -> list[float]:
    """Per round, runs[a][key] / runs[b][key] (b / a with ``invert``)."""
    by_round = {r["round"]: r for r in runs.get(b, []) if "error" not in r}
    ratios = []
    for r in runs.get(a, []):
        other = by_round.get(r["round"])
        if "error" in r or other is None or not r[key] or not other[key]:
            continue
        ratios.append(other[key] / r[key] if invert else r[key] / other[key])
    return ratios


def paired(runs: dict[str, list[dict]], a: str, b: str, key: str, invert: bool = False) -> float:
    """Median over rounds of runs[a][key] / runs[b][key] (b / a with ``invert``)."""
    return median(paired_all(runs, a, b, key, invert))


def spread(xs: list[float]) -> str:
    """``median (min-max)`` of per-round figures, as one table cell."""
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f"{xs[0]:.2f}"
    return f"{median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def summarise(runs: dict[str, list[dict]], n: int) -> tuple[dict[str, Any], list[dict]]:
    summary: dict[str, Any] = {}
    rows = []
    ratio_rows = []
    for kind, rs in runs.items():
        ok = [r for r in rs if "error" not in r and r.get("n") == n]
        backend = backend_of(kind)
        raw = RAW_OF[backend]
        null = NULL_OF[backend]
        rate_r = paired_all(runs, kind, raw, "msgs_per_s")
        cpu_r = paired_all(runs, kind, raw, "cpu_us_per_msg", invert=True)
        s = {
            "backend": backend,
            "runs": len(rs),
            "ok": len(ok),
            "errors": [r["error"] for r in rs if "error" in r],
            "msgs_per_s_median": median([r["msgs_per_s"] for r in ok]),
            "msgs_per_s_min": min((r["msgs_per_s"] for r in ok), default=float("nan")),
            "msgs_per_s_best": max((r["msgs_per_s"] for r in ok), default=float("nan")),
            "cpu_us_median": median([r["cpu_us_per_msg"] for r in ok]),
            "cpu_us_best": min((r["cpu_us_per_msg"] for r in ok), default=float("nan")),
            "cpu_us_worst": max((r["cpu_us_per_msg"] for r in ok), default=float("nan")),
            "rate_vs_raw": median(rate_r),
            "rate_vs_raw_all": rate_r,
            "cpu_vs_raw": median(cpu_r),
            "cpu_vs_raw_all": cpu_r,
            "cpu_over_null": paired(runs, kind, null, "cpu_us_per_msg"),
            "server_cpu_us": median(
                [r["server"]["cpu_s"] / n * 1e6 for r in ok if r.get("server", {}).get("cpu_s")]
            ),
        }
        summary[kind] = s
        rows.append(
            [
                kind,
                s["msgs_per_s_median"],
                s["cpu_us_median"],
                f"{s['cpu_us_best']:.2f}-{s['cpu_us_worst']:.2f}" if ok else "n/a",
                f"{s['ok']}/{s['runs']}",
            ]
        )
        ratio_rows.append([kind, spread(rate_r), spread(cpu_r), s["cpu_over_null"]])
    server = median([s["server_cpu_us"] for s in summary.values() if s["ok"]])
    t = table(
        f"Throughput: {n:,} messages per run, median of the rounds",
        ["client", "msgs/s", "CPU µs/msg", "CPU range", "ok"],
        rows,
        "CPU range: the lowest and highest CPU µs/msg over the rounds. The server spent"
        f" {server:.2f} µs of CPU per message (median), so the client is what is measured.",
    )
    ratios = table(
        "Throughput ratios, paired per round",
        ["client", "x raw msgs/s", "x raw CPU", "CPU / null"],
        ratio_rows,
        "x raw: per round, client / raw client of the same backend (for CPU, raw µs /"
        " client µs), median (min-max) over rounds; 1.00 = as fast as raw, higher is"
        " better. CPU / null: client CPU µs / null reader's, same backend and round (lower"
        " is better).",
    )
    tables = [t, ratios]
    if "kraky" in summary and summary["kraky"]["ok"]:
        krows = []
        for kind in ("kraky_anyio-asyncio", "kraky_anyio-trio", "websockets"):
            if kind in runs:
                krows.append(
                    [
                        kind,
                        spread(paired_all(runs, kind, "kraky", "msgs_per_s")),
                        spread(paired_all(runs, kind, "kraky", "cpu_us_per_msg", invert=True)),
                    ]
                )
        tables.append(
            table(
                "Against kraky (KrakyWsClient), paired per round",
                ["client", "x kraky msgs/s", "x kraky CPU"],
                krows,
                "> 1.00: faster (msgs/s) or cheaper (CPU) than kraky; median (min-max) over"
                " rounds.",
            )
        )
    return summary, tables


# -- instruction counts (callgrind) ---------------------------------------------


def callgrind_total(path: Path) -> int | None:
    """The ``totals:`` (or ``summary:``) line of a callgrind output file."""
    try:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def count_instructions(
    procs: Procs,
    server: Server,
    clients: list[str],
    ns: tuple[int, int],
    kraky_py: str | None,
    tmp: Path,
) -> dict[str, dict[str, Any]]:
    """Each client under callgrind at both message counts; instructions/msg."""
    n1, n2 = ns
    out: dict[str, dict[str, Any]] = {}
    for kind in clients:
        totals: dict[int, int | None] = {}
        errors = []
        for n in ns:
            path = tmp / f"callgrind.{kind}.{n}"
            res = run_client(
                procs,
                server,
                kind,
                "flood",
                f"/flood?n={n}",
                timeout=600,
                python=kraky_py if kind == "kraky" else None,
                wrap=["valgrind", "--tool=callgrind", f"--callgrind-out-file={path}"],
            )
            if "error" in res:
                errors.append(res["error"][-300:])
            totals[n] = callgrind_total(path)
        i1, i2 = totals[n1], totals[n2]
        per = (i2 - i1) / (n2 - n1) if i1 and i2 and not errors else float("nan")
        out[kind] = {"totals": {str(k): v for k, v in totals.items()}, "per_msg": per}
        if errors:
            out[kind]["errors"] = errors
        shown = f"{per:>9,.0f} instructions/msg" if per == per else f"ERROR {errors}"
        print(f"  callgrind {kind:<22} {shown}", flush=True)
    return out


def instructions_table(instr: dict[str, dict[str, Any]], ns: tuple[int, int]) -> dict:
    rows = []
    for kind, d in instr.items():
        backend = backend_of(kind)
        per = d["per_msg"]
        raw = instr.get(RAW_OF[backend], {}).get("per_msg", float("nan"))
        null = instr.get(NULL_OF[backend], {}).get("per_msg", float("nan"))
        kraky = instr.get("kraky", {}).get("per_msg", float("nan"))
        rows.append([kind, round(per) if per == per else per, per / raw, per / null, per / kraky])
    return table(
        f"Instructions per message (callgrind at {ns[0]:,} and {ns[1]:,} messages)",
        ["client", "instr/msg", "/ raw", "/ null", "/ kraky"],
        rows,
        "Counted by valgrind --tool=callgrind in the client process: not moved by the"
        " machine's load. / raw, / null, / kraky: this client's count over theirs (same"
        " backend for raw and null); lower is better.",
    )


# -- goals ---------------------------------------------------------------------


def goals(
    summary: dict[str, Any], runs: dict[str, list[dict]], instr: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Each goal: {"met": bool, "ratio": the measured ratio, "target": ...}.
    The first ones are the original goals (issue 6); "issue 16" ones are the
    fast-path targets (CPU <= 0.55x raw, >= 2.5x kraky, <= 1.5x null)."""
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
    for backend in ("asyncio", "trio"):
        kind = f"kraky_anyio-{backend}"
        s = summary.get(kind)
        if not s:
            continue
        cpu = 1 / s["cpu_vs_raw"] if s["cpu_vs_raw"] else float("nan")
        out[f"issue 16: {kind} CPU/msg <= 0.55x raw"] = {
            "met": cpu <= 0.55,
            "ratio": cpu,
            "target": 0.55,
        }
        if kind in instr and RAW_OF[backend] in instr:
            r = instr[kind]["per_msg"] / instr[RAW_OF[backend]]["per_msg"]
            out[f"issue 16: {kind} instructions/msg <= 0.55x raw"] = {
                "met": r <= 0.55,
                "ratio": r,
                "target": 0.55,
            }
        if k and k["ok"]:
            r = paired(runs, kind, "kraky", "msgs_per_s")
            out[f"issue 16: {kind} msgs/s >= 2.5x kraky"] = {
                "met": r >= 2.5,
                "ratio": r,
                "target": 2.5,
            }
        r = s["cpu_over_null"]
        out[f"issue 16: {kind} CPU/msg <= 1.5x null reader"] = {
            "met": r <= 1.5,
            "ratio": r,
            "target": 1.5,
        }
        # The null reader parses nothing; the honest floor for a client that
        # frames and decodes every message is floor-* (fast path + msgspec).
        floor = f"floor-{backend}"
        if floor in summary:
            r = paired(runs, kind, floor, "cpu_us_per_msg")
            out[f"issue 16 (honest form): {kind} CPU/msg <= 1.5x {floor}"] = {
                "met": r <= 1.5,
                "ratio": r,
                "target": 1.5,
            }
        if kind in instr and floor in instr:
            r = instr[kind]["per_msg"] / instr[floor]["per_msg"]
            out[f"issue 16 (honest form): {kind} instructions/msg <= 1.5x {floor}"] = {
                "met": r <= 1.5,
                "ratio": r,
                "target": 1.5,
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
    p.add_argument(
        "--no-instructions", action="store_true", help="skip the callgrind instruction counts"
    )
    p.add_argument(
        "--instr-n",
        default=",".join(map(str, INSTR_NS)),
        help="the two message counts of the callgrind runs",
    )
    p.add_argument("--json", help="write the results here")
    p.add_argument("--smoke", action="store_true", help="tiny and fast, for CI")
    args = p.parse_args(argv)
    n, repeats = (3000, 1) if args.smoke else (args.n, max(1, args.repeats))
    clients = [c for c in args.clients.split(",") if c]
    if args.smoke:
        clients = [c for c in clients if "+" not in c or is_record(c)]
    unknown = [c for c in clients if c.split("+", 1)[0] not in BACKEND]
    if unknown:
        p.error(f"unknown clients {unknown}; known: {list(BACKEND)} (+what-if)")
    for c in list(clients):
        for need in (RAW_OF[backend_of(c)], NULL_OF[backend_of(c)]):
            if need not in clients:
                clients.insert(0, need)  # every ratio needs its raw and null
        if is_record(c) and c.split("+", 1)[0] not in clients:
            clients.append(c.split("+", 1)[0])  # and a recording's, the same without
    n1, n2 = (int(x) for x in args.instr_n.split(","))
    skipped: dict[str, str] = {}
    with_instr = not (args.smoke or args.no_instructions)
    if with_instr and shutil.which("valgrind") is None:
        with_instr = False
        skipped["instructions"] = "valgrind not found"
    elif not with_instr:
        skipped["instructions"] = "skipped (--no-instructions or --smoke)"
    kraky_py = None
    if "kraky" in clients:
        kraky_py, why = kraky_python(
            create=not (args.smoke or args.no_kraky), given=args.kraky_python
        )
        if kraky_py is None or args.no_kraky or args.smoke:
            clients.remove("kraky")
            skipped["kraky"] = why or "skipped (--no-kraky or --smoke)"
            print(f"kraky skipped: {skipped['kraky']}", flush=True)

    runs: dict[str, list[dict]] = {c: [] for c in clients}
    instr: dict[str, dict[str, Any]] = {}
    timeout = 60 + n / 2000
    with Procs() as procs, tempfile.TemporaryDirectory() as tmp:
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
                    extra=("--check-recording",) if is_record(kind) else (),
                )
                res["round"] = r
                runs[kind].append(res)
                if "error" in res:
                    print(f"  round {r} {kind:<20} ERROR {res['error'][:300]}", flush=True)
                else:
                    print(
                        f"  round {r} {kind:<20} {res['msgs_per_s']:>10,.0f} msgs/s"
                        f" {res['cpu_us_per_msg']:>6.2f} CPU µs/msg"
                        f"  (server {res['server'].get('cpu_s', 0) / n * 1e6:.2f})",
                        flush=True,
                    )
        if with_instr:
            print(f"instructions: callgrind at {n1:,} and {n2:,} messages", flush=True)
            instr = count_instructions(procs, server, clients, (n1, n2), kraky_py, Path(tmp))
        else:
            print(f"instructions skipped: {skipped['instructions']}", flush=True)
        payload_info = server.info
    summary, tables = summarise(runs, n)
    if instr:
        tables.insert(2, instructions_table(instr, (n1, n2)))
    rec_summary = recording_summary(runs)
    if rec_summary:
        tables.append(recording_table(rec_summary, instr))
    verdict = goals(summary, runs, instr)
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
            "params": {
                "n": n,
                "repeats": repeats,
                "clients": clients,
                "smoke": args.smoke,
                "instr_n": [n1, n2] if with_instr else None,
            },
            "payloads": payload_info,
            "skipped": skipped,
            "runs": {k: [{**r, "server": r.get("server")} for r in v] for k, v in runs.items()},
            "summary": summary,
            "recording": rec_summary,
            "instructions": instr,
            "goals": verdict,
            "tables": tables,
        },
    )
    failed = [k for k, s in summary.items() if s["ok"] == 0]
    failed += [k for k, d in instr.items() if d["per_msg"] != d["per_msg"]]
    failed += recording_failures(rec_summary)
    if failed:
        print(f"no successful run for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
