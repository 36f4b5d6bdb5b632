"""The private v2 channels: typed ``executions``/``balances``, their sequence
checks (gap or restart: a notice and a resubscribe), token refresh on replay,
and no token anywhere the user can see. Decoder and protocol tests need no
loop; the connection tests run on both backends, virtual time, against the
fake exchange's ``/v2`` path."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anyio
import pytest
from helpers import next_of

from kraky_anyio import (
    Connected,
    KrakenError,
    KrakyError,
    ReconnectPolicy,
    SequenceGap,
    SubscriptionLost,
    v2,
)
from kraky_anyio.fanout import MessageStream
from kraky_anyio.requests import DEFERRED_TOKEN, Request
from kraky_anyio.seam import SendAction
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.v2.messages import MessageError, Response, decode
from kraky_anyio.v2.private_messages import (
    Balance,
    BalancesMessage,
    Execution,
    ExecutionsMessage,
    Fee,
    Wallet,
)
from kraky_anyio.v2.protocol import INTERNAL_REQ_ID_BASE, KrakenV2Protocol

SLOW = ReconnectPolicy(immediate_retries=0, base_delay=1.0, max_delay=2.0)

# -- real-shaped frames (Kraken's field names and number forms) -----------------

PENDING = (
    '{"channel":"executions","type":"update","data":[{"order_id":"OK4GJX-KSTLS-7DZZO5",'
    '"order_userref":3,"symbol":"BTC/USD","order_qty":0.00500000,"cum_cost":0.0,'
    '"time_in_force":"GTC","exec_type":"pending_new","side":"sell","order_type":"limit",'
    '"limit_price_type":"static","limit_price":26500.0,"stop_price":0.0,'
    '"order_status":"pending_new","fee_usd_equiv":0.0,"fee_ccy_pref":"fciq",'
    '"timestamp":"2023-09-22T10:33:05.709950Z"}],"sequence":8}'
)
FILL = (
    '{"channel":"executions","type":"update","data":[{"order_id":"OHYO3B-QS4WL-EIJJJS",'
    '"exec_id":"TWJD2P-7OU5U-4PKFQ6","exec_type":"trade","trade_id":365573,'
    '"symbol":"KAR/USD","side":"buy","last_qty":105.02014889,"last_price":0.121,'
    '"liquidity_ind":"t","cost":12.70744,"order_userref":0,"order_status":"filled",'
    '"order_type":"limit","fee_usd_equiv":0.0330394,"fees":[{"asset":"USD","qty":0.0330}],'
    '"cl_ord_id":"grid-7","cum_qty":1e-05,"avg_price":0.121,"amended":false,'
    '"triggers":{"reference":"last","price":-1.5,"price_type":"pct","actual_price":0.12,'
    '"status":"triggered"},"a_field_added_later":{"x":[1,2]},'
    '"timestamp":"2023-09-20T08:02:27.041373Z"}],"sequence":4}'
)
RATECOUNT = (
    '{"channel":"executions","type":"update","data":[{"symbol":"BTC/USD","ratecount":12}],'
    '"sequence":9}'
)
BALANCES_SNAPSHOT = (
    '{"channel":"balances","type":"snapshot","data":[{"asset":"BRICK","asset_class":"currency",'
    '"balance":439.9736,"wallets":[{"type":"spot","id":"main","balance":439.9736},'
    '{"type":"earn","id":"flex","balance":0.00000000}]}],"sequence":1}'
)
BALANCES_UPDATE = (
    '{"channel":"balances","type":"update","data":[{"ledger_id":"DATKX6-PEHL1-HZKND8",'
    '"ref_id":"LKAKN2-N0N4S-LIOMT7","timestamp":"2024-05-24T14:01:53.526524Z","type":"trade",'
    '"subtype":"","asset":"BTC","asset_class":"currency","category":"trade",'
    '"wallet_type":"spot","wallet_id":"main","amount":-0.00010000,"fee":0.00000000,'
    '"balance":1.23450000}],"sequence":2}'
)


def test_an_execution_report_is_typed_with_exact_numbers() -> None:
    msg = decode(FILL)
    assert isinstance(msg, ExecutionsMessage)
    assert (msg.channel, msg.type, msg.sequence) == ("executions", "update", 4)
    fill = msg.data[0]
    assert isinstance(fill, Execution)
    assert (fill.exec_type, fill.order_id, fill.cl_ord_id) == (
        "trade",
        "OHYO3B-QS4WL-EIJJJS",
        "grid-7",
    )
    assert format(fill.last_qty, "f") == "105.02014889"
    assert format(fill.cost, "f") == "12.70744"
    assert fill.fees == [Fee(asset="USD", qty=Decimal("0.0330"))]
    assert format(fill.fees[0].qty, "f") == "0.0330"
    assert fill.cum_qty == Decimal("0.00001")  # exponent form: exact in value
    assert fill.trade_id == 365573 and fill.order_userref == 0 and fill.amended is False
    assert fill.triggers is not None and fill.triggers.price == Decimal("-1.5")
    assert fill.triggers.reference == "last" and fill.triggers.status == "triggered"
    assert fill.ratecount is None and fill.limit_price is None  # absent: None
    pending = decode(PENDING)
    assert isinstance(pending, ExecutionsMessage) and pending.sequence == 8
    assert format(pending.data[0].order_qty, "f") == "0.00500000"
    assert pending.data[0].limit_price_type == "static" and pending.data[0].fees is None


def test_a_rate_counter_report_is_an_entry_with_ratecount_and_symbol() -> None:
    msg = decode(RATECOUNT)
    assert isinstance(msg, ExecutionsMessage)
    [entry] = msg.data
    assert (entry.ratecount, entry.symbol, entry.exec_type) == (12, "BTC/USD", None)


def test_balances_snapshot_and_ledger_update_entries() -> None:
    snap = decode(BALANCES_SNAPSHOT)
    assert isinstance(snap, BalancesMessage) and snap.type == "snapshot" and snap.sequence == 1
    [brick] = snap.data
    assert isinstance(brick, Balance)
    assert (brick.asset, brick.asset_class, brick.balance) == (
        "BRICK",
        "currency",
        Decimal("439.9736"),
    )
    assert brick.wallets == [
        Wallet(type="spot", id="main", balance=Decimal("439.9736")),
        Wallet(type="earn", id="flex", balance=Decimal("0E-8")),
    ]
    assert brick.ledger_id is None and brick.amount is None
    update = decode(BALANCES_UPDATE)
    assert isinstance(update, BalancesMessage) and update.sequence == 2
    [ledger] = update.data
    assert (ledger.ledger_id, ledger.ref_id, ledger.type, ledger.category) == (
        "DATKX6-PEHL1-HZKND8",
        "LKAKN2-N0N4S-LIOMT7",
        "trade",
        "trade",
    )
    assert (ledger.wallet_type, ledger.wallet_id, ledger.timestamp) == (
        "spot",
        "main",
        "2024-05-24T14:01:53.526524Z",
    )
    assert format(ledger.amount, "f") == "-0.00010000"
    assert format(ledger.fee, "f") == "0.00000000"
    assert format(ledger.balance, "f") == "1.23450000" and ledger.wallets is None


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        # No sequence: the gap it hides could not be seen.
        ('{"channel":"executions","type":"update","data":[{"exec_type":"new"}]}', "sequence"),
        ('{"channel":"balances","type":"update","data":[]}', "sequence"),
        ('{"channel":"executions","type":"update","data":[],"sequence":"7"}', "sequence"),
        # Neither an execution report nor a rate-counter report.
        (
            '{"channel":"executions","type":"update","data":[{"symbol":"BTC/USD"}],"sequence":1}',
            "exec_type or ratecount",
        ),
        # Mistyped known fields.
        (
            '{"channel":"executions","type":"update","sequence":1,'
            '"data":[{"exec_type":"trade","last_qty":"lots"}]}',
            "last_qty",
        ),
        (
            '{"channel":"executions","type":"update","sequence":1,'
            '"data":[{"exec_type":"trade","fees":[{"asset":"USD"}]}]}',
            "qty",
        ),
        ('{"channel":"balances","type":"update","sequence":1,"data":[{"asset":"BTC"}]}', "balance"),
        (
            '{"channel":"balances","type":"snapshot","sequence":1,'
            '"data":[{"asset":"BTC","balance":1,"wallets":[{"type":"spot","balance":1}]}]}',
            "id",
        ),
    ],
)
def test_malformed_private_frames_are_message_errors(frame: str, match: str) -> None:
    with pytest.raises(MessageError, match=match):
        decode(frame)


# -- the protocol, without a loop ------------------------------------------------


def executions(seq: int, kind: str = "update") -> str:
    entry = {"exec_type": "new", "order_id": f"O-{seq}", "order_qty": 1.0}
    return json.dumps({"channel": "executions", "type": kind, "data": [entry], "sequence": seq})


def balances(seq: int) -> str:
    entry = {"asset": "BTC", "balance": 1.0}
    return json.dumps({"channel": "balances", "type": "update", "data": [entry], "sequence": seq})


def write(p: KrakenV2Protocol, req: Request, generation: int = 1) -> dict[str, Any]:
    assert p.next_to_send(req, generation) is SendAction.SEND
    text = p.frame(req)
    p.sending(req, generation)
    frame: dict[str, Any] = json.loads(text)
    return frame


def answer(req: Request, *, error: str | None = None) -> str:
    if error is not None:
        return json.dumps(
            {"method": req.event, "req_id": req.reqid, "success": False, "error": error}
        )
    result = {"channel": req.message["params"]["channel"]}
    return json.dumps({"method": req.event, "req_id": req.reqid, "success": True, "result": result})


def subscribed(p: KrakenV2Protocol, channel: str = "executions", **params: Any) -> None:
    req = p.subscribe(channel, params={"token": "tok-given", **params})
    write(p, req)
    p.receive_frames([answer(req)])
    assert req.done and req.error is None


def gaps(messages: list[Any]) -> list[SequenceGap]:
    return [m for m in messages if isinstance(m, SequenceGap)]


def test_a_gap_gives_a_notice_first_and_an_unsubscribe_then_a_subscribe() -> None:
    p = KrakenV2Protocol()
    subscribed(p, snap_orders=True, ratecounter=True)
    assert p.receive_frames([executions(1, "snapshot"), executions(2)]).messages[0].sequence == 1
    verdict = p.receive_frames([executions(5)])
    gap, msg = verdict.messages
    assert gap == SequenceGap("executions", 3, 5, 2)
    assert isinstance(msg, ExecutionsMessage) and msg.sequence == 5
    assert p.stats.sequence_gaps == 1 and p.private_feeds.resyncing == {"executions"}
    unsub, sub = verdict.to_send
    assert [r.reqid >= INTERNAL_REQ_ID_BASE for r in (unsub, sub)] == [True, True]
    assert write(p, unsub)["params"] == {"channel": "executions", "token": "tok-given"}
    assert write(p, sub) == {
        "method": "subscribe",
        "params": {
            "channel": "executions",
            "snap_orders": True,
            "ratecounter": True,
            "token": "tok-given",
        },
        "req_id": sub.reqid,
    }
    # The old feed's tail, gaps included, is delivered but not judged.
    tail = p.receive_frames([executions(9), executions(7), answer(unsub)])
    assert gaps(tail.messages) == [] and tail.to_send == []
    # Settled: the fresh snapshot counts afresh, whatever its number.
    fresh = p.receive_frames([answer(sub), executions(1, "snapshot"), executions(2)])
    assert gaps(fresh.messages) == [] and p.private_feeds.resyncing == frozenset()
    assert [s.reqid for s in fresh.settled] == [sub.reqid]
    # The next gap resyncs again.
    again = p.receive_frames([executions(4)])
    assert gaps(again.messages) == [SequenceGap("executions", 3, 4, 1)]
    assert len(again.to_send) == 2 and p.stats.sequence_gaps == 2
    assert p.stats.kraken_errors == 0 and len(p.subscriptions.live()) == 1


def test_a_restart_and_each_channel_counted_on_its_own() -> None:
    p = KrakenV2Protocol()
    subscribed(p)
    subscribed(p, "balances")
    first = p.receive_frames([executions(1), balances(1), executions(2), balances(2), balances(3)])
    assert gaps(first.messages) == []
    restart = p.receive_frames([executions(1)])
    assert gaps(restart.messages) == [SequenceGap("executions", 3, 1, 0)]
    assert [r.message["params"]["channel"] for r in restart.to_send] == ["executions"] * 2
    assert gaps(p.receive_frames([balances(4)]).messages) == []  # balances in order
    assert p.private_feeds.resyncing == {"executions"}


@pytest.mark.parametrize("first", [1, 3])
def test_a_subscription_made_again_counts_afresh(first: int) -> None:
    # Kraken may go on counting (3) or start again (1): neither is a gap.
    p = KrakenV2Protocol()
    subscribed(p)
    assert gaps(p.receive_frames([executions(1), executions(2)]).messages) == []
    unsub = p.unsubscribe("executions", params={"token": "tok-given"})
    write(p, unsub)
    p.receive_frames([answer(unsub)])
    subscribed(p)
    verdict = p.receive_frames([executions(first, "snapshot"), executions(first + 1)])
    assert gaps(verdict.messages) == [] and verdict.to_send == []
    assert gaps(p.receive_frames([executions(first + 3)]).messages) == [
        SequenceGap("executions", first + 2, first + 3, 1)
    ]


def test_a_duplicate_is_delivered_and_logged_without_a_resync(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = KrakenV2Protocol()
    subscribed(p)
    verdict = p.receive_frames([executions(1), executions(2), executions(2), executions(3)])
    assert [m.sequence for m in verdict.messages] == [1, 2, 2, 3]
    assert verdict.to_send == [] and p.stats.sequence_gaps == 0
    assert "executions: sequence 2 received twice" in caplog.text


def test_a_malformed_private_frame_is_counted_logged_and_its_gap_resyncs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = KrakenV2Protocol()
    subscribed(p)
    bad = (
        '{"channel":"executions","type":"update","sequence":2,'
        '"data":[{"exec_type":"trade","cost":"x"}]}'
    )
    verdict = p.receive_frames([executions(1), bad, executions(3)])
    assert p.stats.malformed_frames == 1
    assert "malformed v2 frame ignored" in caplog.text and "cost" in caplog.text
    assert gaps(verdict.messages) == [SequenceGap("executions", 2, 3, 1)]
    assert len(verdict.to_send) == 2


def test_a_lost_socket_restarts_the_counts_and_drops_an_unwritten_resync() -> None:
    p = KrakenV2Protocol()
    subscribed(p)
    verdict = p.receive_frames([executions(1), executions(3)])
    unsub, sub = verdict.to_send
    write(p, unsub)  # the subscribe is still queued when the socket goes
    p.connection_lost(1)
    assert unsub.done and sub.done and sub.error is None
    assert p.next_to_send(sub, 2) is SendAction.SKIP  # never written on the next socket
    assert p.private_feeds.resyncing == frozenset()
    fresh = p.receive_frames([executions(1, "snapshot"), executions(2)])
    assert gaps(fresh.messages) == [] and fresh.to_send == []


def test_a_rejected_resubscribe_is_a_lost_subscription_and_ends_the_resync() -> None:
    p = KrakenV2Protocol()
    subscribed(p)
    unsub, sub = p.receive_frames([executions(1), executions(3)]).to_send
    write(p, unsub)
    write(p, sub)
    verdict = p.receive_frames([answer(unsub), answer(sub, error="ESession:Invalid session")])
    [lost] = [m for m in verdict.messages if isinstance(m, SubscriptionLost)]
    assert (
        lost.subscription["channel"] == "executions"
        and lost.error_message == "ESession:Invalid session"
    )
    assert p.subscriptions.live() == [] and p.stats.replay_failures == 1
    # The user subscribes again: counted afresh, no resync of a dead feed.
    subscribed(p)
    assert gaps(p.receive_frames([executions(7), executions(8)]).messages) == []
    assert p.private_feeds.resyncing == frozenset()


def test_a_resync_without_a_given_token_takes_the_sockets_token() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("balances", default_token=DEFERRED_TOKEN)
    assert p.next_to_send(req, 1) is SendAction.NEEDS_TOKEN
    p.supply_token(req, "tok-socket-1")
    write(p, req)
    p.receive_frames([answer(req)])
    unsub, sub = p.receive_frames([balances(1), balances(2), balances(4)]).to_send
    for r in (unsub, sub):
        assert p.next_to_send(r, 1) is SendAction.NEEDS_TOKEN
        p.supply_token(r, "tok-socket-1")
        assert write(p, r)["params"]["token"] == "tok-socket-1"
    assert "tok-socket-1" not in repr(p.private_feeds) + repr(unsub) + repr(sub)


def test_a_gap_on_a_channel_nobody_subscribed_is_reported_without_a_resync() -> None:
    p = KrakenV2Protocol()
    verdict = p.receive_frames([balances(1), balances(3), balances(4)])
    assert gaps(verdict.messages) == [SequenceGap("balances", 2, 3, 1)]
    assert verdict.to_send == [] and p.private_feeds.resyncing == frozenset()
    assert p.stats.sequence_gaps == 1


# -- against the fake exchange (both backends, virtual time) ---------------------


def entry(n: int) -> dict[str, Any]:
    return {
        "exec_type": "new",
        "order_id": f"O-{n}",
        "symbol": "BTC/USD",
        "order_qty": Decimal("0.01000000"),
        "limit_price": Decimal("25000.0"),
        "timestamp": "2026-12-01T18:00:00.000000Z",
    }


def raw_executions(seq: int) -> str:
    return json.dumps(
        {
            "channel": "executions",
            "type": "update",
            "data": [{"exec_type": "status", "order_id": "O-raw"}],
            "sequence": seq,
        }
    )


def internal(server: FakeKrakenServer, method: str, channel: str) -> list[dict[str, Any]]:
    return [
        f
        for f in server.all_received()
        if isinstance(f, dict)
        and f.get("method") == method
        and f.get("req_id", 0) >= INTERNAL_REQ_ID_BASE
        and f["params"].get("channel") == channel
    ]


def snapshots(channel: str, symbol: str | None, params: dict[str, Any]) -> list[Any]:
    """The fake's snapshot of a private channel: one open order / one balance."""
    if channel == "executions":
        return [[entry(0)]]
    if channel == "balances":
        return [[{"asset": "BTC", "asset_class": "currency", "balance": Decimal("1.50000000")}]]
    return []


async def sequences(stream: MessageStream, n: int) -> list[Any]:
    """The next ``n`` private messages and notices of ``stream``."""
    out: list[Any] = []
    while len(out) < n:
        out.append(
            await next_of(
                stream, lambda m: isinstance(m, (ExecutionsMessage, BalancesMessage, SequenceGap))
            )
        )
    return out


@pytest.mark.anyio
async def test_a_gap_on_the_wire_resubscribes_for_a_fresh_snapshot() -> None:
    async with (
        open_fake_kraken(valid_tokens={"tok-1"}, v2_snapshot_provider=snapshots) as server,
        v2.open_kraken(server.v2_url, token="tok-1") as conn,
        conn.messages(channel="executions") as stream,
    ):
        with anyio.fail_after(60):
            [ack] = await conn.subscribe("executions", snap_orders=True)
            assert ack.success and ack.result["channel"] == "executions"
            [snap] = await sequences(stream, 1)
            assert snap.type == "snapshot" and snap.sequence == 1
            await server.publish_v2("executions", None, [entry(1)])  # sequence 2
            # Lost in transit: 3..9; then the old feed's tail, itself gapped.
            await server.send_raw(raw_executions(10))
            await server.send_raw(raw_executions(20))
            got = await sequences(stream, 4)
            assert [type(m).__name__ for m in got] == [
                "ExecutionsMessage",
                "SequenceGap",
                "ExecutionsMessage",
                "ExecutionsMessage",
            ]
            assert got[1] == SequenceGap("executions", 3, 10, 7)
            assert [got[0].sequence, got[2].sequence, got[3].sequence] == [2, 10, 20]
            fresh = await next_of(
                stream, lambda m: isinstance(m, ExecutionsMessage) and m.type == "snapshot"
            )
            assert fresh.data[0].order_id == "O-0"
            await server.publish_v2("executions", None, [entry(2)])
            after = await sequences(stream, 1)
        assert after[0].data[0].order_id == "O-2" and after[0].sequence == fresh.sequence + 1
        assert conn.stats.sequence_gaps == 1 and conn.stats.kraken_errors == 0
        [unsub] = internal(server, "unsubscribe", "executions")
        [resub] = internal(server, "subscribe", "executions")
        assert unsub["params"] == {"channel": "executions", "token": "tok-1"}
        assert resub["params"] == {"channel": "executions", "snap_orders": True, "token": "tok-1"}
        assert server.sessions[0].session.subscriptions == {("executions", None)}
        assert conn.live_subscriptions() == [({"channel": "executions", "snap_orders": True}, None)]


@pytest.mark.anyio
async def test_every_new_socket_counts_from_one_without_a_resync() -> None:
    async with (
        open_fake_kraken() as server,
        v2.open_kraken(server.v2_url, token="tok", reconnect_policy=SLOW) as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(600):
            await conn.subscribe("balances")
            await conn.subscribe("executions")
            for n in range(3):
                await server.publish_v2("balances", None, [{"asset": "BTC", "balance": Decimal(n)}])
                await server.publish_v2("executions", None, [entry(n)])
            assert [m.sequence for m in await sequences(stream, 6)] == [1, 1, 2, 2, 3, 3]
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Connected) and m.generation == 2)
            await server.wait_for(lambda: len(internal(server, "subscribe", "balances")) == 1)
            await server.wait_for_subscription("executions", None, api="v2")
            await conn.wait_connected()
            await server.publish_v2("balances", None, [{"asset": "BTC", "balance": Decimal(9)}])
            await server.publish_v2("executions", None, [entry(9)])
            await server.publish_v2("executions", None, [entry(10)])
            assert [m.sequence for m in await sequences(stream, 3)] == [1, 1, 2]
        assert conn.stats.sequence_gaps == 0
        assert internal(server, "unsubscribe", "executions") == []


@pytest.mark.anyio
async def test_a_malformed_private_frame_is_counted_and_its_gap_resyncs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = (
        '{"channel":"executions","type":"update","sequence":2,'
        '"data":[{"exec_type":"trade","fees":7}]}'
    )
    async with (
        open_fake_kraken() as server,
        v2.open_kraken(server.v2_url, token="tok") as conn,
        conn.messages(channel="executions") as stream,
    ):
        with anyio.fail_after(60):
            await conn.subscribe("executions")
            for frame in (raw_executions(1), bad, raw_executions(3)):
                await server.send_raw(frame)
            got = await sequences(stream, 3)
            await server.wait_for(lambda: len(internal(server, "subscribe", "executions")) == 1)
            await conn.ping()
        assert [getattr(m, "sequence", None) for m in got] == [1, None, 3]
        assert got[1] == SequenceGap("executions", 2, 3, 1)
        stats = conn.stats
        assert stats.malformed_frames == 1 and stats.sequence_gaps == 1
        assert "malformed v2 frame ignored" in caplog.text
        assert stats.frames_received == (
            stats.binary_frames
            + stats.malformed_frames
            + stats.messages_published
            - stats.notices_published
        )


# -- tokens ------------------------------------------------------------------------


class Provider:
    """Hands out ``tok-1``, ``tok-2``, ... (``prefix`` + a count), one per call."""

    def __init__(self, prefix: str = "tok-") -> None:
        self.prefix = prefix
        self.issued: list[str] = []

    async def __call__(self) -> str:
        self.issued.append(f"{self.prefix}{len(self.issued) + 1}")
        return self.issued[-1]


def tokens_sent(frames: list[Any]) -> Iterator[tuple[str, str]]:
    """``(channel or method, token)`` of every frame carrying a token."""
    for f in frames:
        params = f.get("params") if isinstance(f, dict) else None
        if isinstance(params, dict) and "token" in params:
            yield params.get("channel", f.get("method")), params["token"]


@pytest.mark.anyio
async def test_the_replay_carries_a_fresh_token_never_the_revoked_one() -> None:
    provider = Provider()
    async with (
        open_fake_kraken(valid_tokens={"tok-1", "tok-2", "tok-3"}) as server,
        v2.open_kraken(server.v2_url, token=provider, reconnect_policy=SLOW) as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(600):
            await conn.subscribe("executions", snap_trades=True)
            await conn.subscribe("balances")
            before = sorted(tokens_sent(server.all_received()))
            assert before == [("balances", "tok-1"), ("executions", "tok-1")]
            server.revoke_token("tok-1")
            seen = len(server.all_received())
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Connected) and m.generation == 2)
            await conn.wait_connected()
            await server.wait_for_subscription("balances", None, api="v2")
            await server.wait_for_subscription("executions", None, api="v2")
            # A gap on the new socket: the resubscribe carries its token too.
            await server.send_raw(raw_executions(1))
            await server.send_raw(raw_executions(5))
            await server.wait_for(lambda: len(internal(server, "subscribe", "executions")) == 2)
            await conn.ping()
        assert provider.issued == ["tok-1", "tok-2"]
        # Replay of both channels, then the resync's unsubscribe + subscribe.
        after = sorted(tokens_sent(server.all_received()[seen:]))
        assert after == [("balances", "tok-2")] + [("executions", "tok-2")] * 3
        replayed = internal(server, "subscribe", "executions")[0]["params"]
        assert replayed == {"channel": "executions", "snap_trades": True, "token": "tok-2"}
        assert conn.stats.replay_failures == 0 and conn.stats.sequence_gaps == 1
        assert server.sessions[0].session.subscriptions == {
            ("executions", None),
            ("balances", None),
        }


# -- secrets ---------------------------------------------------------------------

EXPLICIT = "EXPLICIT-wstoken-5f4dcc3b5aa765d61d8327deb882cf99"


def exception_texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


def record_texts(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage(), str(record.msg), repr(record.args)]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


@pytest.mark.anyio
async def test_no_token_in_a_log_record_repr_or_error_over_a_private_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger at DEBUG
    provider = Provider("SOCKET-wstoken-c4ca4238a0b923820dcc509a6f75849b-")
    raised: list[BaseException] = []
    streamed: list[Any] = []
    reprs: list[str] = []

    async def expect(call: Any, error: type[BaseException] = KrakyError) -> Any:
        try:
            return await call
        except error as exc:
            raised.append(exc)
            return None

    async with (
        open_fake_kraken(v2_snapshot_provider=snapshots) as server,
        v2.open_kraken(server.v2_url, token=provider, reconnect_policy=SLOW) as conn,
        anyio.create_task_group() as tg,
    ):

        async def record() -> None:
            async for msg in conn.messages():
                streamed.append(msg)

        tg.start_soon(record)
        with anyio.fail_after(600):
            await conn.wait_connected()
            await conn.subscribe("executions", snap_orders=True, ratecounter=True)
            await conn.subscribe("balances", token=EXPLICIT)
            await server.publish_v2("executions", None, [entry(1)])
            await server.send_raw(RATECOUNT)  # sequence 9 after 2: a gap, a resync
            await server.wait_for(lambda: len(internal(server, "subscribe", "executions")) == 1)
            # Refusals: Kraken's, and ours before the wire.
            await expect(conn.subscribe("balances", token=EXPLICIT), KrakenError)
            await expect(conn.subscribe("balances", token=EXPLICIT, snapshot="yes"), TypeError)
            await expect(
                conn.request("add_order", {"token": EXPLICIT, "order_qty": 0.5}), TypeError
            )
            # A reconnect: the replay fetches the next socket token.
            await server.drop()
            await server.wait_for(lambda: len(internal(server, "subscribe", "executions")) == 2)
            await conn.wait_connected()
            reply = await expect(
                conn.request(
                    "add_order",
                    {
                        "order_type": "limit",
                        "side": "buy",
                        "symbol": "BTC/USD",
                        "order_qty": Decimal("0.01000000"),
                        "limit_price": Decimal("25000.0"),
                        "cl_ord_id": "grid-7",
                        "token": EXPLICIT,
                    },
                ),
                KrakenError,
            )
            if reply is not None:  # a fake exchange that trades answers it
                reprs.append(repr(reply))
            server.revoke_token(provider.issued[-1])
            await expect(conn.subscribe("executions", snap_trades=True), KrakenError)
            await conn.ping()
        reprs += [repr(conn), repr(conn.stats), repr(conn.live_subscriptions())]
        reprs += [repr(conn.protocol.private_feeds), repr(conn.options)]
        reprs += [repr(r) for r in conn.protocol.requests]
        tg.cancel_scope.cancel()
    reprs.append(repr(conn))
    secrets = [EXPLICIT, *provider.issued]

    # The session did what it says, so the search below means something.
    assert len(provider.issued) == 2
    wire = json.dumps(server.all_received(), default=str)
    assert all(secret in wire for secret in secrets)
    assert [type(e).__name__ for e in raised][:3] == ["KrakenError", "TypeError", "TypeError"]
    assert type(raised[-1]).__name__ == "KrakenError"  # the revoked token's refusal
    assert any(isinstance(m, SequenceGap) for m in streamed)
    assert any(isinstance(m, Response) for m in streamed)
    assert any(isinstance(m, ExecutionsMessage) and m.data[0].ratecount for m in streamed)
    assert any(r.levelno == logging.DEBUG and r.name == "kraky_anyio" for r in caplog.records)

    texts = [t for r in caplog.records for t in record_texts(r)]
    texts += [t for e in raised for t in exception_texts(e)]
    texts += reprs + [repr(m) for m in streamed]
    assert [t for t in texts if any(secret in t for secret in secrets)] == []
