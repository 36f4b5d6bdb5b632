"""The v1 subscription registry, without I/O: what is live and what to replay.

An entry is one ``(subscription, pair)``; private channels have pair ``None``.
Its :class:`EntryState`, plus ``in_flight`` (subscribe requests not yet
answered for it):

* ``subscribe`` asked: ``PENDING`` (not live, never replayed).
* Kraken answered ``subscribed``: ``LIVE``. Live entries are replayed after a
  reconnect and stay live while their replay is in flight.
* Kraken answered ``error``: a pending entry is dropped; a live one stays live
  (e.g. ``Already subscribed``).
* ``unsubscribe`` asked: ``CANCELLED`` while subscribes are still in flight
  (a late ``subscribed`` does not revive it), else gone: the entry leaves the
  replay set at once, whatever the server answers later.
* The socket is lost: pending entries are dropped (their reply is lost, so the
  caller got an error); live ones wait for replay.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Kraken's defaults, so ``{"name": "book"}`` and ``{"name": "book", "depth": 10}``
#: are one subscription.
_DEFAULTS: dict[str, dict[str, Any]] = {"book": {"depth": 10}, "ohlc": {"interval": 1}}
PRIVATE_CHANNELS = frozenset({"ownTrades", "openOrders"})

SubKey = str  # canonical JSON of the subscription without its token


def normalise(subscription: Mapping[str, Any]) -> dict[str, Any]:
    """The subscription with Kraken's defaults filled in and the token removed."""
    name = subscription.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("subscription needs a non-empty string 'name'")
    out = dict(_DEFAULTS.get(name, {}))
    out.update((k, v) for k, v in subscription.items() if k != "token")
    return out


def subscription_key(subscription: Mapping[str, Any]) -> SubKey:
    """A hashable identity for a subscription (token excluded)."""
    return json.dumps(normalise(subscription), sort_keys=True, separators=(",", ":"))


def channel_name(subscription: Mapping[str, Any]) -> str:
    """The ``channelName`` Kraken uses in data for this subscription."""
    sub = normalise(subscription)
    name: str = sub["name"]
    if name == "book":
        return f"book-{sub['depth']}"
    if name == "ohlc":
        return f"ohlc-{sub['interval']}"
    return name


def is_private(subscription: Mapping[str, Any]) -> bool:
    """True for the channels that need a token and take no pair."""
    return subscription.get("name") in PRIVATE_CHANNELS


class EntryState(enum.Enum):
    PENDING = "pending"  # asked for, no ``subscribed`` yet: not replayed
    LIVE = "live"  # Kraken said ``subscribed``: replayed after a reconnect
    CANCELLED = "cancelled"  # unsubscribed while subscribes were in flight


@dataclass
class Entry:
    subscription: dict[str, Any]  # normalised, no token
    pair: str | None
    state: EntryState = EntryState.PENDING
    in_flight: int = 0  # subscribe requests not yet answered for this entry

    @property
    def live(self) -> bool:
        return self.state is EntryState.LIVE

    @property
    def pending(self) -> int:
        """Subscribe requests in flight (the old name of ``in_flight``)."""
        return self.in_flight


class SubscriptionRegistry:
    """Tracks every ``(subscription, pair)`` the user asked for."""

    def __init__(self) -> None:
        self._entries: dict[tuple[SubKey, str | None], Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, key: SubKey, pair: str | None) -> Entry | None:
        return self._entries.get((key, pair))

    def entries(self) -> list[Entry]:
        """Every entry: pending, live and cancelled ones."""
        return list(self._entries.values())

    def live(self) -> list[Entry]:
        """The entries that would be replayed now: live and still wanted."""
        return [e for e in self._entries.values() if e.state is EntryState.LIVE]

    def subscribe_sent(
        self, key: SubKey, subscription: dict[str, Any], pairs: Iterable[str | None]
    ) -> None:
        """A subscribe request was written (or is about to be)."""
        for pair in pairs:
            entry = self._entries.get((key, pair))
            if entry is None:
                entry = self._entries[(key, pair)] = Entry(subscription, pair)
            elif entry.state is EntryState.CANCELLED:
                entry.state = EntryState.PENDING
            entry.in_flight += 1

    def subscribe_abandoned(self, key: SubKey, pairs: Iterable[str | None]) -> None:
        """A subscribe request will never be written (its caller was cancelled)."""
        for pair in pairs:
            entry = self._entries.get((key, pair))
            if entry is not None:
                entry.in_flight -= 1
                self._gc(key, pair, entry)

    def subscribe_settled(self, key: SubKey, pair: str | None, accepted: bool) -> None:
        """Kraken answered a subscribe (or replay) for ``pair``."""
        entry = self._entries.get((key, pair))
        if entry is None:
            return
        entry.in_flight = max(0, entry.in_flight - 1)
        if accepted and entry.state is EntryState.PENDING:
            entry.state = EntryState.LIVE
        self._gc(key, pair, entry)

    def replay_failed(self, key: SubKey, pair: str | None) -> None:
        """Kraken rejected the replay of a live entry: it is gone for good."""
        self._entries.pop((key, pair), None)

    def unsubscribe(self, key: SubKey, pairs: Iterable[str | None]) -> None:
        """The user unsubscribed: the entries leave the replay set at once."""
        for pair in pairs:
            entry = self._entries.get((key, pair))
            if entry is not None:
                entry.state = EntryState.CANCELLED
                self._gc(key, pair, entry)

    def connection_lost(self) -> None:
        """The socket is gone: pending subscribes lost their reply."""
        for (key, pair), entry in list(self._entries.items()):
            entry.in_flight = 0
            self._gc(key, pair, entry)

    def replay_plan(self) -> list[tuple[dict[str, Any], list[str | None]]]:
        """Live entries grouped into as few subscribe requests as possible:
        one per subscription, carrying all its pairs."""
        groups: dict[SubKey, tuple[dict[str, Any], list[str | None]]] = {}
        for (key, pair), entry in self._entries.items():
            if entry.state is EntryState.LIVE:
                groups.setdefault(key, (entry.subscription, []))[1].append(pair)
        return list(groups.values())

    def _gc(self, key: SubKey, pair: str | None, entry: Entry) -> None:
        if entry.in_flight <= 0 and entry.state is not EntryState.LIVE:
            self._entries.pop((key, pair), None)
