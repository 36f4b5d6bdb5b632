"""KrakenV2Protocol without a loop or a socket: requests, responses, replay."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from kraky_anyio import ConnectionClosedError, KrakenError, ReplyLostError, SubscriptionLost
from kraky_anyio.requests import Request, RequestState
from kraky_anyio.seam import SendAction
from kraky_anyio.v1.builders import DEFERRED_TOKEN
from kraky_anyio.v2.messages import Response, StatusMessage, TickerMessage
from kraky_anyio.v2.protocol import INTERNAL_REQ_ID_BASE, MAX_REQ_ID, KrakenV2Protocol


def ack(req: Request, symbol: str | None, **result: Any) -> str:
    res: dict[str, Any] = {"channel": req.message["params"]["channel"], **result}
    if symbol is not None:
        res["symbol"] = symbol
    return json.dumps({"method": req.event, "req_id": req.reqid, "result": res, "success": True})


def error(req: Request, text: str, symbol: str | None = None) -> str:
    msg: dict[str, Any] = {"error": text, "method": req.event, "success": False}
    msg["req_id"] = req.reqid
    if symbol is not None:
        msg["symbol"] = symbol
    return json.dumps(msg)


def sent(p: KrakenV2Protocol, req: Request, generation: int = 1) -> dict[str, Any]:
    assert p.next_to_send(req, generation) is SendAction.SEND
    text = p.frame(req)
    p.sending(req, generation)
    frame: dict[str, Any] = json.loads(text)
    return frame


def test_subscribe_frame_and_one_response_per_symbol() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("ticker", ["BTC/USD", "ETH/USD"], params={"event_trigger": "bbo"})
    frame = sent(p, req)
    assert frame == {
        "method": "subscribe",
        "params": {"channel": "ticker", "symbol": ["BTC/USD", "ETH/USD"], "event_trigger": "bbo"},
        "req_id": req.reqid,
    }
    first = p.receive_frames([ack(req, "ETH/USD")])
    assert first.settled == [] and not req.done
    assert isinstance(first.messages[0], Response)  # consumers see responses too
    verdict = p.receive_frames([ack(req, "BTC/USD")])
    assert verdict.settled == [req]
    replies = req.result()
    assert [r.result["symbol"] for r in replies] == ["ETH/USD", "BTC/USD"]
    assert sorted(e.pair for e in p.subscriptions.live()) == ["BTC/USD", "ETH/USD"]


def test_one_rejected_symbol_raises_with_every_response_and_the_rest_stays_live() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("book", ["BTC/USD", "BTC/XYZ"], params={"depth": 25})
    sent(p, req)
    p.receive_frames(
        [
            ack(req, "BTC/USD", depth=25),
            error(req, "Currency pair not supported BTC/XYZ", "BTC/XYZ"),
        ]
    )
    with pytest.raises(KrakenError) as info:
        req.result()
    assert info.value.error_message == "Currency pair not supported BTC/XYZ"
    assert [r.success for r in info.value.replies] == [True, False]
    assert [(e.subscription, e.pair) for e in p.subscriptions.live()] == [
        ({"channel": "book", "depth": 25}, "BTC/USD")
    ]
    assert p.stats.kraken_errors == 1


def test_an_error_without_symbol_is_matched_by_req_id_and_answers_every_symbol() -> None:
    p = KrakenV2Protocol()
    other = p.subscribe("trade", ["BTC/USD"])
    req = p.subscribe("level3", ["BTC/USD", "ETH/USD"], params={"token": "tok"})
    sent(p, other)
    sent(p, req)
    verdict = p.receive_frames([error(req, "ESession:Invalid session")])
    assert verdict.settled == [req]
    with pytest.raises(KrakenError, match="ESession:Invalid session") as info:
        req.result()
    assert len(info.value.replies) == 1
    assert p.subscriptions.live() == []
    assert other.state is RequestState.SENT  # not touched by another req_id's error


def test_duplicate_and_unknown_responses_are_counted_not_applied() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("ticker", ["BTC/USD", "ETH/USD"])
    sent(p, req)
    p.receive_frames([ack(req, "BTC/USD"), ack(req, "BTC/USD"), ack(req, "SOL/USD")])
    assert p.stats.duplicate_replies == 2 and not req.done
    p.receive_frames(['{"method":"subscribe","req_id":999,"success":true}'])
    assert p.stats.unmatched_replies == 1


def test_channel_without_symbols_gets_one_response() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("instrument")
    assert sent(p, req)["params"] == {"channel": "instrument"}
    p.receive_frames([ack(req, None, snapshot=True)])
    assert req.done and len(req.result()) == 1
    assert [e.pair for e in p.subscriptions.live()] == [None]


def test_ping_is_settled_by_a_pong_without_success() -> None:
    p = KrakenV2Protocol()
    req = p.ping(7)
    assert sent(p, req) == {"method": "ping", "req_id": 7}
    p.receive_frames(['{"method":"pong","req_id":7,"time_in":"x","time_out":"y"}'])
    (pong,) = req.result()
    assert pong.method == "pong" and pong.success is None and pong.req_id == 7


def test_liveness_pings_use_the_librarys_own_req_ids() -> None:
    p = KrakenV2Protocol()
    ping = p.liveness_ping()
    assert ping.internal and INTERNAL_REQ_ID_BASE <= ping.reqid <= MAX_REQ_ID
    assert json.loads(p.frame(ping))["req_id"] == ping.reqid
    with pytest.raises(ValueError, match="the library's"):
        p.ping(INTERNAL_REQ_ID_BASE)


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda p: p.subscribe("tickers", ["BTC/USD"]), ValueError),
        (lambda p: p.subscribe("book", ["BTC/USD"], params={"depth": 7}), ValueError),
        (lambda p: p.subscribe("ohlc", ["BTC/USD"], params={"interval": 2}), ValueError),
        (lambda p: p.subscribe("ticker", {"BTC/USD"}), TypeError),
        (lambda p: p.subscribe("ticker", ["XBT/USD"]), ValueError),
        (lambda p: p.subscribe("ticker"), ValueError),
        (lambda p: p.subscribe("instrument", ["BTC/USD"]), ValueError),
        (lambda p: p.subscribe("ticker", ["BTC/USD"], params={"depth": 10}), ValueError),
        (lambda p: p.subscribe("ticker", ["BTC/USD"], params={"snapshot": 1}), TypeError),
        (lambda p: p.subscribe("level3", ["BTC/USD"]), ValueError),  # no token at all
        (lambda p: p.subscribe("heartbeat"), ValueError),
        (lambda p: p.raw("add_order", {"order_qty": 0.1}, None), TypeError),
        (lambda p: p.raw("subscribe", None, None), ValueError),
    ],
)
def test_bad_arguments_fail_before_anything_is_registered(call: Any, exc: type) -> None:
    p = KrakenV2Protocol()
    with pytest.raises(exc):
        call(p)
    assert len(p.requests) == 0 and len(p.subscriptions) == 0


def test_numbers_go_out_with_their_exact_digits() -> None:
    # The exponent trap: str(Decimal("0.00000050")) is "5.0E-7".
    p = KrakenV2Protocol()
    req = p.raw(
        "add_order", {"order_qty": Decimal("0.00000050"), "limit_price": Decimal("1E-8")}, 3
    )
    text = p.frame(req)
    assert '"order_qty":0.00000050' in text and '"limit_price":0.00000001' in text
    assert "E-" not in text


def test_the_connection_token_fills_private_channels_and_is_deferred_for_providers() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("executions", default_token=DEFERRED_TOKEN)
    assert p.next_to_send(req, 1) is SendAction.NEEDS_TOKEN
    p.supply_token(req, "fresh")
    assert p.next_to_send(req, 1) is SendAction.SEND
    assert json.loads(p.frame(req))["params"]["token"] == "fresh"
    assert "fresh" not in repr(req)


def test_unsubscribe_while_disconnected_settles_locally() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("ticker", ["BTC/USD", "ETH/USD"])
    sent(p, req)
    p.receive_frames([ack(req, "BTC/USD"), ack(req, "ETH/USD")])
    p.connection_lost(1)
    unsub = p.unsubscribe("ticker", ["ETH/USD"], connected=False)
    assert unsub.done and unsub.result() == []
    assert [e.pair for e in p.subscriptions.live()] == ["BTC/USD"]
    assert len(p.requests) == 0


def test_unsubscribe_while_a_subscribe_is_queued_follows_it() -> None:
    p = KrakenV2Protocol()
    sub = p.subscribe("ticker", ["BTC/USD"])
    unsub = p.unsubscribe("ticker", ["BTC/USD"], connected=False)
    assert not unsub.done
    assert p.next_to_send(sub, 1) is SendAction.SEND
    assert p.next_to_send(unsub, 1) is SendAction.SEND


def test_replay_restores_exactly_the_live_set_grouped_and_paced() -> None:
    p = KrakenV2Protocol()
    reqs = [
        p.subscribe("ticker", ["BTC/USD", "ETH/USD"]),
        p.subscribe("book", ["BTC/USD"], params={"depth": 100, "snapshot": False}),
        p.subscribe("ohlc", ["BTC/USD"], params={"interval": 5}),
        p.subscribe("trade", ["SOL/USD"]),
    ]
    for req in reqs:
        sent(p, req)
    for req in reqs:
        p.receive_frames([ack(req, s) for s in req.parts])
    p.receive_frames([])  # nothing: still all live
    pending = p.subscribe("trade", ["DOT/USD"])  # sent, never answered: not live
    sent(p, pending)
    p.unsubscribe("ticker", ["ETH/USD"], connected=True)
    p.connection_lost(1)
    with pytest.raises(ReplyLostError):
        pending.result()
    plan = p.replay(None)
    assert (plan.burst, plan.window) == (20, 1.0)
    frames = [json.loads(p.frame(r)) for r in plan.requests]
    assert [f["params"] for f in frames] == [
        {"channel": "ticker", "symbol": ["BTC/USD"]},
        {"channel": "book", "symbol": ["BTC/USD"], "depth": 100, "snapshot": False},
        {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 5},
        {"channel": "trade", "symbol": ["SOL/USD"]},
    ]
    assert all(r.internal and r.reqid >= INTERNAL_REQ_ID_BASE for r in plan.requests)
    assert plan.entries == 4


def test_a_rejected_replay_is_lost_with_a_notice() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("ticker", ["BTC/USD", "ETH/USD"])
    sent(p, req)
    p.receive_frames([ack(req, "BTC/USD"), ack(req, "ETH/USD")])
    p.connection_lost(1)
    (replay,) = p.replay(None).requests
    sent(p, replay, 2)
    verdict = p.receive_frames([ack(replay, "BTC/USD"), error(replay, "gone", "ETH/USD")])
    lost = [m for m in verdict.messages if isinstance(m, SubscriptionLost)]
    assert lost == [SubscriptionLost({"channel": "ticker"}, "ETH/USD", "gone")]
    assert [e.pair for e in p.subscriptions.live()] == ["BTC/USD"]
    assert p.stats.replay_failures == 1


def test_private_replay_without_a_token_is_lost_and_a_given_token_is_kept() -> None:
    p = KrakenV2Protocol()
    own = p.subscribe("balances", params={"token": "given"})
    l3 = p.subscribe("level3", ["BTC/USD"], default_token=DEFERRED_TOKEN)
    sent(p, own)
    p.supply_token(l3, "t1")
    sent(p, l3)
    p.receive_frames([ack(own, None), ack(l3, "BTC/USD")])
    p.connection_lost(1)
    assert p.replay_needs_token()
    plan = p.replay(None)
    assert [json.loads(p.frame(r))["params"] for r in plan.requests] == [
        {"channel": "balances", "token": "given"}
    ]
    assert [n.pair for n in plan.notices] == ["BTC/USD"]


def test_frames_are_typed_and_bad_ones_counted() -> None:
    p = KrakenV2Protocol()
    verdict = p.receive_frames(
        [
            '{"channel":"status","type":"update","data":[{"system":"maintenance"}]}',
            '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":0.00000001,'
            '"bid_qty":0.00000050,"ask":1,"ask_qty":1,"last":1,"volume":1,"vwap":1,"low":1,'
            '"high":1,"change":0,"change_pct":0}]}',
            '{"channel":"executions","type":"snapshot","data":[],"sequence":1}',
            '{"channel":"heartbeat"}',
            "not json",
            '{"channel":"ticker","type":"update","data":"oops"}',
            b"binary",
        ]
    )
    status, ticker, executions, heartbeat = verdict.messages
    assert isinstance(status, StatusMessage) and p.maintenance
    assert p.system_status == "maintenance"
    assert isinstance(ticker, TickerMessage)
    assert format(ticker.data[0].bid, "f") == "0.00000001"
    assert format(ticker.data[0].bid_qty, "f") == "0.00000050"
    assert executions.channel == "executions" and executions.sequence == 1
    assert heartbeat.channel == "heartbeat"
    s = p.stats
    assert (s.frames_received, s.malformed_frames, s.binary_frames) == (7, 2, 1)
    p.receive_frames(['{"channel":"status","type":"update","data":[{"system":"online"}]}'])
    assert not p.maintenance


def test_a_lost_socket_settles_requests_and_unsubscribes_meet_their_goal() -> None:
    p = KrakenV2Protocol()
    sub = p.subscribe("ticker", ["BTC/USD"])
    sent(p, sub)
    p.receive_frames([ack(sub, "BTC/USD")])
    unsub = p.unsubscribe("ticker", ["BTC/USD"])
    ping = p.ping()
    sent(p, unsub)
    sent(p, ping)
    verdict = p.connection_lost(1)
    assert set(verdict.settled) == {unsub, ping}
    assert unsub.result() == []
    with pytest.raises(ReplyLostError):
        ping.result()
    assert p.subscriptions.live() == []


def test_a_request_bound_to_a_gone_socket_settles_locally() -> None:
    p = KrakenV2Protocol()
    req = p.unsubscribe("ticker", ["BTC/USD"], bound_generation=1)
    assert p.next_to_send(req, 2) is SendAction.SETTLED
    assert req.done and req.result() == []


def test_a_subscribe_cancelled_before_the_wire_is_never_live() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("ticker", ["BTC/USD"])
    p.caller_gone(req)
    assert req.state is RequestState.ABANDONED
    assert p.next_to_send(req, 1) is SendAction.SKIP
    assert len(p.subscriptions) == 0 and p.stats.requests_abandoned == 1


def test_a_failed_write_says_whether_a_retry_is_safe() -> None:
    p = KrakenV2Protocol()
    unsent, lost = p.subscribe("ticker", ["BTC/USD"]), p.subscribe("trade", ["BTC/USD"])
    p.sending(unsent, 1)
    p.send_failed(unsent, OSError("reset"), written=False)
    with pytest.raises(ConnectionClosedError, match="safe to retry"):
        unsent.result()
    p.sending(lost, 1)
    p.send_failed(lost, OSError("reset"), written=True)
    with pytest.raises(ReplyLostError, match="reset"):
        lost.result()
    assert len(p.subscriptions) == 0 and len(p.requests) == 0


def test_an_error_naming_its_symbol_only_in_the_text_answers_that_symbol() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("ticker", ["BTC/USD", "BTC/XYZ"])
    sent(p, req)
    p.receive_frames([error(req, "Currency pair not supported BTC/XYZ")])
    assert not req.done
    p.receive_frames([ack(req, "BTC/USD")])
    with pytest.raises(KrakenError, match="BTC/XYZ"):
        req.result()
    assert [e.pair for e in p.subscriptions.live()] == ["BTC/USD"]
