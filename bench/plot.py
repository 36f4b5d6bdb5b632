"""Plot a run_all.py result file: one small PNG per figure (matplotlib).

    python bench/plot.py [bench/results/latest.json] [--outdir docs/img]

Writes ``bench-<figure>.png`` for each figure the results hold: throughput
(msgs/s), CPU per message, instructions per message, latency, slow-consumer
RSS and message fate, fan-out, the receive path, the order book, and the v2
peers (ticker, book, book handler). docs/benchmarks.md shows each beside its
table. Without matplotlib it says so and exits 0 (CI installs only the test
extras).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

COLORS = {
    "null-asyncio": "#c7c7c7",
    "null-trio": "#a0a0a0",
    "python-kraken-sdk": "#9467bd",
    "ccxt": "#8c564b",
    "kraky_anyio_v2": "#1f77b4",
    "raw-asyncio": "#9e9e9e",
    "raw-trio": "#616161",
    "rawfast-asyncio": "#bdbdbd",
    "rawfast-trio": "#757575",
    "floor-asyncio": "#dddddd",
    "floor-trio": "#8d8d8d",
    "kraky_anyio-asyncio": "#1f77b4",
    "kraky_anyio-trio": "#17becf",
    "websockets": "#ff7f0e",
    "kraky": "#d62728",
}


def color(label: str) -> str:
    for k in sorted(COLORS, key=len, reverse=True):
        if label.startswith(k):
            return COLORS[k]
    return "#8c564b"


def short(kind: str) -> str:
    return kind.replace("max_queue=", "q=").replace("+cached-decoder", " (what-if)")


def panel_latency(ax: Any, res: dict[str, Any]) -> None:
    summary = res.get("summary", {})
    rates = list(summary)
    kinds: list[str] = []
    for r in rates:
        kinds += [k for k in summary[r] if k not in kinds]
    width = 0.8 / max(1, len(kinds))
    for i, k in enumerate(kinds):
        xs = [j + i * width for j in range(len(rates))]
        p50 = [summary[r].get(k, {}).get("p50_us", float("nan")) for r in rates]
        p99 = [summary[r].get(k, {}).get("p99_us", float("nan")) for r in rates]
        ax.bar(xs, p99, width, color=color(k), alpha=0.35)
        ax.bar(xs, p50, width, color=color(k), label=short(k))
    ax.set_xticks(
        [j + 0.4 - width / 2 for j in range(len(rates))], [f"{int(r):,} msgs/s" for r in rates]
    )
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 8)  # room for the legend above the bars
    ax.set_ylabel("µs (solid p50, pale p99)")
    ax.legend(fontsize=6, ncol=2, loc="upper left")


def panel_rss(ax: Any, res: dict[str, Any]) -> None:
    for label, run in res.get("runs", {}).items():
        tl = run.get("rss_timeline")
        if not tl:
            continue
        t0 = run.get("first_data_at_s", 0)
        ax.plot(
            [t - t0 for t, _ in tl],
            [kb / 1024 for _, kb in tl],
            label=short(label),
            color=color(label),
            linestyle="--" if "fail" in label or "None" in label else "-",
        )
    ax.set_xlabel("s since the first data message")
    ax.set_ylabel("RSS MiB")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)


def panel_fate(ax: Any, res: dict[str, Any]) -> None:
    runs = [(k, r["accounting"]) for k, r in res.get("runs", {}).items() if "accounting" in r]
    parts = [
        ("delivered", "#2ca02c"),
        ("dropped", "#ff7f0e"),
        ("unaccounted", "#d62728"),
        ("not_sent", "#bdbdbd"),
    ]
    bottom = [0.0] * len(runs)
    for key, c in parts:
        vals = [float(a.get(key) or 0) for _, a in runs]
        label = {"not_sent": "not sent (socket full)", "dropped": "dropped (counted)"}.get(key, key)
        ax.bar(range(len(runs)), vals, bottom=bottom, color=c, label=label)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(
        range(len(runs)), [short(k) for k, _ in runs], rotation=30, ha="right", fontsize=8
    )
    ax.set_ylabel("messages offered")
    ax.legend(fontsize=7)


def panel_fanout(ax: Any, res: dict[str, Any]) -> None:
    summary = res.get("summary", {})
    by_backend: dict[str, list[tuple[int, float]]] = {}
    for s in summary.values():
        if s["ok"]:
            by_backend.setdefault(s["backend"], []).append((s["consumers"], s["deliveries_per_s"]))
    for backend, pts in by_backend.items():
        pts.sort()
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker="o",
            label=backend,
            color=color(f"kraky_anyio-{backend}"),
        )
    ax.set_xscale("log")
    ax.set_xlabel("consumers on one connection")
    ax.set_ylabel("deliveries/s (all consumers)")
    ax.legend(fontsize=7)


def hbars(ax: Any, names: list[str], vals: list[float], notes: list[str], xlabel: str) -> None:
    """Horizontal bars, one per client, each annotated (e.g. with its ratio)."""
    ys = list(range(len(names)))[::-1]
    bars = ax.barh(ys, vals, color=[color(k) for k in names])
    for b, note in zip(bars, notes, strict=True):
        if note:
            ax.annotate(
                f" {note}",
                (b.get_width(), b.get_y() + b.get_height() / 2),
                va="center",
                fontsize=8,
            )
    ax.set_yticks(ys, [short(k) for k in names], fontsize=8)
    ax.set_xlabel(xlabel)
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi * 1.25)  # room for the notes
    ax.grid(axis="x", alpha=0.3)


def ratio(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}x" if x == x else ""


def fig_throughput(res: dict[str, Any], key: str) -> Any:
    """msgs/s (null reader left out: it is off the scale, named in the title)
    or CPU µs/msg, each bar annotated with its ratio to raw."""
    import matplotlib.pyplot as plt

    summary = res.get("summary", {})
    kinds = [k for k in summary if summary[k]["ok"]]
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    n = res["params"]["n"]
    if key == "msgs":
        shown = [k for k in kinds if not k.startswith("null-")]
        nulls = ", ".join(
            f"{k} {summary[k]['msgs_per_s_median']:,.0f}" for k in kinds if k.startswith("null-")
        )
        hbars(
            ax,
            shown,
            [summary[k]["msgs_per_s_median"] for k in shown],
            [ratio(summary[k]["rate_vs_raw"]) + " raw" for k in shown],
            "msgs/s, median of rounds (x raw, same backend and round)",
        )
        ax.set_title(
            f"Throughput, {n:,} msgs per run" + (f"\n(off scale: {nulls})" if nulls else ""),
            fontsize=10,
        )
    else:
        hbars(
            ax,
            kinds,
            [summary[k]["cpu_us_median"] for k in kinds],
            [f"{summary[k]['cpu_us_median']:.2f} µs" for k in kinds],
            "client CPU µs per message, median of rounds (lower is better)",
        )
        ax.set_title(f"Client CPU per message, {n:,} msgs per run", fontsize=10)
    return fig


def be(kind: str) -> str:
    return "trio" if kind.endswith("-trio") else "asyncio"


def fig_instructions(res: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    instr = {k: v for k, v in res.get("instructions", {}).items() if v["per_msg"] == v["per_msg"]}
    if not instr:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    kinds = list(instr)
    raw = {b: instr.get(f"raw-{b}", {}).get("per_msg", float("nan")) for b in ("asyncio", "trio")}
    hbars(
        ax,
        kinds,
        [instr[k]["per_msg"] for k in kinds],
        [
            f"{instr[k]['per_msg']:,.0f} ({ratio(instr[k]['per_msg'] / raw[be(k)])} raw)"
            for k in kinds
        ],
        "instructions per message (callgrind; lower is better)",
    )
    ns = res["params"].get("instr_n") or ["?", "?"]
    ax.set_title(
        f"Instructions per message (callgrind at {ns[0]:,} and {ns[1]:,} msgs)", fontsize=10
    )
    return fig


def fig_peers(res: dict[str, Any], channel: str) -> Any:
    import matplotlib.pyplot as plt

    summary = (res.get("summary") or {}).get(channel) or {}
    kinds = [k for k, s in summary.items() if s["ok"]]
    if not kinds:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.2))

    def note(k: str) -> str:
        s = summary[k]
        ins = s.get("instr_per_msg", float("nan"))
        cpu = median(s["cpu_over_raw"])
        return f"{s['cpu_us']:.1f} µs ({ratio(cpu)} raw)" + (
            f", {ins:,.0f} instr" if ins == ins else ""
        )

    hbars(
        ax,
        kinds,
        [summary[k]["cpu_us"] for k in kinds],
        [note(k) for k in kinds],
        "client CPU µs per message, median of rounds (lower is better)",
    )
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi * 1.2)  # the notes are long
    ax.set_title(f"v2 {channel} frames: CPU per message", fontsize=10)
    return fig


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def fig_rows(rows: list[list[Any]], xlabel: str, title: str, height: float = 3.0) -> Any:
    """Horizontal bars from table rows [name, value, ratio]."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, height))
    names = [str(r[0]) for r in rows]
    ys = list(range(len(rows)))[::-1]
    bars = ax.barh(ys, [float(r[1]) for r in rows], color="#1f77b4")
    for b, r in zip(bars, rows, strict=True):
        ax.annotate(
            f" {float(r[1]):.2f} ({float(r[2]):.2f}x)",
            (b.get_width(), b.get_y() + b.get_height() / 2),
            va="center",
            fontsize=8,
        )
    ax.set_yticks(ys, names, fontsize=8)
    ax.set_xlabel(xlabel)
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi * 1.3)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title, fontsize=10)
    return fig


def single(panel: Any, *args: Any, title: str, size: tuple[float, float] = (7.5, 3.6)) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    panel(ax, *args)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


def figures(data: dict[str, Any]) -> dict[str, Any]:
    """Every figure the results hold, by file stem."""
    res = data.get("results", {})
    out: dict[str, Any] = {}
    tp = res.get("throughput")
    if tp and tp.get("summary"):
        out["throughput"] = fig_throughput(tp, "msgs")
        out["cpu"] = fig_throughput(tp, "cpu")
        out["instructions"] = fig_instructions(tp)
    lat = res.get("latency")
    if lat and lat.get("summary"):
        out["latency"] = single(panel_latency, lat, title="Latency, server stamp to handler")
    slow = res.get("slow_consumer")
    if slow and slow.get("runs"):
        prm = slow["params"]
        out["slow-rss"] = single(
            panel_rss, slow, title=f"Slow consumer ({prm['sleep_ms']:g} ms/msg): RSS"
        )
        out["slow-fate"] = single(
            panel_fate,
            slow,
            title=f"Slow consumer: fate of {prm['rate']:,.0f} msgs/s x {prm['seconds']:g} s",
            size=(7.5, 4.2),
        )
    fo = res.get("fanout")
    if fo and fo.get("summary"):
        out["fanout"] = single(
            panel_fanout, fo, title=f"Fan-out, {fo['params']['n']:,} msgs per consumer"
        )
    pl = res.get("pipeline")
    if pl and pl.get("tables"):
        out["pipeline"] = fig_rows(
            pl["tables"][0]["rows"], "µs/msg (x json.loads)", "Receive path stage by stage"
        )
    book = res.get("book")
    if book and book.get("rows"):
        out["book"] = fig_rows(
            [[r[0], r[2], r[3]] for r in book["rows"]],
            "µs/update (x json.loads)",
            "Order book (bench/book.py)",
            height=2.2,
        )
    peers = res.get("peers")
    if peers:
        out["peers-ticker"] = fig_peers(peers, "ticker")
        out["peers-book"] = fig_peers(peers, "book")
        rows = (peers.get("book_handler") or {}).get("rows") or []
        if rows:
            out["peers-handler"] = fig_rows(
                rows, "µs/update (x json.loads)", "v2 book handler, in-process", height=2.2
            )
    return {k: v for k, v in out.items() if v is not None}


def plot(data: dict[str, Any], outdir: Path, prefix: str = "bench-") -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in figures(data).items():
        if data.get("smoke"):
            fig.text(0.99, 0.01, "SMOKE: numbers mean nothing", ha="right", fontsize=7)
        fig.tight_layout()
        path = outdir / f"{prefix}{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="?", default=str(BENCH / "results" / "latest.json"))
    p.add_argument("--outdir", default=str(ROOT / "docs" / "img"))
    p.add_argument("--prefix", default="bench-", help="file name prefix")
    args = p.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return 0
    path = Path(args.results)
    if not path.is_file():
        print(f"no results file {path}: run bench/run_all.py first", file=sys.stderr)
        return 1
    written = plot(json.loads(path.read_text()), Path(args.outdir), args.prefix)
    print(f"wrote {len(written)} figures to {args.outdir}: {', '.join(p.name for p in written)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
