"""The v1 subscription registry under its old module path (see
:mod:`kraky_anyio.v1.subscriptions`)."""

from __future__ import annotations

from .v1.subscriptions import (
    PRIVATE_CHANNELS,
    Entry,
    EntryState,
    SubKey,
    SubscriptionRegistry,
    channel_name,
    is_private,
    normalise,
    subscription_key,
)

__all__ = [
    "PRIVATE_CHANNELS",
    "Entry",
    "EntryState",
    "SubKey",
    "SubscriptionRegistry",
    "channel_name",
    "is_private",
    "normalise",
    "subscription_key",
]
