"""The request lifecycle, without I/O: one transition table, any protocol version.

A request is built by a protocol object (``v1``, later ``v2``), registered in
its :class:`RequestTable`, handed to the shell's writer and settled by replies
or by the loss of its socket. Every state change goes through
:meth:`RequestTable.advance`, which looks it up in :data:`TRANSITIONS` (an
impossible step raises :class:`RequestStateError`: a bug, never a peer's doing)::

    QUEUED --send--> SENT --complete/lost/fail_unsent--> DONE
      |  \\--settle_locally/fail_unsent--> DONE            |
      |                                                   caller_gone
      \\--caller_gone--> ABANDONED (never sent)             v
                              ORPHANED --complete/lost/expire--> DONE

``ORPHANED``: on the wire, but nobody waits any more (the caller was cancelled
or timed out); its replies still update the protocol's state quietly. At most
:data:`MAX_ORPHANS` are kept: older ones expire, and replies that come for an
expired reqid are counted as ``late_replies``.

Reqids: user requests use ``0 .. INTERNAL_REQID_BASE - 1`` (assigned upwards
from 1 when not given); the library's own requests (replays, watchdog pings)
use ``INTERNAL_REQID_BASE ..``, so they never collide with a user's choice.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .stats import Stats

__all__ = [
    "DEFERRED_TOKEN",
    "INTERNAL_REQID_BASE",
    "MAX_ORPHANS",
    "MAX_REQID",
    "MAX_USER_REQID",
    "TRANSITIONS",
    "Request",
    "RequestState",
    "RequestStateError",
    "RequestTable",
    "Step",
    "check_reqid",
]

#: Stands for "the token of the socket this request goes out on": the writer
#: fills it in (``SendAction.NEEDS_TOKEN``) just before sending, so a request
#: queued while disconnected never carries the previous socket's token.
DEFERRED_TOKEN = "<deferred: the token of the socket it goes out on>"
MAX_REQID = 2**64 - 1
#: The first reqid of the library's own space (the top 2**32 of Kraken's range).
INTERNAL_REQID_BASE = 2**64 - 2**32
MAX_USER_REQID = INTERNAL_REQID_BASE - 1
#: Timed-out or cancelled requests kept to apply their late replies.
MAX_ORPHANS = 256
#: Expired reqids remembered to recognise a late reply.
_MAX_EXPIRED = 1024


class RequestState(enum.Enum):
    QUEUED = "queued"  # built, not yet on the wire
    SENT = "sent"  # handed to the socket, waiting for replies
    ORPHANED = "orphaned"  # on the wire, its caller gone: replies applied quietly
    DONE = "done"  # settled: replies complete, failed, or settled locally
    ABANDONED = "abandoned"  # caller gone before the wire: never sent


class Step(enum.Enum):
    SEND = "send"  # the writer hands it to the socket now
    CALLER_GONE = "caller_gone"  # cancelled or timed out
    COMPLETE = "complete"  # every reply in, or an error reply settled it
    SETTLE_LOCALLY = "settle_locally"  # its goal is met without the wire
    FAIL_UNSENT = "fail_unsent"  # it could not be written (no token, socket closed)
    LOST = "lost"  # written, then the socket went before the replies
    EXPIRE = "expire"  # an orphan dropped from the table


_Q, _S, _O, _D, _A = (
    RequestState.QUEUED,
    RequestState.SENT,
    RequestState.ORPHANED,
    RequestState.DONE,
    RequestState.ABANDONED,
)

#: The whole lifecycle: ``TRANSITIONS[state][step]`` is the next state.
TRANSITIONS: Mapping[RequestState, Mapping[Step, RequestState]] = {
    _Q: {
        Step.SEND: _S,
        Step.CALLER_GONE: _A,
        Step.SETTLE_LOCALLY: _D,
        Step.FAIL_UNSENT: _D,
    },
    _S: {
        Step.COMPLETE: _D,
        Step.LOST: _D,
        Step.FAIL_UNSENT: _D,
        Step.CALLER_GONE: _O,
    },
    _O: {
        Step.COMPLETE: _D,
        Step.LOST: _D,
        Step.FAIL_UNSENT: _D,
        Step.EXPIRE: _D,
        Step.CALLER_GONE: _O,
    },
    _D: {Step.CALLER_GONE: _D},
    _A: {Step.CALLER_GONE: _A},
}

#: States in which a request is in the pending table (its reqid is taken).
_IN_TABLE = frozenset({_Q, _S, _O})


class RequestStateError(RuntimeError):
    """A step that the transition table does not allow (a bug in the caller)."""


def check_reqid(reqid: object, max_user: int = MAX_USER_REQID) -> int:
    """``reqid`` if it is an int in the user's range ``0..max_user``; else
    TypeError/ValueError."""
    if isinstance(reqid, bool) or not isinstance(reqid, int):
        raise TypeError(f"reqid must be an int, not {type(reqid).__name__}")
    if not 0 <= reqid <= max_user:
        bound = "2**64-2**32-1" if max_user == MAX_USER_REQID else str(max_user)
        raise ValueError(
            f"reqid must be between 0 and {bound} (the rest is the library's), got {reqid}"
        )
    return reqid


@dataclass(eq=False)
class Request:
    """One request and the replies it collects.

    ``parts`` are what the replies answer one each (v1: the pairs of a
    subscribe; ``[None]`` for one part-less answer; empty: count replies up to
    ``expected``). ``generation`` is the socket it went out on;
    ``bound_generation``, when set, is the only socket it may go out on (else
    it is settled locally). ``written`` is True once its bytes were handed to
    a socket.
    """

    reqid: int
    event: str
    reply_event: str
    message: dict[str, Any]
    expected: int
    parts: list[Any] = field(default_factory=list)
    key: Hashable | None = None
    internal: bool = False
    replay: bool = False
    bound_generation: int | None = None
    state: RequestState = RequestState.QUEUED
    generation: int | None = None
    written: bool = False
    replies: list[Any] = field(default_factory=list)  # v1: dicts; v2: typed responses
    answered: set[Any] = field(default_factory=set)
    error: BaseException | None = None
    #: Where the writer puts the token of the socket it goes out on, if deferred.
    token_slot: dict[str, Any] | None = None
    #: False when the frame carries no reqid (``reqid`` is then only its key here).
    numbered: bool = True

    @property
    def done(self) -> bool:
        return self.state is RequestState.DONE

    @property
    def waiting(self) -> bool:
        """True while a caller may still be waiting for it."""
        return self.state is RequestState.QUEUED or self.state is RequestState.SENT

    @property
    def complete(self) -> bool:
        """Every part answered (or ``expected`` replies for a part-less request)."""
        if self.parts:
            return len(self.answered) >= len(self.parts)
        return len(self.replies) >= self.expected

    @property
    def ident(self) -> str:
        """How errors name it: by the reqid it was sent with, if any."""
        return f"reqid {self.reqid}" if self.numbered else "without reqid"

    def result(self) -> list[Any]:
        """The replies, or raise the request's error."""
        if self.error is not None:
            raise self.error
        return list(self.replies)

    def __repr__(self) -> str:  # never show the message: it may hold a token
        return f"<Request {self.event} reqid={self.reqid} {self.state.value}>"


class RequestTable:
    """The pending requests of one logical connection, by reqid.

    The library's own reqids run from ``internal_base`` to ``max_reqid``; the
    user's are below ``internal_base`` (v2 keeps both in a smaller range)."""

    def __init__(
        self, stats: Stats, *, internal_base: int = INTERNAL_REQID_BASE, max_reqid: int = MAX_REQID
    ) -> None:
        self._stats = stats
        self._internal_base = internal_base
        self._max_reqid = max_reqid
        self._pending: dict[int, Request] = {}
        self._orphans: OrderedDict[int, Request] = OrderedDict()
        self._expired: OrderedDict[int, None] = OrderedDict()
        self._next_user = 1
        self._next_internal = internal_base
        self._just_expired: list[Request] = []

    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Any:
        return iter(list(self._pending.values()))

    def get(self, reqid: object) -> Request | None:
        if isinstance(reqid, int) and not isinstance(reqid, bool):
            return self._pending.get(reqid)
        return None

    def was_expired(self, reqid: object) -> bool:
        """True if ``reqid`` belonged to a request that expired (a late reply)."""
        return isinstance(reqid, int) and reqid in self._expired

    def reqid(self, reqid: int | None, *, internal: bool = False) -> int:
        """A free reqid: the caller's (checked), or the next of its space.

        A user's reqid held by an orphan is freed (the orphan expires); one
        held by a request somebody still waits for is a ``ValueError``.
        """
        if internal:
            while self._next_internal in self._pending:
                self._next_internal += 1
            rid = self._next_internal
            self._next_internal = self._internal_base if rid >= self._max_reqid else rid + 1
            return rid
        if reqid is not None:
            reqid = check_reqid(reqid, self._internal_base - 1)
            held = self._pending.get(reqid)
            if held is not None:
                if held.state is not RequestState.ORPHANED:
                    raise ValueError(f"reqid {reqid} is already pending")
                self.advance(held, Step.EXPIRE)
            return reqid
        while self._next_user in self._pending:
            self._next_user += 1
        rid = self._next_user
        self._next_user = 1 if rid >= self._internal_base - 1 else rid + 1
        return rid

    def add(self, req: Request) -> Request:
        self._pending[req.reqid] = req
        self._expired.pop(req.reqid, None)
        return req

    def take_expired(self) -> list[Request]:
        """Requests expired by the table itself since the last call (their
        protocol rolls back what they held)."""
        out, self._just_expired = self._just_expired, []
        return out

    def advance(self, req: Request, step: Step, error: BaseException | None = None) -> RequestState:
        """Apply ``step`` to ``req`` by the transition table; returns the new state."""
        try:
            new = TRANSITIONS[req.state][step]
        except KeyError:
            raise RequestStateError(f"{req!r}: no step {step.value!r} from this state") from None
        old, req.state = req.state, new
        if new is RequestState.DONE and old is not RequestState.DONE:
            req.error = error
        if new is RequestState.ORPHANED and old is not RequestState.ORPHANED:
            self._orphans[req.reqid] = req
            while len(self._orphans) > MAX_ORPHANS:
                _, oldest = self._orphans.popitem(last=False)
                self.advance(oldest, Step.EXPIRE)
        if new not in _IN_TABLE:
            if self._pending.get(req.reqid) is req:
                del self._pending[req.reqid]
            if self._orphans.get(req.reqid) is req:
                del self._orphans[req.reqid]
            if step is Step.EXPIRE:
                self._stats.requests_expired += 1
                self._just_expired.append(req)
                self._expired[req.reqid] = None
                while len(self._expired) > _MAX_EXPIRED:
                    self._expired.popitem(last=False)
        return new
