"""The v2 order methods against the fake exchange's ``/v2`` endpoint (both
backends, virtual time). The fake's session is stalled after connecting, so
it answers nothing: each test reads the request the server received and
answers it itself with ``send_raw``, in Kraken's shapes."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest
from helpers import next_of

from kraky_anyio import (
    Disconnected,
    KrakenError,
    MessageStream,
    OrderOutcomeUnknownError,
    ReplyTimeoutError,
    v2,
)
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.v2.connection import KrakenV2Connection
from kraky_anyio.v2.messages import Response
from kraky_anyio.v2.order_requests import ORDER_METHODS
from kraky_anyio.v2.order_results import CancelResult

pytestmark = pytest.mark.anyio

TOKEN = "SECRET-TOKEN-v2-0123456789"
LIMIT: dict[str, Any] = {
    "order_type": "limit",
    "side": "buy",
    "symbol": "BTC/USD",
    "order_qty": Decimal("0.00000001"),
    "limit_price": Decimal("25000.10"),
}
BATCH: list[Any] = [
    {"order_type": "limit", "side": "buy", "order_qty": 1, "limit_price": 100, "cl_ord_id": "a"},
    {"order_type": "limit", "side": "buy", "order_qty": 1, "limit_price": 99, "cl_ord_id": "b"},
]

Answer = Callable[[dict[str, Any]], list[dict[str, Any]]]


def is_order(frame: Any, method: str | None = None) -> bool:
    return (
        isinstance(frame, dict)
        and frame.get("method") in ORDER_METHODS
        and (method is None or frame["method"] == method)
    )


def orders_received(server: FakeKrakenServer, method: str | None = None) -> list[dict[str, Any]]:
    return [f for f in server.all_received() if is_order(f, method)]


def ok(frame: dict[str, Any], result: Any = None, **top: Any) -> dict[str, Any]:
    out = {"method": frame["method"], "req_id": frame["req_id"], "success": True, **top}
    if result is not None:
        out["result"] = result
    return {**out, "time_in": "2024-05-18T12:05:50.293682Z", "time_out": "2024-05-18T12:05:50.3Z"}


def err(frame: dict[str, Any], error: str, **top: Any) -> dict[str, Any]:
    out = {"error": error, "method": frame["method"], "req_id": frame["req_id"], **top}
    return {**out, "success": False, "time_in": "t", "time_out": "t"}


async def respond(server: FakeKrakenServer, answer: Answer) -> None:
    """Answer every order request the server receives, in arrival order."""
    seen = 0
    while True:
        seen += 1
        frame = await server.wait_for_received(is_order, count=seen)
        for out in answer(frame):
            await server.send_raw(json.dumps(out))


@asynccontextmanager
async def exchange(
    answer: Answer | None = None, **options: Any
) -> AsyncIterator[tuple[FakeKrakenServer, KrakenV2Connection]]:
    """A connected client and a stalled fake answering orders with ``answer``."""
    options.setdefault("token", TOKEN)
    async with (
        open_fake_kraken(valid_tokens={TOKEN}) as server,
        v2.open_kraken(server.v2_url, idle_timeout=60, **options) as conn,
        anyio.create_task_group() as tg,
    ):
        with anyio.fail_after(60):
            await conn.wait_connected()
        server.stall()
        if answer is not None:
            tg.start_soon(respond, server, answer)
        yield server, conn
        tg.cancel_scope.cancel()


# -- each method: success and error shapes ---------------------------------------------

Call = Callable[[KrakenV2Connection], Awaitable[Any]]

METHODS: list[tuple[str, Call, Any, Callable[[Any], object], object]] = [
    (
        "add_order",
        lambda c: c.add_order(**LIMIT, cl_ord_id="grid-7"),
        {"order_id": "OPS23M-VS41G-DDE5Z2", "cl_ord_id": "grid-7"},
        lambda r: (r.order_id, r.cl_ord_id, r.order_userref),
        ("OPS23M-VS41G-DDE5Z2", "grid-7", None),
    ),
    (
        "amend_order",
        lambda c: c.amend_order(order_id="BQS60L", limit_price=Decimal("25010")),
        {"amend_id": "1M2JV8-OEJZD-G5GSBF", "order_id": "BQS60L"},
        lambda r: (r.amend_id, r.order_id),
        ("1M2JV8-OEJZD-G5GSBF", "BQS60L"),
    ),
    (
        "edit_order",
        lambda c: c.edit_order(order_id="OLD", symbol="BTC/USD", order_qty="0.02"),
        {"order_id": "NEW", "original_order_id": "OLD"},
        lambda r: (r.order_id, r.original_order_id),
        ("NEW", "OLD"),
    ),
    (
        "cancel_order",
        lambda c: c.cancel_order(order_id="O1"),
        {"order_id": "O1"},
        lambda r: r,
        [CancelResult("O1")],
    ),
    ("cancel_all", lambda c: c.cancel_all(), {"count": 2}, lambda r: r.count, 2),
    (
        "cancel_all_orders_after",
        lambda c: c.cancel_all_orders_after(timeout=60),
        {"currentTime": "2023-09-21T15:49:29Z", "triggerTime": "2023-09-21T15:50:29Z"},
        lambda r: (r.current_time, r.trigger_time),
        ("2023-09-21T15:49:29Z", "2023-09-21T15:50:29Z"),
    ),
    (
        "batch_add",
        lambda c: c.batch_add(symbol="BTC/USD", orders=BATCH),
        [{"order_id": "O1", "cl_ord_id": "a"}, {"order_id": "O2", "cl_ord_id": "b"}],
        lambda r: [(o.order_id, o.cl_ord_id) for o in r],
        [("O1", "a"), ("O2", "b")],
    ),
    (
        "batch_cancel",
        lambda c: c.batch_cancel(orders=["O1", "O2"]),
        None,  # the real frame: top-level orders_cancelled, no result
        lambda r: r.count,
        2,
    ),
]


@pytest.mark.parametrize(
    ("method", "call", "result", "read", "expected"), METHODS, ids=[m[0] for m in METHODS]
)
async def test_each_method_returns_its_typed_result(
    method: str, call: Call, result: Any, read: Callable[[Any], object], expected: object
) -> None:
    top = {"orders_cancelled": 2} if method == "batch_cancel" else {}
    async with exchange(lambda f: [ok(f, result, **top)]) as (server, conn):
        with anyio.fail_after(60):
            assert read(await call(conn)) == expected
        [frame] = orders_received(server)
    assert frame["method"] == method and frame["params"]["token"] == TOKEN
    assert isinstance(frame["req_id"], int)


@pytest.mark.parametrize(("method", "call"), [m[:2] for m in METHODS], ids=[m[0] for m in METHODS])
async def test_each_method_raises_kraken_errors(method: str, call: Call) -> None:
    text = (
        "EGeneral:Invalid arguments:no_mpp order option is only available when ordertype = market"
    )
    async with exchange(lambda f: [err(f, text)]) as (server, conn):
        with anyio.fail_after(60), pytest.raises(KrakenError) as info:
            await call(conn)
    assert info.value.error_message == text
    assert [(r.method, r.success, r.error) for r in info.value.replies] == [(method, False, text)]
    assert len(orders_received(server)) == 1


# -- cancel_order: one response per order ------------------------------------------------


def per_order(frame: dict[str, Any], unknown: str | None = None) -> list[dict[str, Any]]:
    out = []
    for oid in frame["params"]["order_id"]:
        if oid == unknown:
            out.append(err(frame, "EOrder:Unknown order", order_id=oid))
        else:
            out.append(ok(frame, {"order_id": oid}))
    return out


async def test_cancel_returns_one_result_per_order() -> None:
    async with exchange(per_order) as (server, conn):
        with anyio.fail_after(60):
            results = await conn.cancel_order(order_id=["A", "B", "C"])
        [frame] = orders_received(server)
    assert [r.order_id for r in results] == ["A", "B", "C"]
    assert {r.response.req_id for r in results if r.response} == {frame["req_id"]}


async def test_cancel_with_one_unknown_id_among_three_raises_with_all_three() -> None:
    async with exchange(lambda f: per_order(f, unknown="B")) as (server, conn):
        with anyio.fail_after(60), pytest.raises(KrakenError) as info:
            await conn.cancel_order(order_id=["A", "B", "C"])
        [frame] = orders_received(server)
    assert info.value.error_message == "EOrder:Unknown order"
    replies = info.value.replies
    assert [(r.success, r.result, r.order_id) for r in replies] == [
        (True, {"order_id": "A"}, None),
        (False, None, "B"),
        (True, {"order_id": "C"}, None),
    ]
    assert {r.req_id for r in replies} == {frame["req_id"]}


# -- never twice, never hanging ------------------------------------------------------------


async def drop_on(server: FakeKrakenServer, method: str, count: int = 1) -> None:
    """Drop every socket once the ``count``-th ``method`` request has arrived."""
    await server.wait_for_received(lambda f: is_order(f, method), count=count)
    await server.drop()


@pytest.mark.parametrize(
    ("method", "call", "ids"),
    [
        ("add_order", lambda c: c.add_order(**LIMIT, cl_ord_id="grid-7"), ["grid-7"]),
        ("batch_add", lambda c: c.batch_add(symbol="BTC/USD", orders=BATCH), ["a", "b"]),
    ],
)
async def test_a_drop_before_the_response_is_an_unknown_outcome_never_resent(
    method: str, call: Call, ids: list[str]
) -> None:
    async with exchange() as (server, conn):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drop_on, server, method)
            with anyio.fail_after(60), pytest.raises(OrderOutcomeUnknownError) as info:
                await call(conn)
        assert info.value.cl_ord_ids == ids
        assert info.value.cl_ord_id == (ids[0] if len(ids) == 1 else None)
        assert "will not be re-sent" in str(info.value) and info.value.replies == []
        assert conn.stats.replies_lost == 1
        server.stall(False)
        with anyio.fail_after(60):
            await conn.wait_connected()
            await conn.ping()  # the writer sends in order: anything queued precedes the pong
        assert conn.generation == 2
        assert len(orders_received(server, method)) == 1  # exactly once


async def test_a_cancel_answered_in_part_before_a_drop_keeps_its_responses() -> None:
    async def half(server: FakeKrakenServer, stream: MessageStream) -> None:
        frame = await server.wait_for_received(lambda f: is_order(f, "cancel_order"))
        await server.send_raw(json.dumps(ok(frame, {"order_id": "A"})))
        await next_of(stream, lambda m: isinstance(m, Response))  # the client has it
        await server.drop()

    async with (
        exchange() as (server, conn),
        conn.messages() as stream,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(half, server, stream)
        with anyio.fail_after(60), pytest.raises(OrderOutcomeUnknownError) as info:
            await conn.cancel_order(order_id=["A", "B"])
    assert [r.result for r in info.value.replies] == [{"order_id": "A"}]


async def test_an_order_cancelled_before_the_wire_is_never_sent() -> None:
    async with (
        open_fake_kraken(valid_tokens={TOKEN}) as server,
        v2.open_kraken(server.v2_url, token=TOKEN) as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(60):
            await conn.wait_connected()
            server.refuse(None)
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Disconnected))
        with anyio.move_on_after(5) as scope:
            await conn.add_order(**LIMIT)
        assert scope.cancelled_caught
        with anyio.move_on_after(5) as scope:
            await conn.batch_cancel(orders=["O1", "O2"])
        assert scope.cancelled_caught
        assert conn.stats.requests_abandoned == 2
        server.refuse(0)
        with anyio.fail_after(120):
            await conn.wait_connected()
            await conn.ping()
    assert orders_received(server) == []


async def test_an_unanswered_order_times_out_and_is_not_resent() -> None:
    async with exchange(reply_timeout=3.0) as (server, conn):
        with anyio.fail_after(60), pytest.raises(ReplyTimeoutError):
            await conn.cancel_all()
        server.stall(False)
        with anyio.fail_after(60):
            await conn.ping()
        assert len(orders_received(server)) == 1


# -- refused before the wire -----------------------------------------------------------------


async def test_no_token_is_refused_before_the_wire_and_a_call_may_bring_one() -> None:
    async with exchange(lambda f: [ok(f, {"count": 0})], token=None) as (server, conn):
        with pytest.raises(ValueError, match="needs a token"):
            await conn.add_order(**LIMIT)
        with pytest.raises(ValueError, match="needs a token"):
            await conn.cancel_all()
        with anyio.fail_after(60):
            assert (await conn.cancel_all(token=TOKEN)).count == 0
        with pytest.raises(ValueError, match="token must be a non-empty str"):
            await conn.cancel_all(token="")
        with pytest.raises(TypeError, match="token must be a str"):
            await conn.add_order(**LIMIT, token=123)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="side must be one of"):
            await conn.add_order(**{**LIMIT, "side": "x"}, token=123)  # type: ignore[arg-type]
    assert [f["params"]["token"] for f in orders_received(server)] == [TOKEN]


async def test_bad_arguments_are_refused_before_the_wire() -> None:
    async with exchange() as (server, conn):
        with pytest.raises(TypeError, match="float"):
            await conn.add_order(**{**LIMIT, "order_qty": 0.1})
        with pytest.raises(ValueError, match="2 to 15"):
            await conn.batch_add(symbol="BTC/USD", orders=BATCH[:1])
        with pytest.raises(ValueError, match="86399"):
            await conn.cancel_all_orders_after(timeout=86400)
        with pytest.raises(TypeError, match="order_id or cl_ord_id"):
            await conn.amend_order(limit_price=1)
        with anyio.fail_after(60):
            await conn.wait_connected()
    assert orders_received(server) == []


async def test_a_kraken_url_that_does_not_trade_is_refused() -> None:
    conn = KrakenV2Connection("wss://ws.kraken.com/v2")
    with pytest.raises(ValueError, match="production-auth"):
        await conn.add_order(**LIMIT, token=TOKEN)


async def test_a_provider_token_is_filled_in_by_the_writer() -> None:
    async def provider() -> str:
        return TOKEN

    async with exchange(lambda f: [ok(f, {"count": 1})], token=provider) as (server, conn):
        with anyio.fail_after(60):
            assert (await conn.cancel_all()).count == 1
    assert [f["params"]["token"] for f in orders_received(server)] == [TOKEN]


async def test_the_token_never_shows_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kraky_anyio")
    errors: list[BaseException] = []

    def answer(frame: dict[str, Any]) -> list[dict[str, Any]]:
        if frame["method"] == "cancel_all":
            return [err(frame, "EOrder:Insufficient funds")]
        if "cl_ord_id" in frame["params"]:
            return [ok(frame, {"order_id": "O1"})]
        return []  # lost to the drop

    async with exchange(answer) as (server, conn):
        with anyio.fail_after(60):
            await conn.add_order(**LIMIT, cl_ord_id="c")
            for bad in ({"order_type": TOKEN}, {"symbol": TOKEN + " "}, {"order_qty": TOKEN}):
                with pytest.raises((TypeError, ValueError)) as info:
                    await conn.add_order(**{**LIMIT, **bad})
                errors.append(info.value)
            with pytest.raises(KrakenError) as kraken:
                await conn.cancel_all(token=TOKEN)
            errors.append(kraken.value)
            async with anyio.create_task_group() as tg:
                tg.start_soon(drop_on, server, "add_order", 2)
                with pytest.raises(OrderOutcomeUnknownError) as lost:
                    await conn.add_order(**LIMIT)
            errors.append(lost.value)
        shown = [repr(conn), repr(conn.protocol), *map(str, errors), *map(repr, errors)]
    assert "> {" in caplog.text and "<redacted>" in caplog.text  # requests were logged
    assert TOKEN not in caplog.text
    assert all(TOKEN not in text for text in shown)
    assert sum("<redacted>" in str(e) for e in errors) == 3  # the mistaken arguments, masked


async def test_a_chosen_req_id_is_sent_and_matched() -> None:
    async with exchange(lambda f: [ok(f, {"order_id": "O7"})]) as (server, conn):
        with anyio.fail_after(60):
            result = await conn.add_order(**LIMIT, req_id=42)
        assert result.order_id == "O7" and result.response is not None
        assert result.response.req_id == 42
        assert [f["req_id"] for f in orders_received(server)] == [42]
        with pytest.raises(ValueError, match="must be between 0 and"):
            await conn.cancel_all(req_id=-1)
