"""The v1 protocol object's verdicts, without an event loop: what the shell
is told for replies, duplicates, late replies, sequence gaps and writes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kraky_anyio.errors import ConnectionClosedError, OrderOutcomeUnknownError
from kraky_anyio.notices import SequenceGap
from kraky_anyio.requests import MAX_ORPHANS, RequestState
from kraky_anyio.seam import ProtocolCore, SendAction
from kraky_anyio.v1.builders import DEFERRED_TOKEN
from kraky_anyio.v1.protocol import KrakenProtocol

TICKER = {"name": "ticker"}


def reply(reqid: int, pair: str | None = None, status: str = "subscribed") -> str:
    msg: dict[str, Any] = {"event": "subscriptionStatus", "reqid": reqid, "status": status}
    if pair is not None:
        msg["pair"] = pair
    return json.dumps(msg)


def test_the_v1_protocol_satisfies_the_seam() -> None:
    protocol: ProtocolCore = KrakenProtocol()  # mypy checks the structure
    assert protocol.stats.frames_received == 0


def test_a_duplicate_reply_does_not_complete_a_multi_pair_subscribe() -> None:
    # Regression (11.8): replies were counted in total, so a repeated reply
    # for XBT/USD completed a 2-pair subscribe whose ETH/USD was never answered.
    p = KrakenProtocol()
    req = p.subscribe(TICKER, ["XBT/USD", "ETH/USD"])
    p.sending(req, 1)
    verdict = p.receive_frames([reply(req.reqid, "XBT/USD"), reply(req.reqid, "XBT/USD")])
    assert verdict.settled == [] and not req.done
    assert p.stats.duplicate_replies == 1
    assert [e.pair for e in p.subscriptions.live()] == ["XBT/USD"]
    verdict = p.receive_frames([reply(req.reqid, "ETH/USD")])
    assert verdict.settled == [req] and req.error is None
    assert len(req.result()) == 2


def test_a_reply_for_a_pair_not_asked_is_not_counted() -> None:
    p = KrakenProtocol()
    req = p.subscribe(TICKER, ["XBT/USD"])
    p.sending(req, 1)
    p.receive_frames([reply(req.reqid, "DOGE/USD")])
    assert not req.done and p.stats.duplicate_replies == 1


def test_a_late_reply_after_expiry_is_counted() -> None:
    # Regression (11.9): timed-out requests stayed pending forever; now at most
    # MAX_ORPHANS are kept and a reply to an expired one is a counted late reply.
    p = KrakenProtocol()
    pings = [p.ping() for _ in range(MAX_ORPHANS + 1)]
    for ping in pings:
        p.sending(ping, 1)
        p.caller_gone(ping, timed_out=True)
    assert p.stats.reply_timeouts == MAX_ORPHANS + 1
    assert len(p.pending()) == MAX_ORPHANS
    first = pings[0]
    p.receive_frames([json.dumps({"event": "pong", "reqid": first.reqid})])
    assert p.stats.late_replies == 1 and p.stats.unmatched_replies == 0
    p.receive_frames([json.dumps({"event": "pong", "reqid": pings[-1].reqid})])
    assert pings[-1].done and p.stats.unmatched_replies == 0


def test_an_expired_subscribe_is_not_left_pending_in_the_registry() -> None:
    p = KrakenProtocol()
    sub = p.subscribe(TICKER, ["XBT/USD"])
    p.sending(sub, 1)
    p.caller_gone(sub, timed_out=True)
    for _ in range(MAX_ORPHANS):
        ping = p.ping()
        p.sending(ping, 1)
        p.caller_gone(ping, timed_out=True)
    assert sub.state is RequestState.DONE
    assert len(p.subscriptions) == 0


def test_an_order_never_written_is_a_plain_retryable_error() -> None:
    # Regression (11.10): an order whose write failed before any byte left was
    # reported as OrderOutcomeUnknownError.
    p = KrakenProtocol()
    order = p.order({"event": "cancelAll", "token": "T"}, 1)
    p.sending(order, 1)
    p.send_failed(order, ConnectionClosedError("closed"), written=False)
    with pytest.raises(ConnectionClosedError, match="was not sent") as info:
        order.result()
    assert not isinstance(info.value, OrderOutcomeUnknownError)
    written = p.order({"event": "cancelAll", "token": "T"}, 1)
    p.sending(written, 1)
    p.send_failed(written, ConnectionClosedError("closed"), written=True)
    with pytest.raises(OrderOutcomeUnknownError):
        written.result()


def private(channel: str, seq: int) -> str:
    return json.dumps([[{"O1": {"status": "open"}}], channel, {"sequence": seq}])


def live_open_orders(p: KrakenProtocol, token: str | None) -> None:
    sub: dict[str, Any] = {"name": "openOrders"}
    if token is not None:
        sub["token"] = token
    req = p.subscribe(sub, default_token=DEFERRED_TOKEN)
    p.sending(req, 1)
    p.receive_frames([reply(req.reqid)])
    assert req.done and req.error is None


def test_a_sequence_gap_gives_a_notice_and_a_resubscribe() -> None:
    # Regression (12.6): sequence.py was not wired in; a gap went unnoticed.
    p = KrakenProtocol()
    live_open_orders(p, "SUB-TOKEN")
    v = p.receive_frames([private("openOrders", 1), private("openOrders", 2)])
    assert v.to_send == [] and len(v.messages) == 2
    v = p.receive_frames([private("openOrders", 5)])
    gap = [m for m in v.messages if isinstance(m, SequenceGap)]
    assert gap == [SequenceGap("openOrders", 3, 5, 2)]
    assert isinstance(v.messages[-1], list)  # the data itself still goes out
    assert [(r.event, r.internal) for r in v.to_send] == [
        ("unsubscribe", True),
        ("subscribe", True),
    ]
    # The token given in the subscription dict is remembered for it.
    assert all(json.loads(p.frame(r))["subscription"]["token"] == "SUB-TOKEN" for r in v.to_send)
    assert p.stats.sequence_gaps == 1
    # While resyncing, the old feed's numbers are not judged again...
    assert p.receive_frames([private("openOrders", 9)]).to_send == []
    for r in v.to_send:
        p.sending(r, 1)
    unsub, sub = v.to_send
    p.receive_frames([reply(unsub.reqid, status="unsubscribed"), reply(sub.reqid)])
    # ...and the fresh snapshot restarts the count without another resync.
    assert p.receive_frames([private("openOrders", 1)]).to_send == []
    assert [e.subscription["name"] for e in p.subscriptions.live()] == ["openOrders"]


def test_a_sequence_restart_also_resyncs_and_a_new_socket_starts_afresh() -> None:
    p = KrakenProtocol()
    live_open_orders(p, None)
    p.receive_frames([private("openOrders", 4)])
    v = p.receive_frames([private("openOrders", 2)])
    assert len(v.to_send) == 2
    assert p.next_to_send(v.to_send[0], 1) is SendAction.NEEDS_TOKEN  # the socket's token
    # Bound to its socket: after a reconnect the replay restores the channel.
    assert p.next_to_send(v.to_send[1], 2) is SendAction.SETTLED
    p.connection_lost(1)
    assert p.receive_frames([private("openOrders", 1)]).to_send == []


def test_unsubscribe_while_disconnected_settles_locally() -> None:
    p = KrakenProtocol()
    req = p.subscribe(TICKER, ["XBT/USD"])
    p.sending(req, 1)
    p.receive_frames([reply(req.reqid, "XBT/USD")])
    p.connection_lost(1)
    unsub = p.unsubscribe(TICKER, ["XBT/USD"], connected=False)
    assert unsub.done and unsub.result() == [] and p.pending() == []
    assert p.subscriptions.replay_plan() == []


def test_raw_request_is_matched_by_reqid() -> None:
    p = KrakenProtocol()
    req = p.raw({"event": "ping"})
    p.sending(req, 1)
    v = p.receive_frames([json.dumps({"event": "pong", "reqid": req.reqid})])
    assert v.settled == [req] and req.result() == [{"event": "pong", "reqid": req.reqid}]
    with pytest.raises(ValueError, match="subscribe"):
        p.raw({"event": "subscribe"})
    with pytest.raises(TypeError):
        p.raw("ping")  # type: ignore[arg-type]


def test_a_token_given_in_the_subscription_is_used_for_its_replay() -> None:
    # Issue 15 item 5: no provider, the token came inside the subscription dict.
    p = KrakenProtocol()
    live_open_orders(p, "SUB-TOKEN")
    p.connection_lost(1)
    plan = p.replay(None)
    assert plan.notices == []
    (req,) = plan.requests
    assert json.loads(p.frame(req))["subscription"]["token"] == "SUB-TOKEN"
    assert "SUB-TOKEN" not in repr(p.subscriptions.entries()) + repr(req)
    # A fresh token from the connection wins over the remembered one.
    p.connection_lost(2)
    (again,) = p.replay("FRESH").requests
    assert json.loads(p.frame(again))["subscription"]["token"] == "FRESH"
