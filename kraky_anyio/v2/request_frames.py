"""How a v2 request looks before it is encoded: the envelope and the
subscription requests (no I/O).

:func:`envelope` is Kraken's request envelope ``{"method", "params"?,
"req_id"}``; :func:`subscription_request` wraps a checked subscribe or
unsubscribe as a :class:`~kraky_anyio.requests.Request` answered once per
symbol; :func:`checked_params` checks a call's parameters and adds the
connection's token where the channel needs one. Used by
:class:`~kraky_anyio.v2.protocol.KrakenV2Protocol` and its private-feed
resyncs (:mod:`.private_feeds`).
"""

from __future__ import annotations

from typing import Any

from ..requests import DEFERRED_TOKEN, Request
from .params import subscription_params
from .subscriptions import needs_token, subscription_key

__all__ = ["checked_params", "envelope", "subscription_request"]


def envelope(method: str, params: dict[str, Any] | None, req_id: int) -> dict[str, Any]:
    """The request envelope (``params`` left out when None)."""
    msg: dict[str, Any] = {"method": method, "req_id": req_id}
    if params is not None:
        msg["params"] = params
    return msg


def checked_params(
    channel: str, symbols: object, given: dict[str, Any], default_token: str | None
) -> dict[str, Any]:
    """The checked wire ``params`` of a (un)subscribe, the connection's
    token added where the channel needs one and none was given. Raises
    ``ValueError``/``TypeError`` like :func:`~.params.subscription_params`."""
    if (
        isinstance(channel, str)
        and needs_token(channel)
        and "token" not in given
        and default_token is not None
    ):
        given = {**given, "token": default_token}
    return subscription_params(channel, symbols, **given)


def subscription_request(
    method: str, wire: dict[str, Any], req_id: int, replay: bool = False
) -> Request:
    """A subscribe/unsubscribe of checked ``wire`` params: one part per
    symbol (one ``None`` part for a channel without symbols); a deferred
    token is filled in by the writer."""
    symbols: list[str] | None = wire.get("symbol")
    parts: list[Any] = list(symbols) if symbols else [None]
    slot = wire if wire.get("token") == DEFERRED_TOKEN else None
    return Request(
        req_id,
        method,
        method,
        envelope(method, wire, req_id),
        len(parts),
        parts,
        subscription_key(wire),
        internal=replay,
        replay=replay,
        token_slot=slot,
    )
