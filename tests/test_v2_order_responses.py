"""v2 order responses: typed results from Kraken's shapes, cancel_order
matching and lost orders (sans-I/O protocol). Parameters: test_v2_orders.py."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from kraky_anyio.errors import KrakenError, OrderOutcomeUnknownError, ReplyLostError
from kraky_anyio.requests import Request
from kraky_anyio.v2 import order_cancels, orders
from kraky_anyio.v2.messages import MessageError, Response, decode
from kraky_anyio.v2.order_requests import expect
from kraky_anyio.v2.order_results import (
    AddOrderResult,
    add_result,
    amend_result,
    batch_add_result,
    batch_cancel_result,
    cancel_after_result,
    cancel_all_result,
    cancel_results,
    edit_result,
)
from kraky_anyio.v2.protocol import KrakenV2Protocol

LIMIT: dict[str, Any] = {
    "order_type": "limit",
    "side": "buy",
    "symbol": "BTC/USD",
    "order_qty": Decimal("0.01"),
    "limit_price": Decimal("25000"),
}


def entry(i: int) -> dict[str, Any]:
    return {"order_type": "limit", "side": "buy", "order_qty": 1, "limit_price": 100 + i}


# -- results ---------------------------------------------------------------------------------


def response(**fields: Any) -> Response:
    resp = decode(json.dumps({"success": True, "time_in": "t0", "time_out": "t1", **fields}))
    assert isinstance(resp, Response)
    return resp


def test_results_from_kraken_shapes() -> None:
    added = add_result(
        response(
            method="add_order",
            result={
                "order_id": "OPS23M-VS41G-DDE5Z2",
                "cl_ord_id": "client-zero",
                "warnings": ["w2"],
            },
            warnings=["w1"],
        )
    )
    assert added == AddOrderResult("OPS23M-VS41G-DDE5Z2", "client-zero", None, ("w1", "w2"))
    assert added.response is not None and added.response.time_in == "t0"
    amended = amend_result(
        response(method="amend_order", result={"amend_id": "1M2JV8", "order_id": "BQS60L"})
    )
    assert (amended.amend_id, amended.order_id, amended.cl_ord_id) == ("1M2JV8", "BQS60L", None)
    edited = edit_result(
        response(method="edit_order", result={"order_id": "NEW", "original_order_id": "OLD"})
    )
    assert (edited.order_id, edited.original_order_id) == ("NEW", "OLD")
    assert cancel_all_result(response(method="cancel_all", result={"count": 3})).count == 3
    after = cancel_after_result(
        response(
            method="cancel_all_orders_after",
            result={"currentTime": "2023-09-21T15:49:29Z", "triggerTime": "2023-09-21T15:51:09Z"},
        )
    )
    assert (after.current_time, after.trigger_time) == (
        "2023-09-21T15:49:29Z",
        "2023-09-21T15:51:09Z",
    )
    batch = batch_add_result(
        response(
            method="batch_add", result=[{"order_id": "A", "order_userref": 1}, {"order_id": "B"}]
        )
    )
    assert (
        [o.order_id for o in batch] == ["A", "B"]
        and len(batch) == 2
        and batch[0].order_userref == 1
    )
    real = batch_cancel_result(response(method="batch_cancel", orders_cancelled=2))
    documented = batch_cancel_result(response(method="batch_cancel", result={"count": 4}))
    assert (real.count, documented.count) == (2, 4)
    cancels = cancel_results(
        [
            response(method="cancel_order", result={"order_id": "A"}),
            response(method="cancel_order", result={"order_id": "B", "cl_ord_id": "b"}),
        ]
    )
    assert [(c.order_id, c.cl_ord_id) for c in cancels] == [("A", None), ("B", "b")]


def test_validate_only_gives_an_empty_order_id() -> None:
    assert add_result(response(method="add_order", result={"order_id": ""})).order_id == ""


@pytest.mark.parametrize(
    ("parse", "fields"),
    [
        (add_result, {"method": "add_order", "result": {"cl_ord_id": "x"}}),
        (add_result, {"method": "add_order", "result": {"order_id": 5}}),
        (add_result, {"method": "add_order", "result": ["x"]}),
        (batch_add_result, {"method": "batch_add", "result": {"order_id": "A"}}),
        (batch_add_result, {"method": "batch_add", "result": ["A"]}),
        (batch_cancel_result, {"method": "batch_cancel", "result": {}}),
        (cancel_all_result, {"method": "cancel_all", "result": {"count": True}}),
        (amend_result, {"method": "amend_order", "result": {"order_id": "A"}}),
    ],
)
def test_unreadable_results_raise(parse: Any, fields: dict[str, Any]) -> None:
    with pytest.raises(MessageError):
        parse(response(**fields))


# -- matching responses (sans-I/O protocol) -------------------------------------------------


def sent(protocol: KrakenV2Protocol, method: str, params: dict[str, Any]) -> Request:
    req = protocol.order(method, {**params, "token": "t"}, expect(method, params), 9)
    protocol.sending(req, 1)
    return req


def reply(protocol: KrakenV2Protocol, **fields: Any) -> list[Request]:
    frame = {"method": "cancel_order", "req_id": 9, "time_in": "t", "time_out": "t", **fields}
    return protocol.receive_frames([json.dumps(frame)]).settled


def ok(order_id: str, **more: Any) -> dict[str, Any]:
    return {"success": True, "result": {"order_id": order_id, **more}}


def test_cancel_settles_when_every_order_is_answered_in_any_order() -> None:
    protocol = KrakenV2Protocol()
    req = sent(protocol, "cancel_order", order_cancels.cancel_order(order_id=["A", "B", "C"]))
    assert reply(protocol, **ok("C")) == [] and reply(protocol, **ok("A")) == []
    assert reply(protocol, **ok("B")) == [req]
    assert [r.result["order_id"] for r in req.result()] == ["C", "A", "B"]


def test_one_unknown_order_among_three_raises_with_every_response() -> None:
    protocol = KrakenV2Protocol()
    req = sent(protocol, "cancel_order", order_cancels.cancel_order(order_id=["A", "B", "C"]))
    reply(protocol, **ok("A"))
    reply(protocol, success=False, error="EOrder:Unknown order", order_id="B")
    assert reply(protocol, **ok("C")) == [req]
    with pytest.raises(KrakenError) as info:
        req.result()
    assert info.value.error_message == "EOrder:Unknown order"
    assert [(r.success, r.result, r.order_id) for r in info.value.replies] == [
        (True, {"order_id": "A"}, None),
        (False, None, "B"),
        (True, {"order_id": "C"}, None),
    ]


def test_an_order_error_naming_no_order_answers_one_a_whole_request_error_all() -> None:
    protocol = KrakenV2Protocol()
    req = sent(protocol, "cancel_order", order_cancels.cancel_order(order_id=["A", "B"]))
    assert reply(protocol, success=False, error="EOrder:Unknown order") == []
    assert reply(protocol, **ok("B")) == [req]
    protocol = KrakenV2Protocol()
    req = sent(protocol, "cancel_order", order_cancels.cancel_order(order_id=["A", "B"]))
    assert reply(protocol, success=False, error="ESession:Invalid session") == [req]
    assert len(req.replies) == 1


def test_duplicates_are_counted_and_left_out() -> None:
    protocol = KrakenV2Protocol()
    req = sent(protocol, "cancel_order", order_cancels.cancel_order(order_id=["A", "B"]))
    reply(protocol, **ok("A"))
    assert reply(protocol, **ok("A")) == []
    assert protocol.stats.duplicate_replies == 1 and len(req.replies) == 1
    assert reply(protocol, **ok("B")) == [req]


def test_cancels_by_client_id_and_userref() -> None:
    protocol = KrakenV2Protocol()
    params = order_cancels.cancel_order(order_id="A", cl_ord_id="c", order_userref=7)
    req = sent(protocol, "cancel_order", params)
    # Kraken names the order it cancelled by its own id: not "A", so it
    # answers the first open client-side part (cl_ord_id "c"), never "A".
    assert reply(protocol, **ok("K1")) == []
    assert req.answered == {("cl_ord_id", "c")}
    assert reply(protocol, **ok("K2", order_userref=7)) == []
    # A second order matched by the same userref, before the request completes: kept.
    assert reply(protocol, **ok("K3", order_userref=7)) == []
    assert req.answered == {("cl_ord_id", "c"), ("order_userref", 7)}
    assert reply(protocol, **ok("A")) == [req]
    assert len(req.result()) == 4
    # One more for the userref after completion: to consumers only, counted.
    reply(protocol, **ok("K4", order_userref=7))
    assert (protocol.stats.late_replies, protocol.stats.unmatched_replies) == (1, 0)


def test_a_lost_order_is_an_unknown_outcome_naming_its_client_ids() -> None:
    protocol = KrakenV2Protocol()
    add = sent(protocol, "add_order", orders.add_order(**LIMIT, cl_ord_id="grid-7"))
    batch = protocol.order(
        "batch_add",
        {
            "token": "t",
            **(
                p := orders.batch_add(
                    symbol="BTC/USD",
                    orders=[{**entry(0), "cl_ord_id": "a"}, {**entry(1), "cl_ord_id": "b"}],
                )
            ),
        },
        expect("batch_add", p),
        10,
    )
    protocol.sending(batch, 1)
    cancel = protocol.order(
        "cancel_order",
        {"token": "t", **(p := order_cancels.cancel_order(order_id=["A", "B"]))},
        expect("cancel_order", p),
        11,
    )
    protocol.sending(cancel, 1)
    protocol.receive_frames([json.dumps({"method": "cancel_order", "req_id": 11, **ok("A")})])
    raw = protocol.raw("add_order", {"token": "t", "cl_ord_id": "by-hand"}, 12)
    protocol.sending(raw, 1)
    ping = protocol.ping(13)
    protocol.sending(ping, 1)
    assert len(protocol.connection_lost(1).settled) == 5
    for req, ids in ((add, ["grid-7"]), (batch, ["a", "b"]), (cancel, []), (raw, ["by-hand"])):
        with pytest.raises(OrderOutcomeUnknownError) as info:
            req.result()
        assert info.value.cl_ord_ids == ids
        assert "will not be re-sent" in str(info.value)
    with pytest.raises(OrderOutcomeUnknownError) as info:
        add.result()
    assert info.value.cl_ord_id == "grid-7" and "grid-7" in str(info.value)
    with pytest.raises(OrderOutcomeUnknownError) as info:
        cancel.result()
    assert [r.result for r in info.value.replies] == [{"order_id": "A"}]
    with pytest.raises(ReplyLostError) as lost:
        ping.result()
    assert not isinstance(lost.value, OrderOutcomeUnknownError)
    assert protocol.replay(None).requests == []  # orders are never replayed


def test_expect_names_the_symbol_and_ids() -> None:
    e = expect(
        "batch_add",
        orders.batch_add(symbol="BTC/USD", orders=[{**entry(0), "cl_ord_id": "a"}, entry(1)]),
    )
    assert (e.symbol, e.cl_ord_ids, e.parts) == ("BTC/USD", ("a",), ())
    e = expect("batch_cancel", order_cancels.batch_cancel(orders=["A", "B"], cl_ord_id=["c"]))
    assert (e.order_ids, e.cl_ord_ids) == (("A", "B"), ("c",))
    e = expect("cancel_order", order_cancels.cancel_order(order_id="A", order_userref=[1, 2]))
    assert e.parts == (("order_id", "A"), ("order_userref", 1), ("order_userref", 2))
