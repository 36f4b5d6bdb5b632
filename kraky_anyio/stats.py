"""The connection's counters (``conn.stats``), and how they add up.

Every counter only grows, for the whole life of the connection (across
sockets). Read them; do not write them (the library's own parts do).

Every frame is accounted for. Two identities hold at every moment (between two
steps of any task), whatever the overflow policy:

**Frames** (the protocol's side)::

    frames_received == binary_frames + malformed_frames
                       + (messages_published - notices_published)

A frame is either ignored with its reason counted, or published to the
fan-out as one message. ``messages_published`` also counts the library's own
notices (``Connected``, ``BookResync``, ...), hence the subtraction.

**Published items** (the fan-out's side)::

    messages_published == messages_unrouted + messages_routed
    consumer_copies    == messages_delivered + messages_dropped_by_overflow
                          + messages_dropped_unread + (copies buffered now)

Each published item reaches no consumer (``messages_unrouted``: none open, or
every open consumer's filter left it out) or at least one
(``messages_routed``). Each consumer that keeps an item gets its own copy
(``consumer_copies``; with one consumer, copies and routed items are the
same), and each copy is either taken by the consumer, dropped with its reason
counted, or still in that consumer's buffer (``len(stream)``). A consumer
failed under ``overflow="fail"`` is no longer open: what is published after
its failure is routed to the others, or counted in ``messages_unrouted``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Stats"]


@dataclass
class Stats:
    """Counters the user can read as ``conn.stats``; they only grow.

    See the module docstring for the identities that tie them together.
    """

    # -- frames (counted by the protocol) ----------------------------------
    #: Every frame received, whatever it held.
    frames_received: int = 0
    #: Frames that were not JSON, or JSON of no Kraken shape: ignored, logged.
    malformed_frames: int = 0
    #: Binary frames (Kraken sends text only): ignored, logged.
    binary_frames: int = 0
    #: Events of an unknown name (still published to consumers).
    unknown_events: int = 0
    #: Replies whose reqid matched no request waiting for that reply.
    unmatched_replies: int = 0
    #: A second reply for a part (pair, symbol) already answered: ignored.
    duplicate_replies: int = 0
    #: Replies to requests already expired from the pending table.
    late_replies: int = 0
    #: Kraken's ``{"Error": ...}`` rate-limit messages (still published).
    rate_limit_errors: int = 0
    #: Replies with ``status: "error"`` and ``error`` events.
    kraken_errors: int = 0

    # -- requests ------------------------------------------------------------
    #: Requests written: the user's, replays and liveness pings.
    requests_sent: int = 0
    #: The user's requests cancelled before they were written (never sent).
    requests_abandoned: int = 0
    #: Requests written on a socket that was lost before their reply.
    replies_lost: int = 0
    #: Requests that got ``ReplyTimeoutError``.
    reply_timeouts: int = 0
    #: Requests whose caller stopped waiting after they were written (timed out
    #: or cancelled), dropped from the pending table (bounded memory).
    requests_expired: int = 0

    # -- sockets -------------------------------------------------------------
    #: Connection attempts started.
    connection_attempts: int = 0
    #: Sockets opened.
    connections: int = 0
    #: Attempts that failed (refused, timed out, handshake error).
    connect_failures: int = 0
    #: Sockets closed, for any reason.
    disconnects: int = 0
    #: Sockets dropped by the watchdog because the server went silent.
    dead_connections: int = 0
    #: Liveness pings sent by the watchdog.
    pings_sent: int = 0
    #: ``(subscription, pair)`` entries sent again in replays.
    replayed: int = 0
    #: Entries that could not be restored (each a ``SubscriptionLost`` notice).
    replay_failures: int = 0
    #: Replayed entries Kraken answered ``rate_limited`` (v2), planned to be
    #: sent again after a delay (each retry logged at warning).
    replay_retries: int = 0
    #: Token provider failures while preparing a replay.
    token_failures: int = 0
    #: Private feed sequence gaps or restarts (each resubscribed).
    sequence_gaps: int = 0

    # -- consumers (counted by the fan-out) ----------------------------------
    #: Items handed to the fan-out, each once: every message the reader passed
    #: on and every notice.
    messages_published: int = 0
    #: The notices among ``messages_published``.
    notices_published: int = 0
    #: Published items that no consumer took: none was open, or every open
    #: consumer's filter left the item out.
    messages_unrouted: int = 0
    #: Published items that at least one consumer took.
    messages_routed: int = 0
    #: One per (item, consumer that kept it), counted when the copy enters
    #: the consumer's buffer or is dropped (while the reader waits for room,
    #: the rest of its batch is not counted yet).
    consumer_copies: int = 0
    #: Copies taken by consumers (iteration, ``batches()``, ``receive_nowait()``).
    messages_delivered: int = 0
    #: Copies that did not fit a consumer under ``overflow="fail"`` (the sum of
    #: each ``ConsumerOverflowError.dropped``).
    messages_dropped_by_overflow: int = 0
    #: Copies a consumer never read: still buffered when it was closed
    #: (``aclose()``, leaving ``async with``, garbage collection), or not yet
    #: buffered when a publish waiting for room was cancelled (closing).
    messages_dropped_unread: int = 0
    #: Consumers failed under ``overflow="fail"``.
    consumer_overflows: int = 0
