"""Kraken Spot WebSocket v2 as the fake exchange writes it: constants, error
texts, response shapes, symbols and the JSON encoder.

Error texts marked *(Kraken)* are Kraken's own, from recorded frames or its
documentation (see ``kraken-ws-v2.md``); the others are the fake's choice
where Kraken's text is not known, written in Kraken's style. Pure functions,
no I/O.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from . import v1_messages

__all__ = [
    "BOOK_DEPTHS",
    "CHANNELS",
    "ERR_ALREADY_SUBSCRIBED",
    "ERR_CHANNEL",
    "ERR_DEPTH",
    "ERR_EVENT_TRIGGER",
    "ERR_INTERVAL",
    "ERR_INVALID_SESSION",
    "ERR_MALFORMED",
    "ERR_PAIR_NOT_SUPPORTED",
    "ERR_PARAMS",
    "ERR_RATE_LIMITED",
    "ERR_REQ_ID",
    "ERR_SNAPSHOT",
    "ERR_SUBSCRIPTION_NOT_FOUND",
    "ERR_SYMBOL",
    "ERR_SYMBOL_UNSUPPORTED",
    "ERR_TOKEN",
    "ERR_UNKNOWN_METHOD",
    "EVENT_TRIGGERS",
    "FIRST_V2_CONNECTION_ID",
    "LEVEL3_DEPTHS",
    "OHLC_INTERVALS",
    "SEQUENCED_CHANNELS",
    "SYMBOL_CHANNELS",
    "TOKEN_CHANNELS",
    "V2_PATH",
    "V2_VERSION",
    "JsonNumber",
    "encode",
    "response",
    "rfc3339",
    "v2_symbol",
]

#: The request path a client opens to speak v2 (Kraken: ``wss://ws.kraken.com/v2``).
V2_PATH = "/v2"
V2_VERSION = "2.0.10"
#: v2 ``connection_id``s start here: above 2**63, as Kraken's can be, so a
#: client parsing them into a signed 64-bit integer fails in tests.
FIRST_V2_CONNECTION_ID = 9_769_405_522_530_892_351

#: Channels taking ``symbol`` (one response per symbol).
SYMBOL_CHANNELS = frozenset({"ticker", "book", "level3", "trade", "ohlc"})
#: Every subscribable channel (the others: one response, no symbol).
CHANNELS = SYMBOL_CHANNELS | {"instrument", "executions", "balances"}
#: Channels that need ``params.token``.
TOKEN_CHANNELS = frozenset({"level3", "executions", "balances"})
#: Channels whose messages carry a ``sequence``, counting from 1.
SEQUENCED_CHANNELS = frozenset({"executions", "balances"})
BOOK_DEPTHS = frozenset({10, 25, 100, 500, 1000})
LEVEL3_DEPTHS = frozenset({10, 100, 1000})
OHLC_INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})
EVENT_TRIGGERS = frozenset({"bbo", "trades"})

#: (Kraken) One response, no ``symbol``: match it by ``req_id``.
ERR_DEPTH = "Subscription depth not supported"
#: (Kraken) Followed by a space and the symbol; the response carries ``symbol``.
ERR_PAIR_NOT_SUPPORTED = "Currency pair not supported"
#: (Kraken) The response carries ``symbol``.
ERR_ALREADY_SUBSCRIBED = "Already subscribed"
#: (Kraken) The response carries ``symbol``.
ERR_SUBSCRIPTION_NOT_FOUND = "Subscription Not Found"
#: (Kraken) A token that is unknown or expired (the same text as v1).
ERR_INVALID_SESSION = v1_messages.ERR_INVALID_SESSION
#: A missing or empty token (the same text as v1).
ERR_TOKEN = v1_messages.ERR_INVALID_TOKEN
ERR_MALFORMED = "Malformed request"
ERR_UNKNOWN_METHOD = "EGeneral:Unknown method"
ERR_REQ_ID = "EGeneral:Invalid arguments:req_id"
ERR_PARAMS = "EGeneral:Invalid arguments:params"
ERR_CHANNEL = "Channel not supported"
ERR_INTERVAL = "Subscription ohlc interval not supported"
ERR_EVENT_TRIGGER = "EGeneral:Invalid arguments:event_trigger"
ERR_SNAPSHOT = "EGeneral:Invalid arguments:snapshot"
#: ``symbol`` missing, empty, or not a list of strings.
ERR_SYMBOL = "EGeneral:Invalid arguments:symbol"
#: ``symbol`` given to a channel without symbols (``instrument``, ...).
ERR_SYMBOL_UNSUPPORTED = "Symbol field unsupported for this channel"
#: A frame refused by :meth:`FakeKrakenV2Session.rate_limit`.
ERR_RATE_LIMITED = "rate_limited"

# Where the fake's wall clock starts: time_in/time_out are this plus the
# session's clock, so recordings are reproducible.
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
_V1_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}


def v2_symbol(pair: str) -> str:
    """The v2 spelling of a v1 pair: ``XBT/USD`` -> ``BTC/USD``,
    ``XDG/USD`` -> ``DOGE/USD``, ``ETH/XBT`` -> ``ETH/BTC``; others unchanged."""
    base, _, quote = pair.partition("/")
    return f"{_V1_ASSETS.get(base, base)}/{_V1_ASSETS.get(quote, quote)}"


def rfc3339(now: float) -> str:
    """``now`` (seconds on the session's clock) as Kraken's
    ``2026-01-01T00:00:01.250000Z``."""
    moment = _EPOCH + timedelta(seconds=now)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def response(
    method: str | None,
    request: dict[str, Any] | None,
    now: float,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    symbol: str | None = None,
) -> dict[str, Any]:
    """One v2 response: ``success`` true with ``result``, or false with
    ``error`` (and ``symbol`` when the error is about one). ``req_id`` is
    echoed when the request had one; ``method`` is left out when unknown."""
    message: dict[str, Any] = {}
    if error is not None:
        message["error"] = error
    if method is not None:
        message["method"] = method
    if request is not None and "req_id" in request:
        message["req_id"] = request["req_id"]
    if result is not None:
        message["result"] = result
    message["success"] = error is None
    if symbol is not None:
        message["symbol"] = symbol
    message["time_in"] = message["time_out"] = rfc3339(now)
    return message


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


class JsonNumber:
    """A JSON number written exactly as ``text``, e.g. ``JsonNumber("1e-08")``:
    how Kraken writes the ``instrument`` channel's increments (exponent form,
    which a ``Decimal`` never encodes to). Raises ``ValueError`` unless
    ``text`` is a JSON number."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not _NUMBER.fullmatch(text):
            raise ValueError(f"not a JSON number: {text!r:.80}")
        self.text = text

    def __repr__(self) -> str:
        return f"JsonNumber({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


# A Decimal becomes this marker inside a JSON string, then the marker and its
# quotes are replaced by the bare digits: json cannot write a number's text.
_MARK = "\x00"
_MARKED = re.compile(r'"\\u0000(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)\\u0000"')


def _decimal_marker(value: object) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        return f"{_MARK}{format(value, 'f')}{_MARK}"
    if isinstance(value, JsonNumber):
        return f"{_MARK}{value.text}{_MARK}"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(message: Any) -> str:
    """Compact JSON, with every finite ``Decimal`` written as a bare JSON
    number carrying its exact digits (``Decimal("0.50000000")`` ->
    ``0.50000000``, never ``5E-7`` or ``0.5``), as Kraken writes prices and
    quantities, and every :class:`JsonNumber` as its text. A ``bytes``
    message is a frame already written (e.g. by :mod:`kraky_anyio.v2.render`):
    returned as its UTF-8 text. Raises ``TypeError`` for anything else json
    cannot encode, ``UnicodeDecodeError`` for bytes that are not UTF-8."""
    if isinstance(message, bytes):
        return message.decode()
    text = json.dumps(message, separators=(",", ":"), default=_decimal_marker)
    if "\\u0000" not in text:
        return text
    return _MARKED.sub(r"\1", text)
