"""Tests for kraky_anyio.protocol: the sans-I/O state of one logical connection.

No event loop: KrakenProtocol is fed frames as strings and told when requests
were written and when sockets were lost.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest

from kraky_anyio.errors import KrakenError, OrderOutcomeUnknownError, ReplyLostError
from kraky_anyio.notices import SubscriptionLost
from kraky_anyio.protocol import (
    ENVIRONMENTS,
    MAX_REQID,
    MAX_USER_REQID,
    FrameKind,
    KrakenProtocol,
    PendingRequest,
    RequestState,
    decode,
    encode,
    normalise_pairs,
    redact,
    resolve_url,
)
from kraky_anyio.requests import INTERNAL_REQID_BASE
from kraky_anyio.subscriptions import subscription_key
from kraky_anyio.trading import ORDER_REPLY_EVENTS

TOKEN = "SECRET-TOKEN-abc123"
TICKER = {"name": "ticker"}
BOOK = {"name": "book", "depth": 10}
OWN_TRADES = {"name": "ownTrades"}


def status(
    req: PendingRequest | None,
    pair: str | None = None,
    st: str = "subscribed",
    *,
    reqid: Any = ...,
    event: str = "subscriptionStatus",
    **extra: Any,
) -> str:
    """A reply frame for ``req`` (its reqid unless ``reqid`` is given)."""
    msg: dict[str, Any] = {"event": event, "status": st}
    if reqid is ...:
        assert req is not None
        msg["reqid"] = req.reqid
    elif reqid is not None:
        msg["reqid"] = reqid
    if pair is not None:
        msg["pair"] = pair
    if st == "error":
        msg.setdefault("errorMessage", "Subscription depth not supported")
    msg.update(extra)
    return json.dumps(msg)


def live_pairs(p: KrakenProtocol) -> set[tuple[str, str | None]]:
    return {(e.subscription["name"], e.pair) for e in p.subscriptions.live()}


def sent(p: KrakenProtocol, req: PendingRequest, generation: int = 1) -> PendingRequest:
    p.mark_sent(req, generation)
    return req


# --------------------------------------------------------------------------- resolve_url


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ("production", "wss://ws.kraken.com"),
        ("production-auth", "wss://ws-auth.kraken.com"),
        ("beta", "wss://beta-ws.kraken.com"),
        ("beta-auth", "wss://beta-ws-auth.kraken.com"),
    ],
)
def test_resolve_url_environments(env: str, url: str) -> None:
    assert resolve_url(env) == url


def test_environments_are_exactly_the_four_documented() -> None:
    assert set(ENVIRONMENTS) == {"production", "production-auth", "beta", "beta-auth"}


@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:8765", "wss://example.test/ws", "wss://ws.kraken.com/v2"]
)
def test_resolve_url_passes_urls_through(url: str) -> None:
    assert resolve_url(url) == url


@pytest.mark.parametrize(
    "bad", ["prod", "Production", "http://ws.kraken.com", "ws.kraken.com", " production"]
)
def test_resolve_url_rejects_unknown_names(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown environment"):
        resolve_url(bad)


@pytest.mark.parametrize("bad", ["", None, 42, b"production"])
def test_resolve_url_rejects_non_strings_and_empty(bad: Any) -> None:
    with pytest.raises(TypeError):
        resolve_url(bad)


# --------------------------------------------------------------------------- encode / decode


def test_decode_keeps_fractions_as_decimal_and_strings_as_strings() -> None:
    msg = decode('{"a": 0.1, "b": "5525.40000", "c": 1e-5, "d": 3}')
    assert msg["a"] == Decimal("0.1") and isinstance(msg["a"], Decimal)
    assert msg["b"] == "5525.40000"
    assert isinstance(msg["c"], Decimal) and msg["c"] == Decimal("0.00001")
    assert msg["d"] == 3 and isinstance(msg["d"], int)


def test_decode_big_connection_id_exactly() -> None:
    raw = (
        '{"event":"systemStatus","status":"online","version":"1.9.1",'
        '"connectionID":13688620010177543517}'
    )
    msg = decode(raw)
    assert msg["connectionID"] == 13688620010177543517
    assert isinstance(msg["connectionID"], int)
    assert decode(raw.encode()) == msg  # bytes decode the same


def test_encode_is_compact_and_decimal_is_a_plain_string() -> None:
    out = encode({"event": "addOrder", "price": Decimal("1E-5"), "volume": Decimal("1.50")})
    assert out == '{"event":"addOrder","price":"0.00001","volume":"1.50"}'
    assert " " not in encode({"a": [1, 2, {"b": None}]})


def test_encode_keeps_big_ints_exact() -> None:
    assert encode({"reqid": MAX_REQID}) == '{"reqid":18446744073709551615}'
    assert decode(encode({"reqid": MAX_REQID}))["reqid"] == MAX_REQID


def test_encode_rejects_unknown_types() -> None:
    with pytest.raises(TypeError, match="cannot encode"):
        encode({"x": object()})


# --------------------------------------------------------------------------- redact


def test_redact_hides_token_at_any_depth_and_does_not_mutate() -> None:
    msg = {
        "event": "subscribe",
        "token": TOKEN,
        "subscription": {"name": "ownTrades", "token": TOKEN},
        "batch": [{"orders": [{"token": TOKEN, "api_key": "K", "secret": "S"}]}],
        "api_secret": "AS",
    }
    out = redact(msg)
    assert TOKEN not in json.dumps(out)
    for value in ("K", "S", "AS"):
        assert f'"{value}"' not in json.dumps(out)
    assert out["subscription"] == {"name": "ownTrades", "token": "<redacted>"}
    assert out["batch"][0]["orders"][0]["token"] == "<redacted>"
    assert out["event"] == "subscribe"
    # The original is untouched.
    assert msg["subscription"]["token"] == TOKEN
    assert msg["batch"][0]["orders"][0]["token"] == TOKEN


def test_redact_of_a_request_message_hides_its_token() -> None:
    p = KrakenProtocol()
    req = p.subscribe(OWN_TRADES, token=TOKEN)
    assert TOKEN in p.frame(req)  # the wire needs it...
    assert TOKEN not in json.dumps(redact(req.message))  # ...the log does not


# --------------------------------------------------------------------------- reqids


def test_reqids_are_assigned_in_order_and_skip_pending_ones() -> None:
    p = KrakenProtocol()
    user = p.ping(2)
    assert [p.ping().reqid, p.ping().reqid] == [1, 3]
    assert user.reqid == 2
    assert [r.reqid for r in p.pending()] == [2, 1, 3]


def test_user_reqid_zero_is_kept_and_matches_its_reply() -> None:
    p = KrakenProtocol()
    req = sent(p, p.ping(0))
    assert req.message == {"event": "ping", "reqid": 0}
    assert p.frame(req) == '{"event":"ping","reqid":0}'
    p.receive('{"event":"pong","reqid":0}')
    assert req.done and req.result() == [{"event": "pong", "reqid": 0}]
    assert p.stats.unmatched_replies == 0


def test_max_user_reqid_is_accepted() -> None:
    p = KrakenProtocol()
    req = sent(p, p.ping(MAX_USER_REQID))
    p.receive(f'{{"event":"pong","reqid":{MAX_USER_REQID}}}')
    assert req.done and req.error is None


def test_internal_requests_never_take_a_user_reqid() -> None:
    # Regression (12.6): the watchdog's ping held reqid 1 while the server
    # stalled, so cancel_all(reqid=1) raised "already pending" with nothing sent.
    p = KrakenProtocol()
    ping = sent(p, p.liveness_ping())
    assert ping.reqid >= INTERNAL_REQID_BASE and ping.internal
    user = p.ping(1)
    assert user.reqid == 1
    assert p.ping().reqid == 2  # auto-assigned user reqids stay in the user space
    with pytest.raises(ValueError, match="library"):
        p.ping(INTERNAL_REQID_BASE)


def test_duplicate_pending_reqid_is_rejected_without_side_effects() -> None:
    p = KrakenProtocol()
    p.ping(7)
    with pytest.raises(ValueError, match="already pending"):
        p.ping(7)
    with pytest.raises(ValueError, match="already pending"):
        p.subscribe(TICKER, "XBT/USD", 7)
    with pytest.raises(ValueError, match="already pending"):
        p.order({"event": "cancelAll", "token": TOKEN}, 1, reqid=7)
    # The rejected subscribe left nothing in the registry.
    assert len(p.subscriptions) == 0
    assert len(p.pending()) == 1


def test_reqid_is_free_again_once_settled() -> None:
    p = KrakenProtocol()
    req = sent(p, p.ping(7))
    p.receive('{"event":"pong","reqid":7}')
    assert req.done
    assert p.ping(7).reqid == 7


@pytest.mark.parametrize("bad", [True, False, 1.0, "1", b"1"])
def test_reqid_of_wrong_type_is_rejected(bad: Any) -> None:
    p = KrakenProtocol()
    with pytest.raises(TypeError):
        p.ping(bad)


@pytest.mark.parametrize("bad", [-1, MAX_USER_REQID + 1, MAX_REQID, MAX_REQID + 1, 2**70])
def test_reqid_out_of_range_is_rejected(bad: int) -> None:
    p = KrakenProtocol()
    with pytest.raises(ValueError, match="between 0 and 2\\*\\*64-2\\*\\*32-1"):
        p.ping(bad)
    with pytest.raises(ValueError):
        p.subscribe(TICKER, "XBT/USD", bad)
    assert len(p.subscriptions) == 0


# --------------------------------------------------------------------------- pairs


def test_normalise_pairs() -> None:
    assert normalise_pairs("XBT/USD") == ["XBT/USD"]
    assert normalise_pairs(("XBT/USD", "ETH/USD")) == ["XBT/USD", "ETH/USD"]
    assert normalise_pairs(p for p in ["A/B"]) == ["A/B"]
    assert normalise_pairs(None) is None


def test_normalise_pairs_rejects_empty_and_bad() -> None:
    with pytest.raises(ValueError, match="at least one"):
        normalise_pairs([])
    with pytest.raises(TypeError):
        normalise_pairs(["XBT/USD", 5])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        normalise_pairs([""])
    with pytest.raises(TypeError):
        normalise_pairs("")
    with pytest.raises(ValueError, match="twice"):
        normalise_pairs(["XBT/USD", "ETH/USD", "XBT/USD"])


def test_subscribe_bare_string_pair_becomes_a_list_on_the_wire() -> None:
    p = KrakenProtocol()
    req = p.subscribe(BOOK, "XBT/USD")
    assert json.loads(p.frame(req)) == {
        "event": "subscribe",
        "reqid": req.reqid,
        "subscription": {"name": "book", "depth": 10},
        "pair": ["XBT/USD"],
    }
    assert req.expected == 1
    assert req.parts == ["XBT/USD"]


@pytest.mark.parametrize(
    ("pair", "exc"), [([], ValueError), (["A/B", "A/B"], ValueError), ([3], TypeError)]
)
def test_bad_pairs_leave_no_trace(pair: Any, exc: type[Exception]) -> None:
    p = KrakenProtocol()
    with pytest.raises(exc):
        p.subscribe(TICKER, pair)
    assert len(p.subscriptions) == 0 and p.pending() == []


def test_public_channel_needs_pairs() -> None:
    p = KrakenProtocol()
    with pytest.raises(ValueError, match="needs pair"):
        p.subscribe(TICKER)


@pytest.mark.parametrize("bad", [{}, {"name": ""}, {"name": 3}])
def test_subscription_needs_a_name(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="name"):
        KrakenProtocol().subscribe(bad, "XBT/USD")


def test_subscription_must_be_a_mapping_and_depth_an_int() -> None:
    p = KrakenProtocol()
    with pytest.raises(TypeError):
        p.subscribe("ticker", "XBT/USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="depth"):
        p.subscribe({"name": "book", "depth": "10"}, "XBT/USD")
    with pytest.raises(TypeError, match="interval"):
        p.subscribe({"name": "ohlc", "interval": True}, "XBT/USD")


# --------------------------------------------------------------------------- private channels


def test_private_channel_needs_a_token() -> None:
    p = KrakenProtocol()
    with pytest.raises(ValueError, match="token"):
        p.subscribe(OWN_TRADES)
    with pytest.raises(ValueError, match="token"):
        p.subscribe(OWN_TRADES, token="")
    assert len(p.subscriptions) == 0 and p.pending() == []


def test_private_channel_takes_no_pair() -> None:
    p = KrakenProtocol()
    with pytest.raises(ValueError, match="private"):
        p.subscribe(OWN_TRADES, "XBT/USD", token=TOKEN)


def test_private_subscribe_message_and_token_sources() -> None:
    p = KrakenProtocol()
    req = p.subscribe(OWN_TRADES, token=TOKEN)
    msg = json.loads(p.frame(req))
    assert msg == {
        "event": "subscribe",
        "reqid": req.reqid,
        "subscription": {"name": "ownTrades", "token": TOKEN},
    }
    assert req.parts == [None] and req.expected == 1
    # A token in the subscription itself is used when none is passed...
    req2 = p.subscribe({"name": "openOrders", "token": "T2"})
    assert json.loads(p.frame(req2))["subscription"]["token"] == "T2"
    # ...but the registry never stores it.
    for entry in p.subscriptions.entries():
        assert "token" not in entry.subscription


def test_private_subscribe_settles_with_one_reply_and_goes_live() -> None:
    p = KrakenProtocol()
    req = sent(p, p.subscribe(OWN_TRADES, token=TOKEN))
    p.receive(status(req, channelName="ownTrades", subscription={"name": "ownTrades"}))
    assert req.done and req.error is None
    assert live_pairs(p) == {("ownTrades", None)}


def test_pending_request_repr_never_shows_the_token() -> None:
    p = KrakenProtocol()
    req = p.subscribe(OWN_TRADES, token=TOKEN)
    order = p.order({"event": "cancelAll", "token": TOKEN}, 1)
    for r in (req, order):
        assert TOKEN not in repr(r)
        assert TOKEN not in str(r)
        assert f"reqid={r.reqid}" in repr(r)
    sent(p, req)
    assert TOKEN not in repr(req) and "sent" in repr(req)


# --------------------------------------------------------------------------- replies


def test_ping_pong() -> None:
    p = KrakenProtocol()
    req = sent(p, p.ping())
    assert req.state is RequestState.SENT and not req.done
    out = p.receive(f'{{"event":"pong","reqid":{req.reqid}}}')
    assert out == {"event": "pong", "reqid": req.reqid}
    assert req.done and req.result() == [out]
    assert p.pending() == []
    assert p.stats.requests_sent == 1


def test_multi_pair_subscribe_settles_after_n_replies() -> None:
    p = KrakenProtocol()
    pairs = ["XBT/USD", "XBT/EUR", "ETH/USD"]
    req = sent(p, p.subscribe(BOOK, pairs))
    assert req.expected == 3
    for i, pair in enumerate(pairs):
        assert not req.done, f"settled after {i} of 3 replies"
        p.receive(status(req, pair, channelName="book-10"))
    assert req.done and req.error is None
    assert [r["pair"] for r in req.result()] == pairs
    assert live_pairs(p) == {("book", pair) for pair in pairs}
    assert p.stats.unmatched_replies == 0


def test_pairs_are_live_as_soon_as_their_own_reply_arrives() -> None:
    p = KrakenProtocol()
    req = sent(p, p.subscribe(TICKER, ["XBT/USD", "XBT/EUR"]))
    p.receive(status(req, "XBT/USD"))
    assert live_pairs(p) == {("ticker", "XBT/USD")}
    assert not req.done


def test_partly_rejected_subscribe_raises_with_all_replies() -> None:
    p = KrakenProtocol()
    req = sent(p, p.subscribe(TICKER, ["XBT/USD", "XBT/EUR", "NOPE/USD"]))
    p.receive(status(req, "XBT/USD"))
    p.receive(status(req, "NOPE/USD", "error", errorMessage="Currency pair not supported"))
    assert not req.done
    p.receive(status(req, "XBT/EUR"))
    assert req.done
    with pytest.raises(KrakenError) as info:
        req.result()
    err = info.value
    assert err.error_message == "Currency pair not supported"
    assert [r["pair"] for r in err.replies] == ["XBT/USD", "NOPE/USD", "XBT/EUR"]
    assert live_pairs(p) == {("ticker", "XBT/USD"), ("ticker", "XBT/EUR")}
    assert p.subscriptions.entry(req.key, "NOPE/USD") is None  # type: ignore[arg-type]
    assert p.stats.kraken_errors == 1


def test_error_reply_without_pair_settles_every_pair() -> None:
    p = KrakenProtocol()
    req = sent(p, p.subscribe({"name": "book", "depth": 42}, ["XBT/USD", "XBT/EUR"]))
    p.receive(status(req, None, "error"))
    assert req.done
    with pytest.raises(KrakenError, match="depth not supported"):
        req.result()
    assert len(p.subscriptions) == 0
    assert p.pending() == []


def test_kraken_error_event_fails_its_request() -> None:
    p = KrakenProtocol()
    req = sent(p, p.subscribe(TICKER, ["XBT/USD", "XBT/EUR"]))
    out = p.receive(
        json.dumps({"event": "error", "errorMessage": "Malformed request", "reqid": req.reqid})
    )
    assert out is not None and out["event"] == "error"
    assert req.done
    with pytest.raises(KrakenError, match="Malformed request") as info:
        req.result()
    assert info.value.replies == [out]
    assert len(p.subscriptions) == 0  # nothing pending, nothing live
    assert p.stats.kraken_errors == 1
    assert p.stats.unmatched_replies == 0


def test_kraken_error_event_without_known_reqid_is_not_unmatched() -> None:
    p = KrakenProtocol()
    other = sent(p, p.ping())
    p.receive('{"event":"error","errorMessage":"Event(s) not found"}')
    p.receive('{"event":"error","errorMessage":"x","reqid":999}')
    assert not other.done
    assert p.stats.kraken_errors == 2
    assert p.stats.unmatched_replies == 0


def test_unknown_reqid_is_counted_as_unmatched() -> None:
    p = KrakenProtocol()
    req = sent(p, p.ping())
    out = p.receive('{"event":"pong","reqid":999}')
    assert out == {"event": "pong", "reqid": 999}  # still delivered
    p.receive('{"event":"pong"}')  # no reqid at all
    assert p.stats.unmatched_replies == 2
    assert not req.done


def test_reply_to_a_queued_request_is_unmatched() -> None:
    p = KrakenProtocol()
    req = p.ping()  # never marked sent
    p.receive(f'{{"event":"pong","reqid":{req.reqid}}}')
    assert not req.done
    assert p.stats.unmatched_replies == 1


def test_reply_of_the_wrong_event_is_unmatched_and_does_not_settle() -> None:
    p = KrakenProtocol()
    req = sent(p, p.ping())
    p.receive(status(req, "XBT/USD"))
    assert not req.done
    assert p.stats.unmatched_replies == 1
    p.receive(f'{{"event":"pong","reqid":{req.reqid}}}')
    assert req.done


def test_order_reply_matching_and_cancel_order_expects_one_reply_per_txid() -> None:
    p = KrakenProtocol()
    req = sent(p, p.order({"event": "cancelOrder", "token": TOKEN, "txid": ["A", "B"]}, 2))
    assert req.event in ORDER_REPLY_EVENTS and req.reply_event == "cancelOrderStatus"
    assert json.loads(p.frame(req))["reqid"] == req.reqid
    p.receive(status(req, event="cancelOrderStatus", st="ok"))
    assert not req.done
    p.receive(
        status(req, event="cancelOrderStatus", st="error", errorMessage="EOrder:Unknown order")
    )
    assert req.done
    with pytest.raises(KrakenError, match="EOrder:Unknown order") as info:
        req.result()
    assert len(info.value.replies) == 2


def test_order_rejects_non_order_events() -> None:
    with pytest.raises(ValueError, match="not an order event"):
        KrakenProtocol().order({"event": "subscribe"}, 1)


def test_order_does_not_mutate_the_callers_message() -> None:
    message = {"event": "cancelAll", "token": TOKEN}
    KrakenProtocol().order(message, 1)
    assert "reqid" not in message


# --------------------------------------------------------------------------- frame classification


def test_non_json_frame_is_counted_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    p = KrakenProtocol()
    with caplog.at_level(logging.WARNING, "kraky_anyio"):
        assert p.receive("this is not json {") is None
    assert p.stats.malformed_frames == 1
    assert p.stats.frames_received == 1
    assert "not JSON" in caplog.text


def test_binary_frame_is_counted_and_dropped() -> None:
    p = KrakenProtocol()
    assert p.receive(b'{"event":"heartbeat"}') is None
    assert p.stats.binary_frames == 1
    assert p.stats.malformed_frames == 0


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        "[1, 2]",
        '[1, {"a": 1}, 3]',  # 3 elements but no channelName
        '[0, {}, "ticker", 5]',  # pair not a string
        '[0, {}, {}, "ticker", "XBT/USD", 6]',  # 6 elements
        "42",
        '"hello"',
        "null",
        '{"status": "online"}',  # dict without event
        '{"event": 5}',  # event not a string
    ],
)
def test_malformed_kraken_shapes_are_counted_and_dropped(raw: str) -> None:
    p = KrakenProtocol()
    assert p.receive(raw) is None
    assert p.stats.malformed_frames == 1
    assert p.stats.unknown_events == 0
    assert p.stats.rate_limit_errors == 0


def test_deeply_nested_frame_is_malformed_not_a_crash() -> None:
    # Regression: json.loads raised RecursionError (not ValueError) out of
    # receive(), which would have killed the reader with an "internal error".
    p = KrakenProtocol()
    assert p.receive("[" * 5000 + "]" * 5000) is None
    assert p.stats.malformed_frames == 1


def test_unknown_event_is_counted_and_delivered() -> None:
    p = KrakenProtocol()
    out = p.receive('{"event":"somethingNew","x":1}')
    assert out == {"event": "somethingNew", "x": 1}
    assert p.stats.unknown_events == 1
    assert p.stats.malformed_frames == 0
    assert p.stats.unmatched_replies == 0


def test_rate_limit_error_shape() -> None:
    p = KrakenProtocol()
    out = p.receive('{"Error":"Exceeded msg rate"}')
    assert out == {"Error": "Exceeded msg rate"}
    assert p.stats.rate_limit_errors == 1
    assert p.stats.malformed_frames == 0
    assert p.stats.kraken_errors == 0


def test_heartbeat_and_system_status() -> None:
    p = KrakenProtocol()
    assert p.system_status is None
    raw = (
        '{"event":"systemStatus","status":"maintenance","version":"1.9.1",'
        '"connectionID":13688620010177543517}'
    )
    out = p.receive(raw)
    assert out is not None and out["connectionID"] == 13688620010177543517
    assert p.system_status == "maintenance"
    assert p.receive('{"event":"heartbeat"}') == {"event": "heartbeat"}
    assert p.stats.frames_received == 2
    assert p.stats.unknown_events == p.stats.unmatched_replies == p.stats.malformed_frames == 0


def test_channel_data_is_delivered_with_decimals() -> None:
    p = KrakenProtocol()
    out = p.receive('[42,{"a":[["5541.2",1.5,"1534614057.321597"]]},"book-10","XBT/USD"]')
    assert out == [
        42,
        {"a": [["5541.2", Decimal("1.5"), "1534614057.321597"]]},
        "book-10",
        "XBT/USD",
    ]
    five = p.receive('[1,{"a":[]},{"b":[],"c":"974947235"},"book-10","XBT/USD"]')
    assert five is not None and five[-1] == "XBT/USD"
    private = p.receive('[[{"O7AIWV":{"status":"open"}}],"openOrders",{"sequence":3}]')
    assert private is not None and private[1] == "openOrders"
    assert p.stats.malformed_frames == 0
    assert p.stats.frames_received == 3


@pytest.mark.parametrize(
    ("msg", "kind"),
    [
        ({"event": "heartbeat"}, FrameKind.EVENT),
        ({"event": "systemStatus"}, FrameKind.EVENT),
        ({"event": "error"}, FrameKind.EVENT),
        ({"event": "whatever"}, FrameKind.EVENT),
        ({"event": "pong"}, FrameKind.REPLY),
        ({"event": "subscriptionStatus"}, FrameKind.REPLY),
        ({"event": "addOrderStatus"}, FrameKind.REPLY),
        ({"event": "cancelAllOrdersAfterStatus"}, FrameKind.REPLY),
        ({"Error": "Exceeded msg rate"}, FrameKind.RATE_LIMIT),
        ([0, {}, "ticker", "XBT/USD"], FrameKind.PUBLIC),
        ([0, {}, {}, "book-10", "XBT/USD"], FrameKind.PUBLIC),
        ([[], "ownTrades", {"sequence": 1}], FrameKind.PRIVATE),
        ([0, {}, "XBT/USD"], FrameKind.MALFORMED),
        ({}, FrameKind.MALFORMED),
    ],
)
def test_classify(msg: Any, kind: FrameKind) -> None:
    assert KrakenProtocol.classify(msg) is kind


# --------------------------------------------------------------------------- connection_lost


def test_connection_lost_fails_sent_requests_with_reply_lost() -> None:
    p = KrakenProtocol()
    ping = sent(p, p.ping(), 1)
    queued = p.ping()
    other_gen = sent(p, p.ping(), 2)
    failed = p.connection_lost(1).settled
    assert failed == [ping]
    assert ping.done
    with pytest.raises(ReplyLostError) as info:
        ping.result()
    assert not isinstance(info.value, OrderOutcomeUnknownError)
    assert not queued.done and queued.state is RequestState.QUEUED
    assert not other_gen.done
    assert p.stats.replies_lost == 1
    assert set(p.pending()) == {queued, other_gen}


def test_connection_lost_makes_order_outcome_unknown() -> None:
    p = KrakenProtocol()
    order = sent(p, p.order({"event": "addOrder", "token": TOKEN, "pair": "XBT/USD"}, 1))
    p.connection_lost(1)
    with pytest.raises(OrderOutcomeUnknownError, match="outcome is unknown") as info:
        order.result()
    assert isinstance(info.value, ReplyLostError)
    assert TOKEN not in str(info.value)


def test_send_failed_of_an_order_is_outcome_unknown() -> None:
    p = KrakenProtocol()
    order = sent(p, p.order({"event": "cancelAll", "token": TOKEN}, 1))
    p.send_failed(order, OSError("broken pipe"))
    with pytest.raises(OrderOutcomeUnknownError):
        order.result()
    assert p.pending() == []


def test_connection_lost_settles_unsubscribe_successfully() -> None:
    p = KrakenProtocol()
    sub = sent(p, p.subscribe(TICKER, "XBT/USD"))
    p.receive(status(sub, "XBT/USD"))
    unsub = sent(p, p.unsubscribe(TICKER, "XBT/USD"))
    assert p.connection_lost(1).settled == [unsub]
    assert unsub.done and unsub.error is None and unsub.result() == []
    assert live_pairs(p) == set()
    assert p.stats.replies_lost == 0


def test_connection_lost_drops_pending_subscribes_and_keeps_live_ones() -> None:
    p = KrakenProtocol()
    live = sent(p, p.subscribe(TICKER, "XBT/USD"))
    p.receive(status(live, "XBT/USD"))
    half = sent(p, p.subscribe(BOOK, ["XBT/USD", "XBT/EUR"]))
    p.receive(status(half, "XBT/USD"))  # one of two replies
    failed = p.connection_lost(1).settled
    assert failed == [half]
    with pytest.raises(ReplyLostError):
        half.result()
    # The answered pair stays live; the unanswered one is gone.
    assert live_pairs(p) == {("ticker", "XBT/USD"), ("book", "XBT/USD")}
    assert p.subscriptions.entry(half.key, "XBT/EUR") is None  # type: ignore[arg-type]
    plan = {subscription_key(s): pairs for s, pairs in p.subscriptions.replay_plan()}
    assert plan == {subscription_key(TICKER): ["XBT/USD"], subscription_key(BOOK): ["XBT/USD"]}


def test_subscribe_queued_across_a_lost_socket_goes_live_when_accepted() -> None:
    # Regression: connection_lost() zeroed the pending count of every entry,
    # including those of subscribes still QUEUED for the next socket.
    p = KrakenProtocol()
    req = p.subscribe(TICKER, "XBT/USD")  # queued: the writer has not sent it yet
    p.connection_lost(1)  # socket 1 dies; the request waits for socket 2
    assert req.state is RequestState.QUEUED
    sent(p, req, 2)
    p.receive(status(req, "XBT/USD"))
    assert req.result()  # the caller is told it worked...
    assert live_pairs(p) == {("ticker", "XBT/USD")}  # ...so it must be replayed later


# --------------------------------------------------------------------------- replay


def _make_live(
    p: KrakenProtocol, sub: dict[str, Any], pairs: Any, token: str | None = None
) -> None:
    req = sent(p, p.subscribe(sub, pairs, token=token))
    for pair in req.parts:
        p.receive(status(req, pair))
    assert req.done and req.error is None


def test_replay_groups_pairs_per_subscription_and_uses_the_fresh_token() -> None:
    p = KrakenProtocol()
    _make_live(p, TICKER, ["XBT/USD", "ETH/USD"])
    _make_live(p, {"name": "book"}, "XBT/USD")
    _make_live(p, {"name": "book", "depth": 10}, "XBT/EUR")  # same subscription
    _make_live(p, {"name": "book", "depth": 25}, "XBT/USD")
    _make_live(p, OWN_TRADES, None, token="OLD-TOKEN")
    p.connection_lost(1)
    reqs = p.replay("NEW-TOKEN").requests
    msgs = [json.loads(p.frame(r)) for r in reqs]
    assert all(m["event"] == "subscribe" for m in msgs)
    by_sub = {json.dumps(m["subscription"], sort_keys=True): m.get("pair") for m in msgs}
    assert by_sub == {
        '{"name": "ticker"}': ["XBT/USD", "ETH/USD"],
        '{"depth": 10, "name": "book"}': ["XBT/USD", "XBT/EUR"],
        '{"depth": 25, "name": "book"}': ["XBT/USD"],
        '{"name": "ownTrades", "token": "NEW-TOKEN"}': None,
    }
    assert all("OLD-TOKEN" not in p.frame(r) for r in reqs)
    assert len({r.reqid for r in reqs}) == len(reqs)
    assert all(r.replay and r.internal for r in reqs)
    assert [r.expected for r in reqs] == [len(r.parts) for r in reqs]


def test_accepted_replay_keeps_entries_live() -> None:
    p = KrakenProtocol()
    _make_live(p, TICKER, ["XBT/USD", "ETH/USD"])
    p.connection_lost(1)
    (req,) = p.replay(None).requests
    sent(p, req, 2)
    verdict = p.receive_frames([status(req, "XBT/USD"), status(req, "ETH/USD")])
    assert req.done and req.error is None
    assert verdict.settled == [req]
    assert live_pairs(p) == {("ticker", "XBT/USD"), ("ticker", "ETH/USD")}
    assert not any(isinstance(m, SubscriptionLost) for m in verdict.messages)
    assert p.stats.unmatched_replies == 0


def test_rejected_replay_drops_the_entry_for_good_and_reports_it() -> None:
    p = KrakenProtocol()
    _make_live(p, TICKER, ["XBT/USD", "ETH/USD"])
    p.connection_lost(1)
    (req,) = p.replay(None).requests
    sent(p, req, 2)
    p.receive(status(req, "XBT/USD"))
    verdict = p.receive_frames(
        [status(req, "ETH/USD", "error", errorMessage="Currency pair not supported")]
    )
    assert req.done
    with pytest.raises(KrakenError):
        req.result()
    assert live_pairs(p) == {("ticker", "XBT/USD")}
    lost = SubscriptionLost({"name": "ticker"}, "ETH/USD", "Currency pair not supported")
    assert verdict.messages[0] == lost  # the notice comes before the reply itself
    assert verdict.settled == [req]
    assert p.stats.replay_failures == 1
    # Gone for good: the next replay does not try it again.
    p.connection_lost(2)
    (again,) = p.replay(None).requests
    assert again.parts == ["XBT/USD"]


def test_private_replay_without_token_is_a_loss() -> None:
    p = KrakenProtocol()
    _make_live(p, OWN_TRADES, None, token=TOKEN)
    _make_live(p, TICKER, "XBT/USD")
    p.connection_lost(1)
    plan = p.replay(None)
    assert [r.key for r in plan.requests] == [subscription_key(TICKER)]
    assert plan.notices == [SubscriptionLost({"name": "ownTrades"}, None, "no token for replay")]
    assert live_pairs(p) == {("ticker", "XBT/USD")}


def test_replay_lost_with_its_socket_stays_live_for_the_next_one() -> None:
    p = KrakenProtocol()
    _make_live(p, TICKER, "XBT/USD")
    p.connection_lost(1)
    (req,) = p.replay(None).requests
    sent(p, req, 2)
    verdict = p.connection_lost(2)
    with pytest.raises(ReplyLostError):
        req.result()
    assert p.stats.replies_lost == 0  # internal: not the user's loss
    assert live_pairs(p) == {("ticker", "XBT/USD")}
    assert verdict.messages == [] and verdict.settled == [req]


# --------------------------------------------------------------------------- abandon / timeout


def test_abandon_queued_subscribe_rolls_back_the_registry() -> None:
    p = KrakenProtocol()
    req = p.subscribe(TICKER, ["XBT/USD", "ETH/USD"])
    assert len(p.subscriptions) == 2
    p.caller_gone(req)
    assert req.state is RequestState.ABANDONED
    assert p.pending() == []
    assert len(p.subscriptions) == 0
    assert p.stats.requests_abandoned == 1
    # Its reqid is free again.
    assert p.ping(req.reqid).reqid == req.reqid


def test_abandon_queued_resubscribe_keeps_the_live_entry() -> None:
    p = KrakenProtocol()
    _make_live(p, TICKER, "XBT/USD")
    req = p.subscribe(TICKER, "XBT/USD")
    p.caller_gone(req)
    assert live_pairs(p) == {("ticker", "XBT/USD")}
    assert p.subscriptions.entry(req.key, "XBT/USD").pending == 0  # type: ignore[arg-type,union-attr]


def test_caller_gone_after_the_wire_orphans_the_request() -> None:
    p = KrakenProtocol()
    req = sent(p, p.subscribe(TICKER, "XBT/USD"))
    p.caller_gone(req)
    assert req.state is RequestState.ORPHANED
    assert req in p.pending()
    assert p.stats.requests_abandoned == 0
    p.receive(status(req, "XBT/USD"))
    assert live_pairs(p) == {("ticker", "XBT/USD")}


def test_late_reply_after_timeout_makes_subscription_live_quietly() -> None:
    p = KrakenProtocol()
    req = sent(p, p.subscribe(TICKER, "XBT/USD"))
    p.caller_gone(req, timed_out=True)
    assert p.stats.reply_timeouts == 1
    assert not req.done and live_pairs(p) == set()
    p.receive(status(req, "XBT/USD"))
    assert req.done
    assert live_pairs(p) == {("ticker", "XBT/USD")}
    assert p.stats.unmatched_replies == 0


def test_orphan_reply_lost_is_not_counted_as_the_users_loss() -> None:
    p = KrakenProtocol()
    req = sent(p, p.ping())
    p.caller_gone(req)
    p.connection_lost(1)
    assert p.stats.replies_lost == 0


def test_orphan_of_a_queued_request_does_nothing() -> None:
    p = KrakenProtocol()
    req = p.ping()
    p.caller_gone(req)
    assert not req.internal


# --------------------------------------------------------------------------- unsubscribe


def test_unsubscribe_leaves_the_replay_plan_at_once() -> None:
    p = KrakenProtocol()
    _make_live(p, TICKER, ["XBT/USD", "ETH/USD"])
    req = p.unsubscribe(TICKER, "XBT/USD")
    assert live_pairs(p) == {("ticker", "ETH/USD")}  # before anything was sent
    assert req.expected == 1 and json.loads(p.frame(req))["event"] == "unsubscribe"
    sent(p, req)
    p.receive(status(req, "XBT/USD", "unsubscribed"))
    assert req.done and req.error is None
    assert live_pairs(p) == {("ticker", "ETH/USD")}


def test_unsubscribe_while_subscribe_in_flight_is_not_undone_by_its_reply() -> None:
    p = KrakenProtocol()
    sub = sent(p, p.subscribe(TICKER, "XBT/USD"))
    unsub = sent(p, p.unsubscribe(TICKER, "XBT/USD"))
    assert p.subscriptions.replay_plan() == []
    p.receive(status(sub, "XBT/USD"))  # the late "subscribed"
    assert sub.done and sub.error is None
    assert p.subscriptions.replay_plan() == []
    assert live_pairs(p) == set()
    p.receive(status(unsub, "XBT/USD", "unsubscribed"))
    assert p.subscriptions.replay_plan() == []
    assert len(p.subscriptions) == 0


def test_unsubscribe_while_replay_in_flight_is_not_undone() -> None:
    p = KrakenProtocol()
    _make_live(p, TICKER, "XBT/USD")
    p.connection_lost(1)
    (replay,) = p.replay(None).requests
    sent(p, replay, 2)
    p.unsubscribe(TICKER, "XBT/USD")
    p.receive(status(replay, "XBT/USD"))
    assert p.subscriptions.replay_plan() == []
    verdict = p.receive_frames([status(replay, "XBT/USD", "error")])  # nothing to lose either
    assert not any(isinstance(m, SubscriptionLost) for m in verdict.messages)


def test_rejected_unsubscribe_raises_and_stays_out_of_the_plan() -> None:
    p = KrakenProtocol()
    _make_live(p, TICKER, "XBT/USD")
    req = sent(p, p.unsubscribe(TICKER, "XBT/USD"))
    p.receive(status(req, "XBT/USD", "error", errorMessage="Subscription Not Found"))
    with pytest.raises(KrakenError, match="Subscription Not Found"):
        req.result()
    assert p.subscriptions.replay_plan() == []


def test_unsubscribe_locally_and_bound_generation() -> None:
    p = KrakenProtocol()
    _make_live(p, TICKER, ["XBT/USD", "ETH/USD"])
    p.unsubscribe_locally(TICKER, "ETH/USD")
    assert live_pairs(p) == {("ticker", "XBT/USD")}
    assert p.pending() == []
    req = p.unsubscribe(TICKER, "XBT/USD", bound_generation=3)
    assert req.bound_generation == 3
    p.settle_locally(req)
    assert req.done and req.result() == []
    assert p.pending() == []


def test_resubscribe_rejected_as_already_subscribed_stays_live() -> None:
    p = KrakenProtocol()
    _make_live(p, TICKER, "XBT/USD")
    req = sent(p, p.subscribe(TICKER, "XBT/USD"))
    p.receive(status(req, "XBT/USD", "error", errorMessage="Already subscribed"))
    with pytest.raises(KrakenError):
        req.result()
    assert live_pairs(p) == {("ticker", "XBT/USD")}


def test_pairless_error_does_not_steal_a_concurrent_subscribes_pending_count() -> None:
    # Regression: an error reply without "pair" settled each pair twice (in
    # _on_subscription_status and again in _finish).
    p = KrakenProtocol()
    a = sent(p, p.subscribe(TICKER, "XBT/USD"))
    b = sent(p, p.subscribe(TICKER, "XBT/USD"))
    p.receive(status(a, None, "error", errorMessage="EGeneral:Internal error"))
    with pytest.raises(KrakenError):
        a.result()
    p.receive(status(b, "XBT/USD"))
    assert b.result()
    assert live_pairs(p) == {("ticker", "XBT/USD")}


def test_each_pair_is_settled_once_per_request() -> None:
    p = KrakenProtocol()
    a = sent(p, p.subscribe(TICKER, ["XBT/USD", "ETH/USD"]))
    b = sent(p, p.subscribe(TICKER, "XBT/USD"))
    p.receive(status(a, "XBT/USD", "error", errorMessage="EGeneral:Internal error"))
    p.receive(status(a, None, "error", errorMessage="EGeneral:Internal error"))  # settles the rest
    assert a.done
    assert p.subscriptions.entry(a.key, "ETH/USD") is None  # type: ignore[arg-type]
    p.receive(status(b, "XBT/USD"))
    assert b.result()
    assert live_pairs(p) == {("ticker", "XBT/USD")}
