"""The order rate budget through the real client against the fake exchange,
which enforces Kraken's rate counter with the same table (both backends,
virtual time): a burst of 500 adds and their cancels never draws
``EOrder:Rate limit exceeded`` with the budget, and does without it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest

from kraky_anyio import KrakenError, KrakyError, RateLimitError, v2
from kraky_anyio.testing.engine import FakeMatchingEngine
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.v2.rate_budget import RateBudget
from kraky_anyio.v2.rate_orders import field_of
from kraky_anyio.v2.rate_rules import TIERS, action_cost

pytestmark = pytest.mark.anyio

BTC = "BTC/USD"
RATE_LIMITED = "EOrder:Rate limit exceeded"
ADDS = 500
WORKERS = 10  # concurrent callers on the one pair


@asynccontextmanager
async def exchange(
    tier: str, budget: RateBudget | None
) -> AsyncIterator[tuple[FakeMatchingEngine, FakeKrakenServer, v2.KrakenV2Connection]]:
    engine = FakeMatchingEngine(reference_prices={BTC: "30000"}, tier=tier)
    async with (
        open_fake_kraken(order_handler=engine) as server,
        v2.open_kraken(server.v2_url, token="tok", rate_limit=budget) as conn,
    ):
        with anyio.fail_after(100_000):  # virtual seconds: the burst takes ~2000
            await conn.wait_connected()
            yield engine, server, conn


async def add(conn: v2.KrakenV2Connection, i: int) -> Any:
    return await conn.add_order(
        order_type="limit",
        side="buy",
        symbol=BTC,
        order_qty=Decimal("0.01"),
        limit_price=Decimal("25000"),
        cl_ord_id=f"burst-{i}",
    )


async def burst(conn: v2.KrakenV2Connection, n: int) -> list[str]:
    """``n`` adds, each cancelled as soon as it is placed (the dearest
    cancel: 8), from :data:`WORKERS` tasks at once; Kraken's errors."""
    errors: list[str] = []

    async def worker(first: int) -> None:
        for i in range(first, n, WORKERS):
            try:
                placed = await add(conn, i)
                await conn.cancel_order(order_id=[placed.order_id])
            except KrakenError as exc:
                errors.append(exc.error_message)

    async with anyio.create_task_group() as tg:
        for k in range(WORKERS):
            tg.start_soon(worker, k)
    return errors


def sent(server: FakeKrakenServer, method: str) -> int:
    return sum(
        1 for f in server.all_received() if isinstance(f, dict) and f.get("method") == method
    )


# One tier here (each run is 1000 requests; starter's numbers are in
# docs/v2/trading.md): the other tiers differ only in two numbers, which the
# budget's own tests cover.
@pytest.mark.parametrize("tier", ["intermediate"])
async def test_a_burst_of_500_adds_and_cancels_stays_under_the_limit(
    tier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = RateBudget(tier)
    async with exchange(tier, budget) as (engine, server, conn):
        charged: list[int] = []
        count = engine.v2.rate.charge

        def charge(account: str, symbol: str, cost: int, now: float) -> None:
            charged.append(cost)
            count(account, symbol, cost, now)

        monkeypatch.setattr(engine.v2.rate, "charge", charge)
        await conn.subscribe("executions", snap_orders=True, ratecounter=True)
        start = anyio.current_time()
        errors = await burst(conn, ADDS)
        elapsed = anyio.current_time() - start
    assert errors == []
    assert budget.rejected == 0
    assert sent(server, "add_order") == sent(server, "cancel_order") == ADDS
    # No schedule is faster than the counter can absorb what Kraken charged
    # (the whole charge less the ceiling, at the tier's decay); the budget
    # gets within 2% of that. A cancel that waits gets cheaper as its order
    # ages: Kraken charged less than 500 x (1 + 8).
    rules = TIERS[tier]
    minimum = (sum(charged) - rules.ceiling) / rules.decay
    assert minimum <= elapsed < minimum * 1.02
    assert sum(charged) < ADDS * (action_cost("add", None) + action_cost("cancel", 0.0))
    print(f"{tier}: {elapsed:.1f} s for {sum(charged)} charged, minimum {minimum:.1f} s")


async def test_the_same_burst_without_the_budget_is_refused() -> None:
    async with exchange("intermediate", None) as (_engine, _server, conn):
        assert conn.rate_limit is None
        errors = await burst(conn, ADDS)
    assert RATE_LIMITED in errors


async def test_raise_policy_refuses_without_sending() -> None:
    budget = RateBudget("starter", "raise", headroom=0)
    async with exchange("starter", budget) as (_engine, server, conn):
        assert conn.rate_limit is budget
        for i in range(60):
            await add(conn, i)
        with pytest.raises(RateLimitError) as info:
            await add(conn, 60)
        assert sent(server, "add_order") == 60
    assert (info.value.pair, info.value.needed, info.value.ceiling) == (BTC, 1, 60)
    assert info.value.wait == pytest.approx(1.0, abs=0.01)


async def test_a_caller_cancelled_while_waiting_sends_nothing_and_is_refunded() -> None:
    budget = RateBudget("starter", headroom=0)
    async with exchange("starter", budget) as (_engine, server, conn):
        for i in range(60):
            await add(conn, i)
        now = anyio.current_time()
        with anyio.move_on_after(0.5):
            await add(conn, 60)  # needs 1 s of decay
            pytest.fail("admitted too early")
        assert budget.level(BTC, now + 0.5) == pytest.approx(59.5)
        assert budget.queues.waiting(BTC) == 0
        await anyio.sleep(1)
        assert sent(server, "add_order") == 60
        await add(conn, 61)  # room again: sent, accepted
        assert sent(server, "add_order") == 61


@pytest.mark.parametrize("ratecounter", [True, False])
async def test_another_program_on_the_account_is_seen_through_ratecount(
    ratecounter: bool,
) -> None:
    budget = RateBudget("starter")
    async with exchange("starter", budget) as (_engine, server, conn):
        await conn.subscribe("executions", snap_orders=True, ratecounter=ratecounter)
        assert budget.ceiling == 60  # the ack's maxratecount
        async with conn.messages(channel="executions") as stream:
            # Another client of the account (no budget) spends most of the room.
            async with v2.open_kraken(server.v2_url, token="tok") as other:
                for i in range(50):
                    await add(other, 1000 + i)
            async for msg in stream:  # the budget saw each message before consumers
                if any(field_of(e, "cl_ord_id") == "burst-1049" for e in msg.data):
                    break
        errors = await burst(conn, 20)
    if ratecounter:
        assert budget.resyncs >= 50
        assert errors == [] and budget.rejected == 0
    else:  # the control: without the reports the budget cannot know
        assert budget.resyncs == 0
        assert RATE_LIMITED in errors and budget.rejected > 0


async def test_the_servers_maxratecount_corrects_a_wrong_tier() -> None:
    budget = RateBudget("pro")  # the account is really starter
    async with exchange("starter", budget) as (_engine, _server, conn):
        await conn.subscribe("executions", snap_orders=True)
        assert (budget.ceiling, budget.decay) == (60, 1.0)
        assert await burst(conn, 30) == []


@pytest.mark.parametrize("shared", [True, False])
async def test_two_connections_of_one_account_share_one_budget(shared: bool) -> None:
    first = RateBudget("starter")
    second = first if shared else RateBudget("starter")
    errors: list[list[str]] = []

    async def run(c: v2.KrakenV2Connection) -> None:
        errors.append(await burst(c, 40))  # both number their cl_ord_ids alike

    async with (
        exchange("starter", first) as (_engine, server, conn),
        v2.open_kraken(server.v2_url, token="tok", rate_limit=second) as other,
    ):
        with anyio.fail_after(10_000):
            await other.wait_connected()
            async with anyio.create_task_group() as tg:
                tg.start_soon(run, conn)
                tg.start_soon(run, other)
    if shared:
        assert errors == [[], []]
    else:  # the control: two budgets each think they have the whole room
        assert RATE_LIMITED in errors[0] + errors[1]


async def test_a_request_refused_before_the_wire_is_refunded() -> None:
    budget = RateBudget("starter")

    async def no_token() -> str:
        raise RuntimeError("the token service is down")

    engine = FakeMatchingEngine(reference_prices={BTC: "30000"}, tier="starter")
    async with (
        open_fake_kraken(order_handler=engine) as server,
        v2.open_kraken(server.v2_url, token=no_token, rate_limit=budget) as conn,
    ):
        with anyio.fail_after(60):
            await conn.wait_connected()
            with pytest.raises(KrakyError):
                await add(conn, 0)
        assert sent(server, "add_order") == 0
    assert budget.level(BTC, anyio.current_time()) == 0.0


@pytest.mark.parametrize("with_budget", [True, False])
async def test_amending_one_order_again_and_again(with_budget: bool) -> None:
    budget = RateBudget("starter") if with_budget else None
    errors: list[str] = []
    async with exchange("starter", budget) as (_engine, server, conn):
        await conn.subscribe("executions", snap_orders=True)
        placed = await add(conn, 0)
        for i in range(100):
            try:
                await conn.amend_order(order_id=placed.order_id, limit_price=Decimal(25000 - i % 2))
            except KrakenError as exc:
                errors.append(exc.error_message)
        assert sent(server, "amend_order") == 100
    if with_budget:
        assert errors == []
    else:
        assert RATE_LIMITED in errors
