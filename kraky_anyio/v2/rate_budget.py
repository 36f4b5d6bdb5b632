"""The client's copy of Kraken's order rate counters, without I/O: what an
order request will cost, and how long until it fits.

Kraken keeps one counter **per pair and account** (shared by REST, WebSocket
and FIX): each order action adds its cost (:mod:`.rate_rules`: an add 1, a
cancel up to 8 for a young order), the counter decays at the tier's rate, and
an action that would take it over the ceiling is refused with
``EOrder:Rate limit exceeded``. :class:`RateBudget` keeps the same counters on
the client, so that :func:`~.rate_gate.admit` can hold a request back (or
refuse it) *before* it is sent. Every time is an argument (the caller's clock,
``anyio.current_time()``), so everything here is tested without a loop.

Pricing (:meth:`RateBudget.plan`): ``add_order`` 1 on its symbol,
``batch_add`` 1 per order; ``amend_order``, ``edit_order``, ``cancel_order``,
``batch_cancel`` by each order's age (:mod:`.rate_orders` knows the orders
from the client's responses and ``executions``). An order of unknown age on a
known pair is priced as the youngest. Ages grow while a request waits:
:attr:`Charge.cheaper_in` says when to price it again. An order the client
cannot place on any pair (placed elsewhere, before this process) is not
charged -- there is no pair to charge -- but counted (``unknown_orders``);
subscribe to
``executions`` with ``snap_orders`` so the client knows every open order.
``cancel_all`` and ``cancel_all_orders_after`` are never held back: they are
the brake. ``cancel_all`` is charged afterwards as the cancel of every order
the client knows open (Kraken may count them), ``cancel_all_orders_after``
nothing (it touches no order until it fires; ``ratecounter`` reports what
firing cost).

One budget may be shared by several connections of one account, in one event
loop: Kraken's counter is account-wide, so they must draw from the same one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

from . import rate_rules
from .rate_orders import OrderInfo, OrderTable, field_of, listed
from .rate_queue import PairQueues
from .rate_rules import Action, action_cost, cost_changes_in, decayed

__all__ = ["BRAKES", "WAKE_MARGIN", "Charge", "Policy", "RateBudget", "rate_limited"]

Policy = Literal["wait", "raise"]

#: Methods never held back by the budget (see the module text).
BRAKES: Final = frozenset({"cancel_all", "cancel_all_orders_after"})

#: Seconds added to every wait, so float rounding never wakes a caller a hair
#: before the charge fits (then it would sleep again for a sub-microsecond).
WAKE_MARGIN: Final = 1e-3

_BY_AGE: Final[Mapping[str, Action]] = {
    "amend_order": "amend",
    "edit_order": "edit",
    "cancel_order": "cancel",
    "batch_cancel": "cancel",
}


@dataclass(frozen=True, eq=False)
class Charge:
    """What one order request adds to the counters: ``costs`` by pair, and
    ``unknown`` orders it touches that no pair could be charged for."""

    method: str
    costs: Mapping[str, int] = field(default_factory=dict)
    unknown: int = 0
    #: Seconds until a cost here drops as its orders age (None: never): a
    #: caller waiting for room plans again then.
    cheaper_in: float | None = None

    @property
    def total(self) -> int:
        return sum(self.costs.values())


class _Counter:
    __slots__ = ("in_flight", "level", "stamp")

    def __init__(self) -> None:
        self.level = 0.0  # the counter at ``stamp``
        self.stamp = 0.0
        self.in_flight = 0  # committed charges the server may not have counted yet


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


class RateBudget:
    """Kraken's per-pair order rate counters, kept on the client.

    ``tier``: ``"starter"`` (ceiling 60, decay 1/s), ``"intermediate"`` (125,
    2.34/s) or ``"pro"`` (180, 3.75/s); ``ceiling``/``decay`` override the
    tier's. ``policy``: ``"wait"`` holds a request until it fits (bounded by
    the caller's cancel scope), ``"raise"`` refuses it with
    :class:`~kraky_anyio.errors.RateLimitError` without sending. ``headroom``
    counts kept free below the ceiling, for latency jitter and for actions
    the client does not see (REST, another program). Bad arguments raise
    ``TypeError``/``ValueError`` here.

    The ``executions`` subscribe ack's ``maxratecount`` becomes the ceiling
    (an explicit ``ceiling`` caps it); a ``ratecount`` report resets its
    pair's counter (plus what is still in flight).
    """

    def __init__(
        self,
        tier: str = "starter",
        policy: Policy = "wait",
        *,
        ceiling: int | None = None,
        decay: float | None = None,
        headroom: float = 1.0,
    ) -> None:
        if not isinstance(tier, str):
            raise TypeError(f"tier must be a str, not {type(tier).__name__}")
        rules = rate_rules.tier(tier)
        if policy not in ("wait", "raise"):
            raise ValueError(f"policy must be 'wait' or 'raise', got {policy!r}")
        if ceiling is not None:
            if isinstance(ceiling, bool) or not isinstance(ceiling, int):
                raise TypeError(f"ceiling must be an int, not {type(ceiling).__name__}")
            if ceiling < 1:
                raise ValueError(f"ceiling must be >= 1, got {ceiling}")
        if decay is not None and _number("decay", decay) <= 0:
            raise ValueError(f"decay must be > 0, got {decay!r}")
        room = _number("headroom", headroom)
        cap = rules.ceiling if ceiling is None else ceiling
        if not 0 <= room < cap:
            raise ValueError(f"headroom must be >= 0 and below the ceiling {cap}, got {headroom!r}")
        self._tier = rules.name
        self._policy: Policy = policy
        self._headroom = room
        self._cap = ceiling  # the user's explicit ceiling, if any
        self._ceiling = cap
        self._decay = rules.decay if decay is None else float(decay)
        self.orders = OrderTable()
        self._counters: dict[str, _Counter] = {}
        #: Callers waiting for room, first come first served, per pair.
        self.queues = PairQueues()
        #: Orders touched that no pair could be charged for (see the module).
        self.unknown_orders = 0
        #: Requests that had to wait, and those refused (``policy="raise"``).
        self.waited = 0
        self.refused = 0
        #: ``EOrder:Rate limit exceeded`` answers seen (each one a budget miss).
        self.rejected = 0
        #: ``ratecount`` reports applied.
        self.resyncs = 0

    def __repr__(self) -> str:
        return (
            f"RateBudget(tier={self.tier!r}, policy={self.policy!r}, "
            f"ceiling={self.ceiling}, decay={self.decay}, headroom={self.headroom})"
        )

    @property
    def tier(self) -> str:
        return self._tier

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def headroom(self) -> float:
        return self._headroom

    @property
    def ceiling(self) -> int:
        """Kraken's ceiling: the tier's (or ``ceiling=``), then ``maxratecount``'s."""
        return self._ceiling

    @property
    def decay(self) -> float:
        """Counts per second the counter decays."""
        return self._decay

    @property
    def limit(self) -> float:
        """What a counter may reach: the ceiling less the headroom."""
        return self.ceiling - self.headroom

    def level(self, pair: str, now: float) -> float:
        """``pair``'s counter at ``now`` as the client reckons it."""
        c = self._counters.get(pair)
        return 0.0 if c is None else decayed(c.level, self.decay, now - c.stamp)

    def pairs(self) -> list[str]:
        """Pairs with a counter."""
        return list(self._counters)

    # -- planning --------------------------------------------------------------

    def plan(self, method: str, params: Mapping[str, Any] | None, now: float) -> Charge:
        """What ``method`` with ``params`` (Kraken's wire names) will cost,
        by pair, if sent at ``now``. ``ValueError`` for a method that is not
        an order action."""
        p: Mapping[str, Any] = params or {}
        if method in ("add_order", "batch_add"):
            n = 1 if method == "add_order" else _count(p.get("orders"))
            symbol = p.get("symbol")
            if isinstance(symbol, str) and symbol:
                return Charge(method, {symbol: n} if n else {})
            return Charge(method, unknown=n)
        if method == "cancel_all":
            costs, cheaper_in = self._costs("cancel", self.orders, now)
            return Charge(method, costs, cheaper_in=cheaper_in)
        if method == "cancel_all_orders_after":
            return Charge(method)
        action = _BY_AGE.get(method)
        if action is None:
            raise ValueError(f"{method!r} is not an order action the budget can price")
        found, unknown = self._targets(method, p)
        costs, cheaper_in = self._costs(action, found, now)
        # A pair named in the request (edit_order's symbol): the youngest price.
        symbol = p.get("symbol")
        if unknown and isinstance(symbol, str) and symbol:
            costs[symbol] = costs.get(symbol, 0) + unknown * action_cost(action, None)
            unknown = 0
        return Charge(method, costs, unknown, cheaper_in)

    def _targets(self, method: str, p: Mapping[str, Any]) -> tuple[list[OrderInfo], int]:
        """The known orders a request touches, and how many it names unknown."""
        found: list[OrderInfo] = []
        unknown = 0
        refs: list[tuple[str, object]] = []
        if method in ("amend_order", "edit_order"):
            refs.append(("id", p.get("order_id") if "order_id" in p else p.get("cl_ord_id")))
        elif method == "cancel_order":
            refs += [("id", x) for x in listed(p.get("order_id"))]
            refs += [("cl", x) for x in listed(p.get("cl_ord_id"))]
            refs += [("ref", x) for x in listed(p.get("order_userref"))]
        else:  # batch_cancel
            refs += [("any", x) for x in listed(p.get("orders"))]
            refs += [("cl", x) for x in listed(p.get("cl_ord_id"))]
        for kind, ref in refs:
            if kind == "ref":
                hits = self.orders.by_userref(ref)
            elif kind == "any":
                hits = self.orders.by_ref(ref)
            else:
                one = self.orders.get(ref, ref) if kind == "id" else self.orders.get(None, ref)
                hits = [] if one is None else [one]
            found += hits
            unknown += not hits
        return found, unknown

    def _costs(
        self, action: Action, orders: Iterable[OrderInfo], now: float
    ) -> tuple[dict[str, int], float | None]:
        """Costs by pair, and the seconds until the first of them drops."""
        costs: dict[str, int] = {}
        soonest: float | None = None
        for info in orders:
            age = info.age(now)
            costs[info.pair] = costs.get(info.pair, 0) + action_cost(action, age)
            step = cost_changes_in(action, age)
            if step is not None and (soonest is None or step < soonest):
                soonest = step
        return costs, soonest

    # -- waiting ---------------------------------------------------------------

    def wait_time(self, charge: Charge, now: float) -> float:
        """Seconds from ``now`` until ``charge`` fits under every pair's limit
        (0.0: it fits now; the exact decay time plus :data:`WAKE_MARGIN`
        otherwise; ``math.inf`` if a cost exceeds the limit itself)."""
        wait = 0.0
        for pair, cost in charge.costs.items():
            if cost > self.limit:
                return math.inf
            over = self.level(pair, now) + cost - self.limit
            if over > 0:
                wait = max(wait, over / self.decay + WAKE_MARGIN)
        return wait

    def worst(self, charge: Charge, now: float) -> tuple[str, int, float]:
        """The pair that makes ``charge`` wait longest: ``(pair, cost, level)``."""
        pair = max(
            charge.costs, key=lambda p: self.wait_time(Charge("", {p: charge.costs[p]}), now)
        )
        return pair, charge.costs[pair], self.level(pair, now)

    # -- charging --------------------------------------------------------------

    def commit(self, charge: Charge, now: float) -> None:
        """``charge`` is being sent at ``now``: add it to the counters."""
        self.unknown_orders += charge.unknown
        for pair, cost in charge.costs.items():
            c = self._counter(pair, now)
            c.level += cost
            c.in_flight += cost

    def landed(self, charge: Charge) -> None:
        """``charge``'s request was answered (or lost): the server has counted it."""
        for pair, cost in charge.costs.items():
            c = self._counters.get(pair)
            if c is not None:
                c.in_flight = max(0, c.in_flight - cost)

    def refund(self, charge: Charge, now: float) -> None:
        """``charge`` was committed but never reached Kraken (cancelled before
        the wire, refused locally): take it back."""
        self.landed(charge)
        for pair, cost in charge.costs.items():
            c = self._counter(pair, now)
            c.level = max(0.0, c.level - cost)

    def rejected_for_rate(self, charge: Charge, now: float) -> None:
        """Kraken refused ``charge``'s request with ``Rate limit exceeded``:
        not charged there, but its counter was higher than the client thought
        (above ``ceiling - cost``): the client's is raised to that."""
        self.rejected += 1
        self.refund(charge, now)
        for pair, cost in charge.costs.items():
            c = self._counter(pair, now)
            c.level = max(c.level, float(self.ceiling - cost))

    def resync(self, symbol: str, count: float, now: float) -> None:
        """Kraken reported ``count`` for ``symbol`` (``executions`` with
        ``ratecounter``): the counter becomes that, plus what the client sent
        that Kraken may not have counted yet."""
        c = self._counter(symbol, now)
        c.level = max(0.0, float(count)) + c.in_flight
        self.resyncs += 1

    def server_ceiling(self, maxratecount: object) -> None:
        """The ``executions`` subscribe ack's ``maxratecount``: the account's
        real ceiling (capped by an explicit ``ceiling``). A ceiling of another
        tier brings that tier's decay only if it is slower: a wrong guess only
        makes the budget more careful."""
        if isinstance(maxratecount, bool) or not isinstance(maxratecount, int):
            return
        if maxratecount < 1 or maxratecount <= self.headroom:
            return
        self._ceiling = maxratecount if self._cap is None else min(self._cap, maxratecount)
        for rules in rate_rules.TIERS.values():
            if rules.ceiling == maxratecount:
                self._decay = min(self._decay, rules.decay)

    # -- what Kraken said -----------------------------------------------------

    def executions(self, message: Any, now: float) -> list[str]:
        """Apply an ``executions`` message (typed or plain): orders placed,
        amended or gone, and ``ratecount`` reports. Returns the pairs whose
        counter a report reset (waiting callers there may go earlier)."""
        snapshot = field_of(message, "type") == "snapshot"
        resynced: list[str] = []
        entries = field_of(message, "data")
        for entry in entries if isinstance(entries, list | tuple) else ():
            count, symbol = field_of(entry, "ratecount"), field_of(entry, "symbol")
            if _is_count(count) and isinstance(symbol, str) and symbol:
                self.resync(symbol, count, now)
                resynced.append(symbol)
            self.orders.execution(entry, now, snapshot)
        return resynced

    def subscribed(self, response: Any) -> None:
        """Read ``maxratecount`` from an ``executions`` subscribe ack."""
        result = field_of(response, "result")
        if field_of(response, "success") is True and field_of(result, "channel") == "executions":
            self.server_ceiling(field_of(result, "maxratecount"))

    def _counter(self, pair: str, now: float) -> _Counter:
        """``pair``'s counter, brought forward to ``now``."""
        c = self._counters.get(pair)
        if c is None:
            c = self._counters[pair] = _Counter()
            c.stamp = now
        elif now > c.stamp:
            c.level = decayed(c.level, self.decay, now - c.stamp)
            c.stamp = now
        return c


def _count(orders: object) -> int:
    return len(orders) if isinstance(orders, list | tuple) else 0


def _is_count(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    return math.isfinite(value) and value >= 0


def rate_limited(error: object) -> bool:
    """True for Kraken's ``EOrder:Rate limit exceeded`` (per pair) and
    ``EOrder:Domain rate limit exceeded``: refused, and not charged."""
    return isinstance(error, str) and "rate limit exceeded" in error.lower()
