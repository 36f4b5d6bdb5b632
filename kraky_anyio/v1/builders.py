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
    "check_raw",
    "check_subscription",
    "check_subscription_args",
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


def check_subscription_args(
    subscription: object, pair: str | Iterable[str] | None
) -> tuple[dict[str, Any], list[str] | None]:
    """The checked subscription and pairs: a private channel takes no pair, a
    public one needs at least one. Kraken v1 has no "every pair" subscribe: a
    public subscribe without ``pair`` (which kraky sent as given) is answered
    ``Pair(s) not found``, so it is refused here, naming the right spelling."""
    sub = check_subscription(subscription)
    pairs = normalise_pairs(pair)
    name = sub["name"]
    if is_private(sub) and pairs is not None:
        raise ValueError(f"{name} is a private channel: it takes no pair (leave pair=None)")
    if not is_private(sub) and pairs is None:
        raise ValueError(
            f"{name} is a public channel: it needs pair=[...], e.g. "
            f"subscribe({{'name': {name!r}}}, pair=['XBT/USD']); Kraken v1 has no "
            "all-pairs subscribe (without pairs it answers 'Pair(s) not found')"
        )
    return sub, pairs


def check_raw(message: object) -> str:
    """The event of a raw request (``request_raw``), if it may be sent raw.
    ``subscribe``/``unsubscribe`` may not: the replay set must see them."""
    if not isinstance(message, Mapping):
        raise TypeError("message must be a dict such as {'event': 'ping'}")
    event = message.get("event")
    if not isinstance(event, str) or not event:
        raise ValueError("message needs a non-empty string 'event'")
    if event in ("subscribe", "unsubscribe"):
        raise ValueError(f"use subscribe()/unsubscribe() for {event}: they keep the replay set")
    return event


def token_slot_of(message: dict[str, Any]) -> dict[str, Any] | None:
    """The dict whose ``token`` the writer fills in, if it was deferred."""
    sub = message.get("subscription")
    holder = sub if isinstance(sub, dict) else message
    return holder if holder.get("token") == DEFERRED_TOKEN else None


def ping_request(reqid: int, *, internal: bool = False, numbered: bool = True) -> Request:
    """A ``ping``; not ``numbered``: the frame carries no ``reqid`` (``reqid``
    is only its key) and the first pong without one answers it."""
    msg: dict[str, Any] = {"event": "ping", "reqid": reqid} if numbered else {"event": "ping"}
    return Request(reqid, "ping", "pong", msg, 1, internal=internal, numbered=numbered)


def subscription_request(
    event: str,
    sub: dict[str, Any],
    pairs: list[str] | None,
    reqid: int,
    token: str | None,
    *,
    replay: bool = False,
    numbered: bool = True,
) -> Request:
    """A ``subscribe``/``unsubscribe`` of ``sub`` for ``pairs`` (both checked
    by :func:`check_subscription_args`). ``token`` is used for a private
    channel whose ``sub`` has none. Not ``numbered``: the frame carries no
    ``reqid`` (``reqid`` is only the request's key in its table) and its
    replies are matched by channel and pair."""
    private = is_private(sub)
    wire_sub = dict(sub)
    if private:
        tok = sub.get("token") or token
        if not tok:
            raise ValueError(f"{sub['name']} needs a token (pass token= to open_kraken)")
        wire_sub["token"] = tok
    else:
        wire_sub.pop("token", None)
    msg: dict[str, Any] = {"event": event, "subscription": wire_sub}
    if numbered:
        msg["reqid"] = reqid
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
        numbered=numbered,
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
