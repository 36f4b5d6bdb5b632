"""Restoring a new socket: the replay plan and its paced sending (see ``connection.py``).

Runs in the socket's task, before the reader is told the socket is
connected: :func:`replay_plan` asks the protocol what to restore (fetching
the socket's token first when a private subscription needs one) and
:func:`send_replay` writes it, paced as the plan says. Nothing here decides
*what* is replayed: that is the protocol's :meth:`~kraky_anyio.seam.ProtocolCore.replay`.
:func:`send_later` queues what a verdict asks to send after a delay (a
rate-limited replay's retry), in the socket's task group.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from .errors import AuthError
from .requests import Request
from .seam import ReplayPlan

if TYPE_CHECKING:
    from .shell import Shell, SocketRun

__all__ = ["replay_plan", "send_later", "send_replay", "token_failure"]

log = logging.getLogger("kraky_anyio")


def token_failure(exc: BaseException) -> str:
    """What to log of a token failure: an ``AuthError``'s message (secret-free
    by contract: it names the provider's exception type), else the type."""
    return str(exc) if isinstance(exc, AuthError) else type(exc).__name__


async def replay_plan(shell: Shell) -> ReplayPlan:
    """The protocol's replay for the current socket. A token provider that
    fails is logged (never its message) and counted; the private
    subscriptions are then reported lost by the protocol. Never raises."""
    token = None
    if shell.tokens.configured and shell.protocol.replay_needs_token():
        try:
            token = await shell.tokens.for_socket(shell.generation)
        except Exception as exc:
            shell.protocol.stats.token_failures += 1
            log.warning(
                "token provider: %s; private subscriptions not restored", token_failure(exc)
            )
    return shell.protocol.replay(token)


async def send_replay(shell: Shell, run: SocketRun, plan: ReplayPlan) -> None:
    """Write ``plan``'s requests on ``run``'s socket, at most ``plan.burst``
    per ``plan.window`` seconds. Raises the transport's ``TransportError``
    if a write fails (the requests not written stay queued: the caller
    settles them)."""
    protocol, stats, tap = shell.protocol, shell.protocol.stats, shell.tap
    for i, req in enumerate(plan.requests):
        if plan.burst and i and i % plan.burst == 0:
            await anyio.sleep(plan.window)  # paced: see ReplayPlan
        protocol.sending(req, run.generation)
        stats.replayed += max(1, len(req.parts))
        frame = protocol.frame(req)
        if tap is not None:
            tap.sent(run.generation, frame, anyio.current_time())
        await run.ws.send_text(frame)


async def send_later(shell: Shell, delayed: list[tuple[float, Request]]) -> None:
    """Queue each of ``delayed``'s requests for the writer once its delay
    (seconds from now) is over. Run by the reader in the socket's task group,
    one task per verdict that has some, ending after its last request: the
    socket's loss cancels it (the protocol settles what was not written).
    Blocks while the send channel is full."""
    start = anyio.current_time()
    for delay, req in sorted(delayed, key=lambda item: item[0]):
        await anyio.sleep_until(start + delay)
        await shell.send_tx.send(req)
