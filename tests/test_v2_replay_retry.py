"""A replayed v2 subscribe that Kraken answers ``rate_limited`` is sent again
later, not lost: the sans-I/O protocol's verdicts, then end to end against the
fake exchange (both backends, virtual time)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from helpers import next_of
from test_v2_connection import SLOW, subscribes, ticker

from kraky_anyio import Connected, KrakenError, SubscriptionLost, v2
from kraky_anyio.requests import DEFERRED_TOKEN, Request, RequestState
from kraky_anyio.seam import SendAction
from kraky_anyio.testing.server import open_fake_kraken
from kraky_anyio.v2.messages import Response, TickerMessage
from kraky_anyio.v2.protocol import INTERNAL_REQ_ID_BASE, REPLAY_ATTEMPTS, KrakenV2Protocol

BOTH = ["BTC/USD", "ETH/USD"]


def ack(req: Request, symbol: str | None) -> str:
    res: dict[str, Any] = {"channel": req.message["params"]["channel"]}
    if symbol is not None:
        res["symbol"] = symbol
    return json.dumps({"method": req.event, "req_id": req.reqid, "result": res, "success": True})


def error(req: Request, text: str, symbol: str | None = None) -> str:
    msg: dict[str, Any] = {"error": text, "method": req.event, "success": False}
    msg["req_id"] = req.reqid
    if symbol is not None:
        msg["symbol"] = symbol
    return json.dumps(msg)


def sent(p: KrakenV2Protocol, req: Request, generation: int) -> dict[str, Any]:
    assert p.next_to_send(req, generation) is SendAction.SEND
    frame: dict[str, Any] = json.loads(p.frame(req))
    p.sending(req, generation)
    return frame


def replayed(p: KrakenV2Protocol, *subs: tuple[str, list[str]]) -> list[Request]:
    """``subs`` live on socket 1, that socket lost, their replay written on socket 2."""
    for channel, symbols in subs or (("ticker", BOTH),):
        req = p.subscribe(channel, symbols)
        sent(p, req, 1)
        p.receive_frames([ack(req, s) for s in symbols])
    p.connection_lost(1)
    plan = p.replay(None).requests
    for r in plan:
        sent(p, r, 2)
    return plan


def lost(messages: list[Any]) -> list[SubscriptionLost]:
    return [m for m in messages if isinstance(m, SubscriptionLost)]


def live(p: KrakenV2Protocol) -> list[str | None]:
    return sorted(e.pair or "" for e in p.subscriptions.live())


def test_a_rate_limited_replay_is_retried_with_growing_delays_then_lost() -> None:
    p = KrakenV2Protocol()
    (req,) = replayed(p)
    delays: list[float] = []
    for attempt in range(1, REPLAY_ATTEMPTS):
        verdict = p.receive_frames([error(req, "rate_limited")])
        assert lost(verdict.messages) == [] and live(p) == BOTH
        ((delay, retry),) = verdict.to_send_after
        delays.append(delay)
        assert req.done and retry.state is RequestState.QUEUED
        frame = sent(p, retry, 2)
        assert frame["params"] == {"channel": "ticker", "symbol": BOTH}
        assert retry.internal and retry.reqid >= INTERNAL_REQ_ID_BASE
        assert p.stats.replay_retries == 2 * attempt
        req = retry
    assert delays == [1.0, 2.0, 4.0, 8.0]
    verdict = p.receive_frames([error(req, "rate_limited")])
    assert verdict.to_send_after == []
    why = f"rate_limited {REPLAY_ATTEMPTS} times"
    assert lost(verdict.messages) == [SubscriptionLost({"channel": "ticker"}, s, why) for s in BOTH]
    assert live(p) == [] and p.stats.replay_failures == 2
    assert p.stats.rate_limit_errors == REPLAY_ATTEMPTS
    assert len(p.requests) == 0  # nothing left pending


def test_one_rate_limited_symbol_is_retried_alone_and_its_ack_restores_it() -> None:
    p = KrakenV2Protocol()
    (req,) = replayed(p)
    verdict = p.receive_frames([ack(req, "BTC/USD"), error(req, "rate_limited", "ETH/USD")])
    ((delay, retry),) = verdict.to_send_after
    assert delay == p.replay_window
    assert sent(p, retry, 2)["params"]["symbol"] == ["ETH/USD"]
    assert p.stats.replay_retries == 1
    verdict = p.receive_frames([ack(retry, "ETH/USD")])
    assert verdict.to_send_after == [] and lost(verdict.messages) == []
    assert live(p) == BOTH and retry.done and len(p.requests) == 0


def test_retries_of_one_batch_are_spread_by_the_replay_pacing() -> None:
    p = KrakenV2Protocol()
    p.replay_burst, p.replay_window = 1, 3.0
    plan = replayed(p, ("ticker", ["BTC/USD"]), ("trade", ["ETH/USD"]), ("book", ["SOL/USD"]))
    verdict = p.receive_frames([error(r, "rate_limited") for r in plan])
    assert [d for d, _ in verdict.to_send_after] == [3.0, 6.0, 9.0]


def test_another_replay_error_is_still_lost_at_once() -> None:
    p = KrakenV2Protocol()
    (req,) = replayed(p)
    verdict = p.receive_frames([error(req, "Currency pair not supported")])
    assert verdict.to_send_after == [] and len(lost(verdict.messages)) == 2
    assert p.stats.replay_retries == 0


def test_a_users_rate_limited_subscribe_still_fails_and_is_not_retried() -> None:
    p = KrakenV2Protocol()
    req = p.subscribe("ticker", BOTH)
    sent(p, req, 1)
    verdict = p.receive_frames([error(req, "rate_limited")])
    assert verdict.settled == [req] and verdict.to_send_after == []
    with pytest.raises(KrakenError, match="rate_limited"):
        req.result()
    assert live(p) == [] and p.stats.replay_retries == 0


def test_a_socket_lost_before_the_retry_settles_it_and_the_next_replay_restores() -> None:
    p = KrakenV2Protocol()
    (req,) = replayed(p)
    ((_, retry),) = p.receive_frames([error(req, "rate_limited")]).to_send_after
    p.connection_lost(2)
    assert retry.done and len(p.requests) == 0
    assert p.next_to_send(retry, 3) is SendAction.SKIP  # a stale one is never written
    (again,) = p.replay(None).requests
    assert sent(p, again, 3)["params"] == {"channel": "ticker", "symbol": BOTH}


def test_a_retry_leaves_out_what_the_user_unsubscribed_meanwhile() -> None:
    p = KrakenV2Protocol()
    (req,) = replayed(p)
    ((_, retry),) = p.receive_frames([error(req, "rate_limited")]).to_send_after
    p.unsubscribe("ticker", ["ETH/USD"])
    assert sent(p, retry, 2)["params"]["symbol"] == ["BTC/USD"]
    p.receive_frames([ack(retry, "BTC/USD")])
    assert retry.done and live(p) == ["BTC/USD"]
    # Everything dropped (and subscribed again by the user: a new entry): not sent.
    p = KrakenV2Protocol()
    (req,) = replayed(p, ("trade", ["SOL/USD"]))
    ((_, retry),) = p.receive_frames([error(req, "rate_limited")]).to_send_after
    p.unsubscribe("trade", ["SOL/USD"])
    p.subscribe("trade", ["SOL/USD"])
    assert p.next_to_send(retry, 4) is SendAction.SETTLED and retry.done


def test_a_private_retry_gets_the_sockets_token_from_the_writer() -> None:
    p = KrakenV2Protocol()
    own = p.subscribe("balances", default_token="tok-1")
    sent(p, own, 1)
    p.receive_frames([ack(own, None)])
    p.connection_lost(1)
    (req,) = p.replay("tok-2").requests
    sent(p, req, 2)
    ((_, retry),) = p.receive_frames([error(req, "rate_limited")]).to_send_after
    assert retry.message["params"]["token"] == DEFERRED_TOKEN
    assert p.next_to_send(retry, 2) is SendAction.NEEDS_TOKEN
    p.supply_token(retry, "tok-2")
    assert sent(p, retry, 2)["params"]["token"] == "tok-2"


# -- end to end, against the fake exchange -----------------------------------


@pytest.mark.anyio
async def test_a_rate_limited_replay_is_restored_after_the_delay() -> None:
    async with (
        open_fake_kraken() as server,
        v2.open_kraken(server.v2_url, reconnect_policy=SLOW) as conn,
        conn.messages() as stream,
    ):
        with anyio.fail_after(600):
            await conn.subscribe("ticker", BOTH)
            server.rate_limit(2, next_connection=True)  # the replay and the first retry
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Connected) and m.generation == 2)
            replay_at = anyio.current_time()
            await server.wait_for_subscription("ticker", "ETH/USD", api="v2")
            waited = anyio.current_time() - replay_at
            assert await server.publish_v2("ticker", "ETH/USD", [ticker("ETH/USD", "5", "1")])
            msg = await next_of(stream, lambda m: isinstance(m, TickerMessage))
            assert msg.data[0].symbol == "ETH/USD"
        assert waited >= 1.0 + 2.0 - 1e-6  # retry 1 after 1 s, retry 2 after 2 s more
        assert server.sessions[0].session.subscriptions == {
            ("ticker", "BTC/USD"),
            ("ticker", "ETH/USD"),
        }
        assert len(subscribes(server, replay=True)) == 3
        assert conn.stats.replay_retries == 4 and conn.stats.rate_limit_errors == 2
        assert conn.stats.replay_failures == 0
        assert len(conn.live_subscriptions()) == 2


@pytest.mark.anyio
async def test_a_socket_lost_during_the_delay_sends_nothing_stale() -> None:
    async with (
        open_fake_kraken() as server,
        v2.open_kraken(server.v2_url, reconnect_policy=SLOW) as conn,
        conn.messages() as stream,
    ):
        conn.protocol.replay_window = 30.0
        with anyio.fail_after(600):
            await conn.subscribe("ticker", BOTH)
            server.rate_limit(1, next_connection=True)
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Response) and m.error == "rate_limited")
            await server.drop()  # before the retry's 30 s are over
            await next_of(stream, lambda m: isinstance(m, Connected) and m.generation == 3)
            await conn.wait_connected()
            await anyio.sleep(120)  # virtual: the cancelled retry's time comes and goes
            await conn.ping()
        assert conn.generation == 3
        (session,) = server.sessions
        assert session.session.subscriptions == {("ticker", "BTC/USD"), ("ticker", "ETH/USD")}
        # The replay on socket 2 (rate-limited) and on socket 3; no retry written.
        assert len(subscribes(server, replay=True)) == 2
        assert conn.stats.replay_retries == 2 and conn.stats.replay_failures == 0


@pytest.mark.anyio
async def test_the_fake_rate_limits_only_the_next_connection() -> None:
    async with open_fake_kraken() as server:
        with pytest.raises(ValueError, match="n must be >= 0"):
            server.rate_limit(-1, next_connection=True)
        server.rate_limit(1, next_connection=True)
        async with v2.open_kraken(server.v2_url) as conn:
            with anyio.fail_after(600):
                await conn.wait_connected()
                with pytest.raises(KrakenError, match="rate_limited"):
                    await conn.subscribe("trade", ["BTC/USD"])
                await conn.subscribe("trade", ["BTC/USD"])  # only the first frame
        assert conn.stats.rate_limit_errors == 1 and conn.stats.replay_retries == 0
