"""Kraken's v1 protocol, without I/O: one object that decides and returns verdicts.

:class:`KrakenProtocol` is the state of one logical connection (it outlives
reconnects) and implements :class:`kraky_anyio.seam.ProtocolCore`: it builds
requests (:mod:`.builders`), tracks them (:mod:`kraky_anyio.requests`), keeps
the subscription registry (:mod:`.subscriptions`), checks private feeds'
sequence numbers, matches replies sent without a reqid (:mod:`.unnumbered`),
and turns each batch of frames into a
:class:`~kraky_anyio.seam.Verdict`. It never calls the shell; the shell reads
only what these methods return. Nothing here blocks or does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..errors import ConnectionClosedError, KrakenError, OrderOutcomeUnknownError, ReplyLostError
from ..notices import SubscriptionLost
from ..redaction import shorten
from ..requests import Request, RequestState, RequestTable, Step
from ..seam import ReplayPlan, SendAction, Verdict
from ..stats import Stats
from ..trading import ORDER_REPLY_EVENTS
from . import builders
from .calls import RequestBuilding
from .codec import REPLY_EVENTS, FrameKind, classify, decode_str, encode
from .private_feeds import PrivateFeeds
from .subscriptions import SubKey, SubscriptionRegistry, is_private, subscription_key
from .unnumbered import UnnumberedRequests

log = logging.getLogger("kraky_anyio")

_KNOWN_EVENTS = frozenset({"systemStatus", "heartbeat", "error", *REPLY_EVENTS})

KrakenMessage = dict[str, Any] | list[Any]


class KrakenProtocol(RequestBuilding):
    """State of one logical Kraken v1 connection across its sockets."""

    classify = staticmethod(classify)

    def __init__(self) -> None:
        self._stats = Stats()
        self.subscriptions = SubscriptionRegistry()
        self.requests = RequestTable(self._stats)
        self.private_feeds = PrivateFeeds(self._stats)
        self._generation = 0  # the newest socket written to
        self.system_status: str | None = None
        # Tokens given inside a subscription dict: used for its replay when the
        # connection has no token of its own. Never logged.
        self._sub_tokens: dict[SubKey, str] = {}
        # Kraken answers requests written without a reqid in that order,
        # matched by channel and pair.
        self._unnumbered = UnnumberedRequests()

    @property
    def stats(self) -> Stats:
        return self._stats

    @property
    def maintenance(self) -> bool:
        return self.system_status == "maintenance"

    def pending(self) -> list[Request]:
        return list(self.requests)

    def replay_needs_token(self) -> bool:
        return any(is_private(sub) for sub, _ in self.subscriptions.replay_plan())

    def replay(self, token: str | None) -> ReplayPlan:
        """Subscribe requests restoring every live entry on a new socket."""
        out: list[Request] = []
        notices: list[Any] = []
        for sub, pairs in self.subscriptions.replay_plan():
            key = subscription_key(sub)
            tok = token or self._sub_tokens.get(key)
            if is_private(sub) and not tok:
                for p in pairs:
                    notices.append(self._replay_lost(key, sub, p, "no token for replay"))
                continue
            rid = self.requests.reqid(None, internal=True)
            real = None if pairs == [None] else [p for p in pairs if p is not None]
            req = builders.subscription_request("subscribe", sub, real, rid, tok, replay=True)
            out.append(self.requests.add(req))
        return ReplayPlan(out, notices)

    # -- the writer --------------------------------------------------------

    def next_to_send(self, request: Request, generation: int) -> SendAction:
        if request.state is not RequestState.QUEUED:
            return SendAction.SKIP
        if request.bound_generation is not None and request.bound_generation != generation:
            self._finish(request, Step.SETTLE_LOCALLY, None)  # its socket is gone: goal met
            return SendAction.SETTLED
        slot = request.token_slot
        if slot is not None and slot.get("token") == builders.DEFERRED_TOKEN:
            return SendAction.NEEDS_TOKEN
        return SendAction.SEND

    def supply_token(self, request: Request, token: str) -> None:
        if request.token_slot is not None:
            request.token_slot["token"] = token

    def frame(self, request: Request) -> str:
        return encode(request.message)

    def sending(self, request: Request, generation: int) -> None:
        self._generation = max(self._generation, generation)
        self.requests.advance(request, Step.SEND)
        request.generation = generation
        request.written = True
        self._stats.requests_sent += 1
        if "reqid" not in request.message:
            self._unnumbered.written(request)

    mark_sent = sending

    def send_failed(self, request: Request, cause: BaseException, written: bool = True) -> None:
        if request.state is RequestState.DONE:
            return
        if not written:
            request.written = False
            err: BaseException = ConnectionClosedError(
                f"{request.event} ({request.ident}) was not sent: the socket closed "
                f"before it could be written ({cause}); it is safe to retry"
            )
            self._finish(request, Step.FAIL_UNSENT, err)
            return
        self._finish(
            request,
            Step.LOST,
            self._lost_error(request, f"the socket failed while sending it: {cause}"),
        )

    def fail_unsent(self, request: Request, error: BaseException) -> None:
        if request.state is RequestState.QUEUED:
            self._finish(request, Step.FAIL_UNSENT, error)

    def settle_locally(self, request: Request) -> None:
        self._finish(request, Step.SETTLE_LOCALLY, None)

    def caller_gone(self, request: Request, *, timed_out: bool = False) -> None:
        if timed_out and not request.internal and request.state is RequestState.SENT:
            self._stats.reply_timeouts += 1
        if request.state is RequestState.QUEUED and not request.internal:
            self._stats.requests_abandoned += 1
        if request.state is RequestState.QUEUED:
            self._rollback(request)
        self.requests.advance(request, Step.CALLER_GONE)
        for expired in self.requests.take_expired():
            self._rollback(expired)

    # -- sockets -----------------------------------------------------------

    def connection_lost(self, generation: int) -> Verdict:
        """Settle every request written on ``generation`` (reply lost)."""
        verdict = Verdict()
        for req in self.requests:
            if req.generation != generation or req.state not in (
                RequestState.SENT,
                RequestState.ORPHANED,
            ):
                continue
            if req.event == "unsubscribe":
                self._finish(req, Step.COMPLETE, None)  # its goal is met
            else:
                self._finish(req, Step.LOST, self._lost_error(req, "the connection was lost"))
            verdict.settled.append(req)
        self.private_feeds.reset()
        return verdict

    def _lost_error(self, req: Request, why: str) -> ReplyLostError:
        if req.waiting and not req.internal:
            self._stats.replies_lost += 1
        if req.event in ORDER_REPLY_EVENTS:
            return OrderOutcomeUnknownError(
                f"{req.event} ({req.ident}) was sent but {why} before its reply: "
                "its outcome is unknown and it will not be re-sent",
                req.replies,
            )
        return ReplyLostError(
            f"{req.event} ({req.ident}): {why} before the reply came", req.replies
        )

    def _rollback(self, req: Request) -> None:
        """Parts of a user's subscribe that will never be answered are not live."""
        if req.event == "subscribe" and req.key is not None and not req.replay:
            for p in req.parts:
                if p not in req.answered:
                    req.answered.add(p)
                    if req.state is RequestState.QUEUED:
                        self.subscriptions.subscribe_abandoned(str(req.key), [p])
                    else:
                        self.subscriptions.subscribe_settled(str(req.key), p, accepted=False)

    def _finish(self, req: Request, step: Step, error: BaseException | None) -> None:
        self._rollback(req)
        self.requests.advance(req, step, error)

    # -- receiving -----------------------------------------------------------

    def receive(self, raw: str | bytes) -> KrakenMessage | None:
        """One frame, for tests and tools: the message to deliver, or None.
        (The shell uses :meth:`receive_frames`, which also returns what settled.)"""
        verdict = self.receive_frames((raw,))
        msgs = [m for m in verdict.messages if isinstance(m, dict | list)]
        return msgs[-1] if msgs else None

    def receive_frames(self, frames: Sequence[str | bytes]) -> Verdict:
        """Decode and apply a batch of frames; return what they meant."""
        verdict = Verdict()
        out = verdict.messages
        stats = self._stats
        # Counted per batch: nothing else runs before this call returns.
        stats.frames_received += len(frames)
        for raw in frames:
            if raw.__class__ is not str:
                stats.binary_frames += 1
                log.warning("binary frame ignored (%d bytes)", len(raw))
                continue
            try:
                msg = decode_str(raw)
            except (ValueError, RecursionError):
                stats.malformed_frames += 1
                log.warning("frame is not JSON, ignored: %s", shorten(raw))
                continue
            # The hot path: public channel data, judged as classify() would.
            if (
                msg.__class__ is list
                and 4 <= len(msg) <= 5
                and msg[-2].__class__ is str
                and msg[-1].__class__ is str
            ):
                out.append(msg)
                continue
            kind = classify(msg)
            if kind is FrameKind.MALFORMED:
                stats.malformed_frames += 1
                log.warning("malformed frame ignored: %s", shorten(raw))
                continue
            if kind is FrameKind.REPLY or kind is FrameKind.EVENT:
                self._on_event(msg, verdict)
            elif kind is FrameKind.RATE_LIMIT:
                stats.rate_limit_errors += 1
                log.warning("Kraken: %s", msg.get("Error"))
            elif kind is FrameKind.PRIVATE:
                self._check_sequence(msg, verdict)  # its notice goes first
            out.append(msg)
        return verdict

    def _on_event(self, msg: dict[str, Any], verdict: Verdict) -> None:
        event = msg["event"]
        if event == "heartbeat":
            return
        if event == "systemStatus":
            status = msg.get("status")
            if isinstance(status, str):
                self.system_status = status
            return
        reqid = msg.get("reqid")
        if reqid is None and (event == "subscriptionStatus" or event == "pong"):
            req = self._unnumbered.match(msg)
        else:
            req = self.requests.get(reqid)
        if event not in _KNOWN_EVENTS and (req is None or req.reply_event):
            self._stats.unknown_events += 1
            log.warning("unknown event %r", event)
            return
        if msg.get("status") == "error" or event == "error":
            self._stats.kraken_errors += 1
        if req is None or req.state not in (RequestState.SENT, RequestState.ORPHANED):
            if self.requests.was_expired(reqid):
                self._stats.late_replies += 1
                log.info("late reply to expired reqid %r: %s", reqid, event)
            elif event != "error":
                self._stats.unmatched_replies += 1
                if reqid is None:
                    log.warning("%s without reqid matches no request: %s", event, shorten(msg))
                else:
                    log.warning("reply to an unknown reqid %r: %s", reqid, event)
            else:
                log.warning("Kraken error: %s", msg.get("errorMessage"))
            return
        if event == "error":
            req.replies.append(msg)
            self._settle(
                req, KrakenError(str(msg.get("errorMessage", "error")), req.replies), verdict
            )
            return
        if event != req.reply_event and req.reply_event:
            self._stats.unmatched_replies += 1
            log.warning("reqid %r got %s, expected %s", reqid, event, req.reply_event)
            return
        if req.parts and not self._answer_parts(req, msg, verdict):
            return
        if not req.parts:
            req.replies.append(msg)
        if req.complete or not req.reply_event:
            errors = [r for r in req.replies if r.get("status") == "error"]
            err = (
                KrakenError(str(errors[0].get("errorMessage", "error")), req.replies)
                if errors
                else None
            )
            self._settle(req, err, verdict)

    def _answer_parts(self, req: Request, msg: dict[str, Any], verdict: Verdict) -> bool:
        """Record which parts (pairs) ``msg`` answers; False for a duplicate."""
        if "pair" in msg and req.parts != [None]:
            part = msg.get("pair")
            if part not in req.parts or part in req.answered:
                self._stats.duplicate_replies += 1
                log.warning("reqid %r: a second or unknown reply for %r ignored", req.reqid, part)
                return False
            parts = [part]
        else:
            # One reply for the whole request (private channel, or an error
            # naming no pair): it answers every part still open.
            parts = [p for p in req.parts if p not in req.answered]
            if not parts:
                self._stats.duplicate_replies += 1
                return False
        req.replies.append(msg)
        ok = msg.get("status") == "subscribed"
        for p in parts:
            req.answered.add(p)
            if req.event != "subscribe" or req.key is None:
                continue
            key = str(req.key)
            entry = self.subscriptions.entry(key, p)
            if req.replay and not ok and entry is not None:
                # A rejected replay is never retried: the entry is gone for good.
                verdict.messages.append(
                    self._replay_lost(key, entry.subscription, p, str(msg.get("errorMessage")))
                )
            elif not req.replay:
                self.subscriptions.subscribe_settled(key, p, accepted=ok)
            if ok and req.replay and entry is not None:
                self.private_feeds.resubscribed(entry.subscription.get("name"))
        return True

    def _settle(self, req: Request, error: BaseException | None, verdict: Verdict) -> None:
        self._finish(req, Step.COMPLETE, error)
        verdict.settled.append(req)

    def _replay_lost(
        self, key: SubKey, sub: dict[str, Any], pair: str | None, why: str
    ) -> SubscriptionLost:
        self._stats.replay_failures += 1
        self.subscriptions.replay_failed(key, pair)
        log.warning("subscription %s %s could not be restored: %s", sub.get("name"), pair, why)
        return SubscriptionLost(dict(sub), pair, why)

    # -- private feeds -------------------------------------------------------

    def _check_sequence(self, msg: list[Any], verdict: Verdict) -> None:
        """A gap or restart in a private feed: a notice, and a resubscribe for
        a fresh snapshot (unsubscribe + subscribe, not touching the replay set)."""
        gap = self.private_feeds.check(msg)
        if gap is None:
            return
        verdict.messages.append(gap)
        for sub, _pairs in self.subscriptions.replay_plan():
            if sub.get("name") != gap.channel:
                continue
            tok = self._sub_tokens.get(subscription_key(sub)) or builders.DEFERRED_TOKEN
            for event in ("unsubscribe", "subscribe"):
                rid = self.requests.reqid(None, internal=True)
                req = builders.subscription_request(event, sub, None, rid, tok, replay=True)
                # For this socket only: a new one replays the channel anyway.
                req.bound_generation = self._generation or None
                verdict.to_send.append(self.requests.add(req))
