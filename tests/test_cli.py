"""The command line: real processes on real time, each bounded by a timeout;
they synchronise on the output the other side prints, never on sleeps.

A child that gets a signal from a test has that signal's default disposition
set before it starts (``preexec_fn``): a shell's background job starts with
SIGINT ignored, and the child would inherit that."""

from __future__ import annotations

import http.server
import json
import logging
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from helpers import free_port, read_line

from kraky_anyio import Connected, __version__
from kraky_anyio.cli import RICH_HINT, main
from kraky_anyio.cli.commands import json_line
from kraky_anyio.cli.stream_v2 import v2_line
from kraky_anyio.v2.messages import decode

CLI = [sys.executable, "-m", "kraky_anyio"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TIMEOUT = 30.0  # seconds: a bound for each process, never a synchronisation


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


def _serve(
    backend: str = "asyncio", api: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], str, str]:
    """``serve``; the process and the two URLs it printed, in their order."""
    port = free_port()
    proc = _spawn(
        ["serve", "--port", str(port), "--backend", backend, *(api or [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + TIMEOUT
    first = read_line(proc.stdout, deadline).strip()
    second = read_line(proc.stdout, deadline).strip()
    return proc, first, second


@pytest.fixture(scope="module")
def server_urls() -> Iterator[tuple[str, str]]:
    """One ``serve`` for the module: its v1 and v2 URLs."""
    proc, url, v2_url = _serve()
    try:
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", url)
        assert v2_url == f"{url}/v2"
        yield url, v2_url
    finally:
        _stop(proc)


@pytest.fixture
def server_url(server_urls: tuple[str, str]) -> str:
    return server_urls[0]


@pytest.fixture
def server_v2_url(server_urls: tuple[str, str]) -> str:
    return server_urls[1]


# -- demo ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "api", "pair"),
    [("asyncio", [], "BTC/USD"), ("trio", [], "BTC/USD"), ("asyncio", ["--api", "v1"], "XBT/USD")],
    ids=["v2-default-asyncio", "v2-default-trio", "v1-asyncio"],
)
def test_demo_runs_for_its_duration_and_shows_a_book(
    backend: str, api: list[str], pair: str
) -> None:
    done = subprocess.run(
        [*CLI, "demo", "--duration", "2", "--backend", backend, *api],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert "kraky-anyio demo" in out and pair in out and "✓ verified" in out
    assert f"demo · {api[-1] if api else 'v2'} · " in out
    # Ten asks and ten bids: price, volume (8 decimals), cumulative volume.
    assert sum(1 for line in out.splitlines() if _is_level_row(line)) == 20, out
    summary = out.strip().splitlines()[-1]
    assert summary.startswith(f"{pair} book-10: ") and " 0 checksum mismatches" in summary


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

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str, str]:
        """Send ``signum``; the exit status, stderr and everything drawn. The
        terminal is read all along: a child blocked writing to a full
        terminal would never see the signal."""
        self.proc.send_signal(signum)
        deadline = time.monotonic() + TIMEOUT
        while True:  # until the child closed the terminal (EIO) or the deadline
            ready, _, _ = select.select([self.controller], [], [], deadline - time.monotonic())
            try:
                chunk = os.read(self.controller, 65536) if ready else b""
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.seen += chunk
        try:
            _, err = self.proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            pytest.fail(f"did not exit on signal {signum}; stderr: {err.decode()}")
        return self.proc.returncode, err.decode(), self.seen.decode(errors="replace")

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
            ["book", "ETH/USD", "--depth", "25", "--url", "{v2_url}", "--backend", "asyncio"],
            signal.SIGTERM,
            143,
        ),
        (["book", "XBT/USD", "--api", "v1", "--url", "{url}"], signal.SIGINT, 130),
    ],
    ids=["demo-trio-ctrl-c", "book-asyncio-sigterm", "book-v1-ctrl-c"],
)
def test_live_view_in_a_terminal_stops_on_a_signal(
    argv: list[str], signum: int, status: int, server_urls: tuple[str, str]
) -> None:
    """In a pseudo-terminal the view updates in place, its columns and its
    connection labelled; Ctrl-C exits 130, SIGTERM 143, both after the summary."""
    url, v2_url = server_urls
    term = _Terminal([arg.format(url=url, v2_url=v2_url) for arg in argv])
    try:
        term.read_until(lambda seen: seen.count("✓ verified") >= 3, "live view")
        code, err, seen = term.stop(signum)
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
    server, _, v2_url = _serve()
    term = _Terminal(["book", "BTC/USD", "--url", v2_url])
    try:
        term.read_until(lambda seen: "✓ verified" in seen, "verified book")
        server.kill()
        server.wait()
        term.read_until(
            lambda seen: all(s in seen for s in ("stale since", "disconnected since", "(stale)")),
            "stale marking",
        )
        code, err, _ = term.stop()
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
        ["stream", "ticker", "XBT/USD", "--api", "v1", "--url", server_url, "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        deadline = time.monotonic() + TIMEOUT
        lines = [json.loads(read_line(proc.stdout, deadline)) for _ in range(3)]
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
        ["stream", "book", "ETH/USD", "--depth", "25", "--api", "v1", "--url", server_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + TIMEOUT
    data: list[Any] = []
    while len(data) < 3:
        msg = json.loads(read_line(proc.stdout, deadline))
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
        [*CLI, "stream", "ohlc", "XBT/USD", "--interval", "7", "--api", "v1", "--url", server_url],
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
    proc, url, v2_url = _serve(backend, ["--api", "v2"])
    assert url.endswith("/v2") and v2_url == url.removesuffix("/v2")  # --api v2: v2's first
    code, err = _stop(proc, signum)
    assert code == status, err
    assert "Traceback" not in err


# -- an unreachable server: state shown, limits for scripts ----------------------


def _closed_port_url() -> str:
    return f"ws://127.0.0.1:{free_port()}"  # nothing listens there


def test_stream_gives_up_after_max_attempts_with_logged_failures() -> None:
    url = _closed_port_url()
    done = subprocess.run(
        [*CLI, "stream", "ticker", "BTC/USD", "--url", url, "--max-attempts", "2"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    *logged, last = done.stderr.strip().splitlines()
    # Attempts run on their own; the limit is checked as they fail.
    gave_up = re.fullmatch(
        rf"kraky-anyio: error: gave up after (\d+) failed connection attempts to {url}.*", last
    )
    assert gave_up and int(gave_up[1]) >= 2, last
    # Each failure logged with its time and level, not bare.
    failures = [line for line in logged if f"connecting to {url} failed" in line]
    assert len(failures) >= 2
    assert all(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ WARNING ", line) for line in failures)


def test_stream_gives_up_after_timeout_quietly_with_log_level_error() -> None:
    url = _closed_port_url()
    done = subprocess.run(
        [
            *CLI,
            "stream",
            "ticker",
            "BTC/USD",
            "--url",
            url,
            "--timeout",
            "1",
            "--log-level",
            "error",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1
    # One line: the limit, then why the last attempt failed.
    assert done.stderr.startswith(f"kraky-anyio: error: no connection to {url} for 1 s: ")
    assert "could not connect" in done.stderr and done.stderr.count("\n") == 1


def test_book_view_shows_the_connection_state_while_it_cannot_connect() -> None:
    url = _closed_port_url()
    done = subprocess.run(
        [*CLI, "book", "BTC/USD", "--url", url, "--max-attempts", "3"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "COLUMNS": "140"},
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("kraky-anyio: error: gave up after 3 failed connection")
    out = done.stdout  # the last frame, then the summary
    assert re.search(r"◌ connecting · attempt [34]", out) and "disconnected since" in out
    assert "waiting for the book" in out and "✓ verified" not in out


def test_book_view_shows_the_next_attempt_and_the_last_error() -> None:
    url = _closed_port_url()
    done = subprocess.run(
        [*CLI, "book", "XBT/USD", "--api", "v1", "--url", url, "--max-attempts", "4"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 1
    assert "next try in" in done.stdout and "last error: " in done.stdout
    gave_up = rf"kraky-anyio: error: gave up after \d+ failed connection attempts to {url}: .+\n"
    assert re.fullmatch(gave_up, done.stderr)


# -- stream options ------------------------------------------------------------------


def test_stream_count_and_data_only(server_url: str) -> None:
    done = subprocess.run(
        [
            *CLI,
            *("stream", "ticker", "XBT/USD", "--api", "v1", "--url", server_url),
            *("--count", "3", "--data-only"),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3 and all(line[-2:] == ["ticker", "XBT/USD"] for line in lines)
    # The notices went to stderr, Kraken's events (systemStatus, ...) nowhere.
    notices = [json.loads(line) for line in done.stderr.splitlines()]
    assert notices[0]["notice"] == "Connected"
    assert "systemStatus" not in done.stdout + done.stderr


def test_stream_duration(server_v2_url: str) -> None:
    done = subprocess.run(
        [*CLI, "stream", "trade", "BTC/USD", "--url", server_v2_url, "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["notice"] == "Connected"


def test_stream_names_a_refused_pair_and_goes_on_with_the_rest(server_url: str) -> None:
    done = subprocess.run(
        [
            *CLI,
            *("stream", "ticker", "XBT/USD", "XBT/FOO", "--api", "v1", "--url", server_url),
            *("--count", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "kraky-anyio: warning: XBT/FOO: Currency pair not supported XBT/FOO "
        "(streaming the other pairs)\n"
    )
    data = [json.loads(line) for line in done.stdout.splitlines()]
    assert [msg[-1] for msg in data if isinstance(msg, list)] == ["XBT/USD", "XBT/USD"]


def test_stream_fails_when_every_pair_is_refused(server_url: str) -> None:
    done = subprocess.run(
        [*CLI, "stream", "ticker", "XBT/FOO", "ETH/FOO", "--api", "v1", "--url", server_url],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "XBT/FOO: Currency pair not supported XBT/FOO" in done.stderr
    assert "ETH/FOO: Currency pair not supported ETH/FOO" in done.stderr


# -- private channels and trading: key and secret from the environment only -------

API_KEY = "cli-test-key"
API_SECRET = "c2VjcmV0LWZvci10aGUtY2xpLXRlc3RzLW9ubHk="  # base64, as Kraken's are


@pytest.fixture
def token_server() -> Iterator[str]:
    """A REST endpoint answering GetWebSocketsToken, on a thread."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            ok = self.path == "/0/private/GetWebSocketsToken" and self.headers["API-Key"] == API_KEY
            body = json.dumps(
                {"error": [], "result": {"token": "tok-cli", "expires": 900}}
                if ok
                else {"error": ["EAPI:Invalid key"]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _private_env(api_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "KRAKEN_API_KEY": API_KEY,
        "KRAKEN_API_SECRET": API_SECRET,
        "KRAKEN_API_URL": api_url,
    }


def test_private_channel_with_the_key_from_the_environment(
    server_url: str, token_server: str
) -> None:
    done = subprocess.run(
        [*CLI, "stream", "openOrders", "--api", "v1", "--url", server_url, "--count", "1", "-v"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_private_env(token_server),
    )
    assert done.returncode == 0, done.stderr
    *_, data = [json.loads(line) for line in done.stdout.splitlines()]
    assert data[1:] == ["openOrders", {"sequence": 1}]
    for secret in (API_KEY, API_SECRET):
        assert secret not in done.stdout + done.stderr


def test_trade_add_and_cancel(server_url: str, token_server: str) -> None:
    env = _private_env(token_server)
    base = [*CLI, "trade", "--url", server_url, "--timeout", "20"]
    add = [*base, "add", "--pair", "XBT/USD", "--type", "buy", "--volume", "0.01"]
    done = subprocess.run(
        [*add, "--price", "100"], capture_output=True, text=True, timeout=TIMEOUT, env=env
    )
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["event"] == "addOrderStatus" and reply["status"] == "ok"
    (txid,) = reply["txid"] if isinstance(reply["txid"], list) else [reply["txid"]]
    done = subprocess.run(
        [*base, "cancel", txid], capture_output=True, text=True, timeout=TIMEOUT, env=env
    )
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in json.loads(done.stdout)] == ["ok"]
    done = subprocess.run(
        [*base, "cancel", txid], capture_output=True, text=True, timeout=TIMEOUT, env=env
    )
    assert done.returncode == 1
    assert done.stderr == "kraky-anyio: error: EOrder:Unknown order\n"
    for secret in (API_KEY, API_SECRET):
        assert secret not in done.stdout + done.stderr


def test_private_commands_without_the_key_are_a_usage_error(server_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRAKEN_")}
    done = subprocess.run(
        [*CLI, "stream", "ownTrades", "--api", "v1", "--url", server_url],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "kraky-anyio: error: private channels and trading need KRAKEN_API_KEY and "
        "KRAKEN_API_SECRET in the environment\n"
    )


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
        # URLs that could never connect: refused before connecting.
        ["stream", "ticker", "XBT/USD", "--url", "ws://"],
        ["stream", "ticker", "XBT/USD", "--url", "wss:///nohost"],
        ["stream", "ticker", "XBT/USD", "--url", "ws://127.0.0.1:notaport"],
        ["stream", "ticker", "XBT/USD", "--url", "ws://127.0.0.1:99999"],
        ["book", "XBT/USD", "--url", "ws://[::1"],
        ["stream", "ticker", "XBT/USD", "--max-attempts", "0"],
        ["stream", "ticker", "XBT/USD", "--timeout", "-1"],
        ["stream", "ticker", "XBT/USD", "--count", "0"],
        ["stream", "ticker", "BTC/USD", "BTC/USD"],
        ["stream", "ticker", "XBT/USD", "XBT/USD", "--api", "v1"],
        ["stream", "ownTrades", "XBT/USD", "--api", "v1"],
        # v2 (the default for stream, book, demo) and --api.
        ["stream", "ticker", "XBT/USD"],
        ["book", "XBT/USD"],
        ["book", "XBT/USD", "--api", "v2"],
        ["stream", "spread", "BTC/USD"],
        ["stream", "instrument", "BTC/USD"],
        ["stream", "book"],
        ["stream", "instrument", "--api", "v1"],
        ["stream", "ticker", "BTC/USD", "--env", "level3", "--api", "v1"],
        ["stream", "ownTrades"],
        ["trade", "--api", "v2", "cancel-all"],
        ["demo", "--api", "v3"],
        ["trade", "add", "--pair", "XBT/USD", "--type", "buy", "--volume", "1"],
        ["trade", "cancel"],
        ["demo", "--log-level", "loud"],
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


def test_bad_urls_in_a_process_are_one_line_before_connecting() -> None:
    for url in ("ws://", "ws://127.0.0.1:notaport"):
        done = subprocess.run(
            [*CLI, "stream", "ticker", "BTC/USD", "--url", url],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert done.stdout == ""


@pytest.mark.parametrize(
    ("opener", "argv"),
    [
        ("open_kraken", ["stream", "ticker", "XBT/USD", "--api", "v1"]),
        ("open_kraken_v2", ["stream", "ticker", "BTC/USD"]),
    ],
    ids=["v1", "v2"],
)
def test_an_option_open_kraken_refuses_is_a_usage_error(
    opener: str,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Whatever ``open_kraken`` refuses at entry (ValueError/TypeError) is
    one line and exit 2, not an error from inside the session."""
    from kraky_anyio.cli import commands

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("not a WebSocket URL: 'ws://x'")

    monkeypatch.setattr(commands, opener, refuse)
    logger = logging.getLogger("kraky_anyio")
    before = (logger.level, list(logger.handlers))
    assert main([*argv, "--url", "ws://x"]) == 2
    assert capsys.readouterr().err == "kraky-anyio: error: not a WebSocket URL: 'ws://x'\n"
    assert (logger.level, logger.handlers) == before  # main's logging setup undone


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"kraky-anyio {__version__}\n"


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("demo", "stream", "book", "serve", "trade"))


@pytest.mark.parametrize(
    "command", [["demo"], ["book", "BTC/USD"], ["book", "XBT/USD", "--api", "v1"]]
)
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


def test_v2_lines_keep_the_exact_digits() -> None:
    frame = (
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":'
        '[{"price":27000.5,"qty":0.00000000}],"asks":[],"checksum":7}]}'
    )
    assert v2_line(decode(frame)) == (
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":'
        '[{"price":"27000.5","qty":"0.00000000"}],"asks":[],"checksum":7,"timestamp":null}]}'
    )
    # A response: its absent fields are left out.
    ack = '{"method":"pong","req_id":3,"time_in":"t0","time_out":"t1"}'
    assert v2_line(decode(ack)) == ack


# -- v2, the default for stream and book --------------------------------------------


def test_stream_v2_prints_typed_messages_as_json_lines(server_v2_url: str) -> None:
    done = subprocess.run(
        [
            *CLI,
            "stream",
            "book",
            "BTC/USD",
            "--depth",
            "25",
            "--url",
            server_v2_url,
            "--count",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {
        "notice": "Connected",
        "generation": 1,
        "url": server_v2_url,
        "replayed": 0,
    }
    assert lines[1]["channel"] == "status" and lines[1]["data"][0]["system"] == "online"
    acks = [line for line in lines if line.get("method") == "subscribe"]
    assert acks and acks[0]["success"] is True and acks[0]["result"]["symbol"] == "BTC/USD"
    snapshot, *updates = [line for line in lines if line.get("channel") == "book"]
    assert len(updates) == 2 and snapshot["type"] == "snapshot"
    assert all(update["type"] == "update" for update in updates)
    (entry,) = snapshot["data"]
    assert entry["symbol"] == "BTC/USD" and len(entry["asks"]) == 25
    # Prices and quantities as exact decimal strings, at the pair's precision.
    assert all(re.fullmatch(r"\d+\.\d", level["price"]) for level in entry["asks"])
    assert all(re.fullmatch(r"\d+\.\d{8}", level["qty"]) for level in entry["bids"])


def test_stream_v2_data_only_and_a_refused_symbol(server_v2_url: str) -> None:
    done = subprocess.run(
        [
            *CLI,
            *("stream", "ticker", "BTC/USD", "ETH/FOO", "--url", server_v2_url),
            *("--count", "2", "--data-only"),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2 and all(line["channel"] == "ticker" for line in lines)
    assert {entry["symbol"] for line in lines for entry in line["data"]} == {"BTC/USD"}
    # The Connected notice and the warning, written by two tasks (either order).
    warnings = [line for line in done.stderr.splitlines() if line.startswith("kraky-anyio:")]
    assert warnings == [
        "kraky-anyio: warning: ETH/FOO: Currency pair not supported ETH/FOO "
        "(streaming the other symbols)"
    ]
    notices = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [notice["notice"] for notice in notices] == ["Connected"]


def test_stream_v2_fails_when_every_symbol_is_refused(server_v2_url: str) -> None:
    done = subprocess.run(
        [*CLI, "stream", "ticker", "BTC/FOO", "ETH/FOO", "--url", server_v2_url],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "BTC/FOO: Currency pair not supported BTC/FOO" in done.stderr
    assert "ETH/FOO: Currency pair not supported ETH/FOO" in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["stream", "ticker", "XBT/USD"],
            "v2 spells bitcoin BTC: BTC/USD, not XBT/USD (or use --api v1)",
        ),
        (["book", "XBT/EUR"], "v2 spells bitcoin BTC: BTC/EUR, not XBT/EUR (or use --api v1)"),
        (["stream", "openOrders"], "v2 trading is not in the CLI yet; use --api v1"),
        (["trade", "--api", "v2", "cancel-all"], "v2 trading is not in the CLI yet; use --api v1"),
    ],
)
def test_v2_refusals_in_a_process_are_one_line(argv: list[str], message: str) -> None:
    done = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 2
    assert done.stderr == f"kraky-anyio: error: {message}\n"
    assert done.stdout == ""


def test_stream_v2_parameter_refused_before_sending_is_a_usage_error(
    server_v2_url: str,
) -> None:
    done = subprocess.run(
        [*CLI, "stream", "ohlc", "BTC/USD", "--interval", "7", "--url", server_v2_url],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("kraky-anyio: error: ") and "interval" in done.stderr
    assert "Traceback" not in done.stderr


def test_stream_v2_level3_with_the_key_from_the_environment(
    server_v2_url: str, token_server: str
) -> None:
    """``level3`` needs a token: fetched with the key and secret from the
    environment, as for v1's private channels, and never printed."""
    done = subprocess.run(
        [*CLI, "stream", "level3", "BTC/USD", "--url", server_v2_url, "--count", "1", "-v"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_private_env(token_server),
    )
    assert done.returncode == 0, done.stderr
    *_, data = [json.loads(line) for line in done.stdout.splitlines()]
    assert data["channel"] == "level3" and data["type"] == "snapshot"
    (entry,) = data["data"]
    assert entry["symbol"] == "BTC/USD" and entry["bids"] and "order_id" in entry["bids"][0]
    for secret in (API_KEY, API_SECRET, "tok-cli"):
        assert secret not in done.stdout + done.stderr
