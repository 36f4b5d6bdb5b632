"""v2 request parameters: the channel table, validation before anything is sent,
and request encoding with exact JSON numbers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from kraky_anyio.v2.params import (
    BOOK_DEPTHS,
    CHANNELS,
    LEVEL3_DEPTHS,
    OHLC_INTERVALS,
    encode_request,
    normalize_symbols,
    subscription_params,
)

SECRET = "s3cr3t-token-value"


def test_valid_subscriptions_for_every_channel() -> None:
    assert subscription_params("ticker", "BTC/USD", event_trigger="bbo", snapshot=False) == {
        "channel": "ticker",
        "symbol": ["BTC/USD"],
        "event_trigger": "bbo",
        "snapshot": False,
    }
    for depth in BOOK_DEPTHS:
        params = subscription_params("book", ["BTC/USD", "ETH/USD"], depth=depth)
        assert params["depth"] == depth and params["symbol"] == ["BTC/USD", "ETH/USD"]
    for depth in LEVEL3_DEPTHS:
        assert subscription_params("level3", ("BTC/USD",), depth=depth, token=SECRET)["token"]
    for interval in OHLC_INTERVALS:
        assert subscription_params("ohlc", "BTC/USD", interval=interval)["interval"] == interval
    assert subscription_params("trade", "BTC/USD", snapshot=True)["snapshot"] is True
    assert subscription_params("instrument") == {"channel": "instrument"}
    ex = subscription_params("executions", token=SECRET, snap_trades=True, ratecounter=True)
    assert ex == {
        "channel": "executions",
        "token": SECRET,
        "snap_trades": True,
        "ratecounter": True,
    }
    assert subscription_params("balances", token=SECRET)["channel"] == "balances"
    assert {spec.endpoint for spec in CHANNELS.values()} == {
        "production",
        "production-auth",
        "level3",
    }


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("tickers", "BTC/USD"), {}, ValueError, "unknown channel 'tickers'"),
        (("status",), {}, ValueError, "unprompted"),
        (("heartbeat",), {}, ValueError, "unprompted"),
        ((5, "BTC/USD"), {}, TypeError, "channel must be a str"),
        (("book", "BTC/USD"), {"depth": 15}, ValueError, "depth must be one of"),
        (("book", "BTC/USD"), {"depth": "10"}, ValueError, "depth must be one of"),
        (("book", "BTC/USD"), {"depth": True}, ValueError, "depth must be one of"),
        (("book", "BTC/USD"), {"depth": 10.0}, ValueError, "depth must be one of"),
        (("level3", "BTC/USD"), {"depth": 25, "token": SECRET}, ValueError, "depth"),
        (("level3", "BTC/USD"), {}, ValueError, "needs token"),
        (("level3", "BTC/USD"), {"token": ""}, ValueError, "token must not be empty"),
        (("level3", "BTC/USD"), {"token": 5}, TypeError, "token must be a str"),
        (("ohlc", "BTC/USD"), {"interval": 2}, ValueError, "interval must be one of"),
        (("ohlc", "BTC/USD"), {}, ValueError, "needs interval"),
        (("ticker", "BTC/USD"), {"event_trigger": "all"}, ValueError, "event_trigger"),
        (("ticker", "BTC/USD"), {"snapshot": 1}, TypeError, "snapshot must be a bool"),
        (("ticker", "BTC/USD"), {"depth": 10}, ValueError, "no parameter 'depth'"),
        (("ticker",), {}, ValueError, "needs symbols"),
        (("instrument", "BTC/USD"), {}, ValueError, "takes no symbols"),
        (("executions",), {}, ValueError, "needs token"),
        (("ticker", {"BTC/USD"}), {}, TypeError, "str or a list of str"),
        (("ticker", b"BTC/USD"), {}, TypeError, "str or a list of str"),
        (("ticker", ["BTC/USD", 5]), {}, TypeError, "each symbol must be a str"),
        (("ticker", []), {}, ValueError, "at least one"),
        (("ticker", [""]), {}, ValueError, "must not be empty"),
        (("ticker", ["BTC/USD", "BTC/USD"]), {}, ValueError, "twice"),
        (("ticker", "XBT/USD"), {}, ValueError, "BTC, not XBT"),
    ],
)
def test_bad_params_fail_before_sending(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as info:
        subscription_params(*args, **kwargs)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("channel", "symbols", "kwargs"),
    [
        ("executions", None, {"token": SECRET, "snap_orders": "yes"}),
        ("ticker", "BTC/USD", {"token": SECRET}),
        ("balances", "BTC/USD", {"token": SECRET}),
        ("level3", "BTC/USD", {"token": SECRET, "depth": 25}),
    ],
)
def test_token_never_in_an_error(channel: str, symbols: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        subscription_params(channel, symbols, **kwargs)
    assert SECRET not in str(info.value)


def test_normalize_symbols() -> None:
    assert normalize_symbols("ETH/USD") == ["ETH/USD"]
    assert normalize_symbols(("A/B", "C/D")) == ["A/B", "C/D"]


def test_encode_request_exact_numbers() -> None:
    params = subscription_params("book", ["BTC/USD"], depth=25, snapshot=True)
    raw = encode_request("subscribe", params, 7)
    assert json.loads(raw) == {
        "method": "subscribe",
        "params": {"channel": "book", "symbol": ["BTC/USD"], "depth": 25, "snapshot": True},
        "req_id": 7,
    }
    assert b'"depth":25' in raw  # a number, not a string
    order = {
        "order_qty": Decimal("0.00000001"),
        "limit_price": Decimal("0.00000050"),
        "nested": [{"price": Decimal("1E+3")}],
        "cl_ord_id": "x",
    }
    raw = encode_request("add_order", order, 0)
    assert b'"order_qty":0.00000001' in raw and b'"limit_price":0.00000050' in raw
    assert b'"price":1000' in raw and b"E" not in raw.replace(b"cl_ord_id", b"")
    decoded = json.loads(raw, parse_float=Decimal)
    assert str(decoded["params"]["limit_price"]) == "5.0E-7"  # the same value, exactly
    assert encode_request("ping") == b'{"method":"ping"}'


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("add_order", {"order_qty": 0.1}), TypeError),
        (("add_order", {"x": [1.5]}), TypeError),
        (("add_order", {"order_qty": Decimal("NaN")}), ValueError),
        (("add_order", {"order_qty": Decimal("Infinity")}), ValueError),
        (("ping", None, True), TypeError),
        (("ping", None, "1"), TypeError),
        (("ping", None, -1), ValueError),
        (("ping", None, 2**63), ValueError),
        (("", None, 1), TypeError),
    ],
)
def test_encode_request_refuses_inexact_or_bad_values(
    args: tuple[Any, ...], error: type[Exception]
) -> None:
    with pytest.raises(error):
        encode_request(*args)
