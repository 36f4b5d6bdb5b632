"""The interface between the shell (``connection.py``) and a protocol object.

The shell owns tasks, sockets and consumers and knows no protocol version; a
protocol object (``kraky_anyio.v1.protocol.KrakenProtocol``, later a v2 one)
owns every decision and *returns* what happened, like h11's ``Connection`` or
websockets' sans-I/O ``Protocol``. Nothing here imports anyio, and nothing
calls back from the protocol into the shell.

One frame: socket -> shell reader -> ``receive_frames(frames)`` -> :class:`Verdict`
(messages and notices for consumers, settled requests whose callers the shell
wakes, requests the protocol wants sent). One request: public method ->
protocol builds a :class:`~kraky_anyio.requests.Request` -> send channel ->
writer asks ``next_to_send(request, generation)`` -> ``sending`` -> socket.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .requests import Request
from .stats import Stats

__all__ = ["ProtocolCore", "ReplayPlan", "SendAction", "Verdict"]


class SendAction(enum.Enum):
    """What the writer does with a queued request on the current socket."""

    SEND = "send"  # write ``protocol.frame(request)`` now
    SETTLED = "settled"  # settled without the wire: wake its caller
    NEEDS_TOKEN = "needs_token"  # fetch this socket's token, ``supply_token``, ask again
    SKIP = "skip"  # nobody waits for it any more: drop it


@dataclass(slots=True)
class Verdict:
    """What one batch of frames (or one lost socket) meant.

    ``messages``: for consumers, in order (protocol messages and notices).
    ``settled``: requests that reached ``DONE``: wake their callers.
    ``to_send``: requests the protocol itself wants written (e.g. a resync).
    ``to_send_after``: ``(delay, request)``: written ``delay`` seconds after
    the shell got the verdict, on this socket only (e.g. a rate-limited
    replay's retry): its loss cancels the wait, and the protocol settles
    what was not written (``connection_lost``).
    """

    messages: list[Any] = field(default_factory=list)
    settled: list[Request] = field(default_factory=list)
    to_send: list[Request] = field(default_factory=list)
    to_send_after: list[tuple[float, Request]] = field(default_factory=list)


@dataclass(slots=True)
class ReplayPlan:
    """Requests restoring the live subscriptions on a new socket, and notices
    for those that cannot be restored (e.g. no token).

    Pacing: the shell writes at most ``burst`` requests, then waits
    ``window`` seconds before the next ``burst`` (``burst`` 0: all at once).
    """

    requests: list[Request]
    notices: list[Any]
    burst: int = 0
    window: float = 0.0

    @property
    def entries(self) -> int:
        """How many subscription entries the requests restore."""
        return sum(max(1, len(r.parts)) for r in self.requests)


class ProtocolCore(Protocol):
    """What the shell needs from a protocol object (v1 today, v2 tomorrow)."""

    @property
    def stats(self) -> Stats: ...

    @property
    def maintenance(self) -> bool:
        """True while the exchange reports maintenance (reconnect more slowly)."""
        ...

    def receive_frames(self, frames: Sequence[str | bytes]) -> Verdict:
        """Decode and apply frames of the current socket."""
        ...

    def next_to_send(self, request: Request, generation: int) -> SendAction: ...

    def supply_token(self, request: Request, token: str) -> None: ...

    def frame(self, request: Request) -> str: ...

    def sending(self, request: Request, generation: int) -> None:
        """The writer is about to hand ``request`` to socket ``generation``."""
        ...

    def send_failed(self, request: Request, cause: BaseException, written: bool) -> None:
        """The write failed; ``written`` says whether any byte may have left."""
        ...

    def fail_unsent(self, request: Request, error: BaseException) -> None: ...

    def caller_gone(self, request: Request, *, timed_out: bool = False) -> None:
        """The caller stopped waiting (cancelled, or ``timed_out``)."""
        ...

    def replay_needs_token(self) -> bool: ...

    def replay(self, token: str | None) -> ReplayPlan: ...

    def connection_lost(self, generation: int) -> Verdict: ...

    def liveness_ping(self) -> Request:
        """An internal ping (its reqid in the library's own space)."""
        ...
