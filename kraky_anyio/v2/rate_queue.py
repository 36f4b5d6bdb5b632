"""First come, first served, per pair: the order in which callers waiting for
order rate room are admitted. No I/O.

A caller joins the queue of every pair its charge touches and may go only
when it is first in each of them, so callers on one pair never overtake each
other (nor, between two checks, take the room a caller before them waits
for), and a caller on another pair is never held up. Since every queue is in
arrival order, the earliest caller is first in all of its queues: nobody
waits on a cycle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .rate_budget import Charge

__all__ = ["PairQueues", "Ticket"]


class Ticket:
    """A caller's place in the queues. ``signal`` belongs to the async side
    (what wakes the caller); nothing here touches it."""

    __slots__ = ("charge", "signal")

    def __init__(self, charge: Charge) -> None:
        self.charge = charge
        self.signal: Any = None


class PairQueues:
    """One queue of waiting tickets per pair."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Ticket]] = {}

    def join(self, charge: Charge) -> Ticket:
        """Queue a caller behind those already waiting on ``charge``'s pairs."""
        ticket = Ticket(charge)
        for pair in charge.costs:
            self._queues.setdefault(pair, deque()).append(ticket)
        return ticket

    def first(self, ticket: Ticket) -> bool:
        """True when nobody queued earlier waits on any of ``ticket``'s pairs."""
        return all(self._queues[p][0] is ticket for p in ticket.charge.costs)

    def leave(self, ticket: Ticket) -> list[Ticket]:
        """Take ``ticket`` out of its queues (admitted or given up); returns
        the tickets that became first in a queue (to wake)."""
        woken: list[Ticket] = []
        for pair in ticket.charge.costs:
            queue = self._queues.get(pair)
            if not queue or ticket not in queue:
                continue
            was_first = queue[0] is ticket
            queue.remove(ticket)
            if not queue:
                del self._queues[pair]
            elif was_first and queue[0] not in woken:
                woken.append(queue[0])
        return woken

    def heads(self, pairs: Iterable[str]) -> list[Ticket]:
        """The first ticket of each of ``pairs`` (to wake after a change)."""
        return [q[0] for p in pairs if (q := self._queues.get(p))]

    def waiting(self, pair: str) -> int:
        """How many callers wait on ``pair``."""
        return len(self._queues.get(pair, ()))
