"""Tests for kraky_anyio.trading: order arguments -> v1 wire messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kraky_anyio.trading import (
    MAX_DECIMAL_DIGITS,
    ORDER_REPLY_EVENTS,
    AddOrderFields,
    EditOrderFields,
    add_order,
    cancel_all,
    cancel_all_orders_after,
    cancel_order,
    edit_order,
    expected_replies,
    format_decimal,
    redact,
)

TOKEN = "SECRET-TOKEN-123"


# --------------------------------------------------------------------------- format_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1E-5"), "0.00001"),
        (Decimal("1E+3"), "1000"),
        (Decimal("1.50"), "1.50"),
        (Decimal("-0"), "0"),
        (Decimal("0E-8"), "0.00000000"),
        (
            Decimal("123456789012345678901234567890.123456789"),
            "123456789012345678901234567890.123456789",
        ),
        (Decimal("1E-100"), "0." + "0" * 99 + "1"),
        (Decimal("9E+99"), "9" + "0" * 99),
        (0.1, "0.1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-05, "0.00001"),
        (1e22, "10000000000000000000000"),
        (1.5e-10, "0.00000000015"),
        (-0.0, "0.0"),
        (2.0, "2.0"),
        (5, "5"),
        (0, "0"),
        (-7, "-7"),
        (10**50, "1" + "0" * 50),
        ("37500.10", "37500.10"),
        ("1e-5", "0.00001"),
        ("1E3", "1000"),
        (".5", "0.5"),
        ("5.", "5"),
        ("+1.25", "1.25"),
        ("-1.25", "-1.25"),
    ],
)
def test_format_decimal(value: Any, expected: str) -> None:
    assert format_decimal(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "abc",
        "NaN",
        "nan",
        "inf",
        "-Infinity",
        "1_000",
        " 1",
        "1 ",
        "1,5",
        "0x10",
        "1e",
        "--1",
    ],
)
def test_format_decimal_rejects_bad_strings(value: str) -> None:
    with pytest.raises(ValueError):
        format_decimal(value)


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), -float("inf"), Decimal("NaN"), Decimal("sNaN"), Decimal("Inf")],
)
def test_format_decimal_rejects_non_finite(value: Any) -> None:
    with pytest.raises(ValueError, match="finite"):
        format_decimal(value)


@pytest.mark.parametrize(
    "value", [Decimal("1E+100"), Decimal("1E-101"), 10**100, 1e300, 1e-200, "1e1000000000"]
)
def test_format_decimal_rejects_out_of_range(value: Any) -> None:
    with pytest.raises(ValueError, match="out of range"):
        format_decimal(value)


@pytest.mark.parametrize("value", [True, False, None, b"1", [1], complex(1, 0), object()])
def test_format_decimal_rejects_other_types(value: Any) -> None:
    with pytest.raises(TypeError):
        format_decimal(value)


_bounded_decimals = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
    st.sampled_from([0, 1]),
    st.lists(st.integers(0, 9), min_size=1, max_size=40),
    st.integers(-MAX_DECIMAL_DIGITS, MAX_DECIMAL_DIGITS - 40),
)


@given(st.one_of(_bounded_decimals, st.decimals(allow_nan=False, allow_infinity=False)))
def test_format_decimal_round_trips(value: Decimal) -> None:
    try:
        text = format_decimal(value)
    except ValueError as exc:  # only out-of-range numbers may be refused
        assert "out of range" in str(exc)
        return
    assert Decimal(text) == value
    assert "e" not in text
    assert "E" not in text
    assert format_decimal(text) == text  # the output is a valid input, unchanged


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e90, max_value=1e90))
def test_format_decimal_floats_keep_shortest_repr(value: float) -> None:
    try:
        text = format_decimal(value)
    except ValueError as exc:  # e.g. 1e-233: more than MAX_DECIMAL_DIGITS decimals
        assert "out of range" in str(exc)
        assert abs(value) < 1e-80
        return
    assert "e" not in text.lower()
    assert float(text) == value


# --------------------------------------------------------------------------- add_order


def test_add_order_minimal() -> None:
    assert add_order(TOKEN, pair="XBT/USD", type="buy", ordertype="market", volume="1.25") == {
        "event": "addOrder",
        "token": TOKEN,
        "pair": "XBT/USD",
        "type": "buy",
        "ordertype": "market",
        "volume": "1.25",
    }


def test_add_order_all_fields() -> None:
    message = add_order(
        TOKEN,
        pair="XBT/USD",
        type="sell",
        ordertype="stop-loss-limit",
        volume=Decimal("0.01770000"),
        price=37500,
        price2=Decimal("37400.5"),
        leverage=2,
        reduce_only=True,
        oflags=["post", "fcib"],
        starttm=0,
        expiretm="+3600",
        deadline="2024-01-01T00:00:00.000Z",
        cl_ord_id="my-order-1",
        userref=42,
        validate=True,
        close_ordertype="limit",
        close_price="38000",
        close_price2=1e-05,
        timeinforce="GTC",
    )
    assert message == {
        "event": "addOrder",
        "token": TOKEN,
        "pair": "XBT/USD",
        "type": "sell",
        "ordertype": "stop-loss-limit",
        "volume": "0.01770000",
        "price": "37500",
        "price2": "37400.5",
        "leverage": "2",
        "reduce_only": True,
        "oflags": "post,fcib",
        "starttm": "0",
        "expiretm": "+3600",
        "deadline": "2024-01-01T00:00:00.000Z",
        "cl_ord_id": "my-order-1",
        "userref": "42",
        "validate": "true",
        "close[ordertype]": "limit",
        "close[price]": "38000",
        "close[price2]": "0.00001",
        "timeinforce": "GTC",
    }
    json.dumps(message)  # serialisable as is


def test_add_order_omits_none_and_sends_false() -> None:
    message = add_order(
        TOKEN,
        pair="XBT/USD",
        type="buy",
        ordertype="limit",
        volume=1,
        price=0.1,
        reduce_only=False,
        validate=False,
    )
    assert message == {
        "event": "addOrder",
        "token": TOKEN,
        "pair": "XBT/USD",
        "type": "buy",
        "ordertype": "limit",
        "volume": "1",
        "price": "0.1",
        "reduce_only": False,
        "validate": "false",
    }


@pytest.mark.parametrize("price", ["+10", "-5", "#5", "10%", "+1.5%", "-0.5%", "#.5", "+10."])
def test_add_order_relative_prices_kept_as_given(price: str) -> None:
    message = add_order(
        TOKEN,
        pair="XBT/USD",
        type="buy",
        ordertype="stop-loss-limit",
        volume="1",
        price=price,
        price2=price,
        close_ordertype="limit",
        close_price=price,
        close_price2=price,
    )
    assert message["price"] == message["price2"] == price
    assert message["close[price]"] == message["close[price2]"] == price


@pytest.mark.parametrize("volume", ["+10", "#5", "10%", "-5"])
def test_add_order_relative_forms_not_allowed_for_volume(volume: str) -> None:
    with pytest.raises(ValueError):
        add_order(TOKEN, pair="XBT/USD", type="buy", ordertype="limit", volume=volume)


def test_add_order_oflags_string_and_tuple() -> None:
    assert (
        add_order(TOKEN, pair="P", type="buy", ordertype="limit", volume="1", oflags="post")[
            "oflags"
        ]
        == "post"
    )
    assert (
        add_order(TOKEN, pair="P", type="buy", ordertype="limit", volume="1", oflags="post,viqc")[
            "oflags"
        ]
        == "post,viqc"
    )
    assert (
        add_order(TOKEN, pair="P", type="buy", ordertype="limit", volume="1", oflags=("nompp",))[
            "oflags"
        ]
        == "nompp"
    )


def test_add_order_userref_digit_string_and_volume_zero() -> None:
    message = add_order(
        TOKEN, pair="P", type="buy", ordertype="limit", volume=0, userref="-17", leverage="3.5"
    )
    assert message["userref"] == "-17"
    assert message["volume"] == "0"
    assert message["leverage"] == "3.5"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"token": 123}, TypeError),
        ({"token": ""}, ValueError),
        ({"token": None}, TypeError),
        ({"pair": ""}, ValueError),
        ({"pair": None}, TypeError),
        ({"pair": " XBT/USD"}, ValueError),
        ({"type": "BUY"}, ValueError),
        ({"type": "hold"}, ValueError),
        ({"type": 1}, TypeError),
        ({"ordertype": ""}, ValueError),
        ({"ordertype": None}, TypeError),
        ({"volume": "abc"}, ValueError),
        ({"volume": ""}, ValueError),
        ({"volume": "NaN"}, ValueError),
        ({"volume": "inf"}, ValueError),
        ({"volume": float("nan")}, ValueError),
        ({"volume": "-1"}, ValueError),
        ({"volume": -0.5}, ValueError),
        ({"volume": Decimal("-1E-8")}, ValueError),
        ({"volume": True}, TypeError),
        ({"volume": None}, TypeError),
        ({"price": "abc"}, ValueError),
        ({"price": "+"}, ValueError),
        ({"price": "%"}, ValueError),
        ({"price": "10%%"}, ValueError),
        ({"price": "+1e5"}, ValueError),
        ({"price": "+-5"}, ValueError),
        ({"price": "-1e5"}, ValueError),
        ({"price": "#"}, ValueError),
        ({"price": "1%0"}, ValueError),
        ({"price": -5}, ValueError),
        ({"price": Decimal("-5")}, ValueError),
        ({"price": [1]}, TypeError),
        ({"price2": "inf"}, ValueError),
        ({"leverage": 0}, ValueError),
        ({"leverage": "-2"}, ValueError),
        ({"leverage": "2:1"}, ValueError),
        ({"reduce_only": "true"}, TypeError),
        ({"reduce_only": 1}, TypeError),
        ({"oflags": ""}, ValueError),
        ({"oflags": []}, ValueError),
        ({"oflags": "post,"}, ValueError),
        ({"oflags": ["post", ""]}, ValueError),
        ({"oflags": ["post,fcib"]}, ValueError),
        ({"oflags": [1]}, TypeError),
        ({"oflags": b"post"}, TypeError),
        ({"oflags": 5}, TypeError),
        ({"starttm": -1}, ValueError),
        ({"starttm": ""}, ValueError),
        ({"starttm": 1.5}, TypeError),
        ({"expiretm": True}, TypeError),
        ({"deadline": ""}, ValueError),
        ({"cl_ord_id": ""}, ValueError),
        ({"cl_ord_id": 5}, TypeError),
        ({"userref": "abc"}, ValueError),
        ({"userref": "1.5"}, ValueError),
        ({"userref": 2**31}, ValueError),
        ({"userref": True}, TypeError),
        ({"userref": 1.0}, TypeError),
        ({"validate": "True"}, ValueError),
        ({"validate": "yes"}, ValueError),
        ({"validate": 1}, TypeError),
        ({"close_ordertype": ""}, ValueError),
        ({"close_price": "100"}, ValueError),  # without close_ordertype
        ({"close_price2": "100"}, ValueError),  # without close_ordertype
        ({"close_ordertype": "limit", "close_price": "x"}, ValueError),
        ({"close_ordertype": "limit", "close_price2": -1}, ValueError),
        ({"timeinforce": "gtc"}, ValueError),
        ({"timeinforce": "FOK"}, ValueError),
        ({"oflags": "post fciq"}, ValueError),
        ({"oflags": "post, "}, ValueError),
        ({"unknown_field": 1}, TypeError),
        ({"timeinforce": 1}, TypeError),
    ],
)
def test_add_order_rejects_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    arguments: dict[str, Any] = {
        "token": TOKEN,
        "pair": "XBT/USD",
        "type": "buy",
        "ordertype": "limit",
        "volume": "1",
        **kwargs,
    }
    with pytest.raises(error) as info:
        add_order(**arguments)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    assert info.value.__cause__ is None


def test_long_token_passed_as_a_price_is_masked_whole() -> None:
    token = "WW91ciBhdXRoZW50aWNhdGlvbiB0b2tlbiBnb2VzIGhlcmUu" * 3  # 144 chars
    with pytest.raises(ValueError) as info:
        add_order(token, pair="XBT/USD", type="buy", ordertype="limit", volume="1", price=token)
    assert token[:12] not in str(info.value)
    assert "<redacted>" in str(info.value)


def test_token_never_in_messages_even_if_passed_as_another_argument() -> None:
    calls: list[Callable[[], object]] = [
        lambda: add_order(TOKEN, pair="XBT/USD", type="buy", ordertype="limit", volume=TOKEN),
        lambda: add_order(TOKEN, pair="XBT/USD", type=TOKEN, ordertype="limit", volume="1"),
        lambda: add_order(
            TOKEN, pair="XBT/USD", type="buy", ordertype="limit", volume="1", price=TOKEN
        ),
        lambda: add_order(
            TOKEN, pair="XBT/USD", type="buy", ordertype="limit", volume="1", userref=TOKEN
        ),
        lambda: add_order(
            TOKEN, pair="XBT/USD", type="buy", ordertype="limit", volume="1", oflags=TOKEN
        ),
        lambda: edit_order(TOKEN, orderid="O1", pair="XBT/USD", volume=TOKEN),
    ]
    for call in calls:
        with pytest.raises(ValueError) as info:
            call()
        assert TOKEN not in str(info.value)
        assert TOKEN not in repr(info.value)
        assert "<redacted>" in str(info.value)


# --------------------------------------------------------------------------- edit_order


def test_edit_order_minimal_and_full() -> None:
    assert edit_order(TOKEN, orderid="OFUSL6-GXIIT-KZ2JDJ", pair="XBT/USD") == {
        "event": "editOrder",
        "token": TOKEN,
        "orderid": "OFUSL6-GXIIT-KZ2JDJ",
        "pair": "XBT/USD",
    }
    assert edit_order(
        TOKEN,
        orderid="OFUSL6-GXIIT-KZ2JDJ",
        pair="XBT/USD",
        volume=Decimal("1E-5"),
        price="#5",
        price2=0.1,
        oflags=["post"],
        newuserref=7,
        validate=False,
    ) == {
        "event": "editOrder",
        "token": TOKEN,
        "orderid": "OFUSL6-GXIIT-KZ2JDJ",
        "pair": "XBT/USD",
        "volume": "0.00001",
        "price": "#5",
        "price2": "0.1",
        "oflags": "post",
        "newuserref": "7",
        "validate": "false",
    }


def test_edit_order_by_userref() -> None:
    assert edit_order(TOKEN, orderid=123, pair="XBT/USD")["orderid"] == "123"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"token": 5}, TypeError),
        ({"orderid": ""}, ValueError),
        ({"orderid": None}, TypeError),
        ({"orderid": True}, TypeError),
        ({"pair": ""}, ValueError),
        ({"volume": "-1"}, ValueError),
        ({"price": "abc"}, ValueError),
        ({"price2": float("inf")}, ValueError),
        ({"oflags": [""]}, ValueError),
        ({"newuserref": "x"}, ValueError),
        ({"validate": "no"}, ValueError),
        ({"orderid": ["O1", "O2"]}, ValueError),
        ({"orderid": []}, ValueError),
        ({"orderid": [""]}, ValueError),
    ],
)
def test_edit_order_rejects_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    arguments: dict[str, Any] = {"token": TOKEN, "orderid": "O1", "pair": "XBT/USD", **kwargs}
    with pytest.raises(error) as info:
        edit_order(**arguments)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)


# --------------------------------------------------------------------------- cancels


def test_cancel_order_bare_str_is_one_txid() -> None:
    assert cancel_order(TOKEN, "OGTT3Y-C6I3P-XRI6HX") == {
        "event": "cancelOrder",
        "token": TOKEN,
        "txid": ["OGTT3Y-C6I3P-XRI6HX"],
    }


def test_cancel_order_several() -> None:
    txids = ("OGTT3Y-C6I3P-XRI6HX", "OKAGJC-YHIWK-WIOZWG")
    message = cancel_order(TOKEN, txids)
    assert message["txid"] == list(txids)
    assert cancel_order(TOKEN, iter(txids))["txid"] == list(txids)


@pytest.mark.parametrize(
    ("txid", "error"),
    [
        ([], ValueError),
        ("", ValueError),
        (["O1", ""], ValueError),
        (["O1", 2], TypeError),
        (None, TypeError),
        (5, TypeError),
        (b"O1", TypeError),
        ({"O1": 1}, TypeError),
    ],
)
def test_cancel_order_rejects(txid: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        cancel_order(TOKEN, txid)
    assert TOKEN not in str(info.value)


def test_cancel_all() -> None:
    assert cancel_all(TOKEN) == {"event": "cancelAll", "token": TOKEN}
    with pytest.raises(ValueError):
        cancel_all("")
    with pytest.raises(TypeError):
        cancel_all(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [0, 60, 86400])
def test_cancel_all_orders_after(timeout: int) -> None:
    assert cancel_all_orders_after(TOKEN, timeout) == {
        "event": "cancelAllOrdersAfter",
        "token": TOKEN,
        "timeout": timeout,
    }


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (-1, ValueError),
        (True, TypeError),
        (False, TypeError),
        (1.5, ValueError),
        (float("nan"), ValueError),
        (-60.0, ValueError),
        ("60", TypeError),
    ],
)
def test_cancel_all_orders_after_rejects(timeout: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        cancel_all_orders_after(TOKEN, timeout)
    assert TOKEN not in str(info.value)


# --------------------------------------------------------------------------- replies


def test_expected_replies() -> None:
    assert expected_replies(
        add_order(TOKEN, pair="P", type="buy", ordertype="market", volume=1)
    ) == ("addOrderStatus", 1)
    assert expected_replies(edit_order(TOKEN, orderid="O1", pair="P")) == ("editOrderStatus", 1)
    assert expected_replies(cancel_order(TOKEN, "O1")) == ("cancelOrderStatus", 1)
    assert expected_replies(cancel_order(TOKEN, ["O1", "O2", "O3"])) == ("cancelOrderStatus", 3)
    assert expected_replies(cancel_all(TOKEN)) == ("cancelAllStatus", 1)
    assert expected_replies(cancel_all_orders_after(TOKEN, 0)) == (
        "cancelAllOrdersAfterStatus",
        1,
    )
    assert set(ORDER_REPLY_EVENTS) == {
        "addOrder",
        "editOrder",
        "cancelOrder",
        "cancelAll",
        "cancelAllOrdersAfter",
    }


@pytest.mark.parametrize(
    "request_",
    [
        {"event": "ping"},
        {"event": "subscribe"},
        {},
        {"event": "cancelOrder", "token": TOKEN},
        {"event": "cancelOrder", "token": TOKEN, "txid": []},
        {"event": "cancelOrder", "token": TOKEN, "txid": "O1"},
    ],
)
def test_expected_replies_rejects(request_: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as info:
        expected_replies(request_)
    assert TOKEN not in str(info.value)


# --------------------------------------------------------------------------- redact


def test_redact() -> None:
    message = add_order(TOKEN, pair="P", type="buy", ordertype="market", volume=1)
    logged = redact(message)
    assert TOKEN not in repr(logged)
    assert message["token"] == TOKEN  # original untouched
    subscribe = {"event": "subscribe", "subscription": {"name": "ownTrades", "token": TOKEN}}
    assert TOKEN not in repr(redact(subscribe))
    assert subscribe["subscription"]["token"] == TOKEN  # type: ignore[index]
    assert redact({"event": "ping"}) == {"event": "ping"}


BUILDERS: list[Callable[[], dict[str, Any]]] = [
    lambda: add_order(TOKEN, pair="P", type="buy", ordertype="market", volume=1),
    lambda: edit_order(TOKEN, orderid="O1", pair="P"),
    lambda: cancel_order(TOKEN, "O1"),
    lambda: cancel_all(TOKEN),
    lambda: cancel_all_orders_after(TOKEN, 5),
]


@pytest.mark.parametrize("build", BUILDERS)
def test_builders_have_no_reqid_and_are_json(build: Callable[[], dict[str, Any]]) -> None:
    message = build()
    assert "reqid" not in message
    assert json.loads(json.dumps(message)) == message


# --------------------------------------------------------------------------- kraky's spellings


def test_validate_accepts_krakys_strings() -> None:
    base = {"pair": "P", "type": "buy", "ordertype": "limit", "volume": "1"}
    assert add_order(TOKEN, **base, validate="true")["validate"] == "true"
    assert add_order(TOKEN, **base, validate="false")["validate"] == "false"
    assert edit_order(TOKEN, orderid="O1", pair="P", validate="true")["validate"] == "true"


@pytest.mark.parametrize("value", ["True", "yes", "1", " true"])
def test_validate_near_misses_name_the_spelling(value: str) -> None:
    with pytest.raises(ValueError, match=r"True or False \(or the str 'true'/'false'\)"):
        add_order(TOKEN, pair="P", type="buy", ordertype="limit", volume="1", validate=value)


@pytest.mark.parametrize(("timeout", "sent"), [(60.0, 60), (0.0, 0), (86400.0, 86400)])
def test_cancel_all_orders_after_takes_whole_float_seconds(timeout: float, sent: int) -> None:
    message = cancel_all_orders_after(TOKEN, timeout)
    assert message["timeout"] == sent
    assert type(message["timeout"]) is int
    assert json.dumps(message).endswith(f'"timeout": {sent}}}')


def test_cancel_all_orders_after_fraction_names_the_int() -> None:
    with pytest.raises(ValueError, match="whole seconds: pass an int such as 60"):
        cancel_all_orders_after(TOKEN, 60.5)


@pytest.mark.parametrize(
    ("orderid", "sent"), [(["OABC-1"], "OABC-1"), (("OABC-1",), "OABC-1"), ([42], "42")]
)
def test_edit_order_takes_a_one_element_orderid_list(orderid: Any, sent: str) -> None:
    assert edit_order(TOKEN, orderid=orderid, pair="P")["orderid"] == sent


def test_edit_order_several_orderids_is_refused_with_the_right_spelling() -> None:
    with pytest.raises(ValueError, match="edits one order; pass one txid as a str"):
        edit_order(TOKEN, orderid=["O1", "O2"], pair="P")


@pytest.mark.parametrize("oflags", ["post, fciq", " post ,fciq ", ["post ", " fciq"]])
def test_oflags_spaces_around_commas_are_dropped(oflags: Any) -> None:
    message = add_order(TOKEN, pair="P", type="buy", ordertype="limit", volume="1", oflags=oflags)
    assert message["oflags"] == "post,fciq"


def test_oflags_without_commas_names_the_comma_spelling() -> None:
    with pytest.raises(ValueError, match="separate flags with commas: 'post,fciq'"):
        add_order(TOKEN, pair="P", type="buy", ordertype="limit", volume="1", oflags="post fciq")


def test_timeinforce_fok_says_what_kraken_v1_accepts() -> None:
    with pytest.raises(ValueError) as info:
        add_order(TOKEN, pair="P", type="buy", ordertype="limit", volume="1", timeinforce="FOK")
    message = str(info.value)
    assert "not accepted by Kraken's WebSocket v1 addOrder" in message
    assert "GTC, GTD or IOC" in message


def test_timeinforce_lower_case_names_the_capitals() -> None:
    with pytest.raises(ValueError, match="write 'IOC'"):
        add_order(TOKEN, pair="P", type="buy", ordertype="limit", volume="1", timeinforce="ioc")


# --------------------------------------------------------------------------- one parameter list


def test_missing_and_unknown_fields_are_type_errors() -> None:
    with pytest.raises(TypeError, match="addOrder needs ordertype, volume"):
        add_order(TOKEN, pair="P", type="buy")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected arguments: colour"):
        add_order(TOKEN, pair="P", type="buy", ordertype="limit", volume="1", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="editOrder needs orderid"):
        edit_order(TOKEN, pair="P")  # type: ignore[call-arg]


def test_typed_fields_and_field_tables_agree() -> None:
    """The typed keyword arguments and the encoder are one list: a field typed
    but not encoded (or the reverse) would be lost or refused."""
    sample: dict[str, Any] = {
        "reduce_only": True,
        "validate": True,
        "oflags": "post",
        "starttm": 1,
        "expiretm": 1,
        "deadline": 1,
        "userref": 1,
        "timeinforce": "GTC",
        "close_ordertype": "limit",
        "cl_ord_id": "x",
    }
    for name in AddOrderFields.__optional_keys__:
        value = sample.get(name, "1")  # the prices and leverage
        fields: dict[str, Any] = {"pair": "P", "type": "buy", "ordertype": "limit", "volume": "1"}
        fields[name] = value
        if name.startswith("close_price"):
            fields["close_ordertype"] = "limit"
        message = add_order(TOKEN, **fields)
        key = f"close[{name[6:]}]" if name.startswith("close_") else name
        assert key in message, name
    assert AddOrderFields.__required_keys__ == {"pair", "type", "ordertype", "volume"}
    for name in EditOrderFields.__optional_keys__:
        edit_value: Any = True if name == "validate" else "post" if name == "oflags" else "1"
        assert name in edit_order(TOKEN, orderid="O1", pair="P", **{name: edit_value}), name
