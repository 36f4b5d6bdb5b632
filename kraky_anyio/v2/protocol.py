"""Kraken's v2 protocol, without I/O: one object that decides and returns verdicts.

:class:`KrakenV2Protocol` is the state of one logical v2 connection (it
outlives reconnects) and implements :class:`kraky_anyio.seam.ProtocolCore`,
like :class:`kraky_anyio.v1.protocol.KrakenProtocol` does for v1: it builds
requests (checked by :mod:`.params` before anything is sent), tracks them
(:mod:`kraky_anyio.requests`), keeps the replay set (the shared registry,
keyed by :mod:`.subscriptions`), and turns each batch of frames into a
:class:`~kraky_anyio.seam.Verdict` of typed messages (:func:`.messages.decode`).
A replay Kraken rejects is lost (``SubscriptionLost``), except one answered
``rate_limited``: retried later (:mod:`.replay_retries`).

Replies are typed :class:`~.messages.Response` objects. A subscribe or
unsubscribe gets one response per symbol (``result.symbol``, or a top-level
``symbol`` on an error about one symbol); a response naming no symbol (an
error about the whole request, or a channel without symbols) answers every
symbol still open, matched by ``req_id``.

Request ids: the user's are ``0 .. MAX_USER_REQ_ID``, the library's own
(replays, watchdog pings) the :data:`INTERNAL_REQ_ID_BASE` .. ``2**53 - 1``
above them: every id is exact in any JSON parser, so its echo always matches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..errors import KrakenError, ReplyLostError
from ..lifecycle import RequestLifecycle
from ..notices import SubscriptionLost
from ..redaction import shorten
from ..requests import DEFERRED_TOKEN, Request, RequestState, RequestTable, Step
from ..seam import ReplayPlan, SendAction, Verdict
from ..stats import Stats
from ..subscriptions import SubscriptionRegistry
from . import order_requests
from .messages import InstrumentMessage, MessageError, Pair, Response, StatusMessage, decode
from .params import encode_request
from .private_feeds import PrivateFeeds
from .private_messages import BalancesMessage, ExecutionsMessage
from .replay_retries import RATE_LIMITED, REPLAY_ATTEMPTS, ReplayRetries, replay_wire
from .request_frames import checked_params, envelope, subscription_request
from .subscriptions import SubKey, needs_token, replay_params, subscription_key

__all__ = [
    "INTERNAL_REQ_ID_BASE",
    "MAX_REQ_ID",
    "MAX_USER_REQ_ID",
    "REPLAY_ATTEMPTS",
    "REPLAY_BURST",
    "REPLAY_WINDOW",
    "KrakenV2Protocol",
]

log = logging.getLogger("kraky_anyio")

MAX_REQ_ID: Final = 2**53 - 1
INTERNAL_REQ_ID_BASE: Final = 2**53 - 2**32
MAX_USER_REQ_ID: Final = INTERNAL_REQ_ID_BASE - 1

#: Replay pacing: at most this many requests per :data:`REPLAY_WINDOW`
#: seconds. Kraken answers bursts of about 100 subscribe/unsubscribe within
#: milliseconds with ``rate_limited``; a replay sends one request per
#: subscription (all its symbols together), so 20 a second restores almost
#: every connection in one burst while staying 5x under that threshold.
REPLAY_BURST: Final = 20
REPLAY_WINDOW: Final = 1.0

_SUBSCRIPTION_METHODS: Final = frozenset({"subscribe", "unsubscribe"})
_WIRE: Final = (RequestState.SENT, RequestState.ORPHANED)  # replies still expected


class KrakenV2Protocol(RequestLifecycle):
    """State of one logical Kraken v2 connection across its sockets (the
    request lifecycle glue is :class:`~kraky_anyio.lifecycle.RequestLifecycle`)."""

    def __init__(self) -> None:
        self._stats = Stats()
        self.subscriptions = SubscriptionRegistry()
        self.requests = RequestTable(
            self._stats, internal_base=INTERNAL_REQ_ID_BASE, max_reqid=MAX_REQ_ID
        )
        #: The last ``status`` frame's ``system`` (``online``, ``maintenance``,
        #: ``cancel_only``, ``post_only``), or None before the first.
        self.system_status: str | None = None
        #: Replay pacing (see :data:`REPLAY_BURST`); adjustable per connection.
        self.replay_burst = REPLAY_BURST
        self.replay_window = REPLAY_WINDOW
        #: Subscribes per replayed entry Kraken rate-limits (see :mod:`.replay_retries`).
        self.replay_attempts = REPLAY_ATTEMPTS
        #: The ``instrument`` channel's pairs seen on this connection, by
        #: symbol (precisions for the books); ``instrument_snapshot``: a
        #: snapshot came, so a symbol missing here is not Kraken's.
        self.instruments: dict[str, Pair] = {}
        self.instrument_snapshot = False
        # Tokens given in a subscribe's params: used for its replay when the
        # connection has no token of its own. Never logged.
        self._sub_tokens: dict[SubKey, str] = {}
        #: Sequence checks of ``executions``/``balances`` (resubscribe on a gap).
        self.private_feeds = PrivateFeeds(
            self._stats, self.requests, self.subscriptions, self._sub_tokens
        )
        self._orders = order_requests.OrderMatcher(self._stats)
        self.replay_retries = ReplayRetries(
            self._stats, self.requests, self.subscriptions, self._sub_tokens
        )

    @property
    def stats(self) -> Stats:
        return self._stats

    @property
    def maintenance(self) -> bool:
        """True while Kraken's last ``status`` is anything but ``online``."""
        return self.system_status is not None and self.system_status != "online"

    # -- building requests -------------------------------------------------

    def ping(self, req_id: int | None = None) -> Request:
        """A ``ping``; settled by its ``pong``."""
        rid = self._reqid(req_id)
        return self.requests.add(Request(rid, "ping", "pong", envelope("ping", None, rid), 1))

    def liveness_ping(self) -> Request:
        rid = self.requests.reqid(None, internal=True)
        msg = envelope("ping", None, rid)
        return self.requests.add(Request(rid, "ping", "pong", msg, 1, internal=True))

    def subscribe(
        self,
        channel: str,
        symbols: object = None,
        *,
        req_id: int | None = None,
        default_token: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Request:
        """Build a subscribe; its entries become pending in the registry.

        ``params`` are Kraken's (``depth``, ``interval``, ``snapshot``,
        ``token``, ...); a channel needing a token without one in ``params``
        gets ``default_token`` (the connection's, maybe deferred). Raises
        ``ValueError``/``TypeError`` for bad arguments, before anything is
        registered."""
        given = dict(params or {})
        wire = checked_params(channel, symbols, given, default_token)
        rid = self._reqid(req_id)
        req = subscription_request("subscribe", wire, rid)
        key = str(req.key)
        if isinstance(given.get("token"), str):
            self._sub_tokens[key] = given["token"]
        self.subscriptions.subscribe_sent(key, replay_params(wire), req.parts)
        return self.requests.add(req)

    def unsubscribe(
        self,
        channel: str,
        symbols: object = None,
        *,
        req_id: int | None = None,
        default_token: str | None = None,
        params: Mapping[str, Any] | None = None,
        connected: bool = True,
        bound_generation: int | None = None,
    ) -> Request:
        """Build an unsubscribe; its entries leave the replay set at once.

        Not ``connected``: the request comes back already settled (nothing
        to send) unless a subscribe of one of its entries is still queued, in
        which case it follows that subscribe. A ``bound_generation`` is the
        only socket it may go out on (else it is settled locally: that
        socket's loss met its goal)."""
        given = dict(params or {})
        if not connected and needs_token(channel) and "token" not in given and not default_token:
            default_token = DEFERRED_TOKEN  # never sent unless it goes out below
        wire = checked_params(channel, symbols, given, default_token)
        key = subscription_key(wire)
        targets: list[str | None] = list(wire.get("symbol") or [None])
        local = not connected and not any(
            (e := self.subscriptions.entry(key, s)) is not None and e.in_flight > 0 for s in targets
        )
        rid = self._reqid(req_id)
        req = subscription_request("unsubscribe", wire, rid)
        req.bound_generation = bound_generation
        self.subscriptions.unsubscribe(key, targets)
        self._sub_tokens.pop(key, None)
        if local:
            self.requests.advance(req, Step.SETTLE_LOCALLY)
            return req
        return self.requests.add(req)

    def raw(self, method: str, params: Mapping[str, Any] | None, req_id: int | None) -> Request:
        """Any other method, settled by its first response (matched by
        ``req_id``). ``subscribe``/``unsubscribe`` are refused: their methods
        keep the replay set."""
        if not isinstance(method, str) or not method:
            raise TypeError("method must be a non-empty str")
        if method in _SUBSCRIPTION_METHODS:
            raise ValueError(
                f"use subscribe()/unsubscribe() for {method}: they keep the replay set"
            )
        encode_request(method, params)  # floats, non-finite numbers: refused now
        reply = "pong" if method == "ping" else method
        rid = self._reqid(req_id)
        msg = envelope(method, None if params is None else dict(params), rid)
        slot = msg.get("params")
        token_slot = (
            slot if isinstance(slot, dict) and slot.get("token") == DEFERRED_TOKEN else None
        )
        return self.requests.add(Request(rid, method, reply, msg, 1, token_slot=token_slot))

    def order(
        self,
        method: str,
        params: dict[str, Any],
        expect: order_requests.OrderExpect,
        req_id: int | None = None,
    ) -> Request:
        """An order request (:mod:`.order_requests`): checked ``params``
        with the token; written once, never replayed."""
        rid = self._reqid(req_id)
        return self.requests.add(order_requests.order_request(method, params, expect, rid))

    def replay_needs_token(self) -> bool:
        return any(needs_token(sub["channel"]) for sub, _ in self.subscriptions.replay_plan())

    def replay(self, token: str | None) -> ReplayPlan:
        """Subscribe requests restoring every live entry on a new socket: one
        per subscription with all its symbols, paced (see :data:`REPLAY_BURST`)."""
        out: list[Request] = []
        notices: list[Any] = []
        for sub, symbols in self.subscriptions.replay_plan():
            key = subscription_key(sub)
            tok = None
            if needs_token(sub["channel"]):
                tok = token or self._sub_tokens.get(key)
                if not tok:
                    for s in symbols:
                        notices.append(self._replay_lost(key, sub, s, "no token for replay"))
                    continue
            wire = replay_wire(sub, symbols, tok)
            rid = self.requests.reqid(None, internal=True)
            out.append(self.requests.add(subscription_request("subscribe", wire, rid, True)))
        return ReplayPlan(out, notices, self.replay_burst, self.replay_window)

    # -- the writer --------------------------------------------------------

    def next_to_send(self, request: Request, generation: int) -> SendAction:
        if not self.replay_retries.still_wanted(request):
            return SendAction.SETTLED  # a retry of entries the user dropped meanwhile
        return super().next_to_send(request, generation)

    def frame(self, request: Request) -> str:
        msg = request.message
        return encode_request(msg["method"], msg.get("params"), msg["req_id"]).decode()

    # -- receiving ---------------------------------------------------------

    def receive_frames(self, frames: Sequence[str | bytes]) -> Verdict:
        """Decode and apply a batch of frames; return what they meant. Every
        decoded frame is passed on to consumers (responses and heartbeats
        included); a binary or malformed frame is counted, logged and dropped."""
        verdict = Verdict()
        out = verdict.messages
        stats = self._stats
        for raw in frames:
            stats.frames_received += 1
            if raw.__class__ is not str:
                stats.binary_frames += 1
                log.warning("binary frame ignored (%d bytes)", len(raw))
                continue
            try:
                msg = decode(raw)
            except MessageError as exc:
                stats.malformed_frames += 1
                log.warning("malformed v2 frame ignored (%s): %s", exc, shorten(raw))
                continue
            cls = msg.__class__
            if cls is Response:
                assert isinstance(msg, Response)
                self._on_response(msg, verdict)
            elif cls is StatusMessage:
                assert isinstance(msg, StatusMessage)
                if msg.data:
                    self.system_status = msg.data[-1].system
            elif cls is InstrumentMessage:
                assert isinstance(msg, InstrumentMessage)
                self.instruments.update((p.symbol, p) for p in msg.data.pairs)
                self.instrument_snapshot |= msg.type == "snapshot"
            elif cls is ExecutionsMessage or cls is BalancesMessage:
                assert isinstance(msg, (ExecutionsMessage, BalancesMessage))
                self.private_feeds.check(msg, verdict)  # a gap's notice goes first
            out.append(msg)
        return verdict

    def _socket_gone(self) -> None:
        self.private_feeds.reset()  # sequences start at 1 on the next socket
        self.replay_retries.reset()  # the next socket's replay covers their entries

    def _on_response(self, resp: Response, verdict: Verdict) -> None:
        stats = self._stats
        if resp.success is False:
            stats.kraken_errors += 1
            if resp.error == RATE_LIMITED:
                stats.rate_limit_errors += 1
        req = self.requests.get(resp.req_id)
        if req is None or req.state not in _WIRE:
            if self.requests.was_expired(resp.req_id) or self._orders.late(resp):
                stats.late_replies += 1
                log.info("late response to settled req_id %r: %s", resp.req_id, resp.method)
            else:
                stats.unmatched_replies += 1
                log.warning("response to an unknown req_id %r: %s", resp.req_id, resp.method)
            return
        if resp.method != req.reply_event and resp.method != req.event:
            stats.unmatched_replies += 1
            log.warning("req_id %r got %s, expected %s", req.reqid, resp.method, req.reply_event)
            return
        if req.event in _SUBSCRIPTION_METHODS:
            if not self._answer_symbols(req, resp, verdict):
                return
        elif not self._orders.answer(req, resp):
            return
        if req.complete:
            failed = [r for r in req.replies if r.success is False]
            error = KrakenError(failed[0].error or "error", req.replies) if failed else None
            self._finish(req, Step.COMPLETE, error)
            verdict.settled.append(req)

    def _answer_symbols(self, req: Request, resp: Response, verdict: Verdict) -> bool:
        """Record which symbols ``resp`` answers; False for a duplicate."""
        result = resp.result
        symbol = result.get("symbol") if isinstance(result, dict) else None
        if symbol is None:
            symbol = resp.symbol
        if symbol is None and resp.error is not None:
            # Kraken names the symbol in the text ("Currency pair not
            # supported BTC/XYZ"): that error is about it alone, even if a
            # server left the top-level ``symbol`` out.
            symbol = next((s for s in req.parts if s and resp.error.endswith(" " + s)), None)
        if symbol is not None and req.parts != [None]:
            if symbol not in req.parts or symbol in req.answered:
                self._stats.duplicate_replies += 1
                log.warning("req_id %r: a second or unknown response for %r", req.reqid, symbol)
                return False
            answers: list[Any] = [symbol]
        else:
            # No symbol: an error about the whole request, or a channel
            # without symbols: it answers every symbol still open.
            answers = [s for s in req.parts if s not in req.answered]
            if not answers:
                self._stats.duplicate_replies += 1
                return False
        req.replies.append(resp)
        ok = resp.success is True
        key = str(req.key)
        retry: list[Any] = []
        for s in answers:
            req.answered.add(s)
            if req.event != "subscribe":
                continue
            if not req.replay:
                self.subscriptions.subscribe_settled(key, s, accepted=ok)
                continue
            entry = self.subscriptions.entry(key, s)
            if not ok and entry is not None:
                # A rejected replay is lost for good, unless the error is
                # transient (rate_limited): then sent again later, a few times.
                why = resp.error or "error"
                if why == RATE_LIMITED:
                    attempt = self.replay_retries.attempt(req)
                    if attempt < self.replay_attempts:
                        retry.append(s)
                        continue
                    why = f"rate_limited {attempt} times"
                verdict.messages.append(self._replay_lost(key, entry.subscription, s, why))
        if retry:
            pacing = (self.replay_burst, self.replay_window)
            self.replay_retries.schedule(req, key, retry, verdict, pacing)
        if req.replay:
            self.replay_retries.answered(req)
        return True

    def _lost_error(self, req: Request, why: str) -> ReplyLostError:
        error = super()._lost_error(req, why)
        return order_requests.lost_error(req, why) or error

    def _replay_lost(
        self, key: SubKey, sub: dict[str, Any], symbol: str | None, why: str
    ) -> SubscriptionLost:
        self._stats.replay_failures += 1
        self.subscriptions.replay_failed(key, symbol)
        log.warning("subscription %s %s could not be restored: %s", sub["channel"], symbol, why)
        return SubscriptionLost(dict(sub), symbol, why)
