"""Tests for kraky_anyio.sequence: private feed sequence tracking."""

from __future__ import annotations

from typing import Any

import pytest

from kraky_anyio.sequence import SequenceCheck, SequenceStatus, SequenceTracker


def msg(channel: str, sequence: Any) -> list[Any]:
    return [[{"O7AIWV-HEBBH-COCEUU": {"status": "open"}}], channel, {"sequence": sequence}]


def test_first_then_in_order() -> None:
    tracker = SequenceTracker()
    first = tracker.feed(msg("openOrders", 1))
    assert first == SequenceCheck("openOrders", 1, SequenceStatus.FIRST, 0, None)
    assert first.ok
    for n in (2, 3, 4):
        check = tracker.feed(msg("openOrders", n))
        assert check == SequenceCheck("openOrders", n, SequenceStatus.IN_ORDER, 0, n)
        assert check.ok
    assert tracker.last("openOrders") == 4


def test_first_message_may_start_anywhere() -> None:
    tracker = SequenceTracker()
    assert tracker.feed(msg("ownTrades", 57)).status is SequenceStatus.FIRST
    assert tracker.feed(msg("ownTrades", 58)).status is SequenceStatus.IN_ORDER


def test_gap() -> None:
    tracker = SequenceTracker()
    tracker.feed(msg("ownTrades", 1))
    tracker.feed(msg("ownTrades", 2))
    check = tracker.feed(msg("ownTrades", 6))
    assert check == SequenceCheck("ownTrades", 6, SequenceStatus.GAP, missing=3, expected=3)
    assert not check.ok
    # tracking continues from the new number
    assert tracker.feed(msg("ownTrades", 7)).status is SequenceStatus.IN_ORDER


def test_restart_after_reconnect() -> None:
    tracker = SequenceTracker()
    for n in (1, 2, 3, 4, 5):
        tracker.feed(msg("openOrders", n))
    check = tracker.feed(msg("openOrders", 1))
    assert check == SequenceCheck("openOrders", 1, SequenceStatus.RESTART, missing=0, expected=6)
    assert not check.ok
    assert tracker.last("openOrders") == 1
    assert tracker.feed(msg("openOrders", 2)).status is SequenceStatus.IN_ORDER


def test_going_back_but_not_to_one_is_a_restart_too() -> None:
    tracker = SequenceTracker()
    tracker.feed(msg("openOrders", 10))
    assert tracker.feed(msg("openOrders", 4)).status is SequenceStatus.RESTART
    assert tracker.feed(msg("openOrders", 5)).status is SequenceStatus.IN_ORDER


def test_duplicate_leaves_state_unchanged() -> None:
    tracker = SequenceTracker()
    tracker.feed(msg("openOrders", 1))
    tracker.feed(msg("openOrders", 2))
    check = tracker.feed(msg("openOrders", 2))
    assert check == SequenceCheck("openOrders", 2, SequenceStatus.DUPLICATE, 0, 3)
    assert not check.ok
    assert tracker.last("openOrders") == 2
    assert tracker.feed(msg("openOrders", 3)).status is SequenceStatus.IN_ORDER


def test_channels_are_independent() -> None:
    tracker = SequenceTracker()
    assert tracker.feed(msg("openOrders", 1)).status is SequenceStatus.FIRST
    assert tracker.feed(msg("ownTrades", 1)).status is SequenceStatus.FIRST
    assert tracker.feed(msg("openOrders", 2)).status is SequenceStatus.IN_ORDER
    assert tracker.feed(msg("ownTrades", 3)).status is SequenceStatus.GAP
    assert tracker.feed(msg("openOrders", 3)).status is SequenceStatus.IN_ORDER
    assert tracker.channels == frozenset({"openOrders", "ownTrades"})
    assert tracker.last("openOrders") == 3
    assert tracker.last("ownTrades") == 3
    assert tracker.last("nothing") is None


def test_reset_one_and_all() -> None:
    tracker = SequenceTracker()
    tracker.feed(msg("openOrders", 5))
    tracker.feed(msg("ownTrades", 5))
    tracker.reset("openOrders")
    assert tracker.channels == frozenset({"ownTrades"})
    assert tracker.feed(msg("openOrders", 1)).status is SequenceStatus.FIRST
    assert tracker.feed(msg("ownTrades", 6)).status is SequenceStatus.IN_ORDER
    tracker.reset("unknown")  # no error
    tracker.reset()
    assert tracker.channels == frozenset()
    assert tracker.feed(msg("ownTrades", 1)).status is SequenceStatus.FIRST


def test_tuple_message_and_observe() -> None:
    tracker = SequenceTracker()
    assert tracker.feed(tuple(msg("ownTrades", 1))).status is SequenceStatus.FIRST
    assert tracker.observe("ownTrades", 2).status is SequenceStatus.IN_ORDER
    assert "ownTrades" in repr(tracker)


@pytest.mark.parametrize(
    "message",
    [
        [[], "openOrders", {"sequence": "3"}],
        [[], "openOrders", {"sequence": 3.0}],
        [[], "openOrders", {"sequence": True}],
        [[], "openOrders", {"sequence": None}],
        [[], "openOrders", {"sequence": -1}],
        [[], "openOrders", {}],
        [[], "openOrders", {"seq": 3}],
        [[], "openOrders", [3]],
        [[], "openOrders", 3],
        [[], "openOrders", None],
        [[], "", {"sequence": 3}],
        [[], 5, {"sequence": 3}],
        [[], "openOrders"],
        [[], "openOrders", {"sequence": 3}, "extra"],
        [0, [], "ticker", "XBT/USD"],
        {"event": "heartbeat"},
        "openOrders",
    ],
)
def test_malformed(message: Any) -> None:
    tracker = SequenceTracker()
    tracker.feed(msg("openOrders", 2))
    with pytest.raises(ValueError):
        tracker.feed(message)
    assert tracker.last("openOrders") == 2  # unchanged
    assert tracker.feed(msg("openOrders", 3)).status is SequenceStatus.IN_ORDER
