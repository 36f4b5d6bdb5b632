"""``kraky-anyio serve --replay``: a real process on real time, bounded by a
timeout; the test synchronises on what the server prints, never on sleeps."""

from __future__ import annotations

import gzip
import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import anyio
import pytest
import trio.testing
from helpers import read_line

from kraky_anyio.connection import open_kraken
from kraky_anyio.testing.replay_formats import read_recording
from kraky_anyio.testing.replay_tape import Tape

CLI = [sys.executable, "-m", "kraky_anyio"]
TIMEOUT = 30.0  # seconds: a bound for each process, never a synchronisation
RECORDING = Path(__file__).resolve().parents[1] / "docs" / "recordings" / "sim-v1-book.jsonl.gz"


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _line(stream: IO[bytes] | None, deadline: float) -> str:
    assert stream is not None
    return read_line(stream, deadline).strip()


async def _verify_book(url: str, expected: int) -> tuple[int, int]:
    async with open_kraken(url) as conn:
        with anyio.fail_after(TIMEOUT):
            async with conn.book("XBT/USD", 10) as book:
                while book.book.updates < expected:
                    await anext(book)
        return book.book.updates, book.checksum_mismatches


def test_serve_replay_serves_the_recording_to_a_client() -> None:
    expected = sum(
        1
        for f in Tape(read_recording(RECORDING)).frames
        if f.key == ("book-10", "XBT/USD") and not f.snapshot
    )
    proc = subprocess.Popen(
        [*CLI, "serve", "--replay", str(RECORDING), "--speed", "max", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        preexec_fn=_default_signals,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        url, v2_url = _line(proc.stdout, deadline), _line(proc.stdout, deadline)
        assert url.startswith("ws://127.0.0.1:") and v2_url == url + "/v2"  # v1's: as recorded
        assert "replaying" in _line(proc.stderr, deadline)
        assert anyio.run(_verify_book, url, expected) == (expected, 0)
        assert "the replay has ended" in _line(proc.stderr, deadline)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("serve --replay did not stop on Ctrl-C")
    assert proc.returncode == 130


def test_serve_replay_refuses_a_bad_file_or_speed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress(b'{"event":"heartbeat"}\n[1,\n'))
    done = subprocess.run(
        [*CLI, "serve", "--replay", str(bad)], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"kraky-anyio: error: --replay: {bad}:2: a frame must be JSON: "
        "Expecting value: line 1 column 4 (char 3)"
    )
    done = subprocess.run(
        [*CLI, "serve", "--replay", str(RECORDING), "--speed", "fast"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2 and "--speed" in done.stderr and "not a number" in done.stderr
    done = subprocess.run(
        [*CLI, "serve", "--replay", str(RECORDING), "--trading"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2 and "does not take --trading" in done.stderr


def test_the_shipped_recordings_are_what_make_py_makes() -> None:
    # If the simulator changes, run `python docs/recordings/make.py` again.
    spec = importlib.util.spec_from_file_location("make_recordings", RECORDING.parent / "make.py")
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    for api in ("v1", "v2"):
        clock = trio.testing.MockClock(autojump_threshold=0)
        lines = anyio.run(make.record, api, backend="trio", backend_options={"clock": clock})
        shipped = gzip.decompress((RECORDING.parent / f"sim-{api}-book.jsonl.gz").read_bytes())
        assert shipped.decode().splitlines() == lines
