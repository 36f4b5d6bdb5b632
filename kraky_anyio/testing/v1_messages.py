"""Kraken Spot WebSocket v1 as the fake exchange writes it: constants, the
``errorMessage`` texts, and small builders for reply shapes.

Texts are Kraken's own where they are known (recorded or documented); the
few the fake had to choose say so. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BOOK_DEPTHS",
    "ERR_ALREADY_SUBSCRIBED",
    "ERR_DEPTH_NOT_INTEGER",
    "ERR_DEPTH_NOT_SUPPORTED",
    "ERR_EVENT_NOT_FOUND",
    "ERR_INTERVAL_NOT_INTEGER",
    "ERR_INTERVAL_NOT_SUPPORTED",
    "ERR_INVALID_SESSION",
    "ERR_INVALID_TOKEN",
    "ERR_MALFORMED",
    "ERR_PAIRS_NOT_FOUND",
    "ERR_PAIR_NOT_ARRAY",
    "ERR_PAIR_NOT_ISO",
    "ERR_PAIR_NOT_SUPPORTED",
    "ERR_PAIR_UNSUPPORTED_FOR_TYPE",
    "ERR_RATE",
    "ERR_REQID",
    "ERR_SUBSCRIPTION_NAME",
    "ERR_SUBSCRIPTION_NOT_FOUND",
    "ERR_SUBSCRIPTION_NOT_OBJECT",
    "ERR_UNKNOWN_METHOD",
    "ERR_UNSUPPORTED_EVENT",
    "FIRST_CONNECTION_ID",
    "MAX_REQID",
    "OHLC_INTERVALS",
    "ORDER_EVENTS",
    "PRIVATE_CHANNELS",
    "PUBLIC_SUBSCRIPTIONS",
    "REQUEST_EVENTS",
    "VERSION",
    "error_event",
    "public_channel",
    "status_event",
    "with_reqid",
]

VERSION = "1.9.1"
#: Connection IDs start here (Kraken's own example, above 2**63, so a client
#: that parses them into a signed 64-bit integer fails in tests).
FIRST_CONNECTION_ID = 13688620010177543517
PUBLIC_SUBSCRIPTIONS = frozenset({"ticker", "ohlc", "trade", "spread", "book"})
PRIVATE_CHANNELS = frozenset({"ownTrades", "openOrders"})
BOOK_DEPTHS = frozenset({10, 25, 100, 500, 1000})
OHLC_INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})
ORDER_EVENTS = frozenset(
    {"addOrder", "editOrder", "cancelOrder", "cancelAll", "cancelAllOrdersAfter"}
)
REQUEST_EVENTS = frozenset({"ping", "subscribe", "unsubscribe"}) | ORDER_EVENTS
#: reqids must be below this (an unsigned 64-bit integer).
MAX_REQID = 2**64

ERR_MALFORMED = "Malformed request"
ERR_EVENT_NOT_FOUND = "Event(s) not found"
ERR_UNSUPPORTED_EVENT = "Unsupported event"
ERR_REQID = "Reqid field must be a positive integer less than 18446744073709551616"
ERR_RATE = "Exceeded msg rate"
ERR_SUBSCRIPTION_NOT_OBJECT = "Subscription field must be an object"
ERR_SUBSCRIPTION_NAME = "Subscription name invalid"
ERR_DEPTH_NOT_INTEGER = "Subscription book depth must be an integer"
ERR_DEPTH_NOT_SUPPORTED = "Subscription depth not supported"
ERR_INTERVAL_NOT_INTEGER = "Subscription ohlc interval must be an integer"
ERR_INTERVAL_NOT_SUPPORTED = "Subscription ohlc interval not supported"
ERR_PAIRS_NOT_FOUND = "Pair(s) not found"
ERR_PAIR_NOT_ARRAY = "Pair field must be an array"
ERR_PAIR_UNSUPPORTED_FOR_TYPE = "Pair field unsupported for this subscription type"
#: Followed by a space and the pair.
ERR_PAIR_NOT_ISO = "Currency pair not in ISO 4217-A3 format"
#: Followed by a space and the pair.
ERR_PAIR_NOT_SUPPORTED = "Currency pair not supported"
ERR_ALREADY_SUBSCRIBED = "Already subscribed"
ERR_SUBSCRIPTION_NOT_FOUND = "Subscription Not Found"
ERR_INVALID_TOKEN = "EGeneral:Invalid arguments:token"
ERR_INVALID_SESSION = "ESession:Invalid session"
ERR_UNKNOWN_METHOD = "EGeneral:Unknown method"


def status_event(event: str) -> str:
    """The reply event of a request event: ``subscriptionStatus`` for
    (un)subscribe, else ``<event>Status``."""
    return "subscriptionStatus" if event in ("subscribe", "unsubscribe") else f"{event}Status"


def with_reqid(message: dict[str, Any], has_reqid: bool, reqid: Any) -> dict[str, Any]:
    """``message`` with ``reqid`` added when the request had one (in place)."""
    if has_reqid:
        message["reqid"] = reqid
    return message


def error_event(text: str, has_reqid: bool = False, reqid: Any = None) -> dict[str, Any]:
    """``{"errorMessage": text, "event": "error"}`` (plus the reqid)."""
    return with_reqid({"errorMessage": text, "event": "error"}, has_reqid, reqid)


def public_channel(name: object, subscription: dict[str, Any]) -> tuple[str, dict[str, Any]] | str:
    """``(channelName, echo)`` for a valid public subscription (``book-25``,
    ``ohlc-5``, ``ticker``...), else the error message."""
    if not isinstance(name, str) or name not in PUBLIC_SUBSCRIPTIONS:
        return ERR_SUBSCRIPTION_NAME
    if name == "book":
        depth = subscription.get("depth", 10)
        if isinstance(depth, bool) or not isinstance(depth, int):
            return ERR_DEPTH_NOT_INTEGER
        if depth not in BOOK_DEPTHS:
            return ERR_DEPTH_NOT_SUPPORTED
        return f"book-{depth}", {"depth": depth, "name": name}
    if name == "ohlc":
        interval = subscription.get("interval", 1)
        if isinstance(interval, bool) or not isinstance(interval, int):
            return ERR_INTERVAL_NOT_INTEGER
        if interval not in OHLC_INTERVALS:
            return ERR_INTERVAL_NOT_SUPPORTED
        return f"ohlc-{interval}", {"interval": interval, "name": name}
    return name, {"name": name}
