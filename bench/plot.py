"""Plot a run_all.py result file into one PNG (matplotlib).

    python bench/plot.py [bench/results/latest.json] [-o docs/img/benchmarks.png]

Eight panels: throughput and CPU per message (with the ratio to the raw
client of the same backend over each bar), latency percentiles at each rate,
the receive path stage by stage, RSS over time and the fate of the messages
in the slow-consumer run, fan-out, the order book.
Without matplotlib it says so and exits 0 (CI installs only the test extras).
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
    "raw-asyncio": "#9e9e9e",
    "raw-trio": "#616161",
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
    return (
        kind.replace("kraky_anyio", "k_anyio")
        .replace("max_queue=", "q=")
        .replace("+cached-decoder", " (what-if)")
    )


def panel_throughput(ax: Any, res: dict[str, Any], key: str, ratio: str, ylabel: str) -> None:
    summary = res.get("summary", {})
    kinds = [k for k in summary if summary[k]["ok"]]
    vals = [summary[k][key] for k in kinds]
    bars = ax.bar(range(len(kinds)), vals, color=[color(k) for k in kinds])
    for b, k in zip(bars, kinds, strict=True):
        if "+" in k:  # a what-if, not the shipped library
            b.set_hatch("//")
            b.set_alpha(0.6)
    for b, k in zip(bars, kinds, strict=True):
        r = summary[k][ratio]
        if r == r:  # not NaN
            ax.annotate(
                f"{r:.2f}x",
                (b.get_x() + b.get_width() / 2, b.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(range(len(kinds)), [short(k) for k in kinds], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)


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


def panel_bars(ax: Any, rows: list[list[Any]], ylabel: str) -> None:
    """Horizontal bars from table rows [name, value, ratio, ...]."""
    names = [str(r[0]) for r in rows]
    vals = [float(r[1]) for r in rows]
    ys = list(range(len(rows)))[::-1]
    bars = ax.barh(ys, vals, color="#1f77b4")
    for b, r in zip(bars, rows, strict=True):
        ax.annotate(
            f" {float(r[2]):.2f}x",
            (b.get_width(), b.get_y() + b.get_height() / 2),
            va="center",
            fontsize=8,
        )
    ax.set_yticks(ys, names, fontsize=6)
    ax.set_xlabel(ylabel)


def plot(data: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = data.get("results", {})
    fig, axes = plt.subplots(2, 4, figsize=(21, 9.5))
    m = data.get("machine", {})
    fig.suptitle(
        f"kraky_anyio benchmarks, {data.get('started', '')}: {m.get('nproc')} CPUs"
        f" ({m.get('cpu')}), Python {m.get('python')}"
        + ("  [SMOKE: numbers mean nothing]" if data.get("smoke") else ""),
        fontsize=11,
    )
    tp = res.get("throughput")
    if tp:
        n = tp["params"]["n"]
        panel_throughput(axes[0][0], tp, "msgs_per_s_median", "rate_vs_raw", "msgs/s")
        axes[0][0].set_title(f"Throughput, {n:,} msgs (x raw, same backend)", fontsize=10)
        panel_throughput(axes[0][1], tp, "cpu_us_median", "cpu_vs_raw", "CPU µs/msg")
        axes[0][1].set_title("Client CPU per message (raw µs / client µs)", fontsize=10)
    lat = res.get("latency")
    if lat:
        panel_latency(axes[0][2], lat)
        axes[0][2].set_title("Latency, server stamp to handler", fontsize=10)
    slow = res.get("slow_consumer")
    if slow:
        prm = slow["params"]
        panel_rss(axes[1][0], slow)
        axes[1][0].set_title(f"Slow consumer ({prm['sleep_ms']:g} ms/msg): RSS", fontsize=10)
        panel_fate(axes[1][1], slow)
        axes[1][1].set_title(
            f"Slow consumer: fate of {prm['rate']:,.0f} msgs/s x {prm['seconds']:g} s",
            fontsize=10,
        )
    fo = res.get("fanout")
    if fo:
        panel_fanout(axes[1][2], fo)
        axes[1][2].set_title(f"Fan-out, {fo['params']['n']:,} msgs per consumer", fontsize=10)
    pl = res.get("pipeline")
    if pl and pl.get("tables"):
        panel_bars(axes[0][3], pl["tables"][0]["rows"], "µs/msg (x json.loads)")
        axes[0][3].set_title("Receive path stage by stage, in-process", fontsize=10)
    book = res.get("book")
    if book and book.get("rows"):
        panel_bars(axes[1][3], [[r[0], r[2], r[3]] for r in book["rows"]], "µs/update")
        axes[1][3].set_title("Order book (bench/book.py)", fontsize=10)
    for row in axes:
        for ax in row:
            ax.grid(axis="y", alpha=0.3)
            if not ax.has_data():
                ax.set_axis_off()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="?", default=str(BENCH / "results" / "latest.json"))
    p.add_argument("-o", "--out", default=str(ROOT / "docs" / "img" / "benchmarks.png"))
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
    plot(json.loads(path.read_text()), Path(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
