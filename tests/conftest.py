"""Shared fixtures: every async test runs on asyncio and on trio, both on
virtual time (trio's MockClock with autojump; looptime's event loop on
asyncio), so backoff, liveness and timeouts run in milliseconds."""

from __future__ import annotations

import asyncio
from typing import Any

import looptime
import pytest
import trio.testing


def _looptime_loop() -> asyncio.AbstractEventLoop:
    cls = looptime.make_event_loop_class(asyncio.SelectorEventLoop)
    loop: asyncio.AbstractEventLoop = cls()
    return loop


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    if request.param == "trio":
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    return ("asyncio", {"loop_factory": _looptime_loop})
