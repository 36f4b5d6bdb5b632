"""The Kraken Spot WebSocket v2 protocol of one fake-server connection, without I/O.

:class:`FakeKrakenV2Session` works like the v1
:class:`~kraky_anyio.testing.session.FakeKrakenSession`: feed it a client
frame and the current time, it returns the messages to send (JSON-able
dicts, in order; :meth:`FakeKrakenV2Session.encode` writes them). It never
reads a clock and never touches a socket. The server serves it on the
``/v2`` path (see :mod:`kraky_anyio.testing.server`); texts and shapes are in
:mod:`kraky_anyio.testing.v2_messages`.

What it answers:

* On connect a ``status`` message (``system``, ``api_version``,
  ``connection_id``, ``version``; no ``connection_id`` in maintenance), and
  one on every :meth:`~FakeKrakenV2Session.set_status`.
* ``{"channel":"heartbeat"}`` after ``heartbeat_interval`` seconds of
  silence while a subscription is live.
* ``ping`` -> ``{"method":"pong","req_id":..,"time_in":..,"time_out":..}``
  (no ``success`` field, as Kraken).
* ``subscribe``/``unsubscribe``: **one response per symbol**, each with
  ``result.symbol`` or, for an error about one symbol, a top-level
  ``symbol`` (``"Currency pair not supported BTC/XYZ"``, ``"Already
  subscribed"``, ``"Subscription Not Found"``). An error about the whole
  request (unknown channel, bad ``depth``/``interval``/``event_trigger``/
  ``snapshot``, missing or malformed ``symbol``, bad token) is one response
  without ``symbol``: match it by ``req_id``.
* Trading methods (:data:`TRADING_METHODS`) and the ``executions`` /
  ``balances`` extras (ack fields, snapshot) go to the ``order_handler``'s
  ``v2`` attribute when it is a :class:`V2OrderHandler` (as
  :class:`~kraky_anyio.testing.engine.FakeMatchingEngine`'s is).
* Anything else: ``"EGeneral:Unknown method"``; not JSON, or not an object:
  ``"Malformed request"``. Numbers with a fraction decode as ``Decimal``.

Symbols are v2-spelled (``BTC/USD``); the accepted ones are the options'
``pairs`` in that spelling (:func:`~kraky_anyio.testing.v2_messages.v2_symbol`),
or any ``BASE/QUOTE`` without a v1-only asset code when ``pairs`` is None.
Market data go out through :meth:`FakeKrakenV2Session.publish`: the seam a
market simulator (or a test) calls, via
:meth:`~kraky_anyio.testing.server.FakeKrakenServer.publish_v2`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol, TypeAlias, runtime_checkable

from . import v2_messages as v2
from .options import FakeKrakenOptions
from .session_base import FakeSessionBase

__all__ = [
    "FIRST_V2_CONNECTION_ID",
    "TRADING_METHODS",
    "V2_PATH",
    "FakeKrakenV2Session",
    "V2OrderHandler",
]

FIRST_V2_CONNECTION_ID = v2.FIRST_V2_CONNECTION_ID
V2_PATH = v2.V2_PATH

_Key: TypeAlias = tuple[str, str | None]
_V1_ONLY_ASSETS = frozenset({"XBT", "XDG"})
_MISSING = object()


def _method(request: dict[str, Any]) -> str | None:
    method = request.get("method")
    return method if isinstance(method, str) else None


class _Rejected(Exception):
    """An error about the whole request: one response, no symbol."""


#: The v2 methods a :class:`V2OrderHandler` answers.
TRADING_METHODS = frozenset(
    {
        "add_order",
        "amend_order",
        "edit_order",
        "cancel_order",
        "cancel_all",
        "cancel_all_orders_after",
        "batch_add",
        "batch_cancel",
    }
)


@runtime_checkable
class V2OrderHandler(Protocol):
    """A trading engine's v2 side, found as ``options.order_handler.v2``."""

    def on_request(
        self, session: FakeKrakenV2Session, request: dict[str, Any], now: float
    ) -> list[Any]:
        """The responses (then private data) for one :data:`TRADING_METHODS` request."""
        ...

    def on_private_subscribe(
        self, session: FakeKrakenV2Session, channel: str, params: dict[str, Any], now: float
    ) -> tuple[dict[str, Any], list[Any]]:
        """For a new ``executions``/``balances`` subscription: the fields
        added to the ack's ``result`` and the ``data`` of the snapshot
        messages to send after it; ``ValueError(error text)`` refuses it."""
        ...


class FakeKrakenV2Session(FakeSessionBase):
    """The server side of one Kraken v2 connection, without I/O.

    Every method that takes ``now`` returns the messages to send, in order,
    and assumes they are sent at ``now`` (that resets the heartbeat's
    silence timer). Inspectable state: :attr:`subscriptions`,
    :meth:`subscription_params`, :attr:`received` (every client frame that
    decoded as JSON), :attr:`counters` (per request ``method``, and
    ``"malformed"``, ``"rate_limited"``, ``"stalled"``, ``"heartbeat"``,
    ``"published"``). ``stalled`` (attribute) makes it a hung app, as in v1.
    """

    api = "v2"
    request_key = "method"
    float_type = Decimal

    def __init__(
        self,
        options: FakeKrakenOptions | None = None,
        *,
        connection_id: int = FIRST_V2_CONNECTION_ID,
        revoked_tokens: set[str] | None = None,
        **changes: Any,
    ) -> None:
        """``options`` with keyword ``changes`` applied, as for v1; bad
        options raise ``TypeError``/``ValueError``. ``revoked_tokens`` (the
        very set is kept) are refused like unknown ones."""
        super().__init__(
            options, changes, connection_id=connection_id, revoked_tokens=revoked_tokens
        )
        pairs = self.options.pairs
        #: The symbols subscriptions accept (None: any ``BASE/QUOTE``).
        self.symbols = None if pairs is None else frozenset(v2.v2_symbol(p) for p in pairs)
        self._subscriptions: dict[_Key, dict[str, Any]] = {}
        self._sequences: Counter[str] = Counter()
        #: The params (token included) of the live ``executions``/``balances``
        #: subscriptions, by channel: where private data are routed by account.
        self.private_params: dict[str, dict[str, Any]] = {}

    @property
    def trading(self) -> V2OrderHandler | None:
        """The ``order_handler``'s v2 side, if it has one."""
        handler = getattr(self.options.order_handler, "v2", None)
        return handler if isinstance(handler, V2OrderHandler) else None

    # -- state ---------------------------------------------------------------

    @property
    def subscriptions(self) -> frozenset[tuple[str, str | None]]:
        """The live subscriptions as ``(channel, symbol)``; symbol is ``None``
        for channels without symbols."""
        return frozenset(self._subscriptions)

    def subscription_params(self, channel: str, symbol: str | None) -> dict[str, Any] | None:
        """The params of a live subscription (``depth``, ``interval``, ...,
        defaults filled in, no token), or None. A copy."""
        params = self._subscriptions.get((channel, symbol))
        return None if params is None else dict(params)

    @staticmethod
    def encode(message: Any) -> str:
        """The text frame of one message (see :func:`v2_messages.encode`:
        ``Decimal`` values become bare numbers with their exact digits)."""
        return v2.encode(message)

    # -- unprompted messages -------------------------------------------------

    def _status_message(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"api_version": "v2"}
        if self.status != "maintenance":
            entry["connection_id"] = self.connection_id
        entry["system"] = self.status
        entry["version"] = v2.V2_VERSION
        return {"channel": "status", "type": "update", "data": [entry]}

    def _heartbeat_message(self) -> dict[str, Any]:
        return {"channel": "heartbeat"}

    def _rate_limited_reply(self, request: Any, now: float) -> dict[str, Any]:
        if not isinstance(request, dict):
            return v2.response(None, None, now, error=v2.ERR_RATE_LIMITED)
        return v2.response(_method(request), request, now, error=v2.ERR_RATE_LIMITED)

    def publish(
        self,
        channel: str,
        symbol: str | None,
        data: Any,
        *,
        type: str = "update",
        params: Mapping[str, Any] | None = None,
        now: float | None = None,
    ) -> list[Any]:
        """``[{"channel": channel, "type": type, "data": data}]`` if this
        connection is subscribed to ``(channel, symbol)`` with every item of
        ``params`` among its subscription's (e.g. ``{"depth": 25}``: book
        subscribers of that depth only), else ``[]`` (and ``[]`` while
        stalled). ``executions``/``balances`` messages get a ``sequence``
        counting from 1. ``data`` is sent as given: a list of per-symbol
        entries (an object for ``instrument``), numbers as ``Decimal`` to keep
        their digits; or ``bytes``, a whole frame already written (e.g. by
        :mod:`kraky_anyio.v2.render`), sent as is (``type`` is then the
        frame's own). Raises ``ValueError`` for a ``type`` other than
        ``snapshot``/``update``, or a written frame on a sequenced channel."""
        if type not in ("snapshot", "update"):
            raise ValueError(f"type must be 'snapshot' or 'update', not {type!r}")
        if isinstance(data, bytes) and channel in v2.SEQUENCED_CHANNELS:
            raise ValueError(f"a {channel} message needs a sequence: pass its data, not a frame")
        subscribed = self._subscriptions.get((channel, symbol))
        if subscribed is None or self.stalled:
            return []
        if params and any(subscribed.get(k, _MISSING) != v for k, v in params.items()):
            return []
        self.counters["published"] += 1
        if isinstance(data, bytes):
            return self._sent([data], now)
        message: dict[str, Any] = {"channel": channel, "type": type, "data": data}
        if channel in v2.SEQUENCED_CHANNELS:
            self._sequences[channel] += 1
            message["sequence"] = self._sequences[channel]
        return self._sent([message], now)

    # -- client frames -------------------------------------------------------

    def _dispatch(self, request: Any, now: float) -> list[Any]:
        if not isinstance(request, dict):
            self.counters["malformed"] += 1
            return [v2.response(None, None, now, error=v2.ERR_MALFORMED)]
        method = _method(request)
        req_id = request.get("req_id")
        if "req_id" in request and (
            isinstance(req_id, bool) or not isinstance(req_id, int) or req_id < 0
        ):
            return [v2.response(method, request, now, error=v2.ERR_REQ_ID)]
        if method == "ping":
            pong: dict[str, Any] = {"method": "pong"}
            if "req_id" in request:
                pong["req_id"] = req_id
            pong["time_in"] = pong["time_out"] = v2.rfc3339(now)
            return [pong]
        if method in ("subscribe", "unsubscribe"):
            try:
                return self._on_subscription(method, request, now)
            except _Rejected as exc:
                return [v2.response(method, request, now, error=str(exc))]
        trading = self.trading
        if method in TRADING_METHODS and trading is not None:
            return trading.on_request(self, request, now)
        return [v2.response(method, request, now, error=v2.ERR_UNKNOWN_METHOD)]

    # -- subscribe / unsubscribe ---------------------------------------------

    def _on_subscription(self, method: str, request: dict[str, Any], now: float) -> list[Any]:
        params = request.get("params")
        if not isinstance(params, dict):
            raise _Rejected(v2.ERR_PARAMS)
        channel = params.get("channel")
        if not isinstance(channel, str) or channel not in v2.CHANNELS:
            raise _Rejected(v2.ERR_CHANNEL)
        echo = self._check_params(channel, params, subscribe=method == "subscribe")
        if channel in v2.TOKEN_CHANNELS:
            self._check_token(params.get("token"))
        if channel not in v2.SYMBOL_CHANNELS:
            if "symbol" in params:
                raise _Rejected(v2.ERR_SYMBOL_UNSUPPORTED)
            return self._one(method, request, channel, None, echo, now)
        symbols = params.get("symbol")
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) for s in symbols)
        ):
            raise _Rejected(v2.ERR_SYMBOL)
        out: list[Any] = []
        for symbol in symbols:
            out.extend(self._one(method, request, channel, symbol, echo, now))
        return out

    def _one(
        self,
        method: str,
        request: dict[str, Any],
        channel: str,
        symbol: str | None,
        echo: dict[str, Any],
        now: float,
    ) -> list[Any]:
        """The response(s) for one symbol (or the one symbol-less channel)."""

        def error(text: str) -> list[Any]:
            return [v2.response(method, request, now, error=text, symbol=symbol)]

        key = (channel, symbol)
        if symbol is not None and not self._supported(symbol):
            return error(f"{v2.ERR_PAIR_NOT_SUPPORTED} {symbol}")
        if method == "subscribe" and key in self._subscriptions:
            return error(v2.ERR_ALREADY_SUBSCRIBED)
        if method == "unsubscribe" and key not in self._subscriptions:
            return error(v2.ERR_SUBSCRIPTION_NOT_FOUND)
        result: dict[str, Any] = {"channel": channel, **echo}
        if symbol is not None:
            result["symbol"] = symbol
        if method == "unsubscribe":
            del self._subscriptions[key]
            self.private_params.pop(channel, None)
            self._sequences.pop(channel, None)  # a new subscription's snapshot is 1 again
            # The real unsubscribe ack has no snapshot key (the docs show one).
            result.pop("snapshot", None)
            return [v2.response(method, request, now, result=result)]
        trading = self.trading
        if trading is not None and channel in v2.SEQUENCED_CHANNELS:
            params = dict(request["params"])
            try:
                extras, snapshots = trading.on_private_subscribe(self, channel, params, now)
            except ValueError as exc:
                return error(str(exc))
            self._subscriptions[key] = dict(echo)
            self.private_params[channel] = params
            ack = v2.response(method, request, now, result={**result, **extras})
            sent = [self.publish(channel, None, data, type="snapshot") for data in snapshots]
            return [ack, *(m for messages in sent for m in messages)]
        self._subscriptions[key] = dict(echo)
        return [v2.response(method, request, now, result=result), *self._snapshot(key, echo)]

    def _snapshot(self, key: _Key, params: dict[str, Any]) -> list[Any]:
        provider = self.options.v2_snapshot_provider
        if provider is None or not params.get("snapshot", True):
            return []
        channel, symbol = key
        out: list[Any] = []
        for data in provider(channel, symbol, dict(params)):
            out.extend(self.publish(channel, symbol, data, type="snapshot"))
        return out

    def _supported(self, symbol: str) -> bool:
        base, _, quote = symbol.partition("/")
        if not base or not quote or "/" in quote:
            return False
        if self.symbols is not None:
            return symbol in self.symbols
        return base not in _V1_ONLY_ASSETS and quote not in _V1_ONLY_ASSETS

    def _check_token(self, token: object) -> None:
        error = self.token_error(token)
        if error is not None:
            raise _Rejected(error)

    @staticmethod
    def _check_params(channel: str, params: dict[str, Any], *, subscribe: bool) -> dict[str, Any]:
        """The params echoed in ``result`` (defaults filled in), or
        :class:`_Rejected` for a bad one."""
        echo: dict[str, Any] = {}
        if channel in ("book", "level3"):
            depths = v2.BOOK_DEPTHS if channel == "book" else v2.LEVEL3_DEPTHS
            depth = params.get("depth", 10)
            if isinstance(depth, bool) or not isinstance(depth, int) or depth not in depths:
                raise _Rejected(v2.ERR_DEPTH)
            echo["depth"] = depth
        elif channel == "ohlc":
            interval = params.get("interval", 1)
            if not isinstance(interval, int) or isinstance(interval, bool):
                raise _Rejected(v2.ERR_INTERVAL)
            if interval not in v2.OHLC_INTERVALS:
                raise _Rejected(v2.ERR_INTERVAL)
            echo["interval"] = interval
        elif channel == "ticker":
            trigger = params.get("event_trigger", "trades")
            if not isinstance(trigger, str) or trigger not in v2.EVENT_TRIGGERS:
                raise _Rejected(v2.ERR_EVENT_TRIGGER)
            echo["event_trigger"] = trigger
        snapshot = params.get("snapshot", channel != "trade")
        if not isinstance(snapshot, bool):
            raise _Rejected(v2.ERR_SNAPSHOT)
        echo["snapshot"] = snapshot
        return echo
