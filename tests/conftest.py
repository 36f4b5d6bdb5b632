"""Shared fixtures: every async test runs on asyncio and on trio, both on
virtual time (trio's MockClock with autojump; looptime's event loop on
asyncio), so backoff, liveness and timeouts run in milliseconds.

``kraken_recording(name)`` loads a recorded Kraken session from
``../shared/fixtures/`` (beside the repository, not in it: third-party data).
Without it the test is skipped with one reason saying where the file comes
from; with ``KRAKY_REQUIRE_FIXTURES=1`` (set by ``.ci/run``) it fails instead.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import looptime
import pytest
import trio.testing

#: Where the recorded Kraken sessions live: ``../shared/fixtures`` from the
#: repository's root.
RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
#: Set (to anything but "" or "0") to turn a missing recording into a failure.
REQUIRE_RECORDINGS = "KRAKY_REQUIRE_FIXTURES"


def _looptime_loop() -> asyncio.AbstractEventLoop:
    cls = looptime.make_event_loop_class(asyncio.SelectorEventLoop)
    loop: asyncio.AbstractEventLoop = cls()
    return loop


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    if request.param == "trio":
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    return ("asyncio", {"loop_factory": _looptime_loop})


def missing_recording_reason(directory: Path = RECORDINGS) -> str:
    """The one reason every test needing a recording gives when it is absent."""
    return (
        f"recorded Kraken sessions not found in {directory}: they are third-party "
        "data (Apache-2.0, from python-kraken-sdk) kept outside this repository; "
        "put the project's shared/ folder (or a symlink to it) beside the "
        "repository, so that ../shared/fixtures/ holds them"
    )


def load_recording(name: str, directory: Path = RECORDINGS) -> Any:
    """The JSON recording ``name``; skips (or fails, when required) if absent."""
    path = directory / name
    if not path.is_file():
        reason = missing_recording_reason(directory)
        if os.environ.get(REQUIRE_RECORDINGS, "") not in ("", "0"):
            pytest.fail(f"{REQUIRE_RECORDINGS} is set and {name} is missing: {reason}")
        pytest.skip(reason)
    return json.loads(path.read_text())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say once, at the end, why the recording tests were skipped."""
    reason = missing_recording_reason()
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if reason in str(getattr(report, "longrepr", ""))
    ]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} tests skipped: {reason}", yellow=True)


@pytest.fixture(scope="session")
def kraken_recording() -> Callable[[str], Any]:
    """``kraken_recording(name)``: a recorded Kraken session, or a skip."""
    return load_recording
