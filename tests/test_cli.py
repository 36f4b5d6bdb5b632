"""The command line: real processes on real time, each bounded by a timeout;
they synchronise on the output the other side prints, never on sleeps."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

import pytest

from kraky_anyio import Connected
from kraky_anyio.cli import RICH_HINT, _json_line, main

CLI = [sys.executable, "-m", "kraky_anyio"]
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


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Ctrl-C, then the exit status and stderr (killed if it hangs)."""
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"did not exit on Ctrl-C; stderr: {err.decode()}")
    return proc.returncode, err.decode()


def _serve(backend: str = "asyncio") -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--backend", backend],
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


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--backend", "trio"],
        ["book", "ETH/USD", "--depth", "25", "--url", "{url}", "--backend", "asyncio"],
    ],
    ids=["demo-trio", "book-asyncio"],
)
def test_live_view_in_a_terminal_stops_on_ctrl_c(argv: list[str], server_url: str) -> None:
    """In a pseudo-terminal the view updates in place; Ctrl-C exits 0."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, *(arg.format(url=server_url) for arg in argv)],
        stdin=terminal,
        stdout=terminal,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm"},
    )
    os.close(terminal)
    try:
        seen = b""
        deadline = time.monotonic() + TIMEOUT
        while seen.count("✓ verified".encode()) < 3:  # a few frames drawn
            ready, _, _ = select.select([controller], [], [], deadline - time.monotonic())
            if not ready:
                pytest.fail(f"no live view before the deadline: {seen[-500:]!r}")
            seen += os.read(controller, 65536)
        assert b"\x1b[" in seen  # drawn with cursor control, in place
        code, err = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    assert code == 0, err
    assert "Traceback" not in err


# -- serve and stream ------------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_stream_prints_json_lines_and_exits_on_a_broken_pipe(server_url: str, backend: str) -> None:
    proc = subprocess.Popen(
        [*CLI, "stream", "ticker", "XBT/USD", "--url", server_url, "--backend", backend],
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
    proc = subprocess.Popen(
        [*CLI, "stream", "book", "ETH/USD", "--depth", "25", "--url", server_url],
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
    assert code == 0, err
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
def test_serve_stops_on_ctrl_c(backend: str) -> None:
    proc, _ = _serve(backend)
    code, err = _stop(proc)
    assert code == 0, err
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
    assert _json_line(Connected(2, "ws://x", 3)) == (
        '{"notice":"Connected","generation":2,"url":"ws://x","replayed":3}'
    )
    assert _json_line([1, {"x": Decimal("0.10")}, "ticker", "XBT/USD"]) == (
        '[1,{"x":"0.10"},"ticker","XBT/USD"]'
    )
