"""A snapshot of a connection's state, for live views (``conn.status``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ConnectionState", "ConnectionStatus"]

ConnectionState = Literal["connecting", "connected", "backoff", "closed"]


@dataclass(frozen=True)
class ConnectionStatus:
    """Where the connection is now. Times are on ``anyio.current_time()``.

    ``attempt`` counts the connection attempts that failed in a row since the
    last socket opened (0 once connected); ``next_attempt_at`` is set
    while waiting out a backoff; ``disconnected_since`` while no socket is
    connected (None when connected, and before the first attempt ends);
    ``last_error`` says why the last attempt or socket failed.
    """

    state: ConnectionState
    attempt: int
    next_attempt_at: float | None
    disconnected_since: float | None
    last_error: str | None
