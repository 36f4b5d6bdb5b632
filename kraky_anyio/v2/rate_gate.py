"""The async side of the order rate budget: admission before the wire, and
what a connection's socket tells the budget.

:func:`admit` holds an order request until its charge fits
(:class:`~.rate_budget.RateBudget` ``policy="wait"``: the exact decay time,
first come first served per pair, bounded by the caller's cancel scope) or
refuses it (``"raise"``: :class:`~kraky_anyio.errors.RateLimitError`, nothing
sent). :class:`RateKeeper` is one connection's link to a budget (which
several connections may share): it wraps each order request
(:meth:`RateKeeper.admitted`) and is the shell reader's observer
(:meth:`RateKeeper.observe`), so that responses, ``executions`` and
``ratecount`` reports reach the budget even when the caller has gone. Time is
read here (``anyio.current_time()``), never inside the budget.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import anyio

from ..errors import RateLimitError
from ..requests import Request, RequestState
from .rate_budget import BRAKES, WAKE_MARGIN, Charge, RateBudget, rate_limited
from .rate_queue import Ticket

__all__ = ["RateKeeper", "admit", "admitted"]

log = logging.getLogger("kraky_anyio")


def _wake(tickets: Iterable[Ticket]) -> None:
    for ticket in tickets:
        if ticket.signal is not None:
            ticket.signal.set()


def _refusal(budget: RateBudget, charge: Charge, now: float) -> RateLimitError:
    wait = budget.wait_time(charge, now)
    pair, needed, level = budget.worst(charge, now)
    where = f"{charge.method} needs {needed} on {pair}"
    room = f"the ceiling {budget.ceiling} (headroom {budget.headroom:g})"
    if math.isinf(wait):
        why = f"{where}: more than {room} ever allows; split it"
    else:
        why = f"{where}, where the counter is at {level:.2f} of {room}: it fits in {wait:.3f} s"
    return RateLimitError(
        f"order rate budget: {why}; not sent",
        method=charge.method,
        pair=pair,
        needed=needed,
        level=level,
        ceiling=budget.ceiling,
        wait=wait,
    )


async def admit(
    budget: RateBudget, charge: Charge, replan: Callable[[float], Charge] | None = None
) -> Charge:
    """Commit ``charge`` to ``budget`` once it fits, waiting if need be;
    returns what was committed.

    ``policy="wait"``: blocks until the charge fits on every pair it touches,
    behind the callers already waiting there (first come, first served); a
    cancellation while waiting takes the caller out of the queue, charging
    nothing. While it waits, its orders age and may get cheaper:
    ``replan(now)`` prices it again when a cost drops
    (:attr:`~.rate_budget.Charge.cheaper_in`) and before it is committed.
    ``policy="raise"``: never blocks; raises
    :class:`~kraky_anyio.errors.RateLimitError` if it does not fit now.
    A charge bigger than the limit itself raises under either policy.
    ``cancel_all``/``cancel_all_orders_after`` are committed at once.
    """
    now = anyio.current_time()
    if charge.method in BRAKES or not charge.costs:
        budget.commit(charge, now)
        return charge
    queues = budget.queues
    busy = any(queues.waiting(p) for p in charge.costs)
    wait = budget.wait_time(charge, now)
    if math.isinf(wait) or (budget.policy == "raise" and wait > 0):
        budget.refused += 1
        raise _refusal(budget, charge, now)
    if wait == 0 and not busy:
        budget.commit(charge, now)
        return charge
    budget.waited += 1
    ticket = queues.join(charge)
    try:
        while True:
            ticket.signal = event = anyio.Event()
            timeout = math.inf  # not first: woken when the caller before it leaves
            if queues.first(ticket):
                now = anyio.current_time()
                if replan is not None:
                    charge = replan(now)
                timeout = budget.wait_time(charge, now)
                if timeout == 0:
                    budget.commit(charge, now)
                    return charge
                if math.isinf(timeout):  # the ceiling fell under it while it waited
                    budget.refused += 1
                    raise _refusal(budget, charge, now)
                if replan is not None and charge.cheaper_in is not None:
                    timeout = min(timeout, charge.cheaper_in + WAKE_MARGIN)
            with anyio.move_on_after(timeout):
                await event.wait()
    finally:
        _wake(queues.leave(ticket))


class _Sent:
    """One admitted order request, until its replies are in."""

    __slots__ = ("charge", "done", "params", "rejected", "request", "seen")

    def __init__(self, charge: Charge, params: Mapping[str, Any]) -> None:
        self.charge = charge
        self.params = params
        self.request: Request | None = None
        self.seen = 0  # replies applied so far
        self.rejected = False
        self.done = False

    def bind(self, request: Request) -> None:
        """The request built for this charge (before it is queued)."""
        if self.charge.method:
            self.request = request


_UNLIMITED: Final = _Sent(Charge(""), {})


@asynccontextmanager
async def admitted(
    keeper: RateKeeper | None, method: str, params: Mapping[str, Any]
) -> AsyncIterator[_Sent]:
    """``keeper.admitted(method, params)``, or nothing to wait for when the
    connection has no budget (``sent.bind`` is then a no-op)."""
    if keeper is None:
        yield _UNLIMITED
        return
    async with keeper.admitted(method, params) as sent:
        yield sent


class RateKeeper:
    """One connection's link to a :class:`~.rate_budget.RateBudget`."""

    def __init__(self, budget: RateBudget) -> None:
        if not isinstance(budget, RateBudget):
            raise TypeError(f"rate_limit must be a RateBudget, not {type(budget).__name__}")
        self.budget = budget
        self._sent: list[_Sent] = []

    @asynccontextmanager
    async def admitted(self, method: str, params: Mapping[str, Any]) -> AsyncIterator[_Sent]:
        """``async with keeper.admitted(method, params) as sent``: waits for
        room (see :func:`admit`; raises ``RateLimitError`` like it), then runs
        the block, which builds the request, calls ``sent.bind(request)`` and
        sends it. Leaving the block: a request never written (no request,
        cancelled before the wire, refused locally) is refunded; its replies
        update the budget as they come, even after the caller left."""
        budget = self.budget

        def plan(now: float) -> Charge:
            return budget.plan(method, params, now)

        charge = plan(anyio.current_time())
        if charge.unknown:
            log.warning(
                "order rate budget: %s touches %d order(s) the client does not know "
                "(placed elsewhere?): not charged; subscribe to executions with "
                "snap_orders so every open order is known",
                method,
                charge.unknown,
            )
        sent = _Sent(await admit(budget, charge, plan), params)
        self._sent.append(sent)
        try:
            yield sent
        finally:
            self._collect(sent, anyio.current_time())
            if not sent.done and (sent.request is None or not sent.request.written):
                self._finish(sent, refund=True)

    def observe(self, messages: list[Any]) -> None:
        """The shell reader's observer: apply one batch's messages (``executions``
        and ``ratecount`` reports, the ``executions`` subscribe ack) and the
        replies of this connection's order requests. Never blocks."""
        budget = self.budget
        now: float | None = None
        for msg in messages:
            channel = getattr(msg, "channel", None)
            if channel == "executions":
                now = anyio.current_time()
                _wake(budget.queues.heads(budget.executions(msg, now)))
            elif channel is None and getattr(msg, "method", None) == "subscribe":
                before = budget.ceiling
                budget.subscribed(msg)
                if budget.ceiling != before:
                    _wake(budget.queues.heads(budget.pairs()))
        if self._sent:
            now = anyio.current_time() if now is None else now
            for sent in list(self._sent):
                self._collect(sent, now)

    def _collect(self, sent: _Sent, now: float) -> None:
        """Apply ``sent``'s new replies; finish it once its request is settled."""
        req = sent.request
        if req is None or sent.done:
            return
        budget = self.budget
        for resp in req.replies[sent.seen :]:
            if getattr(resp, "success", None) is False:
                if rate_limited(resp.error) and not sent.rejected:
                    sent.rejected = True
                    log.warning(
                        "order rate budget: Kraken refused %s for rate (%s) although "
                        "the budget let it through: its counter is raised",
                        sent.charge.method,
                        resp.error,
                    )
                    budget.rejected_for_rate(sent.charge, now)
                else:
                    budget.orders.refused(sent.charge.method, resp)
            else:
                budget.orders.response(sent.charge.method, sent.params, resp.result, now)
        sent.seen = len(req.replies)
        if req.state is RequestState.DONE or req.state is RequestState.ABANDONED:
            self._finish(sent, refund=not req.written and not sent.rejected)

    def _finish(self, sent: _Sent, *, refund: bool) -> None:
        sent.done = True
        if sent in self._sent:
            self._sent.remove(sent)
        budget = self.budget
        if sent.rejected:
            return  # rejected_for_rate refunded it already
        if refund:
            budget.refund(sent.charge, anyio.current_time())
            _wake(budget.queues.heads(sent.charge.costs))
        else:
            budget.landed(sent.charge)
