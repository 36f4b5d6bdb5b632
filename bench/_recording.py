"""What recording costs, for throughput.py: the ``KIND+record-*`` rows.

``kraky_anyio-BACKEND+record-gz`` / ``+record-plain`` are the shipped
library with ``conn.record(path)`` around the whole flood (gzip / no
compression, ``overflow="block"``: nothing may be lost), ``+record-gz-drop``
the same with ``overflow="drop"`` (what the default loses at full speed),
``+record-zst`` zstandard (the optional ``record`` extra).
Their wall and CPU time run to the moment the recording is finished (every
queued line written, the file closed), not to the end marker (see
``consume_recording`` in bench/_client.py). Every ratio here is against the
same library without recording, same backend, same round.
"""

from __future__ import annotations

from typing import Any

from _common import median, table

#: In every default run: both compressions on both backends.
RECORD_CLIENTS = [
    "kraky_anyio-asyncio+record-gz",
    "kraky_anyio-trio+record-gz",
    "kraky_anyio-asyncio+record-plain",
    "kraky_anyio-trio+record-plain",
]
#: Named in ``--clients`` only: what ``overflow="drop"`` loses, and zstandard
#: (the optional ``record`` extra).
RECORD_EXTRA_CLIENTS = [
    "kraky_anyio-asyncio+record-gz-drop",
    "kraky_anyio-trio+record-gz-drop",
    "kraky_anyio-asyncio+record-zst",
    "kraky_anyio-trio+record-zst",
]


def is_record(kind: str) -> bool:
    return "+record-" in kind


def base_of(kind: str) -> str:
    """The same client without recording."""
    return kind.split("+", 1)[0]


def _paired(runs: dict[str, list[dict]], a: str, b: str, key: str, invert: bool) -> list[float]:
    by_round = {r["round"]: r for r in runs.get(b, []) if "error" not in r}
    out = []
    for r in runs.get(a, []):
        other = by_round.get(r["round"])
        if "error" in r or other is None or not r[key] or not other[key]:
            continue
        out.append(other[key] / r[key] if invert else r[key] / other[key])
    return out


def _spread(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f"{xs[0]:.2f}"
    return f"{median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def recording_summary(runs: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """Per record kind: the paired ratios and whether every run's recording
    was complete (read back: ``recv`` lines == ``frames_recorded``, every
    data message in the file, nothing dropped)."""
    out: dict[str, dict[str, Any]] = {}
    for kind, rs in runs.items():
        if not is_record(kind):
            continue
        base = base_of(kind)
        ok = [r for r in rs if "error" not in r and "recording" in r]
        checks = [r["recording"].get("check", {}) for r in ok]
        recs = [r["recording"] for r in ok]
        pairs = list(zip(recs, ok, strict=True))
        out[kind] = {
            "vs": base,
            "rate_vs_plain": _paired(runs, kind, base, "msgs_per_s", invert=False),
            "cpu_over_plain": _paired(runs, kind, base, "cpu_us_per_msg", invert=False),
            "extra_cpu_us": [
                r["cpu_us_per_msg"] - o["cpu_us_per_msg"]
                for r in ok
                for o in runs.get(base, [])
                if o.get("round") == r["round"] and "error" not in o
            ],
            "at_end_share": [
                r["recording"]["at_end_marker"]["cpu_s"] / r["cpu_s"] for r in ok if r["cpu_s"]
            ],
            "complete": [bool(c.get("complete")) for c in checks],
            "frames_recorded": [x["frames_recorded"] for x in recs],
            "frames_seen": [x["frames_seen"] for x in recs],
            "frames_dropped": [x["frames_dropped"] for x in recs],
            "data_lost": [c.get("data_lost") for c in checks],
            "file_bytes_per_msg": median([x["file_bytes"] / r["n"] for x, r in pairs]),
            "raw_bytes_per_msg": median([x["bytes_written"] / r["n"] for x, r in pairs]),
        }
    return out


def recording_table(
    summary: dict[str, dict[str, Any]], instr: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    rows = []
    for kind, s in summary.items():
        per = instr.get(kind, {}).get("per_msg", float("nan"))
        base = instr.get(s["vs"], {}).get("per_msg", float("nan"))
        dropped = s["frames_dropped"]
        rows.append(
            [
                kind,
                _spread(s["rate_vs_plain"]),
                _spread(s["cpu_over_plain"]),
                _spread(s["extra_cpu_us"]),
                round(per) if per == per else "n/a",
                f"{per / base:.2f}" if per == per and base == base else "n/a",
                f"{sum(s['complete'])}/{len(s['complete'])}",
                f"{min(dropped, default=0)}-{max(dropped, default=0)}",
                f"{s['file_bytes_per_msg']:.0f} / {s['raw_bytes_per_msg']:.0f}",
            ]
        )
    return table(
        "Recording: kraky_anyio with conn.record() against the same without, paired per round",
        [
            "client",
            "x msgs/s",
            "CPU x",
            "+CPU µs/msg",
            "instr/msg",
            "instr x",
            "complete",
            "dropped",
            "file / line B/msg",
        ],
        rows,
        "Times run to the recording's close (the lines still queued at the end marker"
        " included). x msgs/s: msgs/s over the non-recording client's, CPU x and instr x:"
        " its CPU µs / instructions per message over the non-recording client's (lower is"
        " better), +CPU µs/msg the difference; median (min-max) over rounds. complete: runs"
        " whose file, read back, held every frame received (recv lines == frames_recorded,"
        " every data message, nothing dropped). dropped: frames_dropped, lowest-highest."
        " file / line B/msg: bytes on disk / uncompressed line bytes per message.",
    )


def recording_failures(summary: dict[str, dict[str, Any]]) -> list[str]:
    """``overflow="block"`` kinds whose recording was incomplete in some run
    (``-drop`` kinds may lose frames: that is what they measure)."""
    return [
        f"{kind}: recording incomplete"
        for kind, s in summary.items()
        if not kind.endswith("-drop") and (not s["complete"] or not all(s["complete"]))
    ]
