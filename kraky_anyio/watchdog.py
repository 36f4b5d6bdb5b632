"""The watchdog: one task per socket judging liveness (see ``connection.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .errors import TransportError

if TYPE_CHECKING:
    from .shell import Shell, SocketRun

__all__ = ["watch"]


async def watch(shell: Shell, run: SocketRun) -> None:
    """Judge liveness on the server's own messages: ping after
    ``idle_timeout`` of silence, drop the socket if ``ping_timeout`` more
    pass silently. The deadline covers sending the ping too: a send that
    cannot complete in time (the server does not read) is a dead socket."""
    idle_timeout, ping_timeout = shell.options.idle_timeout, shell.options.ping_timeout
    ws = run.ws
    while True:
        if shell.fanout.blocked:
            # The reader is not reading: silence proves nothing.
            await shell.fanout.wait_unblocked()
            shell.last_rx = anyio.current_time()
            continue
        idle_until = shell.last_rx + idle_timeout
        now = anyio.current_time()
        if now < idle_until:
            await anyio.sleep(idle_until - now)
            if shell.last_rx + idle_timeout > idle_until:
                continue  # a message came: idle again from there
            # Otherwise the silence is over, even if a clock that keeps
            # time in steps woke us a rounding error early.
            if shell.fanout.blocked:
                continue
        ping = shell.protocol.liveness_ping()
        shell.protocol.stats.pings_sent += 1
        sent_at = anyio.current_time()
        deadline = sent_at + ping_timeout
        shell.protocol.sending(ping, run.generation)
        with anyio.move_on_after(ping_timeout) as scope:
            frame = shell.protocol.frame(ping)
            if shell.tap is not None:
                shell.tap.sent(run.generation, frame, sent_at)
            try:
                await ws.send_text(frame)
            except TransportError:
                return  # the reader sees the same failure and ends the socket
        if scope.cancelled_caught:
            await shell.dead(run, f"a ping could not be sent within {ping_timeout:g} s")
            return
        await anyio.sleep(max(0.0, deadline - anyio.current_time()))
        shell.protocol.caller_gone(ping, timed_out=True)
        if shell.last_rx < sent_at and not shell.fanout.blocked:
            await shell.dead(run, f"no message from Kraken for {idle_timeout + ping_timeout:g} s")
            return
