"""The callers' side of requests: each waiting call's events, woken by the
shell from what the protocol returned (never by the protocol itself)."""

from __future__ import annotations

from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .errors import KrakyError, ReplyTimeoutError
from .requests import Request, RequestState
from .seam import ProtocolCore

__all__ = ["CLOSED_MESSAGE", "Waiters"]

CLOSED_MESSAGE = "the connection is closed (use it inside `async with open_kraken()`)"


class _Waiter:
    __slots__ = ("closed", "done", "sent")

    def __init__(self) -> None:
        self.sent = anyio.Event()
        self.done = anyio.Event()
        self.closed = False


class Waiters:
    """Every call waiting for a request of one connection."""

    def __init__(self, protocol: ProtocolCore) -> None:
        self._protocol = protocol
        self._waiting: dict[Request, _Waiter] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def wake(self, req: Request) -> None:
        """``req`` changed state: wake its caller if it waits for that."""
        waiter = self._waiting.get(req)
        if waiter is None:
            return
        if req.state is not RequestState.QUEUED:
            waiter.sent.set()
        if req.state is RequestState.DONE or req.state is RequestState.ABANDONED:
            waiter.done.set()

    def close(self) -> None:
        """The connection is closed: every waiting call raises the closed error."""
        for waiter in self._waiting.values():
            waiter.closed = True
            waiter.sent.set()
            waiter.done.set()

    async def request(
        self, req: Request, send: MemoryObjectSendStream[Request], reply_timeout: float
    ) -> list[dict[str, Any]]:
        """Hand ``req`` to the writer through ``send`` and wait for its replies.

        Blocks while the send queue is full and until the request was written;
        then at most ``reply_timeout`` for the replies (``ReplyTimeoutError``).
        Raises ``KrakyError`` (closed) if the connection closes meanwhile, and
        the request's own error. Cancelled before the wire: never sent."""
        if req.done:
            return req.result()
        waiter = _Waiter()
        self._waiting[req] = waiter
        try:
            if req.state is RequestState.ABANDONED:
                raise KrakyError(CLOSED_MESSAGE)
            try:
                await send.send(req)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                raise KrakyError(CLOSED_MESSAGE) from None
            await waiter.sent.wait()
            if not req.done:
                with anyio.move_on_after(reply_timeout):
                    await waiter.done.wait()
                if not req.done and waiter.closed:
                    raise KrakyError(CLOSED_MESSAGE)
                if not req.done:
                    self._protocol.caller_gone(req, timed_out=True)
                    raise ReplyTimeoutError(
                        f"no reply to {req.event} (reqid {req.reqid}) within {reply_timeout} s"
                    )
        except BaseException:
            # Cancelled before the wire: the writer will skip it. Already sent:
            # the reply, when it comes, still updates the protocol quietly.
            self._protocol.caller_gone(req)
            raise
        finally:
            del self._waiting[req]
        return req.result()
