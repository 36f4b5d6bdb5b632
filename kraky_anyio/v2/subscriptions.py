"""What makes two v2 requests the same subscription, and what a replay sends.

The registry itself is the shared one
(:class:`kraky_anyio.subscriptions.SubscriptionRegistry`: entries, their
states, the replay set); this module only says how a v2 request maps onto it.
An entry is ``(key, symbol)``; channels without symbols (``instrument``,
``executions``, ``balances``) have symbol ``None``.

The key is the channel and the parameters that select a feed, with Kraken's
defaults filled in (``book``/``level3`` depth 10, ``ticker`` event_trigger
``trades``), so ``subscribe("book", s)`` and ``unsubscribe("book", s,
depth=10)`` name one subscription. Not part of the key: ``symbol``, the
``token`` (never stored in a key or logged) and the parameters that only shape
the first message (``snapshot``, ``snap_orders``, ``snap_trades``). An
unsubscribe names a subscription by the same parameters as its subscribe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from .params import CHANNELS

__all__ = ["SubKey", "needs_token", "replay_params", "subscription_key"]

SubKey = str  # canonical JSON of the identifying parameters

_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "book": {"depth": 10},
    "level3": {"depth": 10},
    "ticker": {"event_trigger": "trades"},
}
#: Parameters that are not part of a subscription's identity.
_NOT_IDENTITY: Final = frozenset({"symbol", "token", "snapshot", "snap_orders", "snap_trades"})


def subscription_key(params: Mapping[str, Any]) -> SubKey:
    """The identity of a checked ``params`` object (see the module text)."""
    channel = params["channel"]
    ident = dict(_DEFAULTS.get(channel, {}))
    ident.update((k, v) for k, v in params.items() if k not in _NOT_IDENTITY)
    return json.dumps(ident, sort_keys=True, separators=(",", ":"))


def replay_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """What a replay sends again, besides the symbols and the token: every
    parameter the user gave (``snapshot`` included: a replay restores the
    feed as it was asked for)."""
    return {k: v for k, v in params.items() if k not in ("symbol", "token")}


def needs_token(channel: str) -> bool:
    """True for the channels whose requests carry ``params.token``."""
    spec = CHANNELS.get(channel)
    return spec is not None and "token" in spec.required
