"""Private feeds' sequence numbers (``openOrders``, ``ownTrades``), without I/O.

Each private message carries ``{"sequence": N}``. A gap (lost messages) or a
restart means the local view may be wrong: :meth:`PrivateFeeds.check` returns
a :class:`~kraky_anyio.notices.SequenceGap` and marks the channel as
resyncing; its numbers are not judged again until the fresh subscription is
confirmed (:meth:`PrivateFeeds.resubscribed`), so the old feed's tail cannot
trigger a second resync.
"""

from __future__ import annotations

import logging
from typing import Any

from ..notices import SequenceGap
from ..sequence import SequenceStatus, SequenceTracker
from ..stats import Stats
from .subscriptions import PRIVATE_CHANNELS

log = logging.getLogger("kraky_anyio")

__all__ = ["PrivateFeeds"]


class PrivateFeeds:
    """Sequence state of the private channels of one logical connection."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self.tracker = SequenceTracker()
        self._resyncing: set[str] = set()

    def check(self, msg: list[Any]) -> SequenceGap | None:
        """Judge one private message ``[payload, channel, {"sequence": N}]``."""
        channel = msg[1]
        if channel not in PRIVATE_CHANNELS or channel in self._resyncing:
            return None
        seq = msg[2].get("sequence")
        if isinstance(seq, bool) or not isinstance(seq, int):
            return None
        check = self.tracker.observe(channel, seq)
        if check.status not in (SequenceStatus.GAP, SequenceStatus.RESTART):
            return None
        self._stats.sequence_gaps += 1
        self._resyncing.add(channel)
        log.warning("%s: sequence %d after %s: resubscribing", channel, seq, check.expected)
        return SequenceGap(channel, check.expected, seq, check.missing)

    def resubscribed(self, channel: object) -> None:
        """The resubscribe of ``channel`` was accepted: count afresh."""
        if isinstance(channel, str) and channel in self._resyncing:
            self._resyncing.discard(channel)
            self.tracker.reset(channel)

    def reset(self) -> None:
        """A new socket: every count starts again."""
        self.tracker.reset()
        self._resyncing.clear()
