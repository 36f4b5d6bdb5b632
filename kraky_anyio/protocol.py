"""Kraken's v1 protocol, without I/O.

:class:`KrakenProtocol` is the state of one logical connection (it outlives
reconnects): it encodes requests, assigns reqids, matches replies to pending
requests, keeps the subscription registry, classifies every received frame and
counts what was wrong with it. The async shell in :mod:`kraky_anyio.connection`
only moves frames and wakes waiters; every decision about what a frame means is
taken here.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .errors import KrakenError, OrderOutcomeUnknownError, ReplyLostError
from .stats import Stats as Stats  # moved to stats.py; re-exported for old imports
from .subscriptions import (
    SubKey,
    SubscriptionRegistry,
    is_private,
    normalise,
    subscription_key,
)

log = logging.getLogger("kraky_anyio")

ENVIRONMENTS: dict[str, str] = {
    "production": "wss://ws.kraken.com",
    "production-auth": "wss://ws-auth.kraken.com",
    "beta": "wss://beta-ws.kraken.com",
    "beta-auth": "wss://beta-ws-auth.kraken.com",
}

MAX_REQID = 2**64 - 1
#: Stands for "the token of the socket this request goes out on": the writer
#: fills it in just before sending, so a request queued while disconnected never
#: carries the previous socket's (possibly expired) token.
DEFERRED_TOKEN = "<deferred: the token of the socket it goes out on>"
ORDER_EVENTS: dict[str, str] = {
    "addOrder": "addOrderStatus",
    "editOrder": "editOrderStatus",
    "cancelOrder": "cancelOrderStatus",
    "cancelAll": "cancelAllStatus",
    "cancelAllOrdersAfter": "cancelAllOrdersAfterStatus",
}
_REPLY_EVENTS = frozenset({"pong", "subscriptionStatus", *ORDER_EVENTS.values()})
_KNOWN_EVENTS = frozenset({"systemStatus", "heartbeat", "error", *_REPLY_EVENTS})
_SECRET_KEYS = frozenset({"token", "api_key", "api_secret", "secret"})

KrakenMessage = dict[str, Any] | list[Any]


def resolve_url(connection_env: str) -> str:
    """Map an environment name to Kraken's URL; any other string is a URL."""
    if not isinstance(connection_env, str) or not connection_env:
        raise TypeError("connection_env must be an environment name or a ws:// / wss:// URL")
    url = ENVIRONMENTS.get(connection_env, connection_env)
    if not url.startswith(("ws://", "wss://")):
        raise ValueError(
            f"unknown environment {connection_env!r}: use one of "
            f"{', '.join(ENVIRONMENTS)} or a ws:// / wss:// URL"
        )
    return url


# Built once: json.loads(text, parse_float=...) builds a new decoder per call,
# which cost as much as decoding a Kraken message itself.
_decode_str = json.JSONDecoder(parse_float=Decimal).decode


def decode(text: str | bytes) -> Any:
    """Decode a JSON frame; JSON numbers with a fraction become ``Decimal``.
    Raises ``ValueError`` for anything that is not JSON."""
    if not isinstance(text, str):
        text = text.decode()  # UnicodeDecodeError is a ValueError
    return _decode_str(text)


def _json_default(obj: object) -> Any:
    if isinstance(obj, Decimal):
        return format(obj, "f")
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def encode(message: Mapping[str, Any]) -> str:
    """Encode a request compactly; ``Decimal`` becomes a plain decimal string."""
    return json.dumps(message, separators=(",", ":"), default=_json_default)


def redact(obj: Any) -> Any:
    """A copy of ``obj`` safe to log: token, key and secret values replaced."""
    if isinstance(obj, dict):
        return {k: ("<redacted>" if k in _SECRET_KEYS else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def _short(raw: str | bytes, limit: int = 120) -> str:
    text = raw if isinstance(raw, str) else repr(raw)
    return text if len(text) <= limit else text[:limit] + "…"


class RequestState(enum.Enum):
    QUEUED = "queued"  # encoded, not yet on the wire
    SENT = "sent"  # written, waiting for replies
    DONE = "done"  # settled: replies complete, failed, or settled locally
    ABANDONED = "abandoned"  # caller gone before the wire: never sent


@dataclass(eq=False)
class PendingRequest:
    """One request and the replies it collects.

    ``listener`` (set by the I/O shell) is called on every state change.
    ``generation`` is the socket it went out on; ``bound_generation``, when set,
    is the only socket it may go out on (else it is settled locally).
    """

    reqid: int
    event: str
    reply_event: str
    message: dict[str, Any]
    expected: int
    pairs: list[str | None] = field(default_factory=list)
    key: SubKey | None = None
    internal: bool = False
    replay: bool = False
    bound_generation: int | None = None
    state: RequestState = RequestState.QUEUED
    generation: int | None = None
    replies: list[dict[str, Any]] = field(default_factory=list)
    settled_pairs: set[str | None] = field(default_factory=set)
    error: BaseException | None = None
    listener: Callable[[PendingRequest], None] | None = None

    @property
    def frame(self) -> str:
        return encode(self.message)

    @property
    def is_order(self) -> bool:
        return self.event in ORDER_EVENTS

    def __post_init__(self) -> None:
        sub = self.message.get("subscription")
        holder = sub if isinstance(sub, dict) else self.message
        # Where the writer puts the socket's token, if it was deferred.
        self._token_slot: dict[str, Any] | None = (
            holder if holder.get("token") == DEFERRED_TOKEN else None
        )

    @property
    def deferred_token(self) -> bool:
        """True if the writer fills in the socket's token just before sending."""
        return self._token_slot is not None

    def set_token(self, token: str) -> None:
        """Put the token of the socket it goes out on (see :data:`DEFERRED_TOKEN`)."""
        if self._token_slot is not None:
            self._token_slot["token"] = token

    @property
    def done(self) -> bool:
        return self.state is RequestState.DONE

    def result(self) -> list[dict[str, Any]]:
        """The replies, or raise the request's error."""
        if self.error is not None:
            raise self.error
        return list(self.replies)

    def __repr__(self) -> str:  # never show the message: it may hold a token
        return f"<PendingRequest {self.event} reqid={self.reqid} {self.state.value}>"

    def _notify(self) -> None:
        if self.listener is not None:
            self.listener(self)


class FrameKind(enum.Enum):
    EVENT = "event"
    REPLY = "reply"
    PUBLIC = "public"
    PRIVATE = "private"
    RATE_LIMIT = "rate_limit"
    MALFORMED = "malformed"


def _check_reqid(reqid: object) -> int:
    if isinstance(reqid, bool) or not isinstance(reqid, int):
        raise TypeError(f"reqid must be an int, not {type(reqid).__name__}")
    if not 0 <= reqid <= MAX_REQID:
        raise ValueError(f"reqid must be between 0 and 2**64-1, got {reqid}")
    return reqid


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


class KrakenProtocol:
    """State of one logical Kraken connection across its sockets."""

    def __init__(self) -> None:
        self.subscriptions = SubscriptionRegistry()
        self.stats = Stats()
        self.system_status: str | None = None
        self._pending: dict[int, PendingRequest] = {}
        self._next_reqid = 1
        self._replay_losses: list[tuple[dict[str, Any], str | None, str]] = []

    # -- building requests -------------------------------------------------

    def _reqid(self, reqid: int | None) -> int:
        if reqid is not None:
            reqid = _check_reqid(reqid)
            if reqid in self._pending:
                raise ValueError(f"reqid {reqid} is already pending")
            return reqid
        while self._next_reqid in self._pending:
            self._next_reqid += 1
        reqid = self._next_reqid
        self._next_reqid = 1 if reqid >= MAX_REQID else reqid + 1
        return reqid

    def _register(self, req: PendingRequest) -> PendingRequest:
        self._pending[req.reqid] = req
        return req

    def pending(self) -> list[PendingRequest]:
        return list(self._pending.values())

    def ping(self, reqid: int | None = None, *, internal: bool = False) -> PendingRequest:
        rid = self._reqid(reqid)
        msg = {"event": "ping", "reqid": rid}
        return self._register(PendingRequest(rid, "ping", "pong", msg, 1, internal=internal))

    def subscribe(
        self,
        subscription: Mapping[str, Any],
        pair: str | Iterable[str] | None = None,
        reqid: int | None = None,
        *,
        token: str | None = None,
        internal: bool = False,
    ) -> PendingRequest:
        """Build a subscribe; the entries become pending in the registry."""
        return self._subscription_request("subscribe", subscription, pair, reqid, token, internal)

    def unsubscribe(
        self,
        subscription: Mapping[str, Any],
        pair: str | Iterable[str] | None = None,
        reqid: int | None = None,
        *,
        token: str | None = None,
        bound_generation: int | None = None,
    ) -> PendingRequest:
        """Build an unsubscribe; the entries leave the replay set at once."""
        req = self._subscription_request("unsubscribe", subscription, pair, reqid, token, False)
        req.bound_generation = bound_generation
        return req

    def unsubscribe_locally(
        self, subscription: Mapping[str, Any], pair: str | Iterable[str] | None = None
    ) -> bool:
        """Unsubscribe while no socket is open. Returns True if that settled
        it (nothing to send); False if a subscribe of one of these entries is
        still queued for the next socket: then the unsubscribe must be sent
        after it (build it with :meth:`unsubscribe`), or the server would end
        up subscribed against the user's last word."""
        sub = _check_subscription(subscription)
        pairs = normalise_pairs(pair)
        key = subscription_key(sub)
        targets: list[str | None] = list(pairs) if pairs is not None else [None]
        for p in targets:
            entry = self.subscriptions.entry(key, p)
            if entry is not None and entry.pending > 0:
                return False
        self.subscriptions.unsubscribe(key, targets)
        return True

    def _subscription_request(
        self,
        event: str,
        subscription: Mapping[str, Any],
        pair: str | Iterable[str] | None,
        reqid: int | None,
        token: str | None,
        internal: bool,
    ) -> PendingRequest:
        sub = _check_subscription(subscription)
        pairs = normalise_pairs(pair)
        private = is_private(sub)
        if private and pairs is not None:
            raise ValueError(f"{sub['name']} is a private channel: it takes no pair")
        if not private and pairs is None:
            raise ValueError(f"{sub['name']} needs pair=[...]")
        wire_sub = dict(sub)
        if private:
            tok = token if token is not None else sub.get("token")
            if not tok:
                raise ValueError(f"{sub['name']} needs a token (pass token= to open_kraken)")
            wire_sub["token"] = tok
        rid = self._reqid(reqid)
        msg: dict[str, Any] = {"event": event, "reqid": rid, "subscription": wire_sub}
        if pairs is not None:
            msg["pair"] = pairs
        key = subscription_key(sub)
        targets: list[str | None] = list(pairs) if pairs is not None else [None]
        req = PendingRequest(
            rid, event, "subscriptionStatus", msg, len(targets), targets, key, internal=internal
        )
        if event == "subscribe":
            self.subscriptions.subscribe_sent(key, normalise(sub), targets)
        else:
            self.subscriptions.unsubscribe(key, targets)
        return self._register(req)

    def order(
        self, message: Mapping[str, Any], expected: int, reqid: int | None = None
    ) -> PendingRequest:
        """Register an order request built by :mod:`kraky_anyio.trading`."""
        event = message.get("event")
        if event not in ORDER_EVENTS:
            raise ValueError(f"not an order event: {event!r}")
        rid = self._reqid(reqid)
        msg = dict(message)
        msg["reqid"] = rid
        return self._register(PendingRequest(rid, event, ORDER_EVENTS[event], msg, expected))

    def replay(self, token: str | None) -> list[PendingRequest]:
        """Subscribe requests restoring every live entry on a new socket."""
        out = []
        for sub, pairs in self.subscriptions.replay_plan():
            rid = self._reqid(None)
            wire_sub = dict(sub)
            if is_private(sub):
                if not token:
                    for p in pairs:
                        self._replay_lost(subscription_key(sub), sub, p, "no token for replay")
                    continue
                wire_sub["token"] = token
            msg: dict[str, Any] = {"event": "subscribe", "reqid": rid, "subscription": wire_sub}
            if pairs != [None]:
                msg["pair"] = list(pairs)
            req = PendingRequest(
                rid,
                "subscribe",
                "subscriptionStatus",
                msg,
                len(pairs),
                list(pairs),
                subscription_key(sub),
                internal=True,
                replay=True,
            )
            out.append(self._register(req))
        return out

    # -- request lifecycle ---------------------------------------------------

    def mark_sent(self, req: PendingRequest, generation: int) -> None:
        req.state = RequestState.SENT
        req.generation = generation
        self.stats.requests_sent += 1
        req._notify()

    def abandon(self, req: PendingRequest) -> None:
        """The caller is gone before the request reached the wire: never send it."""
        if req.state is not RequestState.QUEUED:
            return
        req.state = RequestState.ABANDONED
        self._pending.pop(req.reqid, None)
        if not req.internal:
            self.stats.requests_abandoned += 1
        if req.event == "subscribe" and req.key is not None and not req.replay:
            self.subscriptions.subscribe_abandoned(req.key, req.pairs)
        req._notify()

    def fail_unsent(self, req: PendingRequest, error: BaseException) -> None:
        """Finish a request that could not be sent (e.g. no token): never sent."""
        if req.state is RequestState.QUEUED:
            self._finish(req, error)

    def settle_locally(self, req: PendingRequest) -> None:
        """Finish an unsubscribe whose socket is gone: nothing to send."""
        self._finish(req, None)

    def send_failed(self, req: PendingRequest, cause: BaseException) -> None:
        """The write of a request failed half-way: its outcome is unknown."""
        self._finish(req, self._lost_error(req, f"the socket failed while sending it: {cause}"))

    def timed_out(self, req: PendingRequest) -> None:
        """No reply within the caller's timeout; a late one is applied quietly."""
        if not req.internal:
            self.stats.reply_timeouts += 1
        self.orphan(req)

    def orphan(self, req: PendingRequest) -> None:
        """The caller stopped waiting for a request that is on the wire: its
        replies still update the registry, and count as matched."""
        if req.state is RequestState.SENT:
            req.internal = True

    def connection_lost(self, generation: int) -> list[PendingRequest]:
        """Fail every request written on ``generation`` (reply lost)."""
        failed = []
        for req in list(self._pending.values()):
            if req.state is RequestState.SENT and req.generation == generation:
                if req.event == "unsubscribe":
                    # Its goal is met: the next socket will not have it.
                    self._finish(req, None)
                else:
                    self._finish(req, self._lost_error(req, "the connection was lost"))
                    failed.append(req)
        return failed

    def _lost_error(self, req: PendingRequest, why: str) -> ReplyLostError:
        if not req.internal:
            self.stats.replies_lost += 1
        if req.is_order:
            return OrderOutcomeUnknownError(
                f"{req.event} (reqid {req.reqid}) was sent but {why} before its reply: "
                "its outcome is unknown and it will not be re-sent",
                req.replies,
            )
        return ReplyLostError(
            f"{req.event} (reqid {req.reqid}): {why} before the reply came", req.replies
        )

    def _finish(self, req: PendingRequest, error: BaseException | None) -> None:
        self._pending.pop(req.reqid, None)
        if req.event == "subscribe" and req.key is not None and not req.replay:
            # Pairs without a reply are not live.
            for p in req.pairs:
                if p not in req.settled_pairs:
                    req.settled_pairs.add(p)
                    self.subscriptions.subscribe_settled(req.key, p, accepted=False)
        req.error = error
        req.state = RequestState.DONE
        req._notify()

    # -- receiving -----------------------------------------------------------

    def receive(self, raw: str | bytes) -> KrakenMessage | None:
        """Classify one frame. Returns the message to deliver, or None for a
        frame that is not a Kraken message (logged at warning and counted)."""
        stats = self.stats
        stats.frames_received += 1
        if raw.__class__ is not str:
            stats.binary_frames += 1
            log.warning("binary frame ignored (%d bytes)", len(raw))
            return None
        try:
            msg = _decode_str(raw)
        except (ValueError, RecursionError):
            stats.malformed_frames += 1
            log.warning("frame is not JSON, ignored: %s", _short(raw))
            return None
        # The hot path: public channel data, judged as classify() would.
        if (
            msg.__class__ is list
            and 4 <= len(msg) <= 5
            and msg[-2].__class__ is str
            and msg[-1].__class__ is str
        ):
            return msg
        kind = self.classify(msg)
        if kind is FrameKind.MALFORMED:
            self.stats.malformed_frames += 1
            log.warning("malformed frame ignored: %s", _short(raw))
            return None
        if kind is FrameKind.REPLY or kind is FrameKind.EVENT:
            self._on_event(msg)
        elif kind is FrameKind.RATE_LIMIT:
            self.stats.rate_limit_errors += 1
            log.warning("Kraken: %s", msg.get("Error"))
        return msg  # type: ignore[no-any-return]

    @staticmethod
    def classify(msg: Any) -> FrameKind:
        """Which kind of Kraken message ``msg`` is, judged on its shape alone."""
        if isinstance(msg, dict):
            event = msg.get("event")
            if isinstance(event, str):
                return FrameKind.REPLY if event in _REPLY_EVENTS else FrameKind.EVENT
            if "Error" in msg:
                return FrameKind.RATE_LIMIT
            return FrameKind.MALFORMED
        if isinstance(msg, list):
            n = len(msg)
            if n == 3 and isinstance(msg[1], str) and isinstance(msg[2], dict):
                return FrameKind.PRIVATE
            if n in (4, 5) and isinstance(msg[-2], str) and isinstance(msg[-1], str):
                return FrameKind.PUBLIC
        return FrameKind.MALFORMED

    def _on_event(self, msg: dict[str, Any]) -> None:
        event = msg["event"]
        if event == "heartbeat":
            return
        if event == "systemStatus":
            status = msg.get("status")
            if isinstance(status, str):
                self.system_status = status
            return
        if event not in _KNOWN_EVENTS:
            self.stats.unknown_events += 1
            log.warning("unknown event %r", event)
            return
        if msg.get("status") == "error" or event == "error":
            self.stats.kraken_errors += 1
        reqid = msg.get("reqid")
        req = None
        if isinstance(reqid, int) and not isinstance(reqid, bool):
            req = self._pending.get(reqid)
        if req is None or req.state is not RequestState.SENT:
            if event != "error":
                self.stats.unmatched_replies += 1
                log.warning("reply to an unknown reqid %r: %s", reqid, event)
            else:
                log.warning("Kraken error: %s", msg.get("errorMessage"))
            return
        if event == "error":
            req.replies.append(msg)
            self._finish(req, KrakenError(str(msg.get("errorMessage", "error")), req.replies))
            return
        if event != req.reply_event:
            self.stats.unmatched_replies += 1
            log.warning("reqid %d got %s, expected %s", reqid, event, req.reply_event)
            return
        req.replies.append(msg)
        if req.key is not None:
            self._on_subscription_status(req, msg)
        if len(req.replies) >= req.expected or (
            req.key is not None and msg.get("status") == "error" and "pair" not in msg
        ):
            self._settle(req)

    def _on_subscription_status(self, req: PendingRequest, msg: dict[str, Any]) -> None:
        if req.event != "subscribe" or req.key is None:
            return
        ok = msg.get("status") == "subscribed"
        pairs = [msg.get("pair")] if "pair" in msg or req.pairs == [None] else list(req.pairs)
        for p in pairs:
            if p in req.settled_pairs:
                continue
            req.settled_pairs.add(p)
            entry = self.subscriptions.entry(req.key, p)
            if req.replay and not ok and entry is not None:
                # A rejected replay is never retried: the entry is gone for good.
                self._replay_lost(req.key, entry.subscription, p, str(msg.get("errorMessage")))
            else:
                self.subscriptions.subscribe_settled(req.key, p, accepted=ok)

    def _replay_lost(self, key: SubKey, sub: dict[str, Any], pair: str | None, why: str) -> None:
        self.stats.replay_failures += 1
        self.subscriptions.replay_failed(key, pair)
        self._replay_losses.append((dict(sub), pair, why))
        log.warning("subscription %s %s could not be restored: %s", sub.get("name"), pair, why)

    def take_replay_losses(self) -> list[tuple[dict[str, Any], str | None, str]]:
        """Entries dropped because their replay failed, since the last call."""
        out, self._replay_losses = self._replay_losses, []
        return out

    def _settle(self, req: PendingRequest) -> None:
        errors = [r for r in req.replies if r.get("status") == "error"]
        err = None
        if errors:
            err = KrakenError(str(errors[0].get("errorMessage", "error")), req.replies)
        self._finish(req, err)


def _check_subscription(subscription: object) -> dict[str, Any]:
    if not isinstance(subscription, Mapping):
        raise TypeError("subscription must be a dict such as {'name': 'ticker'}")
    sub = dict(subscription)
    name = sub.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("subscription needs a non-empty string 'name'")
    for opt in ("depth", "interval"):
        if opt in sub and (isinstance(sub[opt], bool) or not isinstance(sub[opt], int)):
            raise TypeError(f"subscription {opt} must be an int")
    return sub
