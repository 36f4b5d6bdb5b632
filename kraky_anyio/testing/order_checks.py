"""Validating v1 order requests for the matching engine, and its reply shapes.

The checks raise :class:`RequestError` carrying Kraken's ``errorMessage``;
the engine turns it into an ``<event>Status`` error reply. The error texts
are the constants below (Kraken's own, except :data:`ERR_NO_REFERENCE_PRICE`).
Pure functions, no I/O.

The engine (:class:`~kraky_anyio.testing.engine.FakeMatchingEngine`) applies
them to a v1 request as follows.

Validation, in this order, with the reply's ``errorMessage``:

1. :meth:`~kraky_anyio.testing.engine.FakeMatchingEngine.rate_limit_orders`
   in effect: ``"EOrder:Rate limit exceeded"``.
2. The token: missing or empty ``"EGeneral:Invalid arguments:token"``; not
   among the server's ``valid_tokens``, revoked, or expired with
   :meth:`~kraky_anyio.testing.engine.FakeMatchingEngine.expire_token`:
   ``"ESession:Invalid session"``.
3. The system status: ``maintenance`` refuses everything
   (``"EService:Unavailable"``); ``cancel_only`` refuses ``addOrder`` and
   ``editOrder``; ``post_only`` and ``limit_only`` refuse market orders.
4. The fields (see :mod:`~kraky_anyio.testing.order_desk`): a bad one
   ``"EGeneral:Invalid arguments:<field>"``, an unknown pair, a volume under
   the minimum, an order not open in the account.

``validate: "true"`` (or ``true``) answers ``ok`` with ``descr`` but no
``txid``, and changes nothing. ``cancelOrder`` gets one ``cancelOrderStatus``
per txid, in request order, each ``ok`` or ``"EOrder:Unknown order"``; an
error about the whole request (rate limit, token, status) is also repeated
once per txid, so a client waiting for one reply per txid is answered
(Kraken's own behaviour there is unconfirmed). Replies carry the request's
``reqid`` only when it had one; their keys are sorted, like Kraken's.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "ERR_CANCEL_ONLY",
    "ERR_INVALID_ARGUMENTS",
    "ERR_LIMIT_ONLY",
    "ERR_NO_REFERENCE_PRICE",
    "ERR_ORDER_MINIMUM",
    "ERR_POST_ONLY",
    "ERR_RATE_LIMIT",
    "ERR_UNAVAILABLE",
    "ERR_UNKNOWN_ORDER",
    "ERR_UNKNOWN_PAIR",
    "RequestError",
    "check_pair",
    "check_status",
    "decimal_arg",
    "error_reply",
    "invalid",
    "positive_price",
    "reply",
    "userref",
    "validate_only",
]

ERR_UNKNOWN_PAIR = "EQuery:Unknown asset pair"
ERR_ORDER_MINIMUM = "EOrder:Order minimum not met"
ERR_UNKNOWN_ORDER = "EOrder:Unknown order"
ERR_RATE_LIMIT = "EOrder:Rate limit exceeded"
#: Followed by ``:`` and the field name.
ERR_INVALID_ARGUMENTS = "EGeneral:Invalid arguments"
ERR_UNAVAILABLE = "EService:Unavailable"
ERR_CANCEL_ONLY = "EService:Market in cancel_only mode"
ERR_POST_ONLY = "EService:Market in post_only mode"
ERR_LIMIT_ONLY = "EService:Market in limit_only mode"
#: The fake's own message (Kraken always has a market price).
ERR_NO_REFERENCE_PRICE = "EOrder:No market price (fake exchange: no reference price for this pair)"

_DECIMAL_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")


class RequestError(Exception):
    """An ``errorMessage`` for the whole request."""


def invalid(field: str) -> RequestError:
    """``"EGeneral:Invalid arguments:<field>"``."""
    return RequestError(f"{ERR_INVALID_ARGUMENTS}:{field}")


def decimal_arg(value: object) -> Decimal | None:
    """A decimal string as Kraken takes it (``"0.01"``), or None."""
    if not isinstance(value, str) or not _DECIMAL_RE.fullmatch(value):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex only lets decimals through
        return None


def positive_price(value: object) -> Decimal:
    """A reference price given to the engine (``str``/``Decimal``/``int``);
    ``ValueError`` unless a positive finite decimal."""
    price: Decimal | None = None
    if isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
        price = Decimal(value)
    elif isinstance(value, str):
        price = decimal_arg(value)
    if price is None or not price.is_finite() or price <= 0:
        raise ValueError("a reference price must be a positive decimal")
    return price


def check_pair(pair: object, allowed: Collection[str] | None) -> str:
    """``pair`` if spelled ``BASE/QUOTE`` and among ``allowed`` (None: any)."""
    if not isinstance(pair, str) or not pair:
        raise invalid("pair")
    base, _, quote = pair.partition("/")
    if not base or not quote or "/" in quote or (allowed is not None and pair not in allowed):
        raise RequestError(ERR_UNKNOWN_PAIR)
    return pair


def check_status(status: str, event: str) -> None:
    """Refuse what the system status forbids: everything in maintenance,
    new and edited orders in ``cancel_only``."""
    if status == "maintenance":
        raise RequestError(ERR_UNAVAILABLE)
    if status == "cancel_only" and event in ("addOrder", "editOrder"):
        raise RequestError(ERR_CANCEL_ONLY)


def userref(value: object, field: str) -> int:
    """A ``userref``/``newuserref``: an int or a string of digits (0 when absent)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise invalid(field)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise invalid(field)


def validate_only(request: Mapping[str, Any]) -> bool:
    """Whether the request asks to validate only (``validate: "true"`` or ``true``)."""
    return request.get("validate") in ("true", True)


def reply(request: Mapping[str, Any], event: str, **fields: Any) -> dict[str, Any]:
    """A reply with sorted keys (as Kraken's), carrying the request's reqid if any."""
    message: dict[str, Any] = {"event": event, **fields}
    if "reqid" in request:
        message["reqid"] = request["reqid"]
    return dict(sorted(message.items()))


def error_reply(request: Mapping[str, Any], event: str, text: str) -> dict[str, Any]:
    """An ``<event>Status`` error reply."""
    return reply(request, event, errorMessage=text, status="error")
