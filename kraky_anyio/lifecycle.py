"""The request lifecycle glue any protocol version needs, without I/O.

:class:`RequestLifecycle` implements the writer- and socket-facing half of
:class:`kraky_anyio.seam.ProtocolCore` (``next_to_send``, ``supply_token``,
``sending``, ``send_failed``, ``fail_unsent``, ``caller_gone``,
``connection_lost``) on a :class:`~kraky_anyio.requests.RequestTable` and the
shared subscription registry, so a version's protocol object only says how
its frames are built and what its replies mean. Used by
:class:`kraky_anyio.v2.protocol.KrakenV2Protocol`; v1's protocol has the same
methods written out (it can inherit these instead).

Rules: a queued request bound to a socket that is gone is settled locally
(its goal is met); a deferred token is asked for; a request written on a
socket that is lost gets :class:`~kraky_anyio.errors.ReplyLostError` (an
unsubscribe's goal is met instead); the symbols (pairs) of a user's subscribe
that will never be answered are not live.
"""

from __future__ import annotations

from .errors import ConnectionClosedError, ReplyLostError
from .requests import DEFERRED_TOKEN, Request, RequestState, RequestTable, Step
from .seam import SendAction, Verdict
from .stats import Stats
from .subscriptions import SubscriptionRegistry

__all__ = ["RequestLifecycle"]

_WIRE = (RequestState.SENT, RequestState.ORPHANED)


class RequestLifecycle:
    """Mixed into a protocol object, which owns these attributes."""

    requests: RequestTable
    subscriptions: SubscriptionRegistry
    _stats: Stats

    # -- hooks a version may override ------------------------------------------

    def _lost_error(self, req: Request, why: str) -> ReplyLostError:
        """The error of a request whose socket went before its reply."""
        if req.waiting and not req.internal:
            self._stats.replies_lost += 1
        return ReplyLostError(
            f"{req.event} (req_id {req.reqid}): {why} before the reply came", req.replies
        )

    def _socket_gone(self) -> None:
        """Per-socket state to forget when a socket is lost (none here)."""

    # -- building ----------------------------------------------------------------

    def _reqid(self, reqid: int | None) -> int:
        """A free user reqid (expired orphans rolled back first)."""
        rid = self.requests.reqid(reqid)
        for expired in self.requests.take_expired():
            self._rollback(expired)
        return rid

    # -- the writer --------------------------------------------------------------

    def next_to_send(self, request: Request, generation: int) -> SendAction:
        if request.state is not RequestState.QUEUED:
            return SendAction.SKIP
        if request.bound_generation is not None and request.bound_generation != generation:
            self._finish(request, Step.SETTLE_LOCALLY, None)  # its socket is gone: goal met
            return SendAction.SETTLED
        slot = request.token_slot
        if slot is not None and slot.get("token") == DEFERRED_TOKEN:
            return SendAction.NEEDS_TOKEN
        return SendAction.SEND

    def supply_token(self, request: Request, token: str) -> None:
        if request.token_slot is not None:
            request.token_slot["token"] = token

    def sending(self, request: Request, generation: int) -> None:
        self.requests.advance(request, Step.SEND)
        request.generation = generation
        request.written = True
        self._stats.requests_sent += 1

    def send_failed(self, request: Request, cause: BaseException, written: bool = True) -> None:
        if request.state is RequestState.DONE:
            return
        if not written:
            request.written = False
            err = ConnectionClosedError(
                f"{request.event} (req_id {request.reqid}) was not sent: the socket closed "
                f"before it could be written ({cause}); it is safe to retry"
            )
            self._finish(request, Step.FAIL_UNSENT, err)
            return
        why = f"the socket failed while sending it: {cause}"
        self._finish(request, Step.LOST, self._lost_error(request, why))

    def fail_unsent(self, request: Request, error: BaseException) -> None:
        if request.state is RequestState.QUEUED:
            self._finish(request, Step.FAIL_UNSENT, error)

    def settle_locally(self, request: Request) -> None:
        self._finish(request, Step.SETTLE_LOCALLY, None)

    def caller_gone(self, request: Request, *, timed_out: bool = False) -> None:
        if timed_out and not request.internal and request.state is RequestState.SENT:
            self._stats.reply_timeouts += 1
        if request.state is RequestState.QUEUED:
            if not request.internal:
                self._stats.requests_abandoned += 1
            self._rollback(request)
        self.requests.advance(request, Step.CALLER_GONE)
        for expired in self.requests.take_expired():
            self._rollback(expired)

    # -- sockets -----------------------------------------------------------------

    def connection_lost(self, generation: int) -> Verdict:
        """Settle every request written on ``generation`` (its replies are
        lost; an unsubscribe's goal is met)."""
        verdict = Verdict()
        for req in self.requests:
            if req.generation != generation or req.state not in _WIRE:
                continue
            if req.event == "unsubscribe":
                self._finish(req, Step.COMPLETE, None)
            else:
                self._finish(req, Step.LOST, self._lost_error(req, "the connection was lost"))
            verdict.settled.append(req)
        self._socket_gone()
        return verdict

    # -- settling ----------------------------------------------------------------

    def _rollback(self, req: Request) -> None:
        """Parts of a user's subscribe that will never be answered are not live."""
        if req.event != "subscribe" or req.key is None or req.replay:
            return
        key = str(req.key)
        for part in req.parts:
            if part not in req.answered:
                req.answered.add(part)
                if req.state is RequestState.QUEUED:
                    self.subscriptions.subscribe_abandoned(key, [part])
                else:
                    self.subscriptions.subscribe_settled(key, part, accepted=False)

    def _finish(self, req: Request, step: Step, error: BaseException | None) -> None:
        self._rollback(req)
        self.requests.advance(req, step, error)
