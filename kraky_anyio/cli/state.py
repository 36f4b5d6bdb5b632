"""What the command line shows and enforces about the connection: its state
(connecting, attempt N, next try in N s, disconnected since) and the
``--max-attempts`` / ``--timeout`` limits."""

from __future__ import annotations

import time

import anyio

from ..connection import KrakenConnection
from ..status import ConnectionStatus
from ..v2.connection import KrakenV2Connection

#: A v1 or a v2 connection: both have ``status``, ``url`` and ``stats``.
AnyConnection = KrakenConnection | KrakenV2Connection

#: How often the limits are checked (seconds).
POLL = 0.1


class CommandError(Exception):
    """A failure the command line reports as one line on stderr, exit 1."""


class UsageError(CommandError):
    """Bad input found after parsing (a refused option, a missing key): exit 2."""


class StateTracker:
    """Reads the connection's :class:`~kraky_anyio.ConnectionStatus` for the
    views and the limits."""

    def __init__(self, conn: AnyConnection) -> None:
        self.conn = conn

    def read(self) -> ConnectionStatus:
        return self.conn.status


async def enforce_limits(
    tracker: StateTracker, max_attempts: int | None, down_for: float | None
) -> None:
    """Raise :class:`CommandError` once ``max_attempts`` attempts in a row
    failed or the connection was down ``down_for`` seconds; runs until
    cancelled otherwise."""
    if max_attempts is None and down_for is None:
        return
    url = tracker.conn.url
    while True:
        state = tracker.read()
        why = f": {state.last_error}" if state.last_error else ""
        if max_attempts is not None and state.attempt >= max_attempts:
            raise CommandError(
                f"gave up after {state.attempt} failed connection attempts to {url}{why}"
            )
        since = state.disconnected_since
        if down_for is not None and since is not None and anyio.current_time() - since >= down_for:
            raise CommandError(f"no connection to {url} for {down_for:g} s{why}")
        await anyio.sleep(POLL)


def wall_clock(at: float) -> str:
    """``at`` (anyio's clock) as the local wall-clock time ``HH:MM:SS``."""
    wall = time.time() - (anyio.current_time() - at)
    return time.strftime("%H:%M:%S", time.localtime(wall))


def describe(state: ConnectionStatus) -> str:
    """One line: ``connecting · attempt 3 · next try in 4 s · disconnected since 12:00:01``."""
    if state.state == "connected":
        return "connected"
    now = anyio.current_time()
    parts = ["closed" if state.state == "closed" else "connecting"]
    if state.attempt:
        parts.append(f"attempt {state.attempt + 1}")
    if state.next_attempt_at is not None and state.next_attempt_at > now:
        parts.append(f"next try in {state.next_attempt_at - now:.0f} s")
    if state.disconnected_since is not None:
        down = now - state.disconnected_since
        parts.append(f"disconnected since {wall_clock(state.disconnected_since)} ({down:.0f} s)")
    if state.last_error:
        parts.append(f"last error: {state.last_error}")
    return " · ".join(parts)
