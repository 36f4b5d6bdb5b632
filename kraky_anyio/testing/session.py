"""The Kraken Spot WebSocket v1 protocol of one fake-server connection, without I/O.

:class:`FakeKrakenSession` is a plain object: feed it what a client sent and
the current time, and it returns the messages the server answers with (JSON-able
dicts and lists, in send order). It never reads a clock and never touches a
socket; :mod:`kraky_anyio.testing.connection` is the I/O shell around it, and
:mod:`kraky_anyio.testing.v1_messages` holds the texts and shapes.

What it answers, with the ``errorMessage`` texts Kraken itself uses where they
are known:

* A frame that is not JSON, or is JSON but not an object:
  ``{"event":"error","errorMessage":"Malformed request"}``.
  An object without a string ``event``: ``"Event(s) not found"``; an unknown
  event: ``"Unsupported event"`` (both ``"event":"error"``, with the reqid).
* A ``reqid`` that is not an integer in ``0 .. 2**64-1``: a
  ``<event>Status`` error (``pingStatus``, ``subscriptionStatus``, ...), as
  recorded from Kraken.
* ``ping`` -> ``pong``; ``subscribe``/``unsubscribe`` -> one
  ``subscriptionStatus`` per pair (one for a private channel).
* Order events (``addOrder``, ``editOrder``, ``cancelOrder``, ``cancelAll``,
  ``cancelAllOrdersAfter``) go to the ``order_handler`` given to the session;
  without one they get a ``<event>Status`` error ``"EGeneral:Unknown method"``.

Replies carry the request's ``reqid`` only when the request had one.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TypeAlias

from . import v1_messages as v1
from .options import (
    DEFAULT_PAIRS,
    FakeKrakenOptions,
    OrderHandler,
    OutgoingMessage,
    PrivateSnapshotProvider,
    SnapshotProvider,
)
from .session_base import FakeSessionBase
from .v1_messages import (
    ERR_INVALID_SESSION,
    ERR_INVALID_TOKEN,
    FIRST_CONNECTION_ID,
    OHLC_INTERVALS,
)

# Names other modules imported from here before v1_messages existed stay importable.
__all__ = [
    "DEFAULT_PAIRS",
    "ERR_INVALID_SESSION",
    "ERR_INVALID_TOKEN",
    "FIRST_CONNECTION_ID",
    "OHLC_INTERVALS",
    "FakeKrakenSession",
    "OrderHandler",
    "OutgoingMessage",
    "PrivateSnapshotProvider",
    "SnapshotProvider",
]

_Key: TypeAlias = tuple[str, str | None]


class FakeKrakenSession(FakeSessionBase):
    """The server side of one Kraken v1 connection, without I/O.

    Every method that takes ``now`` (seconds, any monotonic clock) returns the
    list of messages to send, in order; an empty list means send nothing.
    Sending them is the caller's job, and the session assumes they are sent at
    ``now`` (that resets the heartbeat's silence timer).

    Inspectable state: :attr:`subscriptions` (``(channelName, pair)``, pair
    ``None`` for private channels), :attr:`received` (every client frame that
    decoded as JSON, in order, whatever was answered), :attr:`counters`
    (``counters[event]`` per request event received, and ``"malformed"``,
    ``"rate_limited"``, ``"stalled"`` (ignored while stalled), ``"heartbeat"``
    and ``"published"`` (channel messages built)).

    ``stalled`` (attribute, default False) makes the session a hung app: frames
    are still recorded but nothing is answered, published or heart-beaten, and
    requests received meanwhile are never answered.
    """

    api = "v1"
    request_key = "event"

    def __init__(
        self,
        options: FakeKrakenOptions | None = None,
        *,
        connection_id: int = FIRST_CONNECTION_ID,
        first_channel_id: int = 1,
        revoked_tokens: set[str] | None = None,
        **changes: Any,
    ) -> None:
        """``options`` (default: :class:`FakeKrakenOptions`'s defaults) with
        keyword ``changes`` applied (``pairs=...``, ``order_handler=...``):
        bad options raise ``TypeError``/``ValueError`` here.
        ``revoked_tokens`` (the very set is kept, so a server can share one
        set with all its sessions) are refused like invalid ones (expired
        tokens). ``first_channel_id`` is the channelID of the first public
        subscription (then +1 each)."""
        super().__init__(
            options, changes, connection_id=connection_id, revoked_tokens=revoked_tokens
        )
        #: The token each live private subscription was made with, by channel name.
        self.private_tokens: dict[str, str] = {}
        self._channel_ids: dict[_Key, int] = {}
        self._next_channel_id = first_channel_id
        self._sequences: Counter[str] = Counter()

    @staticmethod
    def encode(message: OutgoingMessage) -> str:
        """The text frame of one message (compact JSON)."""
        return json.dumps(message, separators=(",", ":"))

    # -- state -------------------------------------------------------------

    @property
    def subscriptions(self) -> frozenset[tuple[str, str | None]]:
        """The live subscriptions as ``(channelName, pair)``; pair is ``None``
        for ``ownTrades``/``openOrders``."""
        return frozenset(self._channel_ids)

    # -- unprompted messages -------------------------------------------------

    def _status_message(self) -> dict[str, Any]:
        return {
            "connectionID": self.connection_id,
            "event": "systemStatus",
            "status": self.status,
            "version": v1.VERSION,
        }

    def _heartbeat_message(self) -> dict[str, Any]:
        return {"event": "heartbeat"}

    def _rate_limited_reply(self, request: Any, now: float) -> dict[str, Any]:
        return {"Error": v1.ERR_RATE}

    def publish(
        self,
        channel_name: str,
        pair: str | None,
        payload: Any,
        *more_payloads: Any,
        now: float | None = None,
    ) -> list[OutgoingMessage]:
        """Channel data for ``(channel_name, pair)``, or ``[]`` if this
        connection is not subscribed to it (or is stalled).

        Public: ``[channelID, payload, ..., channel_name, pair]``; pass two
        payloads for the 5-element book update (asks, then bids). Private
        (``ownTrades``/``openOrders``, ``pair=None``):
        ``[payload, channel_name, {"sequence": n}]``, n counting from 1 per
        channel. ``now`` (optional) resets the heartbeat's silence timer.
        """
        private = channel_name in v1.PRIVATE_CHANNELS
        if private and (pair is not None or more_payloads):
            raise ValueError("private channel data take one payload and pair=None")
        if not private and pair is None:
            raise ValueError("public channel data need a pair")
        channel_id = self._channel_ids.get((channel_name, pair))
        if channel_id is None or self.stalled:
            return []
        self.counters["published"] += 1
        message: list[Any]
        if private:
            self._sequences[channel_name] += 1
            message = [payload, channel_name, {"sequence": self._sequences[channel_name]}]
        else:
            message = [channel_id, payload, *more_payloads, channel_name, pair]
        return self._sent([message], now)

    # -- client frames -------------------------------------------------------

    def _initial(self, channel_name: str, pair: str | None) -> list[OutgoingMessage]:
        """What a new subscriber gets right after its ``subscribed`` reply."""
        provider = self.options.snapshot_provider
        if provider is None:
            return []
        out: list[OutgoingMessage] = []
        for payload in provider(channel_name, pair):
            out.extend(self.publish(channel_name, pair, payload))
        return out

    def _private_initial(
        self, channel_name: str, subscription: dict[str, Any]
    ) -> list[OutgoingMessage]:
        """What a new private subscriber gets from ``private_snapshot_provider``."""
        provider = self.options.private_snapshot_provider
        if provider is None:
            return []
        out: list[OutgoingMessage] = []
        for payload in provider(self, channel_name, subscription):
            out.extend(self.publish(channel_name, None, payload))
        return out

    def _dispatch(self, request: Any, now: float) -> list[OutgoingMessage]:
        if not isinstance(request, dict):
            self.counters["malformed"] += 1
            return [v1.error_event(v1.ERR_MALFORMED)]
        event = request.get("event")
        has_reqid = "reqid" in request
        reqid = request.get("reqid")
        if not isinstance(event, str):
            return [v1.error_event(v1.ERR_EVENT_NOT_FOUND, has_reqid, reqid)]
        if event not in v1.REQUEST_EVENTS:
            return [v1.error_event(v1.ERR_UNSUPPORTED_EVENT, has_reqid, reqid)]
        if has_reqid and (
            isinstance(reqid, bool) or not isinstance(reqid, int) or not 0 <= reqid < v1.MAX_REQID
        ):
            reply = {"errorMessage": v1.ERR_REQID, "event": v1.status_event(event)}
            return [v1.with_reqid({**reply, "status": "error"}, True, reqid)]
        if event == "ping":
            return [v1.with_reqid({"event": "pong"}, has_reqid, reqid)]
        if event in v1.ORDER_EVENTS:
            return self.on_order(request, now)
        return self._on_subscription(request, subscribe=event == "subscribe")

    def on_order(self, request: dict[str, Any], now: float) -> list[OutgoingMessage]:
        """Answer an order event (the trading-engine hook): the
        ``order_handler``'s replies, or an ``"EGeneral:Unknown method"``
        ``<event>Status`` error when there is none. A subclass may override it."""
        handler = self.options.order_handler
        if handler is not None:
            return handler(self, request, now)
        reply = {
            "errorMessage": v1.ERR_UNKNOWN_METHOD,
            "event": v1.status_event(request["event"]),
            "status": "error",
        }
        return [v1.with_reqid(reply, "reqid" in request, request.get("reqid"))]

    # -- subscribe / unsubscribe ---------------------------------------------

    def _on_subscription(
        self, request: dict[str, Any], *, subscribe: bool
    ) -> list[OutgoingMessage]:
        has_reqid = "reqid" in request

        def reply(
            status: str, pair: str | None, echo: dict[str, Any] | None, **fields: Any
        ) -> dict[str, Any]:
            message: dict[str, Any] = {**fields, "event": "subscriptionStatus"}
            if pair is not None:
                message["pair"] = pair
            message["status"] = status
            if echo is not None:
                message["subscription"] = echo
            return v1.with_reqid(message, has_reqid, request.get("reqid"))

        def error(text: str, pair: str | None, echo: dict[str, Any] | None) -> OutgoingMessage:
            return reply("error", pair, echo, errorMessage=text)

        subscription = request.get("subscription")
        if not isinstance(subscription, dict):
            return [error(v1.ERR_SUBSCRIPTION_NOT_OBJECT, None, None)]
        given = {k: v for k, v in subscription.items() if k != "token"}
        name = subscription.get("name")

        if name in v1.PRIVATE_CHANNELS:
            echo: dict[str, Any] = {"name": name}
            if "pair" in request:
                return [error(v1.ERR_PAIR_UNSUPPORTED_FOR_TYPE, None, given)]
            token_error = self.token_error(subscription.get("token"))
            if token_error is not None:
                return [error(token_error, None, given)]
            key: _Key = (name, None)
            if subscribe and key in self._channel_ids:
                return [error(v1.ERR_ALREADY_SUBSCRIBED, None, echo)]
            if not subscribe and key not in self._channel_ids:
                return [error(v1.ERR_SUBSCRIPTION_NOT_FOUND, None, echo)]
            if subscribe:
                self._channel_ids[key] = 0  # private data carry no channelID
                self.private_tokens[name] = subscription["token"]
                return [
                    reply("subscribed", None, echo, channelName=name),
                    *self._initial(name, None),
                    *self._private_initial(name, subscription),
                ]
            del self._channel_ids[key]
            self.private_tokens.pop(name, None)
            return [reply("unsubscribed", None, echo, channelName=name)]

        raw_pairs = request.get("pair")
        pairs: list[str] | None = None
        if isinstance(raw_pairs, list) and raw_pairs and all(isinstance(p, str) for p in raw_pairs):
            pairs = raw_pairs
        channel = v1.public_channel(name, subscription)
        if isinstance(channel, str):  # an error message, one per pair when pairs are readable
            if pairs is None:
                return [error(channel, None, given)]
            return [error(channel, pair, given) for pair in pairs]
        channel_name, echo = channel
        if pairs is None:
            text = v1.ERR_PAIRS_NOT_FOUND
            if raw_pairs is not None and not isinstance(raw_pairs, list):
                text = v1.ERR_PAIR_NOT_ARRAY
            return [error(text, None, echo)]

        replies: list[OutgoingMessage] = []
        for pair in pairs:
            base, _, quote = pair.partition("/")
            key = (channel_name, pair)
            if not base or not quote or "/" in quote:
                replies.append(error(f"{v1.ERR_PAIR_NOT_ISO} {pair}", pair, echo))
            elif self.options.pairs is not None and pair not in self.options.pairs:
                replies.append(error(f"{v1.ERR_PAIR_NOT_SUPPORTED} {pair}", pair, echo))
            elif subscribe and key in self._channel_ids:
                replies.append(error(v1.ERR_ALREADY_SUBSCRIBED, pair, echo))
            elif not subscribe and key not in self._channel_ids:
                replies.append(error(v1.ERR_SUBSCRIPTION_NOT_FOUND, pair, echo))
            elif subscribe:
                channel_id = self._channel_ids[key] = self._next_channel_id
                self._next_channel_id += 1
                replies.append(
                    reply("subscribed", pair, echo, channelID=channel_id, channelName=channel_name)
                )
                replies.extend(self._initial(channel_name, pair))
            else:
                channel_id = self._channel_ids.pop(key)
                replies.append(
                    reply(
                        "unsubscribed", pair, echo, channelID=channel_id, channelName=channel_name
                    )
                )
        return replies
