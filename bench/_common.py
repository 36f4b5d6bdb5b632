"""What the benchmark scripts share: the server and client processes, the
kraky venv, statistics, tables and the machine's description.

Every child process is started in its own session with a pipe on its stdin:
it exits by itself when this process goes away (the pipe closes), on its own
deadline, and :class:`Procs` terminates it on any error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
KRAKY_VENV = BENCH / ".venv-kraky"
KRAKY_REQUIREMENT = "kraky==2023.8.17"

#: Client kinds and the backend each runs on; the raw ceiling of each backend.
BACKEND = {
    "null-asyncio": "asyncio",
    "null-trio": "trio",
    "raw-asyncio": "asyncio",
    "raw-trio": "trio",
    "rawfast-asyncio": "asyncio",
    "rawfast-trio": "trio",
    "floor-asyncio": "asyncio",
    "floor-trio": "trio",
    "kraky_anyio-asyncio": "asyncio",
    "kraky_anyio-trio": "trio",
    "websockets": "asyncio",
    "kraky": "asyncio",
}
RAW_OF = {"asyncio": "raw-asyncio", "trio": "raw-trio"}


def backend_of(kind: str) -> str:
    """The backend of a client kind; ``KIND+WHAT_IF`` is KIND with an
    experiment applied (see ``--what-if`` in bench/_client.py)."""
    return BACKEND[kind.split("+", 1)[0]]


# -- processes -----------------------------------------------------------------


class Procs:
    """Owns child processes: on exit (normal, error, Ctrl-C, SIGTERM) each
    still running is terminated, then killed after 3 s."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self._old_term: Any = None

    def __enter__(self) -> Procs:
        if threading.current_thread() is threading.main_thread():
            self._old_term = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        deadline = time.monotonic() + 3
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                if f is not None:
                    with contextlib.suppress(OSError):
                        f.close()
        self.procs.clear()
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)

    def start(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=kw.pop("stderr", subprocess.PIPE),
            text=True,
            start_new_session=True,
            cwd=ROOT,
            **kw,
        )
        self.procs.append(p)
        return p

    def run(self, argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        """Run to completion (killed after ``timeout`` s): (code, stdout, stderr).
        Its stdin stays open meanwhile (closing it tells a child to exit)."""
        p = self.start(argv)
        out: list[str] = []
        err: list[str] = []
        readers = [
            threading.Thread(target=lambda: out.append(p.stdout.read()), daemon=True),  # type: ignore[union-attr]
            threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True),  # type: ignore[union-attr]
        ]
        for t in readers:
            t.start()
        note = ""
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            note = f"\n(killed after {timeout:g} s)"
        finally:
            for t in readers:
                t.join(5)
            with contextlib.suppress(OSError):
                p.stdin.close()  # type: ignore[union-attr]
            if p in self.procs:
                self.procs.remove(p)
        return p.returncode, "".join(out), "".join(err) + note


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Server:
    """The benchmark server process (bench/_server.py); one JSON report per
    finished connection comes back through :meth:`report`."""

    # Hours, not minutes: callgrind runs on a loaded machine take long, and the
    # server exits anyway when this process goes away (its stdin closes).
    def __init__(self, procs: Procs, lifetime: float = 4 * 3600) -> None:
        self.proc = procs.start(
            [PYTHON, str(BENCH / "_server.py"), "--watch-stdin", "--lifetime", str(lifetime)],
            stderr=subprocess.PIPE,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._err: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        first = self._next(20)
        if first is None or "port" not in first:
            raise RuntimeError(f"the server did not start: {first} {''.join(self._err)[-2000:]}")
        self.info = first
        self.port = int(first["port"])

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._err.append(line)
            del self._err[:-200]

    def _next(self, timeout: float) -> dict[str, Any] | None:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if line is None else json.loads(line)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def report(self, timeout: float = 15) -> dict[str, Any]:
        """The report of the next finished connection ({} if none came)."""
        return self._next(timeout) or {}


def kraky_python(create: bool, given: str | None = None) -> tuple[str | None, str]:
    """A Python that can import kraky (its own venv: kraky pins websockets<12),
    creating ``bench/.venv-kraky`` when ``create``. Returns (path, why not)."""
    candidates = [given] if given else [str(KRAKY_VENV / "bin" / "python")]
    for py in candidates:
        if py and Path(py).exists():
            ok = subprocess.run(
                [py, "-c", "import kraky.ws"], capture_output=True, text=True, timeout=60
            )
            if ok.returncode == 0:
                return py, ""
            if given:
                return None, f"{given} cannot import kraky: {ok.stderr.strip()[-300:]}"
    if not create:
        return None, "kraky venv not present and creation skipped (--no-kraky or --smoke)"
    py = str(KRAKY_VENV / "bin" / "python")
    print(f"creating {KRAKY_VENV} with {KRAKY_REQUIREMENT} (once) ...", flush=True)
    try:
        subprocess.run(
            [PYTHON, "-m", "venv", str(KRAKY_VENV)], check=True, capture_output=True, timeout=120
        )
        r = subprocess.run(
            [py, "-m", "pip", "install", "-q", KRAKY_REQUIREMENT],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"could not create {KRAKY_VENV}: {exc}"
    if r.returncode != 0:
        return None, f"pip install {KRAKY_REQUIREMENT} failed: {r.stderr.strip()[-500:]}"
    ok = subprocess.run([py, "-c", "import kraky.ws"], capture_output=True, text=True)
    if ok.returncode != 0:
        return None, f"kraky installed but does not import: {ok.stderr.strip()[-300:]}"
    return py, ""


def run_client(
    procs: Procs,
    server: Server,
    kind: str,
    mode: str,
    path: str,
    *,
    timeout: float,
    python: str | None = None,
    extra: Sequence[str] = (),
    wrap: Sequence[str] = (),
) -> dict[str, Any]:
    """Run one client process to the end; its result plus the server's report
    of that connection (under "server"). Failures come back as {"error": ...}.
    ``wrap`` goes before the Python command (e.g. valgrind and its options)."""
    base, *what_ifs = kind.split("+")
    argv = [
        *wrap,
        python or PYTHON,
        str(BENCH / "_client.py"),
        "--watch-stdin",
        "--kind",
        base,
        *[a for w in what_ifs for a in ("--what-if", w)],
        "--mode",
        mode,
        "--url",
        server.url(path),
        "--timeout",
        str(timeout),
        *extra,
    ]
    code, out, err = procs.run(argv, timeout + 10)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    result: dict[str, Any]
    if lines:
        result = json.loads(lines[-1])
        if code != 0:
            result["warning"] = f"exit code {code}: {err.strip()[-300:]}"
    else:
        result = {"kind": kind, "error": f"exit code {code}: {err.strip()[-800:]}"}
    result["server"] = server.report(15 if lines else 3)
    return result


def rotated(items: Sequence[str], r: int) -> list[str]:
    """Round-robin order for repeat ``r``: each item takes each position in turn."""
    k = r % len(items) if items else 0
    return list(items[k:]) + list(items[:k])


# -- statistics ----------------------------------------------------------------


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def percentile(sorted_xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_xs:
        return float("nan")
    k = min(len(sorted_xs) - 1, max(0, math.ceil(q / 100 * len(sorted_xs)) - 1))
    return sorted_xs[k]


# -- output --------------------------------------------------------------------


def fmt(x: Any, digits: int = 2) -> str:
    if isinstance(x, bool) or x is None:
        return "" if x is None else ("yes" if x else "no")
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != x:
            return "n/a"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        return f"{x:.{digits}f}"
    return str(x)


def table(title: str, columns: list[str], rows: list[list[Any]], notes: str = "") -> dict:
    return {"title": title, "columns": columns, "rows": rows, "notes": notes}


def render_text(t: dict) -> str:
    cells = [[fmt(c) for c in row] for row in t["rows"]]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(t["columns"])]
    out = [t["title"]]
    out.append(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(t["columns"], widths, strict=True))
        )
    )
    for r in cells:
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    if t.get("notes"):
        out.append(t["notes"])
    return "\n".join(out)


def render_markdown(t: dict) -> str:
    out = [f"**{t['title']}**", ""]
    out.append("| " + " | ".join(t["columns"]) + " |")
    out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(t["columns"]))) + "|")
    for row in t["rows"]:
        out.append("| " + " | ".join(fmt(c) for c in row) + " |")
    if t.get("notes"):
        out += ["", t["notes"]]
    return "\n".join(out)


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=1) + "\n")


def load_avg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    osname = platform.platform()
    with contextlib.suppress(OSError), open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"') + f" ({platform.release()})"
    versions = {}
    for mod in ("kraky_anyio", "anyio", "trio", "websockets"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod.replace("_", "-"))
        except Exception:
            versions[mod] = "not installed"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "os": osname,
        "versions": versions,
        "loadavg_at_start": load_avg(),
    }


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    t = time.monotonic()
    yield
    print(f"({label}: {time.monotonic() - t:.1f} s)", flush=True)


def repeat_from_args(argv: list[str] | None, description: str, default: int) -> int:
    """Parse a micro-benchmark's ``--repeat N`` and ``--smoke`` (one run, for CI)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=default, help="runs per case (best is kept)")
    parser.add_argument("--smoke", action="store_true", help="a single fast run, for CI")
    args = parser.parse_args(argv)
    return 1 if args.smoke else max(1, args.repeat)


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """The fastest of ``repeat`` calls of ``run``, in seconds (``time.perf_counter``)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best
