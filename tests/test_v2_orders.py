"""v2 order parameters and their encoding (exact JSON numbers), no I/O;
responses and matching: test_v2_order_responses.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from kraky_anyio.v2 import order_cancels, order_fields, orders
from kraky_anyio.v2.order_requests import expect
from kraky_anyio.v2.protocol import KrakenV2Protocol
from kraky_anyio.v2.trading import check_trading_url

LIMIT: dict[str, Any] = {
    "order_type": "limit",
    "side": "buy",
    "symbol": "BTC/USD",
    "order_qty": Decimal("0.01"),
    "limit_price": Decimal("25000"),
}


def wire(method: str, params: dict[str, Any]) -> str:
    """The frame the writer sends for an order request built from ``params``."""
    protocol = KrakenV2Protocol()
    req = protocol.order(method, {**params, "token": "t"}, expect(method, params))
    return protocol.frame(req)


# -- numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.00000001"), "0.00000001"),
        (Decimal("1E-8"), "0.00000001"),
        ("1e-8", "0.00000001"),
        (Decimal("5.0E-7"), "0.00000050"),
        (Decimal("0.50000000"), "0.50000000"),
        ("0.50000000", "0.50000000"),
        (Decimal("1E+3"), "1000"),
        (7, "7"),
        ("25000.10", "25000.10"),
    ],
)
def test_numbers_go_out_as_json_numbers_with_their_exact_digits(value: Any, text: str) -> None:
    frame = wire("add_order", orders.add_order(**{**LIMIT, "order_qty": value}))
    assert f'"order_qty":{text},' in frame
    assert "E-" not in frame and "e-" not in frame and "E+" not in frame
    assert json.loads(frame, parse_float=Decimal)["params"]["order_qty"] == Decimal(text)


def test_nested_numbers_are_exact_too() -> None:
    params = orders.add_order(
        **{**LIMIT, "order_type": "stop-loss-limit"},
        triggers={"price": Decimal("1E-5"), "price_type": "static"},
        conditional={"order_type": "limit", "limit_price": "0.00000100"},
    )
    frame = wire("add_order", params)
    assert '"triggers":{"price":0.00001,"price_type":"static"}' in frame
    assert '"conditional":{"order_type":"limit","limit_price":0.00000100}' in frame


@pytest.mark.parametrize("field", ["order_qty", "limit_price"])
def test_a_float_is_refused_with_the_exact_spelling_to_use(field: str) -> None:
    with pytest.raises(TypeError, match=r"float is not exact.*'0\.1'"):
        orders.add_order(**{**LIMIT, field: 0.1})


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (True, TypeError),
        (None, TypeError),  # required
        ([1], TypeError),
        (b"1", TypeError),
        ("abc", ValueError),
        ("1 000", ValueError),
        ("NaN", ValueError),
        (Decimal("Infinity"), ValueError),
        (Decimal("NaN"), ValueError),
        ("0", ValueError),
        (Decimal("-1"), ValueError),
        (0, ValueError),
    ],
)
def test_bad_quantities(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="order_qty"):
        orders.add_order(**{**LIMIT, "order_qty": value})


def test_static_prices_are_positive_offsets_may_be_signed() -> None:
    with pytest.raises(ValueError, match="limit_price must be positive"):
        orders.add_order(**{**LIMIT, "limit_price": Decimal("-1")})
    stop = {**LIMIT, "order_type": "stop-loss"}
    del stop["limit_price"]
    with pytest.raises(ValueError, match=r"triggers\.price must be positive"):
        orders.add_order(**stop, triggers={"price": "-5"})
    params = orders.add_order(**stop, triggers={"price": "-5", "price_type": "pct"})
    assert params["triggers"] == {"price": Decimal("-5"), "price_type": "pct"}


# -- add_order -------------------------------------------------------------------------


def test_add_order_with_every_parameter() -> None:
    start = datetime(2024, 5, 18, 14, 5, 50, tzinfo=timezone(timedelta(hours=2)))
    params = orders.add_order(
        order_type="stop-loss-limit",
        side="sell",
        symbol="BTC/USD",
        order_qty="1.5",
        limit_price=Decimal("24000"),
        limit_price_type="static",
        triggers={"reference": "index", "price": Decimal("24100"), "price_type": "static"},
        time_in_force="gtd",
        margin=False,
        post_only=False,
        reduce_only=True,
        effective_time=start,
        expire_time="2024-05-19T00:00:00Z",
        deadline="2024-05-18T12:05:51.5+00:00",
        cl_ord_id="grid-7",
        conditional={"order_type": "take-profit", "trigger_price": 26000},
        fee_preference="quote",
        stp_type="cancel_both",
        validate=True,
    )
    assert params["effective_time"] == "2024-05-18T12:05:50.000000Z"
    assert params["order_qty"] == Decimal("1.5") and params["conditional"]["trigger_price"] == 26000
    assert set(params) == {
        *("order_type", "side", "symbol", "order_qty", "limit_price", "limit_price_type"),
        *("triggers", "time_in_force", "margin", "post_only", "reduce_only", "effective_time"),
        *("expire_time", "deadline", "cl_ord_id", "conditional", "fee_preference", "stp_type"),
        "validate",
    }


def test_every_typed_argument_is_checked_and_nothing_else_is_accepted() -> None:
    typed = order_fields.AddOrderFields
    for name in typed.__required_keys__ | typed.__optional_keys__:
        with pytest.raises((TypeError, ValueError)) as info:
            orders.add_order(**{**LIMIT, name: object()})
        assert "unexpected" not in str(info.value) and name in str(info.value)
    with pytest.raises(TypeError, match="unexpected arguments: price"):
        orders.add_order(**LIMIT, price=Decimal(1))  # type: ignore[call-arg]


def test_iceberg_market_cash_and_trailing_orders() -> None:
    iceberg = orders.add_order(**{**LIMIT, "order_type": "iceberg"}, display_qty="0.001")
    assert iceberg["display_qty"] == Decimal("0.001")
    market = orders.add_order(
        order_type="market", side="buy", symbol="ETH/USD", cash_order_qty=100, no_mpp=True
    )
    assert market == {
        "order_type": "market",
        "side": "buy",
        "cash_order_qty": 100,
        "no_mpp": True,
        "symbol": "ETH/USD",
    }
    trailing = orders.add_order(
        order_type="trailing-stop-limit",
        side="sell",
        symbol="BTC/USD",
        order_qty=1,
        limit_price="-50",  # an offset: quote by default for this type
        triggers={"price": "1.5", "price_type": "pct"},
    )
    assert trailing["limit_price"] == Decimal("-50")


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"order_type": "market"}, ValueError, "limit_price is for limit-type orders"),
        ({"limit_price": None}, ValueError, "limit order needs limit_price"),
        ({"order_type": "stop-loss-limit"}, ValueError, "needs triggers"),
        ({"triggers": {"price": 1}}, ValueError, "triggers are for stop-loss"),
        ({"order_type": "Limit"}, ValueError, "write 'limit'"),
        ({"order_type": "stop_loss"}, ValueError, "write 'stop-loss'"),
        ({"side": "BUY"}, ValueError, "write 'buy'"),
        ({"symbol": "XBT/USD"}, ValueError, "BTC, not XBT"),
        ({"symbol": ["BTC/USD"]}, TypeError, "one symbol"),
        ({"symbol": None}, TypeError, "needs symbol"),
        ({"time_in_force": "GTC"}, ValueError, "write 'gtc'"),
        ({"time_in_force": "gtd"}, ValueError, "expire_time"),
        ({"expire_time": "2024-05-19T00:00:00Z"}, ValueError, "expire_time"),
        ({"expire_time": "tomorrow", "time_in_force": "gtd"}, ValueError, "RFC 3339"),
        ({"deadline": datetime(2024, 1, 1)}, ValueError, "timezone"),
        ({"deadline": 1700000000}, TypeError, "deadline"),
        ({"display_qty": 1}, ValueError, "iceberg"),
        ({"order_type": "iceberg"}, ValueError, "iceberg"),
        ({"cash_order_qty": 100, "order_qty": None}, ValueError, "market buys"),
        ({"no_mpp": True}, ValueError, "market orders"),
        ({"cl_ord_id": "a", "order_userref": 1}, ValueError, "not both"),
        ({"cl_ord_id": ""}, ValueError, "cl_ord_id"),
        ({"order_userref": "7"}, TypeError, "order_userref"),
        ({"order_userref": 2**31}, ValueError, "32-bit"),
        ({"post_only": "true"}, TypeError, "post_only"),
        ({"validate": 1}, TypeError, "validate"),
        ({"fee_preference": "usd"}, ValueError, "base, quote"),
        ({"stp_type": "cancel-newest"}, ValueError, "write 'cancel_newest'"),
        ({"limit_price_type": "percent"}, ValueError, "static, pct, quote"),
        (
            {"triggers": {"price": 1}, "order_type": "trailing-stop", "limit_price": None},
            ValueError,
            "'pct' or",
        ),
        (
            {"triggers": [1], "order_type": "stop-loss", "limit_price": None},
            TypeError,
            "triggers must be a dict",
        ),
        (
            {
                "triggers": {"price": 1, "reference": "mark"},
                "order_type": "stop-loss",
                "limit_price": None,
            },
            ValueError,
            "index, last",
        ),
        (
            {"triggers": {}, "order_type": "stop-loss", "limit_price": None},
            TypeError,
            "triggers needs price",
        ),
        ({"conditional": {"order_type": "limit"}}, ValueError, "conditional.limit_price"),
        ({"conditional": {"order_type": "stop-loss"}}, ValueError, "conditional.trigger_price"),
        ({"conditional": {"order_type": "iceberg"}}, ValueError, "conditional.order_type"),
        ({"conditional": {"limit_price": 1}}, TypeError, "conditional needs order_type"),
        (
            {"conditional": {"order_type": "limit", "limit_price": 1, "trigger_price_type": "pct"}},
            ValueError,
            "trigger_price_type needs",
        ),
        ({"order_qty": None, "cash_order_qty": None}, TypeError, "needs order_qty"),
    ],
)
def test_add_order_refuses(changes: dict[str, Any], error: type[Exception], match: str) -> None:
    fields = {k: v for k, v in {**LIMIT, **changes}.items() if v is not None}
    with pytest.raises(error, match=match):
        orders.add_order(**fields)


# -- amend / edit ------------------------------------------------------------------------


def test_amend_order() -> None:
    assert orders.amend_order(order_id="O1", limit_price="25010.0") == {
        "order_id": "O1",
        "limit_price": Decimal("25010.0"),
    }
    assert orders.amend_order(
        cl_ord_id="c", order_qty=2, trigger_price="-1", trigger_price_type="pct"
    )
    with pytest.raises(TypeError, match="order_id or cl_ord_id"):
        orders.amend_order(limit_price=1)
    with pytest.raises(TypeError, match="order_id or cl_ord_id"):
        orders.amend_order(order_id="O1", cl_ord_id="c", limit_price=1)
    with pytest.raises(TypeError, match="needs a change"):
        orders.amend_order(order_id="O1", deadline="2024-05-18T12:05:51Z")
    with pytest.raises(ValueError, match="limit_price_type needs limit_price"):
        orders.amend_order(order_id="O1", order_qty=1, limit_price_type="pct")
    with pytest.raises(TypeError, match="float"):
        orders.amend_order(order_id="O1", order_qty=1.0)


def test_edit_order() -> None:
    assert orders.edit_order(order_id="O1", symbol="BTC/USD", order_qty="0.02") == {
        "order_id": "O1",
        "symbol": "BTC/USD",
        "order_qty": Decimal("0.02"),
    }
    with pytest.raises(TypeError, match="needs order_id, symbol"):
        orders.edit_order(order_qty=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="needs a change"):
        orders.edit_order(order_id="O1", symbol="BTC/USD", validate=True)
    with pytest.raises(TypeError, match="unexpected arguments: cl_ord_id"):
        orders.edit_order(order_id="O1", symbol="BTC/USD", cl_ord_id="x")  # type: ignore[call-arg]


# -- batches and cancels -------------------------------------------------------------------


def entry(i: int) -> dict[str, Any]:
    return {"order_type": "limit", "side": "buy", "order_qty": 1, "limit_price": 100 + i}


def test_batch_add() -> None:
    params = orders.batch_add(
        symbol="BTC/USD", orders=[{**entry(0), "cl_ord_id": "a"}, entry(1)], validate=True
    )
    assert params["orders"][0] == {**entry(0), "cl_ord_id": "a"} and params["validate"] is True
    assert '"limit_price":101' in wire("batch_add", params)
    for n in (1, 16):
        with pytest.raises(ValueError, match="2 to 15 orders"):
            orders.batch_add(symbol="BTC/USD", orders=[entry(i) for i in range(n)])
    with pytest.raises(ValueError, match="one symbol per batch"):
        orders.batch_add(symbol="BTC/USD", orders=[entry(0), {**entry(1), "symbol": "ETH/USD"}])
    with pytest.raises(ValueError, match=r"orders\[1\]\.limit_price"):
        orders.batch_add(symbol="BTC/USD", orders=[entry(0), {**entry(1), "order_type": "market"}])
    with pytest.raises(TypeError, match=r"orders\[1\]\.triggers must be a dict"):
        orders.batch_add(
            symbol="BTC/USD",
            orders=[entry(0), {**entry(1), "order_type": "stop-loss-limit", "triggers": 5}],
        )
    with pytest.raises(ValueError, match="share a cl_ord_id"):
        orders.batch_add(
            symbol="BTC/USD",
            orders=[{**entry(0), "cl_ord_id": "a"}, {**entry(1), "cl_ord_id": "a"}],
        )
    with pytest.raises(TypeError, match="list of dicts"):
        orders.batch_add(symbol="BTC/USD", orders=entry(0))


def test_cancel_order_params() -> None:
    assert order_cancels.cancel_order(order_id="O1") == {"order_id": ["O1"]}
    assert order_cancels.cancel_order(order_id=[], cl_ord_id=("a", "b"), order_userref=7) == {
        "cl_ord_id": ["a", "b"],
        "order_userref": [7],
    }
    with pytest.raises(TypeError, match="needs order_id, cl_ord_id or order_userref"):
        order_cancels.cancel_order()
    with pytest.raises(TypeError, match="needs order_id"):
        order_cancels.cancel_order(order_id=[])
    with pytest.raises(ValueError, match="twice"):
        order_cancels.cancel_order(order_id=["O1", "O1"])
    with pytest.raises(TypeError, match="order_userref"):
        order_cancels.cancel_order(order_userref=True)
    with pytest.raises(TypeError, match=r"order_id\[1\] must be a str"):
        order_cancels.cancel_order(order_id=["O1", 2])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="a str or a list"):
        order_cancels.cancel_order(order_id={"O1"})  # type: ignore[arg-type]


def test_batch_cancel_and_cancel_after_params() -> None:
    assert order_cancels.batch_cancel(orders=["O1"], cl_ord_id=["a"]) == {
        "orders": ["O1"],
        "cl_ord_id": ["a"],
    }
    with pytest.raises(ValueError, match="use cancel_order for one"):
        order_cancels.batch_cancel(orders=["O1"])
    with pytest.raises(ValueError, match="2 to 50"):
        order_cancels.batch_cancel(orders=[f"O{i}" for i in range(51)])
    assert order_cancels.cancel_all() == {}
    assert order_cancels.cancel_all_orders_after(0) == {"timeout": 0}
    assert order_cancels.cancel_all_orders_after(86399) == {"timeout": 86399}
    for bad, error in ((86400, ValueError), (-1, ValueError), (60.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="timeout"):
            order_cancels.cancel_all_orders_after(bad)


def test_trading_urls() -> None:
    for url in (
        "wss://ws.kraken.com/v2",
        "wss://beta-ws.kraken.com/v2",
        "wss://ws-l3.kraken.com/v2",
    ):
        with pytest.raises(ValueError, match="production-auth"):
            check_trading_url(url, "add_order")
    for url in (
        "wss://ws-auth.kraken.com/v2",
        "wss://beta-ws-auth.kraken.com/v2",
        "ws://127.0.0.1:1/v2",
    ):
        check_trading_url(url, "add_order")
