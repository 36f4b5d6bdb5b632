"""Kraken's order rate rules as published (../shared/kraken-ws-v2.md, "Rate limits")."""

from __future__ import annotations

import pytest

from kraky_anyio.v2.rate_rules import TIERS, action_cost, cost_changes_in, decayed, tier


def test_tiers_are_krakens() -> None:
    assert {(t.name, t.ceiling, t.decay) for t in TIERS.values()} == {
        ("starter", 60, 1.0),
        ("intermediate", 125, 2.34),
        ("pro", 180, 3.75),
    }
    assert tier("pro").ceiling == 180
    with pytest.raises(ValueError, match="starter, intermediate, pro"):
        tier("gold")


@pytest.mark.parametrize(
    ("action", "age", "cost"),
    [
        ("add", None, 1),
        ("add", 0.0, 1),
        ("amend", 0.0, 4),
        ("amend", 4.99, 4),
        ("amend", 5.0, 3),
        ("amend", 9.9, 3),
        ("amend", 10.0, 2),
        ("amend", 15.0, 1),
        ("edit", 1.0, 7),
        ("edit", 5.0, 6),
        ("edit", 10.0, 5),
        ("edit", 15.0, 3),
        ("edit", 45.0, 2),
        ("edit", 90.0, 1),
        ("cancel", 0.0, 8),
        ("cancel", 5.0, 6),
        ("cancel", 10.0, 5),
        ("cancel", 15.0, 4),
        ("cancel", 45.0, 2),
        ("cancel", 90.0, 1),
        ("cancel", 299.0, 1),
        ("cancel", 300.0, 0),
        ("cancel", None, 8),
        ("edit", None, 7),
        ("amend", None, 4),
    ],
)
def test_costs(action: str, age: float | None, cost: int) -> None:
    assert action_cost(action, age) == cost  # type: ignore[arg-type]


def test_unknown_action_refused() -> None:
    with pytest.raises(ValueError, match="add, amend, edit, cancel"):
        action_cost("batch", 1.0)  # type: ignore[arg-type]


def test_decay_never_below_zero() -> None:
    assert decayed(10.0, 2.34, 1.0) == pytest.approx(7.66)
    assert decayed(3.0, 3.75, 10.0) == 0.0
    assert decayed(3.0, 1.0, -5.0) == 3.0


def test_when_a_cost_next_drops() -> None:
    assert cost_changes_in("cancel", 0.0) == 5.0
    assert cost_changes_in("cancel", 7.5) == 2.5
    assert cost_changes_in("cancel", 299.0) == 1.0
    assert cost_changes_in("cancel", 300.0) is None
    assert cost_changes_in("amend", 14.0) == 1.0
    assert cost_changes_in("amend", 15.0) is None
    assert cost_changes_in("edit", 89.5) == 0.5
    assert cost_changes_in("add", 0.0) is None
    assert cost_changes_in("cancel", None) is None
    for age in (0.0, 4.9, 5.0, 44.0, 299.9):
        step = cost_changes_in("cancel", age)
        assert step is not None
        assert action_cost("cancel", age + step) < action_cost("cancel", age)
        assert action_cost("cancel", age + step * 0.999) == action_cost("cancel", age)
    with pytest.raises(ValueError, match="add, amend, edit, cancel"):
        cost_changes_in("batch", 1.0)  # type: ignore[arg-type]
