"""The client's order rate budget: pricing, decay, ages, resync (no loop), and
its admission (both backends, virtual time): exact waits, first come first
served, cancellation, ``policy="raise"``, a budget shared by two connections."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

import kraky_anyio
from kraky_anyio import KrakyError, RateLimitError, v2
from kraky_anyio.requests import Request, RequestState
from kraky_anyio.v2.messages import ExecutionsMessage, Response
from kraky_anyio.v2.rate_budget import WAKE_MARGIN, Charge, RateBudget
from kraky_anyio.v2.rate_gate import RateKeeper, admit, admitted
from kraky_anyio.v2.rate_orders import MAX_ORDERS, OrderTable
from kraky_anyio.v2.rate_queue import PairQueues

BTC, ETH = "BTC/USD", "ETH/USD"


def fill(budget: RateBudget, pair: str, count: int, now: float = 0.0) -> None:
    budget.commit(Charge("add_order", {pair: count}), now)


def placed(budget: RateBudget, order_id: str, now: float, pair: str = BTC, **extra: Any) -> None:
    budget.orders.response("add_order", {"symbol": pair, **extra}, {"order_id": order_id}, now)


def executions(kind: str, *entries: dict[str, Any]) -> ExecutionsMessage:
    return ExecutionsMessage(type=kind, data=list(entries), sequence=1)


def update(exec_type: str, order_id: str, symbol: str | None = BTC) -> ExecutionsMessage:
    entry = {"exec_type": exec_type, "order_id": order_id}
    return executions("update", entry if symbol is None else {**entry, "symbol": symbol})


def ack(channel: str, maxratecount: object) -> Response:
    result = {"channel": channel, "maxratecount": maxratecount}
    return Response(method="subscribe", success=True, result=result)


# -- construction ------------------------------------------------------------------


def test_exported_at_the_top_and_in_v2() -> None:
    assert kraky_anyio.RateLimitError is RateLimitError
    assert v2.RateBudget is RateBudget
    assert issubclass(RateLimitError, KrakyError)


def test_tiers_and_overrides() -> None:
    b = RateBudget("intermediate")
    assert (b.tier, b.ceiling, b.decay, b.policy, b.headroom) == (
        "intermediate",
        125,
        2.34,
        "wait",
        1.0,
    )
    assert b.limit == 124.0
    b = RateBudget("pro", "raise", ceiling=100, decay=2, headroom=0)
    assert (b.ceiling, b.decay, b.policy, b.limit) == (100, 2.0, "raise", 100.0)
    with pytest.raises(AttributeError):
        b.policy = "wait"  # type: ignore[misc]
    assert repr(b) == (
        "RateBudget(tier='pro', policy='raise', ceiling=100, decay=2.0, headroom=0.0)"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"tier": "gold"}, ValueError, "starter, intermediate, pro"),
        ({"tier": 3}, TypeError, "tier must be a str"),
        ({"policy": "block"}, ValueError, "policy must be 'wait' or 'raise'"),
        ({"ceiling": 0}, ValueError, "ceiling must be >= 1"),
        ({"ceiling": 10.5}, TypeError, "ceiling must be an int"),
        ({"ceiling": True}, TypeError, "ceiling must be an int"),
        ({"decay": 0}, ValueError, "decay must be > 0"),
        ({"decay": -1.0}, ValueError, "decay must be > 0"),
        ({"decay": math.nan}, ValueError, "decay must be finite"),
        ({"decay": "1"}, TypeError, "decay must be a number"),
        ({"headroom": -1}, ValueError, "headroom must be >= 0 and below the ceiling 60"),
        ({"headroom": 60}, ValueError, "below the ceiling 60"),
        ({"headroom": 5, "ceiling": 5}, ValueError, "below the ceiling 5"),
        ({"headroom": math.inf}, ValueError, "headroom must be finite"),
        ({"headroom": None}, TypeError, "headroom must be a number"),
    ],
)
def test_bad_arguments_fail_at_once(kwargs: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        RateBudget(**kwargs)


@pytest.mark.anyio
async def test_rate_limit_option_is_checked_before_anything_starts() -> None:
    with pytest.raises(TypeError, match="rate_limit must be a RateBudget, not str"):
        async with v2.open_kraken("ws://127.0.0.1:1/v2", rate_limit="pro"):  # type: ignore[arg-type]
            pass


# -- counters ----------------------------------------------------------------------


def test_counter_decays_at_the_tier_rate_and_never_below_zero() -> None:
    b = RateBudget("intermediate")
    fill(b, BTC, 10, now=100.0)
    assert b.level(BTC, 100.0) == 10.0
    assert b.level(BTC, 101.0) == pytest.approx(7.66)
    assert b.level(BTC, 200.0) == 0.0
    assert b.level(ETH, 100.0) == 0.0  # per pair
    fill(b, BTC, 2, now=102.0)  # decayed to 5.32, then +2
    assert b.level(BTC, 102.0) == pytest.approx(7.32)


def test_wait_time_is_the_exact_decay_time() -> None:
    b = RateBudget("starter", headroom=0)
    fill(b, BTC, 60)
    one = Charge("add_order", {BTC: 1})
    assert b.wait_time(one, 0.0) == pytest.approx(1.0 + WAKE_MARGIN)
    assert b.wait_time(one, 0.5) == pytest.approx(0.5 + WAKE_MARGIN)
    assert b.wait_time(one, 1.0 + WAKE_MARGIN) == 0.0
    assert b.wait_time(Charge("add_order", {ETH: 1}), 0.0) == 0.0
    eight = Charge("cancel_order", {BTC: 8})
    assert b.wait_time(eight, 0.0) == pytest.approx(8.0 + WAKE_MARGIN)
    # Several pairs: the slowest decides.
    assert b.wait_time(Charge("x", {BTC: 2, ETH: 60}), 0.0) == pytest.approx(2.0 + WAKE_MARGIN)
    assert b.wait_time(Charge("x", {BTC: 61}), 0.0) == math.inf


def test_headroom_is_kept_free() -> None:
    b = RateBudget("pro", headroom=5)  # limit 175
    fill(b, BTC, 175)
    assert b.wait_time(Charge("add_order", {BTC: 1}), 0.0) == pytest.approx(1 / 3.75 + WAKE_MARGIN)


def test_refund_restores_exactly_what_the_counter_would_be() -> None:
    b = RateBudget("intermediate")
    fill(b, BTC, 20, now=0.0)
    charge = Charge("cancel_order", {BTC: 8})
    b.commit(charge, 1.0)
    b.refund(charge, 3.0)
    assert b.level(BTC, 3.0) == pytest.approx(20 - 3 * 2.34)
    # A refund after the counter decayed to nothing leaves nothing.
    b.commit(charge, 100.0)
    b.refund(charge, 110.0)
    assert b.level(BTC, 110.0) == 0.0


# -- pricing -----------------------------------------------------------------------


def test_adds_cost_one_per_order() -> None:
    b = RateBudget()
    assert b.plan("add_order", {"symbol": BTC}, 0.0).costs == {BTC: 1}
    batch = b.plan("batch_add", {"symbol": ETH, "orders": [{}, {}, {}]}, 0.0)
    assert (batch.costs, batch.total, batch.unknown) == ({ETH: 3}, 3, 0)
    assert b.plan("add_order", {}, 0.0).unknown == 1
    assert b.plan("cancel_all_orders_after", {"timeout": 60}, 0.0).costs == {}
    with pytest.raises(ValueError, match="'ping' is not an order action"):
        b.plan("ping", None, 0.0)


@pytest.mark.parametrize(
    ("method", "age", "cost"),
    [
        ("cancel_order", 0.0, 8),
        ("cancel_order", 5.0, 6),
        ("cancel_order", 44.0, 4),
        ("cancel_order", 300.0, 0),
        ("amend_order", 1.0, 4),
        ("amend_order", 12.0, 2),
        ("amend_order", 20.0, 1),
        ("edit_order", 0.0, 7),
        ("edit_order", 60.0, 2),
        ("edit_order", 100.0, 1),
    ],
)
def test_actions_on_an_order_cost_by_its_age(method: str, age: float, cost: int) -> None:
    b = RateBudget()
    placed(b, "O1", now=10.0)
    params = {"order_id": ["O1"] if method == "cancel_order" else "O1"}
    assert b.plan(method, params, 10.0 + age).costs == {BTC: cost}


def test_cancel_by_client_id_userref_and_batch() -> None:
    b = RateBudget()
    placed(b, "O1", 0.0, cl_ord_id="grid-1", order_userref=7)
    placed(b, "O2", 0.0, order_userref=7)
    placed(b, "O3", 0.0, pair=ETH, cl_ord_id="e-1")
    assert b.plan("cancel_order", {"cl_ord_id": ["grid-1"]}, 1.0).costs == {BTC: 8}
    assert b.plan("cancel_order", {"order_userref": [7]}, 6.0).costs == {BTC: 12}
    mixed = b.plan("cancel_order", {"order_id": ["O1", "O3"], "cl_ord_id": ["e-1"]}, 1.0)
    assert mixed.costs == {BTC: 8, ETH: 16}
    batch = b.plan("batch_cancel", {"orders": ["O1", 7, "e-1"], "cl_ord_id": ["grid-1"]}, 1.0)
    # An order named twice is charged twice: Kraken answers (and counts) each name.
    assert batch.costs == {BTC: 8 + 16 + 8, ETH: 8}
    assert b.plan("amend_order", {"cl_ord_id": "e-1"}, 11.0).costs == {ETH: 2}


def test_an_order_the_client_does_not_know() -> None:
    b = RateBudget()
    # No pair to charge: counted, not charged.
    charge = b.plan("cancel_order", {"order_id": ["ELSEWHERE"], "order_userref": [9]}, 0.0)
    assert (charge.costs, charge.unknown) == ({}, 2)
    b.commit(charge, 0.0)
    assert b.unknown_orders == 2
    # edit_order names its symbol: priced as the youngest order there.
    assert b.plan("edit_order", {"order_id": "ELSEWHERE", "symbol": BTC}, 0.0).costs == {BTC: 7}
    # Seen only in a trade report: the pair is known, the age is not.
    b.executions(update("trade", "T1", ETH), 0.0)
    assert b.plan("cancel_order", {"order_id": ["T1"]}, 500.0).costs == {ETH: 8}


def test_cancel_all_is_priced_as_every_known_cancel() -> None:
    b = RateBudget()
    placed(b, "O1", 0.0)
    placed(b, "O2", 0.0, pair=ETH)
    placed(b, "O3", 0.0, pair=ETH)
    assert b.plan("cancel_all", {}, 20.0).costs == {BTC: 4, ETH: 8}
    b.orders.response("cancel_all", {}, {"count": 3}, 20.0)
    assert len(b.orders) == 0


# -- orders from responses and executions -------------------------------------------------


def test_orders_from_the_clients_responses() -> None:
    t = OrderTable()
    t.response("add_order", {"symbol": BTC, "validate": True}, {"order_id": ""}, 0.0)
    t.response("add_order", {"symbol": BTC, "cl_ord_id": "a", "validate": True}, {}, 0.0)
    assert len(t) == 0
    t.response("add_order", {"symbol": BTC, "cl_ord_id": "a"}, {"order_id": "O1"}, 1.0)
    info = t.get(None, "a")
    assert info is not None and (info.order_id, info.pair, info.placed_at) == ("O1", BTC, 1.0)
    sent = {"symbol": ETH, "orders": [{"cl_ord_id": "b1"}, {"order_userref": 4}]}
    t.response("batch_add", sent, [{"order_id": "B1"}, {"order_id": "B2"}], 2.0)
    assert [o.order_id for o in t.by_userref(4)] == ["B2"]
    assert t.get("B1") is t.get(None, "b1")
    t.response("amend_order", {"order_id": "O1"}, {"amend_id": "A", "order_id": "O1"}, 3.0)
    assert t.get("O1").placed_at == 3.0  # type: ignore[union-attr]  # age restarts
    t.response("edit_order", {"order_id": "B1"}, {"order_id": "N1", "original_order_id": "B1"}, 4)
    assert t.get("B1") is None and t.get("N1").pair == ETH  # type: ignore[union-attr]
    t.response("cancel_order", {"order_id": ["O1"]}, {"order_id": "O1"}, 5.0)
    t.response("batch_cancel", {"orders": ["N1", 4]}, None, 5.0)
    assert len(t) == 0


def test_orders_from_executions() -> None:
    b = RateBudget()
    msg = executions(
        "snapshot",
        {"order_id": "S1", "symbol": BTC, "order_status": "new"},
        {"order_id": "S2", "symbol": BTC, "order_status": "partially_filled"},
    )
    b.executions(msg, 50.0)
    assert b.plan("cancel_order", {"order_id": ["S1", "S2"]}, 51.0).costs == {BTC: 16}
    b.executions(update("pending_new", "P"), 60.0)
    assert b.orders.get("P").placed_at is None  # type: ignore[union-attr]
    b.executions(update("new", "P"), 61.0)
    assert b.orders.get("P").placed_at == 61.0  # type: ignore[union-attr]
    # First sighting wins: a second "new" (another connection) keeps the earlier time.
    b.executions(update("new", "P"), 62.0)
    assert b.orders.get("P").placed_at == 61.0  # type: ignore[union-attr]
    b.executions(update("amended", "P", None), 70.0)
    assert b.orders.get("P").placed_at == 70.0  # type: ignore[union-attr]
    for kind, oid in (("filled", "S1"), ("canceled", "S2"), ("expired", "P")):
        b.executions(update(kind, oid), 80.0)
    assert len(b.orders) == 0
    # A late "new" for a gone order (seen on a second connection) stays gone.
    b.executions(update("new", "S2"), 81.0)
    assert b.orders.get("S2") is None


def test_typed_execution_entries_are_read_too() -> None:
    b = RateBudget()
    entry = SimpleNamespace(
        exec_type="new",
        order_id="O9",
        cl_ord_id=None,
        order_userref=None,
        symbol=BTC,
        order_status="new",
        ratecount=None,
    )
    b.executions(SimpleNamespace(type="update", data=[entry]), 1.0)
    assert b.orders.get("O9") is not None


def test_two_orders_with_one_client_id_stay_two() -> None:
    t = OrderTable()
    t.placed(BTC, 1.0, "O1", "dup")
    t.placed(BTC, 2.0, "O2", "dup")  # e.g. two programs numbering alike
    first, second = t.get("O1"), t.get("O2")
    assert first is not None and second is not None and first is not second
    assert (first.placed_at, second.placed_at) == (1.0, 2.0)
    t.placed(BTC, None, None, "late")  # pending: known by its client id only
    t.placed(BTC, 3.0, "O3", "late")
    assert t.get("O3") is t.get(None, "late") and len(t) == 3


def test_order_table_is_bounded() -> None:
    t = OrderTable()
    for i in range(MAX_ORDERS + 5):
        t.placed(BTC, float(i), f"O{i}")
    assert len(t) == MAX_ORDERS and t.get("O0") is None and t.get(f"O{MAX_ORDERS + 4}")


# -- what Kraken reports ---------------------------------------------------------------


def test_resync_from_ratecount_keeps_what_is_in_flight() -> None:
    b = RateBudget("intermediate")
    fill(b, BTC, 40, now=0.0)  # in flight: 40
    report = executions("update", {"ratecount": 12, "symbol": BTC})
    assert b.executions(report, 1.0) == [BTC]
    assert b.level(BTC, 1.0) == 52.0 and b.resyncs == 1
    b.landed(Charge("add_order", {BTC: 40}))
    b.executions(report, 1.0)
    assert b.level(BTC, 1.0) == 12.0
    assert b.level(BTC, 2.0) == pytest.approx(12 - 2.34)
    b.resync(ETH, 30, 5.0)
    assert b.level(ETH, 5.0) == 30.0


def test_maxratecount_sets_the_ceiling() -> None:
    b = RateBudget("pro")
    b.subscribed(ack("executions", 60))
    assert (b.ceiling, b.decay) == (60, 1.0)  # starter's: the slower decay
    b = RateBudget("starter")
    b.subscribed(ack("executions", 180))
    assert (b.ceiling, b.decay) == (180, 1.0)  # never a faster decay than configured
    b = RateBudget("pro", ceiling=100)
    b.subscribed(ack("executions", 180))
    assert b.ceiling == 100  # an explicit ceiling caps it
    for bad in (None, "180", True, 0, 1.5):
        b.subscribed(ack("executions", bad))
    b.subscribed(ack("book", 5))
    assert b.ceiling == 100


def test_odd_reports_change_nothing() -> None:
    b = RateBudget("starter")
    for count in (-3, math.nan, math.inf, "12", True, None):
        assert b.executions(executions("update", {"ratecount": count, "symbol": BTC}), 0.0) == []
    assert b.executions(SimpleNamespace(type="update", data=7), 0.0) == []
    assert b.resyncs == 0 and b.level(BTC, 0.0) == 0.0


def test_an_unknown_order_refusal_forgets_the_order() -> None:
    b = RateBudget()
    placed(b, "O1", 0.0)
    placed(b, "O2", 0.0)
    b.orders.refused(
        "cancel_order",
        Response(
            method="cancel_order", success=False, error="EOrder:Insufficient funds", order_id="O1"
        ),
    )
    b.orders.refused(
        "add_order",
        Response(method="add_order", success=False, error="EOrder:Unknown order", order_id="O1"),
    )
    assert len(b.orders) == 2
    b.orders.refused(
        "cancel_order",
        Response(method="cancel_order", success=False, error="EOrder:Unknown order", order_id="O1"),
    )
    assert b.orders.get("O1") is None and b.orders.get("O2") is not None


def test_a_rate_rejection_refunds_and_raises_the_floor() -> None:
    b = RateBudget("starter")
    charge = Charge("add_order", {BTC: 1})
    b.commit(charge, 0.0)
    b.rejected_for_rate(charge, 0.0)
    assert b.level(BTC, 0.0) == 59.0 and b.rejected == 1


# -- queues ------------------------------------------------------------------------


def test_queues_are_first_come_first_served_per_pair() -> None:
    q = PairQueues()
    a = q.join(Charge("x", {BTC: 1}))
    both = q.join(Charge("x", {BTC: 1, ETH: 1}))
    e = q.join(Charge("x", {ETH: 1}))
    assert q.first(a) and not q.first(both) and not q.first(e)
    assert q.heads([BTC, ETH, "XBT/EUR"]) == [a, both]
    assert q.leave(a) == [both]
    assert q.first(both) and q.waiting(BTC) == 1
    assert q.leave(e) == []  # not first: wakes nobody
    assert q.leave(both) == []
    assert q.waiting(BTC) == q.waiting(ETH) == 0


# -- admission (both backends, virtual time) ---------------------------------------


@pytest.mark.anyio
async def test_wait_policy_sleeps_the_exact_decay_time() -> None:
    b = RateBudget("starter", headroom=0)
    start = anyio.current_time()
    fill(b, BTC, 60, now=start)
    await admit(b, Charge("add_order", {ETH: 1}))  # another pair: at once
    assert anyio.current_time() == start
    await admit(b, Charge("cancel_order", {BTC: 8}))
    assert anyio.current_time() - start == pytest.approx(8.0 + WAKE_MARGIN, abs=1e-6)
    assert b.level(BTC, anyio.current_time()) <= b.limit
    assert b.waited == 1


@pytest.mark.anyio
async def test_waiters_go_first_come_first_served_and_never_overshoot() -> None:
    b = RateBudget("starter", headroom=0)
    fill(b, BTC, 60, now=anyio.current_time())
    order: list[int] = []
    levels: list[float] = []
    sizes = [8, 1, 1, 4, 1]  # a big one first: the small ones never overtake it

    async def caller(i: int) -> None:
        await admit(b, Charge("x", {BTC: sizes[i]}))
        order.append(i)
        levels.append(b.level(BTC, anyio.current_time()))

    async with anyio.create_task_group() as tg:
        for i in range(len(sizes)):
            tg.start_soon(caller, i)
            await anyio.wait_all_tasks_blocked()
        assert b.queues.waiting(BTC) == len(sizes)
    assert order == list(range(len(sizes)))
    assert all(level <= b.limit + 1e-9 for level in levels)
    assert b.queues.waiting(BTC) == 0


@pytest.mark.anyio
async def test_a_caller_cancelled_while_waiting_is_never_charged() -> None:
    b = RateBudget("starter", headroom=0)
    start = anyio.current_time()
    fill(b, BTC, 60, now=start)
    second_in: list[float] = []

    async def second() -> None:
        await admit(b, Charge("x", {BTC: 1}))
        second_in.append(anyio.current_time() - start)

    async with anyio.create_task_group() as tg:
        with anyio.move_on_after(3):  # the first waits for 8 s: gives up after 3
            tg.start_soon(second)
            await admit(b, Charge("cancel_order", {BTC: 8}))
            pytest.fail("admitted too early")
    # The second was queued behind; freed at once, it went after 1 s of decay.
    assert second_in == [pytest.approx(3.0, abs=1e-6)]
    assert b.level(BTC, anyio.current_time()) == pytest.approx(58.0, abs=1e-6)
    assert b.queues.waiting(BTC) == 0


@pytest.mark.anyio
async def test_raise_policy_refuses_without_charging() -> None:
    b = RateBudget("intermediate", "raise")
    now = anyio.current_time()
    fill(b, BTC, 120, now=now)
    with pytest.raises(RateLimitError) as info:
        await admit(b, Charge("cancel_order", {BTC: 8}))
    err = info.value
    assert (err.method, err.pair, err.needed, err.ceiling) == ("cancel_order", BTC, 8, 125)
    assert err.level == pytest.approx(120.0)
    assert err.wait == pytest.approx(4 / 2.34 + WAKE_MARGIN)
    assert str(err) == (
        "order rate budget: cancel_order needs 8 on BTC/USD, where the counter is at "
        "120.00 of the ceiling 125 (headroom 1): it fits in 1.710 s; not sent"
    )
    assert b.level(BTC, now) == 120.0 and b.refused == 1
    await admit(b, Charge("add_order", {BTC: 4}))  # fits: admitted
    assert b.level(BTC, now) == 124.0


@pytest.mark.anyio
async def test_a_charge_above_the_ceiling_never_waits() -> None:
    b = RateBudget("starter")
    with pytest.raises(RateLimitError, match=r"more than the ceiling 60 .* ever allows; split it"):
        await admit(b, Charge("batch_cancel", {BTC: 8 * 10}))
    assert b.level(BTC, anyio.current_time()) == 0.0


@pytest.mark.anyio
async def test_brakes_are_never_held_back() -> None:
    b = RateBudget("starter", "raise")
    placed(b, "O1", anyio.current_time())
    fill(b, BTC, 60, now=anyio.current_time())
    charge = b.plan("cancel_all", {}, anyio.current_time())
    await admit(b, charge)  # no raise, no wait
    assert b.level(BTC, anyio.current_time()) == 68.0
    await admit(b, b.plan("cancel_all_orders_after", {"timeout": 10}, 0.0))


@pytest.mark.anyio
async def test_a_resync_lets_the_first_waiter_go_early() -> None:
    b = RateBudget("starter", headroom=0)
    start = anyio.current_time()
    fill(b, BTC, 60, now=start)
    b.landed(Charge("x", {BTC: 60}))
    keeper = RateKeeper(b)
    async with anyio.create_task_group() as tg:
        tg.start_soon(admit, b, Charge("x", {BTC: 30}))  # would wait 30 s
        await anyio.sleep(2)
        keeper.observe([executions("update", {"ratecount": 10, "symbol": BTC})])
    assert anyio.current_time() - start == pytest.approx(2.0)
    assert b.level(BTC, anyio.current_time()) == 40.0


# -- the keeper: one connection's link ---------------------------------------------


def order_request(method: str, reqid: int = 1) -> Request:
    return Request(reqid, method, method, {"method": method, "req_id": reqid}, 1)


@pytest.mark.anyio
async def test_keeper_refunds_a_request_never_written() -> None:
    b = RateBudget("starter")
    keeper = RateKeeper(b)
    with pytest.raises(ValueError, match="built badly"):
        async with keeper.admitted("add_order", {"symbol": BTC}):
            raise ValueError("built badly")  # no request at all
    async with keeper.admitted("add_order", {"symbol": BTC}) as sent:
        req = order_request("add_order")
        sent.bind(req)
        req.state = RequestState.ABANDONED  # cancelled before the wire
    assert b.level(BTC, anyio.current_time()) == 0.0


@pytest.mark.anyio
async def test_keeper_applies_replies_even_after_the_caller_left() -> None:
    b = RateBudget("starter")
    keeper = RateKeeper(b)
    now = anyio.current_time()
    async with keeper.admitted("add_order", {"symbol": BTC, "cl_ord_id": "c1"}) as sent:
        req = order_request("add_order")
        sent.bind(req)
        req.state, req.written = RequestState.ORPHANED, True  # written, caller gone
    assert b.level(BTC, now) == 1.0 and len(b.orders) == 0
    req.replies.append(Response(method="add_order", success=True, result={"order_id": "O1"}))
    req.state = RequestState.DONE
    keeper.observe([req.replies[0]])
    info = b.orders.get(None, "c1")
    assert info is not None and info.order_id == "O1"
    # Landed: a resync no longer counts it as in flight.
    b.resync(BTC, 0, now)
    assert b.level(BTC, now) == 0.0


@pytest.mark.anyio
async def test_keeper_on_a_rate_rejection() -> None:
    b = RateBudget("starter")
    keeper = RateKeeper(b)
    now = anyio.current_time()
    async with keeper.admitted("add_order", {"symbol": BTC}) as sent:
        req = order_request("add_order")
        sent.bind(req)
        req.written = True
        error = "EOrder:Rate limit exceeded"
        req.replies.append(Response(method="add_order", success=False, error=error))
        req.state = RequestState.DONE
    assert b.rejected == 1 and b.level(BTC, now) == 59.0


@pytest.mark.anyio
async def test_one_budget_shared_by_two_connections_keepers() -> None:
    b = RateBudget("starter", headroom=0)
    first, second = RateKeeper(b), RateKeeper(b)
    start = anyio.current_time()
    fill(b, BTC, 59, now=start)
    async with first.admitted("add_order", {"symbol": BTC}) as sent:
        req = order_request("add_order")
        sent.bind(req)
        req.state, req.written = RequestState.ORPHANED, True
    async with second.admitted("add_order", {"symbol": BTC}):
        pass
    # The second connection's add waited for the first's: one decay second.
    assert anyio.current_time() - start == pytest.approx(1.0 + WAKE_MARGIN, abs=1e-6)


@pytest.mark.anyio
async def test_a_waiting_cancel_is_priced_again_as_its_order_ages() -> None:
    b = RateBudget("starter", headroom=0)
    start = anyio.current_time()
    placed(b, "O1", start)
    fill(b, BTC, 60, now=start)
    keeper = RateKeeper(b)
    async with keeper.admitted("cancel_order", {"order_id": ["O1"]}) as sent:
        pass
    # At 5 s the cancel costs 6, not 8: it fits one decay second later.
    assert anyio.current_time() - start == pytest.approx(6.0 + WAKE_MARGIN, abs=1e-6)
    assert sent.charge.costs == {BTC: 6}


@pytest.mark.anyio
async def test_no_budget_means_nothing_to_wait_for() -> None:
    async with admitted(None, "add_order", {"symbol": BTC}) as sent:
        sent.bind(order_request("add_order"))
    assert sent.request is None


@pytest.mark.anyio
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_callers_first_come_first_served_never_over(seed: int) -> None:
    rng = random.Random(seed)
    b = RateBudget("starter", headroom=0)
    start = anyio.current_time()
    fill(b, BTC, 55, now=start)
    fill(b, ETH, 40, now=start)
    joined: dict[str, list[int]] = {BTC: [], ETH: []}
    admitted_order: dict[str, list[int]] = {BTC: [], ETH: []}
    over: list[float] = []

    async def caller(i: int, costs: dict[str, int], patience: float) -> None:
        for pair in costs:
            joined[pair].append(i)
        with anyio.move_on_after(patience) as scope:
            await admit(b, Charge("x", costs))
        if scope.cancelled_caught:
            for pair in costs:
                joined[pair].remove(i)  # gave up: out of the order
            return
        now = anyio.current_time()
        for pair in costs:
            admitted_order[pair].append(i)
            over.append(b.level(pair, now) - b.limit)

    async with anyio.create_task_group() as tg:
        for i in range(30):
            pairs = rng.choice([[BTC], [ETH], [BTC, ETH]])
            costs = {p: rng.randint(1, 8) for p in pairs}
            patience = rng.choice([math.inf, math.inf, rng.uniform(1, 30)])
            tg.start_soon(caller, i, costs, patience)
            await anyio.wait_all_tasks_blocked()
            await anyio.sleep(rng.uniform(0, 2))
    assert max(over) <= 1e-9
    for pair in (BTC, ETH):
        assert admitted_order[pair] == joined[pair]
