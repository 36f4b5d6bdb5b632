"""Kraken's order rate counter rules, as data: tiers and per-action costs.

One table for the whole library: the client's :class:`~kraky_anyio.v2.rate_budget.RateBudget`
and the fake exchange's enforcement read it, so they can never disagree
about Kraken's numbers (the tests check the table against Kraken's published
values, ``../shared/kraken-ws-v2.md`` "Rate limits").

The counter is kept **per pair** and shared by REST, WebSocket and FIX. Each
action adds its cost; the counter decays continuously at the tier's rate and
never goes below zero; an action that would take it above the tier's ceiling
is refused with ``EOrder:Rate limit exceeded`` and (our reading of Kraken's
docs) not charged. Costs that depend on an order's age use the time since the
order was *placed* (accepted), in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "ACTIONS",
    "TIERS",
    "Action",
    "Tier",
    "action_cost",
    "cost_changes_in",
    "decayed",
    "tier",
]

Action = Literal["add", "amend", "edit", "cancel"]
ACTIONS: Final[tuple[Action, ...]] = ("add", "amend", "edit", "cancel")


@dataclass(frozen=True)
class Tier:
    """A verification tier's counter: ``ceiling`` and ``decay`` per second."""

    name: str
    ceiling: int
    decay: float


TIERS: Final[dict[str, Tier]] = {
    t.name: t
    for t in (
        Tier("starter", 60, 1.0),
        Tier("intermediate", 125, 2.34),
        Tier("pro", 180, 3.75),
    )
}

# (age below which the penalty applies, in seconds; penalty): first match wins.
_AMEND_PENALTY: Final = ((5.0, 3), (10.0, 2), (15.0, 1))
_EDIT_PENALTY: Final = ((5.0, 6), (10.0, 5), (15.0, 4), (45.0, 2), (90.0, 1))
_CANCEL_COST: Final = ((5.0, 8), (10.0, 6), (15.0, 5), (45.0, 4), (90.0, 2), (300.0, 1))
_BASE: Final[dict[str, int]] = {"add": 1, "amend": 1, "edit": 1, "cancel": 0}
_BY_AGE: Final = {"add": (), "amend": _AMEND_PENALTY, "edit": _EDIT_PENALTY, "cancel": _CANCEL_COST}


def tier(name: str) -> Tier:
    """The tier called ``name`` (``starter``, ``intermediate``, ``pro``);
    ``ValueError`` naming the choices otherwise."""
    found = TIERS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValueError(f"tier must be one of {', '.join(TIERS)}, got {name!r}")
    return found


def action_cost(action: Action, age: float | None) -> int:
    """What ``action`` adds to its pair's counter when the order it touches
    has rested ``age`` seconds (``add`` ignores ``age``). ``age=None`` (an
    order whose placing time is unknown) is charged as the youngest order:
    the cost a client must assume to never cross the ceiling."""
    if action not in _BASE:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    cost = _BASE[action]
    for below, penalty in _BY_AGE[action]:
        if age is None or age < below:
            return cost + penalty
    return cost


def cost_changes_in(action: Action, age: float | None) -> float | None:
    """Seconds until ``action_cost(action, age)`` drops as the order ages
    (None: never; an unknown ``age`` stays priced as the youngest)."""
    if action not in _BASE:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if age is None:
        return None
    for below, _penalty in _BY_AGE[action]:
        if age < below:
            return below - age
    return None


def decayed(count: float, decay: float, elapsed: float) -> float:
    """The counter ``elapsed`` seconds after it stood at ``count``."""
    return max(0.0, count - decay * max(0.0, elapsed))
