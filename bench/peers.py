"""Kraken v2 clients side by side: python-kraken-sdk, ccxt pro, the raw transport.

    python bench/peers.py [--n 20000] [--repeats 3] [--no-peers] [--no-instructions]
                          [--json PATH] [--smoke]

One server process (bench/_v2_server.py) speaks Kraken's v2 envelope and
floods, after each client's subscribe, N ``ticker`` or N ``book`` frames
(the v2 BTC/USD depth-10 recording, numbers written at the pair's precision
as Kraken writes them). Each client runs in its own process
(bench/_v2_client.py), one at a time, round-robin over ``--repeats`` rounds,
once per channel:

* ``null-asyncio``, ``null-trio``: read and discard the bytes (the ceiling);
* ``raw-asyncio``, ``raw-trio``: issue 16's raw transport, websockets' sans-I/O
  protocol over anyio (``connect_websocket(url, fast_path=False)``) +
  ``json.loads``;
* ``kraky_anyio_v2-asyncio``, ``kraky_anyio_v2-trio``: ``kraky_anyio.v2.open_kraken``
  + ``conn.messages(channel=...)``, typed messages;
* ``python-kraken-sdk``: ``kraken.spot.SpotWSClient`` with a counting callback,
  ``ws_url`` pointed at the server;
* ``ccxt``: ``ccxt.pro.kraken`` ``watch_ticker`` / ``watch_order_book`` in a
  loop, its ``publicV2`` URL overridden and its one market set locally.

The peers live in their own venv, ``bench/.venv-peers`` (created on first use
with pip from PyPI; gitignored): python-kraken-sdk and ccxt pin other
versions of websockets/aiohttp than ours, and nothing of theirs is imported
here. Ratios are paired per round against the raw client of the same
backend, then the median (min-max) over rounds. With valgrind, each client
also runs under callgrind at two message counts: instructions per message,
the figure the machine's load does not move.

Then the book handlers in-process: python-kraken-sdk's
``SpotOrderBookClient.on_message`` per book update against bare ``json.loads``
of the same frames (bench/_v2_book_handler.py, in the peers venv), and a
kraky_anyio's v2 book engine (``v2.decode`` + ``Book.feed``, every checksum
verified), each against ``json.loads`` of the same frames in its own process.

``--smoke``: no venv, no peers, no valgrind, a few hundred messages once to
a null reader, the raw client and kraky_anyio v2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    BENCH,
    PYTHON,
    Procs,
    median,
    render_text,
    rotated,
    table,
    write_json,
)

PEERS_VENV = BENCH / ".venv-peers"
PEERS_REQUIREMENTS = ["python-kraken-sdk==3.5.1", "ccxt==4.5.90"]
PEERS = ["python-kraken-sdk", "ccxt"]
OURS = ["kraky_anyio_v2-asyncio", "kraky_anyio_v2-trio"]
BASE = ["null-asyncio", "null-trio", "raw-asyncio", "raw-trio"]
CHANNELS = ["ticker", "book"]
RAW_OF = {"asyncio": "raw-asyncio", "trio": "raw-trio"}
INSTR_NS = (1000, 4000)


def backend_of(kind: str) -> str:
    return "trio" if kind.endswith("-trio") else "asyncio"


def peers_python(create: bool) -> tuple[str | None, str]:
    """The peers venv's Python, creating it when ``create``: (path, why not)."""
    py = str(PEERS_VENV / "bin" / "python")
    check = "import kraken.spot, ccxt.pro"
    if Path(py).exists():
        ok = subprocess.run([py, "-c", check], capture_output=True, text=True, timeout=120)
        if ok.returncode == 0:
            return py, ""
    if not create:
        return None, "peers venv not present and creation skipped (--no-peers or --smoke)"
    print(f"creating {PEERS_VENV} with {' '.join(PEERS_REQUIREMENTS)} (once) ...", flush=True)
    try:
        subprocess.run(
            [PYTHON, "-m", "venv", str(PEERS_VENV)], check=True, capture_output=True, timeout=120
        )
        r = subprocess.run(
            [py, "-m", "pip", "install", "-q", *PEERS_REQUIREMENTS],
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"could not create {PEERS_VENV}: {exc}"
    if r.returncode != 0:
        return None, f"pip install failed: {r.stderr.strip()[-500:]}"
    ok = subprocess.run([py, "-c", check], capture_output=True, text=True, timeout=120)
    if ok.returncode != 0:
        return None, f"peers installed but do not import: {ok.stderr.strip()[-300:]}"
    return py, ""


class V2Server:
    """bench/_v2_server.py; one JSON report per finished connection."""

    def __init__(self, procs: Procs) -> None:
        # A lifetime of hours (callgrind runs of the peers take long); it exits
        # anyway when this process goes away.
        self.proc = procs.start(
            [PYTHON, str(BENCH / "_v2_server.py"), "--watch-stdin", "--lifetime", "14400"]
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"the v2 server did not start: {line!r}")
        self.info = json.loads(line)
        self.base = f"ws://127.0.0.1:{self.info['port']}"

    def report(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        return json.loads(line) if line.startswith("{") else {}


def run_v2_client(
    procs: Procs,
    server: V2Server,
    kind: str,
    channel: str,
    n: int,
    *,
    python: str,
    timeout: float,
    wrap: list[str] | None = None,
) -> dict[str, Any]:
    argv = [
        *(wrap or []),
        python,
        str(BENCH / "_v2_client.py"),
        "--watch-stdin",
        "--kind",
        kind,
        "--channel",
        channel,
        "--url",
        server.base,
        "--n",
        str(n),
        "--timeout",
        str(timeout),
    ]
    code, out, err = procs.run(argv, timeout + 10)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        return {"kind": kind, "error": f"exit code {code}: {err.strip()[-600:]}"}
    res: dict[str, Any] = json.loads(lines[-1])
    if "skipped" in res:
        return res  # never connected: no server report
    res["server"] = server.report()
    if code != 0:
        res["warning"] = f"exit code {code}: {err.strip()[-300:]}"
    return res


def paired(runs: list[dict], a: str, b: str, key: str, invert: bool = False) -> list[float]:
    by_round = {r["round"]: r for r in runs if r["kind"] == b and "error" not in r}
    out = []
    for r in runs:
        o = by_round.get(r["round"])
        if r["kind"] != a or "error" in r or o is None or not r.get(key) or not o.get(key):
            continue
        out.append(o[key] / r[key] if invert else r[key] / o[key])
    return out


def cell(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f"{xs[0]:.2f}"
    return f"{median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def callgrind_total(path: Path) -> int | None:
    try:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def stream_tables(
    runs: dict[str, list[dict]],
    instr: dict[str, dict[str, float]],
    kinds: list[str],
    n: int,
) -> tuple[dict[str, Any], list[dict]]:
    summary: dict[str, Any] = {}
    tables = []
    for channel in CHANNELS:
        rs = runs.get(channel, [])
        peers = [p for p in PEERS if any(r["kind"] == p and "error" not in r for r in rs)]
        rows = []
        for kind in kinds:
            ok = [r for r in rs if r["kind"] == kind and "error" not in r]
            ins = instr.get(channel, {}).get(kind, float("nan"))
            if not ok:
                if ins == ins:  # counted without timed rounds (--repeats 0)
                    raw_ins = instr[channel].get(RAW_OF[backend_of(kind)], float("nan"))
                    rows.append([kind, "", "", "", "", *([""] * len(peers)), round(ins)])
                    rows[-1] += [ins / raw_ins, "0/0"]
                continue
            raw = RAW_OF[backend_of(kind)]
            rate = paired(rs, kind, raw, "msgs_per_s")
            cpu = paired(rs, kind, raw, "cpu_us_per_msg")
            raw_ins = instr.get(channel, {}).get(raw, float("nan"))
            s = {
                "msgs_per_s": median([r["msgs_per_s"] for r in ok]),
                "cpu_us": median([r["cpu_us_per_msg"] for r in ok]),
                "rate_vs_raw": rate,
                "cpu_over_raw": cpu,
                "instr_per_msg": ins,
                "ok": len(ok),
                "runs": len([r for r in rs if r["kind"] == kind]),
            }
            summary.setdefault(channel, {})[kind] = s
            # Each client against each peer, paired per round (CPU: lower is better).
            vs_peer = {p: paired(rs, kind, p, "cpu_us_per_msg") for p in peers}
            s["cpu_over_peer"] = vs_peer
            row = [kind, s["msgs_per_s"], s["cpu_us"], cell(rate), cell(cpu)]
            row += [cell(vs_peer[p]) if kind != p else "1.00" for p in peers]
            if instr.get(channel):
                row += [round(ins) if ins == ins else ins, ins / raw_ins]
            rows.append([*row, f"{s['ok']}/{s['runs']}"])
        columns = ["client", "msgs/s", "CPU µs/msg", "x raw msgs/s", "CPU / raw"]
        columns += [f"CPU / {p}" for p in peers]
        notes = (
            "x raw msgs/s: client / raw client of the same backend, same round (higher is"
            " better); CPU / raw, CPU / <peer>: the client's CPU per message over theirs, same"
            " round (lower is better); median (min-max) over rounds."
        )
        if instr.get(channel):
            columns += ["instr/msg", "instr / raw"]
            notes += (
                " instr/msg: callgrind instructions per message, the difference of two runs;"
                " instr / raw: lower is better."
            )
        tables.append(
            table(
                f"v2 {channel}: {n:,} frames per run, median of the rounds",
                [*columns, "ok"],
                rows,
                notes,
            )
        )
    return summary, tables


def book_handler(procs: Procs, py: str | None, repeat: int, tmp: Path) -> dict[str, Any]:
    """python-kraken-sdk's book handler vs json.loads (peers venv), and the hook
    for kraky_anyio's v2 book engine."""
    sys.path.insert(0, str(BENCH))
    from _v2_server import Feeds

    feeds = Feeds()
    frames = tmp / "book-frames.json"
    frames.write_text(json.dumps([feeds.snapshot, *feeds.texts["book"]]))
    out: dict[str, Any] = {"rows": [], "skipped": {}}
    if py is None:
        out["skipped"]["python-kraken-sdk"] = "no peers venv"
    else:
        _, so, se = procs.run(
            [py, str(BENCH / "_v2_book_handler.py"), str(frames), "--repeat", str(repeat)], 600
        )
        lines = [ln for ln in so.splitlines() if ln.startswith("{")]
        if lines:
            res = json.loads(lines[-1])
            out["sdk"] = res
            base = res["us_per_msg"]["json.loads"]
            for k, v in res["us_per_msg"].items():
                ok = "yes" if res["checksums_ok"] else "NO"
                out["rows"].append([f"SDK venv: {k}", v, v / base, ok if "Spot" in k else ""])
        else:
            out["skipped"]["python-kraken-sdk"] = f"failed: {se.strip()[-400:]}"
    ours = v2_book_engine(feeds.snapshot, feeds.texts["book"], repeat)
    out["ours"] = ours
    base = ours["us_per_msg"]["json.loads"]
    for k, v in ours["us_per_msg"].items():
        out["rows"].append([f"kraky_anyio: {k}", v, v / base, "yes" if "Book" in k else ""])
    return out


def v2_book_engine(snapshot: str, updates: list[str], repeat: int) -> dict[str, Any]:
    """kraky_anyio's v2 book engine on the same frames as the SDK's handler:
    ``v2.decode`` + ``Book.feed`` (apply, truncate, verify every checksum, at
    BTC/USD's precision, 1 and 8) against bare ``json.loads``, and v1's dict
    path (``kraky_anyio.v1.codec.decode``, msgspec with Decimals) against
    ``v2.decode`` (typed) on the same frames. Best of ``repeat``, µs per update.
    Raises ``RuntimeError`` if a checksum does not verify (the timing would
    then mean nothing)."""
    from _common import best_of

    from kraky_anyio.v1.codec import decode as v1_decode
    from kraky_anyio.v2 import decode
    from kraky_anyio.v2.book import Book, Outcome

    def fresh() -> Book:
        book = Book("BTC/USD", 10, price_precision=1, qty_precision=8)
        book.feed(decode(snapshot))
        return book

    check = fresh()
    if any(check.feed(decode(t)).outcome is not Outcome.UPDATED for t in updates):
        raise RuntimeError("a v2 book checksum did not verify: the engine is broken")

    def bare() -> None:
        loads = json.loads
        for text in updates:
            loads(text)

    def v1_dict() -> None:
        for text in updates:
            v1_decode(text)

    def typed() -> None:
        for text in updates:
            decode(text)

    cases = {"json.loads": bare, "v1 dict path": v1_dict, "v2.decode typed": typed}
    us: dict[str, float] = {k: float("inf") for k in [*cases, "v2.decode + Book.feed"]}
    for _ in range(repeat):  # interleaved, so load moves every case alike
        for k, fn in cases.items():
            us[k] = min(us[k], best_of(1, fn))
        book = fresh()
        feed = book.feed

        def engine(feed: Any = feed) -> None:
            for text in updates:
                feed(decode(text))

        us["v2.decode + Book.feed"] = min(us["v2.decode + Book.feed"], best_of(1, engine))
    per = {k: v / len(updates) * 1e6 for k, v in us.items()}
    return {"updates": len(updates), "us_per_msg": per}


def rerender(path: Path) -> int:
    """Print the stream tables of a saved ``--json`` run, recomputed from its runs."""
    data = json.loads(path.read_text())
    kinds = data["params"]["kinds"]
    _, tables = stream_tables(data["runs"], data["instructions"], kinds, data["params"]["n"])
    for t in [*tables, *data["tables"][len(tables) :]]:
        print(render_text(t))
        print()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20000, help="frames per run")
    p.add_argument("--repeats", type=int, default=3, help="round-robin rounds")
    p.add_argument("--no-peers", action="store_true", help="skip the peers (no venv)")
    p.add_argument("--no-instructions", action="store_true", help="skip callgrind")
    p.add_argument("--instr-n", default=",".join(map(str, INSTR_NS)))
    p.add_argument("--handler-repeat", type=int, default=20)
    p.add_argument("--json", help="write the results here")
    p.add_argument("--smoke", action="store_true", help="tiny, no peers, for CI")
    p.add_argument("--rerender", metavar="JSON", help="print the tables of a saved run again")
    p.add_argument("--kinds", help="comma-separated clients to run (default: all)")
    args = p.parse_args(argv)
    if args.rerender:
        return rerender(Path(args.rerender))
    # --repeats 0: no timed rounds (callgrind counts only, with --kinds).
    n, repeats = (500, 1) if args.smoke else (args.n, max(0, args.repeats))
    skipped: dict[str, str] = {}
    py_peers, why = peers_python(create=not (args.smoke or args.no_peers))
    if args.smoke or args.no_peers or py_peers is None:
        py_peers = None
        skipped["peers"] = why or "skipped (--no-peers or --smoke)"
        print(f"peers skipped: {skipped['peers']}", flush=True)
    kinds = [*BASE, *OURS, *(PEERS if py_peers else [])]
    if args.smoke:  # one of each kind of client is enough to prove they run
        kinds = ["null-asyncio", "raw-asyncio", "kraky_anyio_v2-asyncio"]
    if args.kinds:
        kinds = [k for k in kinds if k in args.kinds.split(",")]
    with_instr = not (args.smoke or args.no_instructions) and bool(shutil.which("valgrind"))
    n1, n2 = (int(x) for x in args.instr_n.split(","))
    runs: dict[str, list[dict]] = {c: [] for c in CHANNELS}
    instr: dict[str, dict[str, float]] = {c: {} for c in CHANNELS}
    timeout = 120 + n / 500
    with Procs() as procs, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        server = V2Server(procs)
        print(f"peers: {n:,} frames/run, {repeats} round(s), {', '.join(kinds)}", flush=True)
        for r in range(repeats):
            for channel in CHANNELS:
                for kind in rotated(kinds, r):
                    if kind in skipped:
                        continue
                    py = py_peers if kind in PEERS else PYTHON
                    res = run_v2_client(procs, server, kind, channel, n, python=py, timeout=timeout)
                    if "skipped" in res:
                        skipped[kind] = res["skipped"]
                        print(f"  {kind} skipped: {res['skipped']}", flush=True)
                        continue
                    res["round"] = r
                    res.setdefault("kind", kind)
                    runs[channel].append(res)
                    if "error" in res:
                        print(f"  round {r} {channel:<6} {kind:<22} ERROR {res['error'][-300:]}")
                    else:
                        print(
                            f"  round {r} {channel:<6} {kind:<22} {res['msgs_per_s']:>10,.0f}"
                            f" msgs/s {res['cpu_us_per_msg']:>7.2f} CPU µs/msg",
                            flush=True,
                        )
        if with_instr:
            print(f"instructions: callgrind at {n1:,} and {n2:,} frames", flush=True)
            # The peers under callgrind take tens of minutes each: never counted.
            skipped["instructions: peers"] = "not counted (tens of minutes each under callgrind)"
            for channel in CHANNELS:
                for kind in kinds:
                    if kind in skipped or kind in PEERS:
                        continue
                    py = PYTHON
                    totals = []
                    for m in (n1, n2):
                        path = tmp / f"cg.{channel}.{kind}.{m}"
                        res = run_v2_client(
                            procs,
                            server,
                            kind,
                            channel,
                            m,
                            python=py,
                            timeout=900,
                            wrap=["valgrind", "--tool=callgrind", f"--callgrind-out-file={path}"],
                        )
                        totals.append(None if "error" in res else callgrind_total(path))
                    a, b = totals
                    per = (b - a) / (n2 - n1) if a and b else float("nan")
                    instr[channel][kind] = per
                    print(
                        f"  callgrind {channel:<6} {kind:<22} {per:>10,.0f} instr/msg", flush=True
                    )
        else:
            skipped["instructions"] = "skipped (--no-instructions, --smoke or no valgrind)"
        handler = book_handler(procs, py_peers, 3 if args.smoke else args.handler_repeat, tmp)
        server_info = server.info
    summary, tables = stream_tables(runs, instr, kinds, n)
    if handler["rows"]:
        tables.append(
            table(
                f"v2 book handler, in-process: {handler['ours']['updates']} updates,"
                f" best of {3 if args.smoke else args.handler_repeat}",
                ["case", "µs/update", "x json.loads", "checksums ok"],
                handler["rows"],
                "python-kraken-sdk's SpotOrderBookClient.on_message (apply, sort, truncate,"
                " checksum) after json.loads, in the peers venv, and kraky_anyio's v2.decode"
                " + Book.feed (apply, truncate, verify every checksum), v2.decode alone and"
                " v1's dict decoder, in ours; each against json.loads of the same frames in"
                " the same process (x json.loads; lower is better).",
            )
        )
    skipped.update({f"book handler: {k}": v for k, v in handler["skipped"].items()})
    print()
    for t in tables:
        print(render_text(t))
        print()
    for k, v in skipped.items():
        print(f"skipped: {k}: {v}")
    write_json(
        args.json,
        {
            "name": "peers",
            "params": {"n": n, "repeats": repeats, "kinds": kinds, "smoke": args.smoke},
            "server": server_info,
            "skipped": skipped,
            "runs": runs,
            "instructions": instr,
            "summary": summary,
            "book_handler": handler,
            "tables": tables,
        },
    )
    failed = [
        f"{c}:{k}"
        for c, by in summary.items()
        for k, s in by.items()
        if s["ok"] == 0 and k not in skipped
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
