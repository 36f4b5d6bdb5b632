"""v2 typed messages: every channel decodes from real-shaped frames with exact
Decimals, unknown fields and channels never break, responses are typed, and
every malformed frame raises MessageError."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kraky_anyio.errors import KrakyError
from kraky_anyio.v2 import MessageError, decode
from kraky_anyio.v2.messages import (
    BalancesMessage,
    BookMessage,
    ChannelMessage,
    ExecutionsMessage,
    HeartbeatMessage,
    InstrumentMessage,
    Level3Message,
    OHLCMessage,
    Response,
    StatusMessage,
    TickerMessage,
    TradeMessage,
)

TICKER = (
    '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":62797.0,'
    '"bid_qty":0.50000000,"ask":62797.1,"ask_qty":1.23400000,"last":62797.1,'
    '"volume":1234.56789012,"vwap":62500.3,"low":61000.0,"high":63000.0,"change":797.1,'
    '"change_pct":1.29,"timestamp":"2026-08-16T23:37:04.334090Z","new_field":[1,2]}]}'
)


def test_ticker_keeps_the_wire_digits() -> None:
    msg = decode(TICKER)
    assert isinstance(msg, TickerMessage)
    assert msg.channel == "ticker" and msg.type == "update"
    entry = msg.data[0]
    assert entry.symbol == "BTC/USD"
    assert type(entry.bid) is Decimal and str(entry.bid) == "62797.0"
    assert str(entry.bid_qty) == "0.50000000"  # not 0.5
    assert entry.ask_qty == Decimal("1.234") and str(entry.ask_qty) == "1.23400000"
    assert entry.timestamp == "2026-08-16T23:37:04.334090Z"
    # bytes decode the same as str
    assert decode(TICKER.encode()) == msg


def test_ticker_without_timestamp_older_frames() -> None:
    frame = TICKER.replace(',"timestamp":"2026-08-16T23:37:04.334090Z"', "")
    msg = decode(frame)
    assert isinstance(msg, TickerMessage) and msg.data[0].timestamp is None


def test_book_and_exponent_numbers() -> None:
    msg = decode(
        '{"type":"update","data":[{"symbol":"TINY/USD","bids":[{"price":0.00000001,'
        '"qty":0.00000050}],"asks":[{"price":1e-08,"qty":5E-7}],"checksum":4294967295,'
        '"timestamp":"t"}],"channel":"book"}'  # key order varies: channel last
    )
    assert isinstance(msg, BookMessage)
    entry = msg.data[0]
    assert entry.checksum == 2**32 - 1
    bid, ask = entry.bids[0], entry.asks[0]
    assert format(bid.price, "f") == "0.00000001" and format(bid.qty, "f") == "0.00000050"
    assert ask.price == bid.price and ask.qty == bid.qty
    assert str(bid.price) == "1E-8"  # why nothing may use str(): the trap


def test_book_entry_with_one_side_only() -> None:
    msg = decode(
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",'
        '"asks":[{"price":1.5,"qty":0}],"checksum":7}]}'
    )
    assert isinstance(msg, BookMessage) and msg.data[0].bids == []


def test_level3_trade_ohlc() -> None:
    l3 = decode(
        '{"channel":"level3","type":"update","data":[{"symbol":"BTC/USD","checksum":1,'
        '"timestamp":"t","bids":[{"event":"add","order_id":"O1","limit_price":44939.4,'
        '"order_qty":0.88968699,"timestamp":"t1"}],"asks":[]}]}'
    )
    assert isinstance(l3, Level3Message)
    order = l3.data[0].bids[0]
    assert (order.event, order.order_id, str(order.order_qty)) == ("add", "O1", "0.88968699")
    trade = decode(
        '{"channel":"trade","type":"snapshot","data":[{"symbol":"BTC/USD","side":"buy",'
        '"price":62797.1,"qty":0.00100000,"ord_type":"market","trade_id":123456789,'
        '"timestamp":"t"}]}'
    )
    assert isinstance(trade, TradeMessage)
    assert str(trade.data[0].qty) == "0.00100000" and trade.data[0].trade_id == 123456789
    ohlc = decode(
        '{"channel":"ohlc","type":"update","data":[{"symbol":"BTC/USD","open":1.0,"high":2.00,'
        '"low":0.5,"close":1.5,"vwap":1.25,"volume":10.12345678,"trades":7,'
        '"interval_begin":"t0","interval":5,"timestamp":"t"}]}'
    )
    assert isinstance(ohlc, OHLCMessage)
    assert str(ohlc.data[0].high) == "2.00" and ohlc.data[0].interval == 5


def test_instrument_is_an_object_with_exponent_numbers() -> None:
    msg = decode(
        '{"channel":"instrument","type":"snapshot","data":{"assets":[{"id":"BTC",'
        '"status":"enabled","precision":10,"precision_display":5,"borrowable":true,'
        '"collateral_value":1.0,"margin_rate":0.01}],"pairs":[{"symbol":"BTC/USD",'
        '"base":"BTC","quote":"USD","status":"online","qty_precision":8,'
        '"qty_increment":1e-08,"price_precision":1,"cost_precision":5,"marginable":true,'
        '"has_index":true,"cost_min":0.5,"tick_size":0.1,"price_increment":0.1,'
        '"qty_min":0.0001,"future_field":{"x":1}}]}}'
    )
    assert isinstance(msg, InstrumentMessage)
    pair = msg.data.pairs[0]
    assert (pair.price_precision, pair.qty_precision) == (1, 8)
    assert format(pair.qty_increment, "f") == "0.00000001"
    assert msg.data.assets[0].id == "BTC"


def test_status_heartbeat_and_big_connection_id() -> None:
    status = decode(
        '{"channel":"status","type":"update","data":[{"version":"2.0.10","system":"online",'
        '"api_version":"v2","connection_id":18446744073709551615}]}'
    )
    assert isinstance(status, StatusMessage)
    assert status.data[0].connection_id == 2**64 - 1 and status.data[0].system == "online"
    maintenance = decode(
        '{"channel":"status","type":"update","data":[{"system":"maintenance","api_version":"v2"}]}'
    )
    assert isinstance(maintenance, StatusMessage) and maintenance.data[0].connection_id is None
    beat = decode('{"channel":"heartbeat"}')
    assert isinstance(beat, HeartbeatMessage) and beat.channel == "heartbeat"


def test_private_channels_are_typed_with_exact_numbers() -> None:
    # More in test_v2_private.py.
    ex = decode(
        '{"channel":"executions","type":"snapshot","sequence":1,"data":[{"exec_type":"new",'
        '"order_id":"O1","limit_price":30000.50,"order_qty":1e-05,"order_userref":0}]}'
    )
    assert isinstance(ex, ExecutionsMessage) and ex.sequence == 1
    assert ex.data[0].limit_price == Decimal("30000.50")
    assert str(ex.data[0].limit_price) == "30000.50"
    assert ex.data[0].order_userref == 0
    bal = decode(
        '{"channel":"balances","type":"update","sequence":4,"data":[{"asset":"BTC","balance":1.0}]}'
    )
    assert isinstance(bal, BalancesMessage) and bal.sequence == 4


def test_unknown_channel_is_a_generic_message_with_raw_data() -> None:
    msg = decode('{"channel":"futures_thing","type":"update","data":[{"x":1.50,"y":"z"}]}')
    assert isinstance(msg, ChannelMessage)
    assert msg.channel == "futures_thing" and msg.type == "update"
    assert msg.data == [{"x": Decimal("1.50"), "y": "z"}]
    assert str(msg.data[0]["x"]) == "1.50"
    bare = decode('{"channel":"other"}')
    assert isinstance(bare, ChannelMessage) and bare.type is None and bare.data is None


def test_responses_are_typed() -> None:
    ack = decode(
        '{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,'
        '"symbol":"BTC/USD"},"success":true,"time_in":"a","time_out":"b","req_id":7}'
    )
    assert isinstance(ack, Response)
    assert ack.success is True and ack.req_id == 7 and ack.result["symbol"] == "BTC/USD"
    err = decode(
        '{"error":"Subscription depth not supported","method":"subscribe","success":false,'
        '"time_in":"a","time_out":"b"}'
    )
    assert isinstance(err, Response)
    assert err.success is False and err.req_id is None
    assert err.error == "Subscription depth not supported"
    pong = decode('{"method":"pong","req_id":1,"time_in":"a","time_out":"b"}')
    assert isinstance(pong, Response) and pong.method == "pong" and pong.success is None
    batch = decode('{"method":"batch_add","req_id":2,"success":true,"result":[{"order_id":"A"}]}')
    assert isinstance(batch, Response) and batch.result == [{"order_id": "A"}]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        ("", "not a JSON frame"),
        ("{", "not a JSON frame"),
        ('{"channel":"book"', "not a JSON frame"),
        (b"\xff\xfe", "not a JSON frame"),
        ("[1, 2]", "JSON object"),
        ('"text"', "JSON object"),
        ("null", "JSON object"),
        ("{}", "'channel' or a 'method'"),
        ('{"event":"heartbeat"}', "'channel' or a 'method'"),  # a v1 frame
        ('{"channel":5}', "'channel' must be a string"),
        ('{"channel":"other","type":5}', "'type' must be a string"),
        ('{"channel":"book","type":"update"}', "malformed 'book'"),
        ('{"channel":"ticker","type":"update","data":[{"symbol":"X"}]}', "malformed 'ticker'"),
        (
            '{"channel":"book","type":"update","data":[{"symbol":"X","checksum":1,'
            '"bids":[{"price":"abc","qty":1}]}]}',
            r"\$\.data\[0\]\.bids\[0\]\.price",
        ),
        (
            '{"channel":"book","type":"update","data":[{"symbol":"X","checksum":1,'
            '"bids":[{"price":true,"qty":1}]}]}',
            "malformed 'book'",
        ),
        ('{"channel":"book","type":"update","data":[{"symbol":"X","checksum":"1"}]}', "book"),
        ('{"channel":"instrument","type":"snapshot","data":[]}', "malformed 'instrument'"),
        ('{"method":"subscribe","success":"yes"}', "malformed response"),
        ('{"method":5}', "malformed response"),
    ],
)
def test_malformed_frames_raise_message_error(frame: str | bytes, match: str) -> None:
    with pytest.raises(MessageError, match=match) as info:
        decode(frame)
    assert isinstance(info.value, ValueError) and isinstance(info.value, KrakyError)


@pytest.mark.parametrize(
    "frame",
    [
        "[" * 100_000,
        '{"channel":"other","data":' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"channel":"executions","type":"update","data":[{"x":'
        + "[" * 100_000
        + "]" * 100_000
        + "}]}",
    ],
)
def test_deeply_nested_frames_are_a_message_error(frame: str) -> None:
    with pytest.raises(MessageError, match="nested too deeply"):
        decode(frame)
