"""Tests for kraky_anyio.subscriptions: keys, channel names and the registry's
lifecycle (pending, live, unsubscribed, lost socket, replay plan)."""

from __future__ import annotations

from typing import Any

import pytest

from kraky_anyio.subscriptions import (
    PRIVATE_CHANNELS,
    SubscriptionRegistry,
    channel_name,
    is_private,
    normalise,
    subscription_key,
)

TICKER = {"name": "ticker"}
BOOK = {"name": "book"}
K_TICKER = subscription_key(TICKER)
K_BOOK = subscription_key(BOOK)
K_OWN = subscription_key({"name": "ownTrades"})


def state(reg: SubscriptionRegistry, key: str, pair: str | None) -> str:
    e = reg.entry(key, pair)
    if e is None:
        return "absent"
    if e.live:
        return "live"
    return f"pending{e.pending}"


def plan(reg: SubscriptionRegistry) -> list[tuple[str, list[str | None]]]:
    return [(subscription_key(sub), pairs) for sub, pairs in reg.replay_plan()]


# --------------------------------------------------------------------------- normalise / keys


def test_normalise_fills_kraken_defaults() -> None:
    assert normalise({"name": "book"}) == {"name": "book", "depth": 10}
    assert normalise({"name": "ohlc"}) == {"name": "ohlc", "interval": 1}
    assert normalise({"name": "ticker"}) == {"name": "ticker"}


def test_normalise_keeps_explicit_values_and_drops_the_token() -> None:
    assert normalise({"name": "book", "depth": 25}) == {"name": "book", "depth": 25}
    assert normalise({"name": "ohlc", "interval": 5}) == {"name": "ohlc", "interval": 5}
    assert normalise({"name": "ownTrades", "token": "T", "snapshot": False}) == {
        "name": "ownTrades",
        "snapshot": False,
    }


def test_normalise_does_not_mutate_its_argument() -> None:
    sub = {"name": "book", "token": "T"}
    normalise(sub)
    assert sub == {"name": "book", "token": "T"}


@pytest.mark.parametrize("bad", [{}, {"name": ""}, {"name": None}, {"depth": 10}])
def test_normalise_needs_a_name(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="name"):
        normalise(bad)


def test_keys_equal_for_defaulted_and_explicit_depth() -> None:
    assert subscription_key({"name": "book"}) == subscription_key({"name": "book", "depth": 10})
    assert subscription_key({"name": "ohlc"}) == subscription_key({"name": "ohlc", "interval": 1})


def test_keys_differ_for_different_options() -> None:
    keys = {
        subscription_key(s)
        for s in (
            {"name": "book"},
            {"name": "book", "depth": 25},
            {"name": "ohlc"},
            {"name": "ohlc", "interval": 5},
            {"name": "ticker"},
            {"name": "trade"},
        )
    }
    assert len(keys) == 6


def test_key_ignores_token_and_key_order() -> None:
    a = subscription_key({"name": "ownTrades", "token": "A", "snapshot": False})
    b = subscription_key({"snapshot": False, "token": "B", "name": "ownTrades"})
    assert a == b
    assert "A" not in a and "token" not in a
    assert hash(a) == hash(b)


@pytest.mark.parametrize(
    ("sub", "name"),
    [
        ({"name": "book"}, "book-10"),
        ({"name": "book", "depth": 1000}, "book-1000"),
        ({"name": "ohlc"}, "ohlc-1"),
        ({"name": "ohlc", "interval": 5}, "ohlc-5"),
        ({"name": "ticker"}, "ticker"),
        ({"name": "trade"}, "trade"),
        ({"name": "spread"}, "spread"),
        ({"name": "ownTrades", "token": "T"}, "ownTrades"),
        ({"name": "openOrders"}, "openOrders"),
    ],
)
def test_channel_name(sub: dict[str, Any], name: str) -> None:
    assert channel_name(sub) == name


def test_is_private() -> None:
    assert {"ownTrades", "openOrders"} == PRIVATE_CHANNELS
    assert is_private({"name": "ownTrades"}) and is_private({"name": "openOrders"})
    assert not is_private({"name": "ticker"}) and not is_private({})


# --------------------------------------------------------------------------- lifecycle


def test_subscribe_asked_is_pending_not_live_not_replayed() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    assert state(reg, K_TICKER, "XBT/USD") == "pending1"
    assert reg.live() == [] and reg.replay_plan() == []
    assert len(reg) == 1


def test_subscribed_makes_it_live_and_replayed() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD", "ETH/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    assert state(reg, K_TICKER, "XBT/USD") == "live"
    assert state(reg, K_TICKER, "ETH/USD") == "pending1"
    assert plan(reg) == [(K_TICKER, ["XBT/USD"])]
    assert [e.pair for e in reg.live()] == ["XBT/USD"]


def test_error_drops_a_pending_entry() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=False)
    assert state(reg, K_TICKER, "XBT/USD") == "absent"
    assert len(reg) == 0


def test_error_keeps_a_live_entry_live() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])  # "Already subscribed"
    assert state(reg, K_TICKER, "XBT/USD") == "live"
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=False)
    assert state(reg, K_TICKER, "XBT/USD") == "live"
    assert reg.entry(K_TICKER, "XBT/USD").pending == 0  # type: ignore[union-attr]


def test_two_subscribes_in_flight_need_both_replies() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=False)
    assert state(reg, K_TICKER, "XBT/USD") == "pending1"  # still waiting for the other
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    assert state(reg, K_TICKER, "XBT/USD") == "live"


def test_unsubscribe_leaves_the_replay_set_at_once() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD", "ETH/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    reg.subscribe_settled(K_TICKER, "ETH/USD", accepted=True)
    reg.unsubscribe(K_TICKER, ["XBT/USD"])
    assert state(reg, K_TICKER, "XBT/USD") == "absent"
    assert plan(reg) == [(K_TICKER, ["ETH/USD"])]


def test_unsubscribe_while_pending_and_a_late_subscribed() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    reg.unsubscribe(K_TICKER, ["XBT/USD"])
    assert reg.replay_plan() == [] and reg.live() == []
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)  # the late reply
    assert reg.replay_plan() == [] and reg.live() == []
    assert len(reg) == 0


def test_resubscribe_after_unsubscribe_is_wanted_again() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    reg.unsubscribe(K_TICKER, ["XBT/USD"])
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    assert state(reg, K_TICKER, "XBT/USD") == "live"


def test_unsubscribe_then_resubscribe_needs_a_new_reply_to_be_live() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])  # in flight: keeps the entry
    reg.unsubscribe(K_TICKER, ["XBT/USD"])
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])  # wanted again...
    assert reg.live() == [] and reg.replay_plan() == []  # ...but not live before a reply
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=False)  # the first one
    assert reg.live() == []
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)  # the new one
    assert state(reg, K_TICKER, "XBT/USD") == "live"


def test_unsubscribe_of_unknown_entry_is_harmless() -> None:
    reg = SubscriptionRegistry()
    reg.unsubscribe(K_TICKER, ["XBT/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    reg.replay_failed(K_TICKER, "XBT/USD")
    assert len(reg) == 0


def test_connection_lost_drops_pending_and_keeps_live() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD", "ETH/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])  # re-subscribe in flight
    reg.connection_lost()
    assert state(reg, K_TICKER, "XBT/USD") == "live"
    assert reg.entry(K_TICKER, "XBT/USD").pending == 0  # type: ignore[union-attr]
    assert state(reg, K_TICKER, "ETH/USD") == "absent"
    assert plan(reg) == [(K_TICKER, ["XBT/USD"])]


def test_abandoned_subscribe_rolls_back() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD", "ETH/USD"])
    reg.subscribe_abandoned(K_TICKER, ["XBT/USD", "ETH/USD"])
    assert state(reg, K_TICKER, "XBT/USD") == "live"
    assert reg.entry(K_TICKER, "XBT/USD").pending == 0  # type: ignore[union-attr]
    assert state(reg, K_TICKER, "ETH/USD") == "absent"


def test_replay_failed_removes_a_live_entry_for_good() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD"])
    reg.subscribe_settled(K_TICKER, "XBT/USD", accepted=True)
    reg.replay_failed(K_TICKER, "XBT/USD")
    assert state(reg, K_TICKER, "XBT/USD") == "absent"
    assert reg.replay_plan() == []


def test_private_entry_has_pair_none() -> None:
    reg = SubscriptionRegistry()
    reg.subscribe_sent(K_OWN, normalise({"name": "ownTrades", "token": "T"}), [None])
    reg.subscribe_settled(K_OWN, None, accepted=True)
    assert reg.replay_plan() == [({"name": "ownTrades"}, [None])]


# --------------------------------------------------------------------------- replay plan


def test_replay_plan_groups_pairs_per_subscription_in_order() -> None:
    reg = SubscriptionRegistry()
    book10 = normalise(BOOK)
    book25 = normalise({"name": "book", "depth": 25})
    k25 = subscription_key(book25)
    reg.subscribe_sent(K_BOOK, book10, ["XBT/USD"])
    reg.subscribe_sent(K_TICKER, normalise(TICKER), ["XBT/USD", "ETH/USD"])
    reg.subscribe_sent(k25, book25, ["XBT/USD"])
    reg.subscribe_sent(K_BOOK, book10, ["ETH/USD", "DOT/USD"])
    for key, pair in [
        (K_BOOK, "XBT/USD"),
        (K_TICKER, "XBT/USD"),
        (K_TICKER, "ETH/USD"),
        (k25, "XBT/USD"),
        (K_BOOK, "ETH/USD"),
        # DOT/USD stays pending: not in the plan
    ]:
        reg.subscribe_settled(key, pair, accepted=True)
    assert reg.replay_plan() == [
        ({"name": "book", "depth": 10}, ["XBT/USD", "ETH/USD"]),
        ({"name": "ticker"}, ["XBT/USD", "ETH/USD"]),
        ({"name": "book", "depth": 25}, ["XBT/USD"]),
    ]
    assert sum(len(pairs) for _, pairs in reg.replay_plan()) == len(reg.live()) == 5


def test_replay_plan_of_an_empty_registry() -> None:
    assert SubscriptionRegistry().replay_plan() == []
