"""Kraken's order rate counter as the fake exchange enforces it.

:class:`RateCounter` keeps one counter per account and pair (v2 spelling,
``BTC/USD``), with the ceiling and decay of one tier and the per-action costs
of :mod:`kraky_anyio.v2.rate_rules` (the library's one table: never copied
here). An action that would take its pair's counter above the ceiling is
refused and not charged; any other action is charged, whether or not the
request then validates. Time is the caller's ``now`` (``anyio.current_time()``
clock). Pure, no I/O.
"""

from __future__ import annotations

import math

from ..v2 import rate_rules
from ..v2.rate_rules import Action, Tier

__all__ = ["RateCounter"]

# Floats decay in steps such as 2.34/s: forgive rounding dust at the ceiling.
_EPSILON = 1e-9


class RateCounter:
    """Per ``(account, symbol)`` counters for ``tier`` (a name of
    :data:`~kraky_anyio.v2.rate_rules.TIERS`, or None: nothing is counted
    nor refused). ``ValueError`` for an unknown tier name."""

    def __init__(self, tier: str | None) -> None:
        self.tier: Tier | None = None if tier is None else rate_rules.tier(tier)
        # (account, symbol) -> (count, when it was that count)
        self._counts: dict[tuple[str, str], tuple[float, float]] = {}

    @property
    def ceiling(self) -> int | None:
        """The tier's ceiling (Kraken's ``maxratecount``), or None when off."""
        return None if self.tier is None else self.tier.ceiling

    def count(self, account: str, symbol: str, now: float) -> float:
        """The counter of ``account`` on ``symbol`` at ``now`` (decayed)."""
        if self.tier is None:
            return 0.0
        count, at = self._counts.get((account, symbol), (0.0, now))
        return rate_rules.decayed(count, self.tier.decay, now - at)

    def reported(self, account: str, symbol: str, now: float) -> int:
        """The count as an integer, rounded up (what ``ratecount`` reports:
        never below the true value, so a client that trusts it stays under)."""
        return max(0, math.ceil(self.count(account, symbol, now) - _EPSILON))

    def cost(self, action: Action, age: float | None) -> int:
        """What ``action`` on an order ``age`` seconds old costs."""
        return rate_rules.action_cost(action, age)

    def allows(self, account: str, symbol: str, cost: int, now: float) -> bool:
        """Whether ``cost`` more stays within the ceiling (always, when off)."""
        if self.tier is None:
            return True
        return self.count(account, symbol, now) + cost <= self.tier.ceiling + _EPSILON

    def charge(self, account: str, symbol: str, cost: int, now: float) -> None:
        """Add ``cost`` to the counter (nothing when off)."""
        if self.tier is not None:
            self._counts[(account, symbol)] = (self.count(account, symbol, now) + cost, now)
