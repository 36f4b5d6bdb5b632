"""The callers' side of requests: each waiting call's events, woken by the
shell from what the protocol returned (never by the protocol itself).

A call first waits until its frame was *written* (handed to the socket: the
writer calls :meth:`Waiters.written`), then for its replies. A caller that
passes a ``task_status`` (anyio's ``TaskGroup.start`` protocol) is told in
between: ``await tg.start(...)`` returns once the frame is on the wire, and
the call goes on in ``tg`` to its reply."""

from __future__ import annotations

from typing import Any

import anyio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

from .errors import KrakyError, ReplyTimeoutError
from .requests import Request, RequestState
from .seam import ProtocolCore

__all__ = ["CLOSED_MESSAGE", "Waiters"]

CLOSED_MESSAGE = "the connection is closed (use it inside `async with open_kraken()`)"


class _Waiter:
    __slots__ = ("closed", "done", "written")

    def __init__(self) -> None:
        self.written = anyio.Event()  # on the wire, or settled, or closed
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
        if req.state is RequestState.DONE or req.state is RequestState.ABANDONED:
            waiter.written.set()
            waiter.done.set()

    def written(self, req: Request) -> None:
        """``req``'s frame was handed to the socket: wake its caller's
        ``task_status`` and start its reply timer."""
        waiter = self._waiting.get(req)
        if waiter is not None:
            waiter.written.set()

    def close(self) -> None:
        """The connection is closed: every waiting call raises the closed error."""
        for waiter in self._waiting.values():
            waiter.closed = True
            waiter.written.set()
            waiter.done.set()

    async def request(
        self,
        req: Request,
        send: MemoryObjectSendStream[Request],
        reply_timeout: float,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> list[dict[str, Any]]:
        """Hand ``req`` to the writer through ``send`` and wait for its replies.

        Blocks while the send queue is full and until the request was written
        (across reconnects: a request not yet written waits for the next
        socket); then at most ``reply_timeout`` for the replies
        (``ReplyTimeoutError``). ``task_status.started()`` is called once the
        frame was written, or once the request settled without error before
        that (nothing to write); never if it fails first. Raises
        ``KrakyError`` (closed) if the connection closes meanwhile, and the
        request's own error. Cancelled before the wire: never sent; after it:
        the replies are still matched (and counted) when they come."""
        if req.done:
            result = req.result()
            task_status.started()
            return result
        waiter = _Waiter()
        self._waiting[req] = waiter
        try:
            if req.state is RequestState.ABANDONED:
                raise KrakyError(CLOSED_MESSAGE)
            try:
                await send.send(req)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                raise KrakyError(CLOSED_MESSAGE) from None
            await waiter.written.wait()
            if waiter.closed and not req.done:
                raise KrakyError(CLOSED_MESSAGE)
            if req.error is None:
                task_status.started()
            if not req.done:
                with anyio.move_on_after(reply_timeout):
                    await waiter.done.wait()
                if not req.done and waiter.closed:
                    raise KrakyError(CLOSED_MESSAGE)
                if not req.done:
                    self._protocol.caller_gone(req, timed_out=True)
                    raise ReplyTimeoutError(
                        f"no reply to {req.event} ({req.ident}) within {reply_timeout} s"
                    )
        except BaseException:
            # Cancelled before the wire: the writer will skip it. Already sent:
            # the reply, when it comes, still updates the protocol quietly.
            self._protocol.caller_gone(req)
            raise
        finally:
            del self._waiting[req]
        return req.result()
