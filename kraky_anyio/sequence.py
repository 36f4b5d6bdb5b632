"""Sequence tracking for private feeds (sans-I/O).

Private channel data (``ownTrades``, ``openOrders``) arrive as
``[payload, channelName, {"sequence": N}]`` with ``N`` counting up by one per
message on that channel. :class:`SequenceTracker` checks each message against
the last one seen on its channel and says whether it is in order, follows a
gap (lost messages), restarts the count (a new subscription or connection) or
repeats the last sequence number.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SequenceCheck", "SequenceStatus", "SequenceTracker"]


class SequenceStatus(enum.Enum):
    """How a message's sequence number relates to the previous one on its channel."""

    FIRST = "first"
    """No previous number on this channel (new tracker, or after :meth:`SequenceTracker.reset`)."""
    IN_ORDER = "in_order"
    """Exactly one more than the previous number."""
    GAP = "gap"
    """Larger than expected: ``missing`` messages were lost."""
    RESTART = "restart"
    """Smaller than the previous number: the count started again (e.g. at 1 after
    a reconnect); tracking continues from it."""
    DUPLICATE = "duplicate"
    """Equal to the previous number; the tracker's state is unchanged."""


@dataclass(frozen=True, slots=True)
class SequenceCheck:
    """The verdict on one message.

    ``expected`` is the number that would have been in order (``None`` for
    :attr:`SequenceStatus.FIRST`); ``missing`` is how many numbers were skipped
    (non-zero only for :attr:`SequenceStatus.GAP`).
    """

    channel: str
    sequence: int
    status: SequenceStatus
    missing: int = 0
    expected: int | None = None

    @property
    def ok(self) -> bool:
        """True for :attr:`~SequenceStatus.FIRST` and :attr:`~SequenceStatus.IN_ORDER`."""
        return self.status in (SequenceStatus.FIRST, SequenceStatus.IN_ORDER)


class SequenceTracker:
    """Tracks the last sequence number per private channel name."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def feed(self, message: Sequence[Any]) -> SequenceCheck:
        """Check one private message ``[payload, channelName, {"sequence": N}]``.

        Raises :class:`ValueError` if it is not a 3-element list/tuple whose
        channel name is a non-empty str and whose third element is a dict with
        an int ``sequence`` >= 0; the tracker is then unchanged.
        """
        if not isinstance(message, list | tuple) or len(message) != 3:
            raise ValueError("a private message is a 3-element array [payload, channel, meta]")
        _, channel, meta = message
        if not isinstance(channel, str) or not channel:
            raise ValueError("private message channel name must be a non-empty str")
        if not isinstance(meta, dict):
            raise ValueError(f"private message on {channel!r}: third element is not an object")
        sequence = meta.get("sequence")
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
            raise ValueError(
                f"private message on {channel!r}: 'sequence' must be an int >= 0,"
                f" got {sequence!r:.40}"
            )
        return self.observe(channel, sequence)

    def observe(self, channel: str, sequence: int) -> SequenceCheck:
        """Check ``sequence`` on ``channel`` and record it (unless a duplicate)."""
        last = self._last.get(channel)
        if last is None:
            self._last[channel] = sequence
            return SequenceCheck(channel, sequence, SequenceStatus.FIRST)
        expected = last + 1
        if sequence == last:
            return SequenceCheck(channel, sequence, SequenceStatus.DUPLICATE, expected=expected)
        self._last[channel] = sequence
        if sequence == expected:
            status, missing = SequenceStatus.IN_ORDER, 0
        elif sequence > expected:
            status, missing = SequenceStatus.GAP, sequence - expected
        else:
            status, missing = SequenceStatus.RESTART, 0
        return SequenceCheck(channel, sequence, status, missing, expected)

    def last(self, channel: str) -> int | None:
        """The last sequence number recorded on ``channel``, or ``None``."""
        return self._last.get(channel)

    @property
    def channels(self) -> frozenset[str]:
        """The channels with a recorded sequence number."""
        return frozenset(self._last)

    def reset(self, channel: str | None = None) -> None:
        """Forget ``channel``'s number (all channels if ``None``): its next message is FIRST."""
        if channel is None:
            self._last.clear()
        else:
            self._last.pop(channel, None)

    def __repr__(self) -> str:
        return f"SequenceTracker({self._last!r})"
