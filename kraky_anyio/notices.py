"""Lifecycle notices, delivered in order among Kraken's messages.

Kraken's messages are ``dict`` (events) or ``list`` (channel data); notices are
instances of :class:`Notice`, so ``isinstance(msg, Notice)`` tells them apart
and they can never be mistaken for something Kraken sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Notice:
    """Base class of every notice the library puts into a message stream."""


@dataclass(frozen=True)
class Connected(Notice):
    """A new socket is open. Every message after it comes from that socket.

    ``generation`` counts sockets from 1; ``replayed`` is how many
    ``(subscription, pair)`` entries were re-subscribed on it.
    """

    generation: int
    url: str
    replayed: int


@dataclass(frozen=True)
class Disconnected(Notice):
    """The socket of ``generation`` is gone; no message of it follows.

    ``will_reconnect`` is False when reconnecting is off or the connection is
    being closed. Channel state (books, sequences) must be rebuilt after the
    next :class:`Connected`.
    """

    generation: int
    reason: str
    will_reconnect: bool


@dataclass(frozen=True)
class SubscriptionLost(Notice):
    """A live subscription could not be restored after a reconnect (Kraken
    rejected the replay). It is no longer live and will not be retried."""

    subscription: dict[str, Any]
    pair: str | None
    error_message: str


@dataclass(frozen=True)
class BookResync(Notice):
    """The local book of ``pair`` was dropped and is being rebuilt: after a
    checksum mismatch (``reason="checksum"``) or a reconnect."""

    pair: str
    depth: int
    reason: str


@dataclass(frozen=True)
class SequenceGap(Notice):
    """A private feed (v1 ``openOrders``, ``ownTrades``; v2 ``executions``,
    ``balances``) skipped or restarted its
    ``sequence`` numbers: messages may have been lost. The channel is being
    resubscribed; its next snapshot replaces what you hold.

    ``expected`` is the number that was due, ``got`` the one that came,
    ``missing`` how many were skipped (0 for a restart)."""

    channel: str
    expected: int | None
    got: int
    missing: int
