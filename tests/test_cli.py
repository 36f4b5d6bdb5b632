"""The command line: real processes on real time, each bounded by a timeout;
they synchronise on the output the other side prints, never on sleeps.

A child that gets a signal from a test has that signal's default disposition
set before it starts (``preexec_fn``): a shell's background job starts with
SIGINT ignored, and the child would inherit that."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import IO, Any

import pytest

from kraky_anyio import Connected
from kraky_anyio.cli import RICH_HINT, main
from kraky_anyio.cli.commands import json_line

CLI = [sys.executable, "-m", "kraky_anyio"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TIMEOUT = 30.0  # seconds: a bound for each process, never a synchronisation


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_line(stream: IO[bytes], deadline: float) -> str:
    """One line from an unbuffered pipe, or fail at ``deadline``."""
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            pytest.fail(f"no complete line before the deadline; got {line!r}")
        chunk = stream.read(1)
        if not chunk:
            pytest.fail(f"end of output; got {line!r}")
        line += chunk
    return line.decode()


def _default_signals() -> None:
    """In the child, before exec: the signals the tests send act by default
    (Python then raises KeyboardInterrupt on SIGINT), whatever the parent's
    disposition (SIGINT is ignored in a background job)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """The CLI in a child process that a test may send signals to."""
    return subprocess.Popen([*CLI, *argv], preexec_fn=_default_signals, **kwargs)


def _stop(proc: subprocess.Popen[bytes], signum: int = signal.SIGINT) -> tuple[int, str]:
    """Ctrl-C (or ``signum``), then the exit status and stderr (killed if it hangs)."""
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"did not exit on signal {signum}; stderr: {err.decode()}")
    return proc.returncode, (err or b"").decode()


def _serve(backend: str = "asyncio") -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = _spawn(
        ["serve", "--port", str(port), "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stdout is not None
    url = _read_line(proc.stdout, time.monotonic() + TIMEOUT).strip()
    assert url == f"ws://127.0.0.1:{port}"
    return proc, url


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    proc, url = _serve()
    try:
        yield url
    finally:
        _stop(proc)


# -- demo ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_runs_for_its_duration_and_shows_a_book(backend: str) -> None:
    done = subprocess.run(
        [*CLI, "demo", "--duration", "2", "--backend", backend],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert "kraky-anyio demo" in out and "XBT/USD" in out and "✓ verified" in out
    # Ten asks and ten bids: price, volume (8 decimals), cumulative volume.
    assert sum(1 for line in out.splitlines() if _is_level_row(line)) == 20, out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("XBT/USD book-10: ") and " 0 checksum mismatches" in summary


def _is_level_row(line: str) -> bool:
    cells = line.strip("│ ").split()
    return (
        len(cells) >= 3
        and cells[0].replace(".", "").isdigit()
        and all(len(c.partition(".")[2]) == 8 for c in cells[1:3])
    )


class _Terminal:
    """The CLI in a pseudo-terminal: everything it drew so far in ``seen``."""

    def __init__(self, argv: list[str]) -> None:
        self.controller, terminal = pty.openpty()
        self.proc = _spawn(
            argv,
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "110", "LINES": "50", "TERM": "xterm"},
        )
        os.close(terminal)
        self.seen = b""

    def read_until(self, done: Callable[[str], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done(self.seen.decode(errors="replace")):
            ready, _, _ = select.select([self.controller], [], [], deadline - time.monotonic())
            if not ready:
                pytest.fail(f"no {what} before the deadline: {self.seen[-800:]!r}")
            try:
                chunk = os.read(self.controller, 65536)
            except OSError:  # EIO: the child is gone
                chunk = b""
            if not chunk:
                pytest.fail(f"end of output before {what}: {self.seen[-800:]!r}")
            self.seen += chunk

    def rest(self) -> str:
        """Everything else it drew, once it has exited."""
        while True:
            ready, _, _ = select.select([self.controller], [], [], TIMEOUT)
            try:
                chunk = os.read(self.controller, 65536) if ready else b""
            except OSError:
                chunk = b""
            if not chunk:
                return self.seen.decode(errors="replace")
            self.seen += chunk

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.controller)


@pytest.mark.parametrize(
    ("argv", "signum", "status"),
    [
        (["demo", "--backend", "trio"], signal.SIGINT, 130),
        (
            ["book", "ETH/USD", "--depth", "25", "--url", "{url}", "--backend", "asyncio"],
            signal.SIGTERM,
            143,
        ),
    ],
    ids=["demo-trio-ctrl-c", "book-asyncio-sigterm"],
)
def test_live_view_in_a_terminal_stops_on_a_signal(
    argv: list[str], signum: int, status: int, server_url: str
) -> None:
    """In a pseudo-terminal the view updates in place, its columns and its
    connection labelled; Ctrl-C exits 130, SIGTERM 143, both after the summary."""
    term = _Terminal([arg.format(url=server_url) for arg in argv])
    try:
        term.read_until(lambda seen: seen.count("✓ verified") >= 3, "live view")
        code, err = _stop(term.proc, signum)
        seen = term.rest()
    finally:
        term.close()
    assert "\x1b[" in seen  # drawn with cursor control, in place
    seen = ANSI.sub("", seen)
    assert all(label in seen for label in ("asks", "bids", "trades", "● connected")), seen[-3000:]
    assert ("simulated" in seen) == (argv[0] == "demo")
    assert code == status, err
    assert "Traceback" not in err
    assert " verified updates, " in seen.rstrip().splitlines()[-1]  # the summary


def test_book_view_marks_stale_data_when_the_server_dies() -> None:
    server, url = _serve()
    term = _Terminal(["book", "XBT/USD", "--url", url])
    try:
        term.read_until(lambda seen: "✓ verified" in seen, "verified book")
        server.kill()
        server.wait()
        term.read_until(
            lambda seen: all(s in seen for s in ("stale since", "disconnected since", "(stale)")),
            "stale marking",
        )
        code, err = _stop(term.proc)
    finally:
        term.close()
        if server.poll() is None:
            server.kill()
        server.communicate()
    assert code == 130, err
    assert "Traceback" not in err


# -- serve and stream ------------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_stream_prints_json_lines_and_exits_on_a_broken_pipe(server_url: str, backend: str) -> None:
    proc = _spawn(
        ["stream", "ticker", "XBT/USD", "--url", server_url, "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        deadline = time.monotonic() + TIMEOUT
        lines = [json.loads(_read_line(proc.stdout, deadline)) for _ in range(3)]
        proc.stdout.close()  # like `| head -3`
        code = proc.wait(timeout=TIMEOUT)
        err = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert lines[0] == {"notice": "Connected", "generation": 1, "url": server_url, "replayed": 0}
    assert lines[1]["event"] == "systemStatus"
    assert code == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_stream_shows_channel_data_and_stops_on_ctrl_c(server_url: str) -> None:
    proc = _spawn(
        ["stream", "book", "ETH/USD", "--depth", "25", "--url", server_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + TIMEOUT
    data: list[Any] = []
    while len(data) < 3:
        msg = json.loads(_read_line(proc.stdout, deadline))
        if isinstance(msg, list):
            data.append(msg)
    code, err = _stop(proc)
    assert code == 130, err
    assert "Traceback" not in err
    snapshot, *updates = data
    assert snapshot[-2:] == ["book-25", "ETH/USD"] and len(snapshot[1]["as"]) == 25
    assert all("c" in update[-3] for update in updates)


def test_stream_rejected_subscription_is_a_one_line_error(server_url: str) -> None:
    done = subprocess.run(
        [*CLI, "stream", "ohlc", "XBT/USD", "--interval", "7", "--url", server_url],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("kraky-anyio: error: ")
    assert "interval not supported" in done.stderr


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_serve_stops_on_a_signal(backend: str, signum: int, status: int) -> None:
    proc, _ = _serve(backend)
    code, err = _stop(proc, signum)
    assert code == status, err
    assert "Traceback" not in err


# -- arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["dance"],
        ["demo", "--backend", "curio"],
        ["demo", "--duration", "-1"],
        ["demo", "--seed", "x"],
        ["stream", "ticker"],
        ["stream", "candles", "XBT/USD"],
        ["stream", "ticker", "XBT/USD", "--url", "http://example.com"],
        ["stream", "ticker", "XBT/USD", "--env", "prod"],
        ["stream", "ticker", "XBT/USD", "--env", "beta", "--url", "ws://localhost:1"],
        ["book", "XBT/USD", "--depth", "7"],
        ["serve", "--port", "70000"],
    ],
)
def test_bad_arguments_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("kraky-anyio") and "error: " in err


def test_bad_arguments_in_a_process() -> None:
    done = subprocess.run(
        [*CLI, "book", "XBT/USD", "--depth", "7"], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "invalid choice: 7" in done.stderr


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("demo", "stream", "book", "serve"))


@pytest.mark.parametrize("command", [["demo"], ["book", "XBT/USD"]])
def test_missing_rich_prints_the_hint(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # `import rich` raises ImportError
    assert main(command) == 1
    assert capsys.readouterr().err == RICH_HINT + "\n"
    assert RICH_HINT.endswith('pip install "kraky-anyio[cli]"')


def test_json_lines() -> None:
    assert json_line(Connected(2, "ws://x", 3)) == (
        '{"notice":"Connected","generation":2,"url":"ws://x","replayed":3}'
    )
    assert json_line([1, {"x": Decimal("0.10")}, "ticker", "XBT/USD"]) == (
        '[1,{"x":"0.10"},"ticker","XBT/USD"]'
    )
