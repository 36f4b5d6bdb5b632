"""Frames sent without a reqid (``send_reqid=False``, what kraky sent): the
frame, the matching of replies by channel and pair (in the order sent), the
replay set, and the refusal of a public subscribe without pairs. First the
protocol object alone, then over the wire on both backends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from helpers import drop_and_wait_reconnect

from kraky_anyio import KrakenError, ReplyLostError, ReplyTimeoutError, open_kraken
from kraky_anyio.requests import MAX_ORPHANS
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken
from kraky_anyio.v1.protocol import KrakenProtocol

OHLC = {"name": "ohlc", "interval": 30}
TRADE = {"name": "trade"}


def status(
    channel: str | None,
    pair: str | None,
    state: str = "subscribed",
    subscription: dict[str, Any] | None = None,
    **fields: Any,
) -> str:
    """A ``subscriptionStatus`` as Kraken sends it to a request without reqid."""
    msg: dict[str, Any] = {"event": "subscriptionStatus", "status": state, **fields}
    if channel is not None:
        msg["channelName"] = channel
    if pair is not None:
        msg["pair"] = pair
    if subscription is not None:
        msg["subscription"] = subscription
    return json.dumps(msg)


def sent(p: KrakenProtocol, req: Any) -> dict[str, Any]:
    """Write ``req`` on socket 1; the frame as the server would read it."""
    frame: dict[str, Any] = json.loads(p.frame(req))
    p.sending(req, 1)
    return frame


# -- the protocol object, no loop ----------------------------------------------------


def test_the_frame_is_krakys_exactly_and_replies_match_by_channel_and_pair() -> None:
    p = KrakenProtocol()
    req = p.subscribe(OHLC, ["XBT/USD", "ETH/USD"], send_reqid=False)
    # kraky's test_subscribe compares the server's frame with exactly this.
    assert sent(p, req) == {
        "event": "subscribe",
        "subscription": {"name": "ohlc", "interval": 30},
        "pair": ["XBT/USD", "ETH/USD"],
    }
    verdict = p.receive_frames([status("ohlc-30", "ETH/USD")])
    assert verdict.settled == [] and not req.done
    verdict = p.receive_frames([status("ohlc-30", "XBT/USD")])
    assert verdict.settled == [req] and req.error is None
    assert [r["pair"] for r in req.result()] == ["ETH/USD", "XBT/USD"]
    assert sorted(str(e.pair) for e in p.subscriptions.live()) == ["ETH/USD", "XBT/USD"]
    assert p.stats.unmatched_replies == 0


def test_replies_go_to_the_first_request_sent_that_they_fit() -> None:
    p = KrakenProtocol()
    first = p.subscribe(TRADE, ["XBT/USD"], send_reqid=False)
    second = p.subscribe(TRADE, ["XBT/USD"], send_reqid=False)
    other = p.subscribe(OHLC, ["XBT/USD"], send_reqid=False)
    numbered = p.subscribe(TRADE, ["XBT/USD"], reqid=7)
    for req in (first, second, other, numbered):
        sent(p, req)
    # A reply that carries a reqid is never taken for an unnumbered request.
    with_reqid = {**json.loads(status("trade", "XBT/USD")), "reqid": 7}
    assert p.receive_frames([json.dumps(with_reqid)]).settled == [numbered]
    assert not first.done
    verdict = p.receive_frames([status("trade", "XBT/USD")])
    assert verdict.settled == [first]
    verdict = p.receive_frames(
        [status(None, "XBT/USD", "error", TRADE, errorMessage="Already subscribed")]
    )
    assert verdict.settled == [second]
    with pytest.raises(KrakenError, match="Already subscribed"):
        second.result()
    assert not other.done
    assert p.receive_frames([status("ohlc-30", "XBT/USD")]).settled == [other]


def test_an_unsubscribe_takes_unsubscribed_not_subscribed() -> None:
    p = KrakenProtocol()
    sub = p.subscribe(TRADE, ["XBT/USD"], send_reqid=False)
    unsub = p.unsubscribe(TRADE, ["XBT/USD"], send_reqid=False)
    assert sent(p, sub)["event"] == "subscribe"
    assert sent(p, unsub) == {
        "event": "unsubscribe",
        "subscription": {"name": "trade"},
        "pair": ["XBT/USD"],
    }
    assert p.receive_frames([status("trade", "XBT/USD", "unsubscribed")]).settled == [unsub]
    assert not sub.done
    assert p.receive_frames([status("trade", "XBT/USD")]).settled == [sub]
    # The unsubscribe came after: the entry is not live, nothing to replay.
    assert p.subscriptions.live() == []


def test_a_private_channel_without_pair_is_matched_by_channel() -> None:
    p = KrakenProtocol()
    req = p.subscribe({"name": "ownTrades", "token": "T"}, send_reqid=False)
    frame = sent(p, req)
    assert "reqid" not in frame and frame["subscription"]["token"] == "T"
    assert p.receive_frames([status("openOrders", None)]).settled == []
    assert p.stats.unmatched_replies == 1
    assert p.receive_frames([status("ownTrades", None)]).settled == [req]
    assert [e.subscription["name"] for e in p.subscriptions.live()] == ["ownTrades"]


def test_a_reply_without_reqid_that_fits_nothing_is_counted() -> None:
    p = KrakenProtocol()
    req = p.subscribe(TRADE, ["XBT/USD"], send_reqid=False)
    sent(p, req)
    p.receive_frames([status("trade", "ETH/USD"), status("spread", "XBT/USD")])
    p.receive_frames([status("trade", "XBT/USD", "unsubscribed")])
    p.receive_frames([status("trade", "XBT/USD", "weird")])
    assert p.stats.unmatched_replies == 4 and not req.done


def test_pings_without_reqid_take_the_pongs_without_one_in_order() -> None:
    p = KrakenProtocol()
    first, second = p.ping(send_reqid=False), p.ping(send_reqid=False)
    numbered = p.ping(7)
    assert [sent(p, r) for r in (first, second)] == [{"event": "ping"}] * 2
    sent(p, numbered)
    pong = json.dumps({"event": "pong"})
    # A pong with a reqid is never taken for a ping sent without one.
    assert p.receive_frames([json.dumps({"event": "pong", "reqid": 7})]).settled == [numbered]
    assert p.receive_frames([pong]).settled == [first]
    assert p.receive_frames([pong]).settled == [second]
    assert p.receive_frames([pong]).settled == []  # no ping left to answer
    assert p.stats.unmatched_replies == 1
    with pytest.raises(ValueError, match="send_reqid=False"):
        p.ping(3, send_reqid=False)


def test_reqid_and_send_reqid_false_together_are_refused() -> None:
    p = KrakenProtocol()
    with pytest.raises(ValueError, match="send_reqid=False"):
        p.subscribe(TRADE, ["XBT/USD"], reqid=3, send_reqid=False)
    with pytest.raises(ValueError, match="send_reqid=False"):
        p.unsubscribe(TRADE, ["XBT/USD"], reqid=3, send_reqid=False)
    assert p.pending() == [] and len(p.subscriptions) == 0


@pytest.mark.parametrize("method", ["subscribe", "unsubscribe"])
def test_a_public_subscription_without_pairs_is_refused_naming_the_spelling(
    method: str,
) -> None:
    # kraky sent it; Kraken v1 answers "Pair(s) not found": no all-pairs form.
    p = KrakenProtocol()
    with pytest.raises(ValueError, match=r"needs pair=\[\.\.\.\].*pair=\['XBT/USD'\]"):
        getattr(p, method)({"name": "ticker"})
    assert p.pending() == [] and len(p.subscriptions) == 0


def test_a_lost_socket_fails_it_and_the_replay_carries_the_librarys_reqid() -> None:
    p = KrakenProtocol()
    live = p.subscribe(TRADE, ["XBT/USD"], send_reqid=False)
    sent(p, live)
    p.receive_frames([status("trade", "XBT/USD")])
    lost = p.subscribe(TRADE, ["ETH/USD"], send_reqid=False)
    sent(p, lost)
    assert p.connection_lost(1).settled == [lost]
    with pytest.raises(ReplyLostError, match=r"subscribe \(without reqid\): the connection"):
        lost.result()
    (replay,) = p.replay(None).requests
    frame = json.loads(p.frame(replay))
    assert frame["pair"] == ["XBT/USD"] and isinstance(frame["reqid"], int)
    # A late reply to the lost request, on the new socket, fits nothing.
    p.sending(replay, 2)
    p.receive_frames([status("trade", "ETH/USD")])
    assert p.stats.unmatched_replies == 1


def test_an_orphan_without_reqid_still_updates_the_registry_then_expires() -> None:
    p = KrakenProtocol()
    req = p.subscribe(TRADE, ["XBT/USD"], send_reqid=False)
    sent(p, req)
    p.caller_gone(req, timed_out=True)
    p.receive_frames([status("trade", "XBT/USD")])
    assert req.done and [e.pair for e in p.subscriptions.live()] == ["XBT/USD"]
    stale = p.subscribe(TRADE, ["ETH/USD"], send_reqid=False)
    sent(p, stale)
    p.caller_gone(stale, timed_out=True)
    for _ in range(MAX_ORPHANS):
        ping = p.ping()
        p.sending(ping, 1)
        p.caller_gone(ping, timed_out=True)
    assert stale.done  # expired: its reply is no longer matched
    p.receive_frames([status("trade", "ETH/USD")])
    assert p.stats.unmatched_replies == 1
    assert [e.pair for e in p.subscriptions.live()] == ["XBT/USD"]


# -- over the wire, asyncio and trio -----------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[FakeKrakenServer]:
    async with open_fake_kraken() as srv:
        yield srv


def unnumbered(server: FakeKrakenServer, event: str) -> list[dict[str, Any]]:
    return [
        f
        for f in server.all_received()
        if isinstance(f, dict) and f.get("event") == event and "reqid" not in f
    ]


@pytest.mark.anyio
async def test_over_the_wire_without_reqid_and_the_replay_after_a_drop(
    server: FakeKrakenServer,
) -> None:
    async with open_kraken(server.url) as conn:
        with anyio.fail_after(60):
            replies = await conn.subscribe(TRADE, ["XBT/USD", "ETH/USD"], send_reqid=False)
            assert sorted(r["pair"] for r in replies) == ["ETH/USD", "XBT/USD"]
            assert all("reqid" not in r for r in replies)
            (gone,) = await conn.unsubscribe(TRADE, ["ETH/USD"], send_reqid=False)
            assert gone["status"] == "unsubscribed"
            with pytest.raises(KrakenError, match="not supported"):
                await conn.subscribe(TRADE, ["NOPE/USD"], send_reqid=False)
            with pytest.raises(ValueError, match="needs pair"):
                await conn.subscribe({"name": "ticker"})
            await drop_and_wait_reconnect(server, conn)
            await server.wait_for_subscription("trade", "XBT/USD")
            # The library's own requests keep their reqids.
            assert (await conn.ping())["event"] == "pong"
    assert [f["pair"] for f in unnumbered(server, "subscribe")] == [
        ["XBT/USD", "ETH/USD"],
        ["NOPE/USD"],
    ]
    assert [f["pair"] for f in unnumbered(server, "unsubscribe")] == [["ETH/USD"]]
    replays = [f for f in server.all_received() if isinstance(f, dict) and "reqid" in f]
    assert [f["pair"] for f in replays if f["event"] == "subscribe"] == [["XBT/USD"]]
    assert not any(f.get("subscription") == {"name": "ticker"} for f in server.all_received())
    assert conn.stats.unmatched_replies == 0


@pytest.mark.anyio
async def test_a_timeout_without_reqid_names_it_so(server: FakeKrakenServer) -> None:
    """The library's internal key of an unnumbered request never reaches the user."""
    async with open_kraken(server.url, reply_timeout=2) as conn:
        with anyio.fail_after(60):
            await conn.wait_connected()
            server.stall(True)
            with pytest.raises(ReplyTimeoutError, match=r"subscribe \(without reqid\) within 2"):
                await conn.subscribe(TRADE, ["XBT/USD"], send_reqid=False)
