"""The counters a connection keeps (``conn.stats``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Stats"]


@dataclass
class Stats:
    """Counters the user can read as ``conn.stats``; they only grow."""

    frames_received: int = 0
    messages_delivered: int = 0
    malformed_frames: int = 0
    binary_frames: int = 0
    unknown_events: int = 0
    unmatched_replies: int = 0
    duplicate_replies: int = 0  # a second reply for a part already answered
    late_replies: int = 0  # replies to requests expired after their timeout
    requests_expired: int = 0  # timed-out requests dropped from the pending table
    rate_limit_errors: int = 0
    kraken_errors: int = 0
    requests_sent: int = 0
    requests_abandoned: int = 0
    replies_lost: int = 0
    reply_timeouts: int = 0
    connection_attempts: int = 0
    connections: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    dead_connections: int = 0
    pings_sent: int = 0
    replayed: int = 0
    replay_failures: int = 0
    token_failures: int = 0
    sequence_gaps: int = 0  # private feed gaps/restarts (each resubscribed)
    consumer_overflows: int = 0
    messages_dropped_by_overflow: int = 0
