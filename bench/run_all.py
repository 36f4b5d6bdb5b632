"""Run every benchmark, print one report, save it and plot it.

    python bench/run_all.py [--no-kraky] [--kraky-python PY] [--no-peers] [--quick] [--smoke]

Runs, one after the other (each is its own process, so one never slows
another): throughput.py, latency.py, slow_consumer.py, fanout.py,
pipeline.py, peers.py, replay.py and book.py. Writes ``bench/results/latest.json``
(machine, parameters, every run, every table), ``bench/results/latest.md``
(the tables as markdown, for docs/benchmarks.md) and, with matplotlib, one
``docs/img/bench-<figure>.png`` per figure.

``--smoke`` (what CI calls, through bench/smoke.sh): every script in its
smoke mode, no kraky or peers venv, no valgrind, no network, results to
``bench/results/smoke.json`` and ``bench/results/smoke-*.png``; asserts only
that every script ran.
``--quick``: the real thing with fewer rounds and shorter runs.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH,
    PYTHON,
    ROOT,
    Procs,
    kraky_python,
    load_avg,
    machine,
    render_markdown,
    render_text,
    table,
    write_json,
)

RESULTS = BENCH / "results"
IMG = ROOT / "docs" / "img"
SCRIPTS = ["throughput", "latency", "slow_consumer", "fanout", "pipeline", "peers", "replay"]
NO_KRAKY_ARGS = {"fanout", "pipeline", "peers", "replay"}  # scripts without a kraky client
QUICK = {
    "throughput": ["--n", "30000", "--repeats", "3", "--instr-n", "2000,6000"],
    "peers": ["--n", "10000", "--repeats", "2", "--instr-n", "500,2000"],
    "latency": ["--seconds", "1", "--repeats", "2"],
    "slow_consumer": ["--seconds", "5"],
    "fanout": ["--n", "10000", "--repeats", "2"],
    "pipeline": ["--repeat", "20"],
    "replay": ["--passes", "3", "--repeats", "2"],
}
TIMEOUT = {
    "throughput": 1800,
    "latency": 1800,
    "slow_consumer": 1200,
    "fanout": 1200,
    "pipeline": 600,
    "peers": 3600,
    "replay": 1200,
    "book": 600,
}


def run_script(procs: Procs, argv: list[str], timeout: float) -> tuple[int, str]:
    """Run a script, echoing its output as it comes; (exit code, output)."""
    p = procs.start(argv, stderr=subprocess.STDOUT)
    lines: list[str] = []

    def pump() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            lines.append(line)
            sys.stdout.write("    " + line)
            sys.stdout.flush()

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        code = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        code = p.wait()
        lines.append(f"(killed after {timeout} s)\n")
    t.join(5)
    if p in procs.procs:
        procs.procs.remove(p)
    return code, "".join(lines)


BOOK_ROW = re.compile(r"^(\([ab]\) .+?)\s{2,}([\d,]+)\s+([\d.]+)\s+([\d.]+)\s*$")


def parse_book(output: str) -> dict[str, Any]:
    """book.py prints a small table; keep it as numbers and as a table."""
    rows = []
    for line in output.splitlines():
        m = BOOK_ROW.match(line.strip())
        if m:
            rows.append(
                [
                    m.group(1).strip(),
                    float(m.group(2).replace(",", "")),
                    float(m.group(3)),
                    float(m.group(4)),
                ]
            )
    head = next((ln for ln in output.splitlines() if "updates" in ln and "best of" in ln), "")
    t = table(
        f"Order book (bench/book.py): {head.strip()}",
        ["case", "updates/s", "µs/update", "x json.loads time"],
        rows,
        "x json.loads time: the case's time / json.loads alone (in-process, interleaved).",
    )
    return {"name": "book", "output": output, "rows": rows, "tables": [t] if rows else []}


def figures_for(script: str, title: str, last: bool) -> list[str]:
    """The figures (bench/plot.py stems) shown beside a table."""
    if script == "throughput":
        if title.startswith("Throughput:"):
            return ["throughput"]
        if title.startswith("Throughput ratios"):
            return ["cpu"]
        return ["instructions"] if title.startswith("Instructions") else []
    if script == "latency":
        return ["latency"] if last else []
    if script == "slow_consumer":
        return ["slow-rss", "slow-fate"]
    if script == "peers":
        for prefix, stem in (
            ("v2 ticker", "peers-ticker"),
            ("v2 book handler", "peers-handler"),
            ("v2 book", "peers-book"),
        ):
            if title.startswith(prefix):
                return [stem]
        return []
    return [script] if script in ("fanout", "pipeline", "book") else []


def rerender(path: Path) -> dict[str, Any]:
    """A results file with its throughput tables rebuilt by today's code."""
    from _recording import recording_summary, recording_table
    from throughput import instructions_table, summarise

    data: dict[str, Any] = json.loads(path.read_text())
    tp = data["results"].get("throughput")
    if tp and tp.get("runs"):
        _, tables = summarise(tp["runs"], tp["params"]["n"])
        if tp.get("instructions"):
            tables.insert(2, instructions_table(tp["instructions"], tuple(tp["params"]["instr_n"])))
        recorded = recording_summary(tp["runs"])
        if recorded:
            tables.append(recording_table(recorded, tp.get("instructions") or {}))
        tp["tables"] = tables
    return data


def mode(data: dict[str, Any]) -> str:
    return "smoke" if data["smoke"] else ("quick" if data.get("quick") else "full")


def report_markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    out = [
        f"Run of {data['started']} ({data['duration_s']:.0f} s), {mode(data)} mode.",
        "",
        f"* machine: {m['nproc']} CPUs ({m['cpu']}), {m['os']}",
        f"* Python {m['python']} ({m['implementation']}); "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"* load average at start {m['loadavg_at_start']}, at end {data['loadavg_at_end']}",
        "",
    ]
    for name in [*SCRIPTS, "book"]:
        res = data["results"].get(name) or {}
        tables = res.get("tables", [])
        for i, t in enumerate(tables):
            out += [f"### {t['title']}", ""]
            for stem in figures_for(name, t["title"], last=i == len(tables) - 1):
                if (IMG / f"bench-{stem}.png").exists() or not data["smoke"]:
                    out += [f"![{stem}](img/bench-{stem}.png)", ""]
            body = render_markdown(t).split("\n", 2)[2]  # without its bold title
            out += [body, ""]
        if res.get("skipped"):
            out += [f"Skipped in {name}: {res['skipped']}", ""]
    goals = (data["results"].get("throughput") or {}).get("goals") or {}
    if goals:
        out += ["**Goals**", ""]
        out += [
            f"* {k}: {'yes' if v['met'] else '**no**'} (measured {v['ratio']:.2f}x)"
            for k, v in goals.items()
        ]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="every script, tiny, for CI")
    p.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs")
    p.add_argument("--no-kraky", action="store_true", help="skip the kraky comparison")
    p.add_argument("--no-peers", action="store_true", help="skip python-kraken-sdk and ccxt")
    p.add_argument("--kraky-python", help="a Python with kraky installed")
    p.add_argument("--only", default=",".join([*SCRIPTS, "book"]), help="comma-separated")
    p.add_argument("--out", help="results JSON (default bench/results/latest.json)")
    p.add_argument(
        "--rerender",
        metavar="JSON",
        help="run nothing: rebuild the markdown and the figures from this results file",
    )
    p.add_argument("--img", help=f"figures' directory (default {IMG.relative_to(ROOT)})")
    args = p.parse_args(argv)
    if args.rerender:
        data = rerender(Path(args.rerender))
        Path(args.rerender).with_suffix(".md").write_text(report_markdown(data) + "\n")
        with Procs() as procs:
            code, out, err = procs.run(
                [PYTHON, str(BENCH / "plot.py"), args.rerender, "--outdir", args.img or str(IMG)],
                300,
            )
        print((out + err).strip())
        print(f"wrote {Path(args.rerender).with_suffix('.md')}")
        return code
    only = [s for s in args.only.split(",") if s]
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t_start = time.monotonic()
    out_json = (
        Path(args.out) if args.out else RESULTS / ("smoke.json" if args.smoke else "latest.json")
    )
    img = Path(args.img) if args.img else (RESULTS if args.smoke else IMG)
    prefix = "smoke-" if args.smoke else "bench-"

    common: list[str] = []
    kraky_note = ""
    if args.smoke:
        common.append("--smoke")
    if args.smoke or args.no_kraky:
        common.append("--no-kraky")
    else:
        kpy, why = kraky_python(create=True, given=args.kraky_python)
        if kpy:
            common += ["--kraky-python", kpy]
        else:
            common.append("--no-kraky")
            kraky_note = why
            print(f"kraky comparison skipped: {why}", flush=True)

    info = machine()
    results: dict[str, Any] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, Procs() as procs:
        for name in SCRIPTS:
            if name not in only:
                continue
            path = Path(tmp) / f"{name}.json"
            argv_ = [PYTHON, str(BENCH / f"{name}.py"), "--json", str(path), *common]
            if args.quick and not args.smoke:
                argv_ += QUICK[name]
            if name in NO_KRAKY_ARGS:
                argv_ = [a for a in argv_ if a != "--no-kraky"]
                if "--kraky-python" in argv_:
                    i = argv_.index("--kraky-python")
                    del argv_[i : i + 2]
            if name == "peers" and args.no_peers:
                argv_.append("--no-peers")
            print(f"== {name}", flush=True)
            t0 = time.monotonic()
            code, _ = run_script(procs, argv_, TIMEOUT[name])
            print(f"   ({name}: {time.monotonic() - t0:.1f} s, exit {code})", flush=True)
            if path.exists():
                results[name] = json.loads(path.read_text())
            if code != 0 or not path.exists():
                failures.append(name)
        if "book" in only:
            print("== book", flush=True)
            argv_ = [PYTHON, str(BENCH / "book.py"), *(["--smoke"] if args.smoke else [])]
            code, output = run_script(procs, argv_, TIMEOUT["book"])
            results["book"] = parse_book(output)
            if code != 0:
                failures.append("book")

    data = {
        "started": started,
        "duration_s": time.monotonic() - t_start,
        "smoke": args.smoke,
        "quick": args.quick,
        "machine": info,
        "loadavg_at_end": load_avg(),
        "kraky_note": kraky_note,
        "failures": failures,
        "results": results,
    }
    write_json(str(out_json), data)
    md = report_markdown(data)
    out_json.with_suffix(".md").write_text(md + "\n")

    print("\n" + "=" * 78)
    print(f"REPORT ({mode(data)}), {started}")
    print(
        f"{info['nproc']} CPUs ({info['cpu']}), {info['os']}, Python {info['python']};"
        f" load {info['loadavg_at_start']} -> {data['loadavg_at_end']}"
    )
    for name in [*SCRIPTS, "book"]:
        for t in (results.get(name) or {}).get("tables", []):
            print()
            print(render_text(t))
    goals = (results.get("throughput") or {}).get("goals") or {}
    if goals:
        print()
        for k, v in goals.items():
            print(f"goal: {k}: {'yes' if v['met'] else 'NO'} (measured {v['ratio']:.2f}x)")
    print(f"\nwrote {out_json} and {out_json.with_suffix('.md')}")

    with Procs() as procs:
        code, out, err = procs.run(
            [
                PYTHON,
                str(BENCH / "plot.py"),
                str(out_json),
                "--outdir",
                str(img),
                "--prefix",
                prefix,
            ],
            300,
        )
    print((out + err).strip() or f"plot.py exit {code}")
    if code != 0:
        failures.append("plot")
    if failures:
        print(f"FAILED: {', '.join(failures)}", file=sys.stderr)
        return 1
    print(f"all {len(only)} benchmarks ran ({data['duration_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
