"""Building v1 requests, without I/O: argument checks and the wire message.

Each function returns a :class:`~kraky_anyio.requests.Request` that is not yet
registered; :class:`~kraky_anyio.v1.protocol.KrakenProtocol` registers it.
Bad arguments raise ``TypeError``/``ValueError`` before anything is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..requests import DEFERRED_TOKEN, Request
from ..trading import ORDER_REPLY_EVENTS
from .subscriptions import is_private, subscription_key

__all__ = [
    "DEFERRED_TOKEN",
    "check_subscription",
    "normalise_pairs",
    "order_request",
    "ping_request",
    "subscription_request",
    "token_slot_of",
]


def check_subscription(subscription: object) -> dict[str, Any]:
    """A copy of ``subscription`` if it is a valid v1 subscription dict."""
    if not isinstance(subscription, Mapping):
        raise TypeError("subscription must be a dict such as {'name': 'ticker'}")
    sub = dict(subscription)
    name = sub.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("subscription needs a non-empty string 'name'")
    for opt in ("depth", "interval"):
        if opt in sub and (isinstance(sub[opt], bool) or not isinstance(sub[opt], int)):
            raise TypeError(f"subscription {opt} must be an int")
    if "token" in sub and (not isinstance(sub["token"], str) or not sub["token"]):
        raise TypeError("a subscription's token must be a non-empty str")
    return sub


def normalise_pairs(pair: str | Iterable[str] | None) -> list[str] | None:
    """``"XBT/USD"`` → ``["XBT/USD"]``; lists are checked; ``None`` stays."""
    if pair is None:
        return None
    pairs = [pair] if isinstance(pair, str) else list(pair)
    if not pairs:
        raise ValueError("pair must name at least one pair")
    for p in pairs:
        if not isinstance(p, str) or not p:
            raise TypeError(f"each pair must be a non-empty str, got {p!r}")
    if len(set(pairs)) != len(pairs):
        raise ValueError("pair lists a pair twice")
    return pairs


def token_slot_of(message: dict[str, Any]) -> dict[str, Any] | None:
    """The dict whose ``token`` the writer fills in, if it was deferred."""
    sub = message.get("subscription")
    holder = sub if isinstance(sub, dict) else message
    return holder if holder.get("token") == DEFERRED_TOKEN else None


def ping_request(reqid: int, *, internal: bool = False) -> Request:
    return Request(reqid, "ping", "pong", {"event": "ping", "reqid": reqid}, 1, internal=internal)


def subscription_request(
    event: str,
    sub: dict[str, Any],
    pairs: list[str] | None,
    reqid: int,
    token: str | None,
    *,
    replay: bool = False,
) -> Request:
    """A ``subscribe``/``unsubscribe`` of ``sub`` (checked) for ``pairs``.
    ``token`` is used for a private channel whose ``sub`` has none."""
    private = is_private(sub)
    if private and pairs is not None:
        raise ValueError(f"{sub['name']} is a private channel: it takes no pair")
    if not private and pairs is None:
        raise ValueError(f"{sub['name']} needs pair=[...]")
    wire_sub = dict(sub)
    if private:
        tok = sub.get("token") or token
        if not tok:
            raise ValueError(f"{sub['name']} needs a token (pass token= to open_kraken)")
        wire_sub["token"] = tok
    else:
        wire_sub.pop("token", None)
    msg: dict[str, Any] = {"event": event, "reqid": reqid, "subscription": wire_sub}
    if pairs is not None:
        msg["pair"] = list(pairs)
    targets: list[str | None] = list(pairs) if pairs is not None else [None]
    return Request(
        reqid,
        event,
        "subscriptionStatus",
        msg,
        len(targets),
        targets,
        subscription_key(sub),
        internal=replay,
        replay=replay,
        token_slot=token_slot_of(msg),
    )


def order_request(message: Mapping[str, Any], expected: int, reqid: int) -> Request:
    """An order event built by :mod:`kraky_anyio.trading`, with ``reqid``."""
    event = message.get("event")
    if not isinstance(event, str) or event not in ORDER_REPLY_EVENTS:
        raise ValueError(f"not an order event: {event!r}")
    msg = dict(message)
    msg["reqid"] = reqid
    return Request(
        reqid, event, ORDER_REPLY_EVENTS[event], msg, expected, token_slot=token_slot_of(msg)
    )
