"""Every message is accounted for: delivered, buffered, or dropped with its reason.

The identities are documented in kraky_anyio/stats.py; each test checks them
against what the consumers really hold (``len(stream)``), both backends on
virtual time.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from kraky_anyio import open_kraken
from kraky_anyio.errors import ConsumerOverflowError
from kraky_anyio.fanout import Fanout, MessageStream, make_filter
from kraky_anyio.notices import Connected
from kraky_anyio.stats import Stats
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

pytestmark = pytest.mark.anyio


def check(stats: Stats, *streams: MessageStream) -> None:
    """Both fan-out identities, with what ``streams`` hold right now."""
    assert stats.messages_published == stats.messages_unrouted + stats.messages_routed
    assert stats.consumer_copies == (
        stats.messages_delivered
        + stats.messages_dropped_by_overflow
        + stats.messages_dropped_unread
        + sum(len(s) for s in streams)
    )


def check_frames(stats: Stats) -> None:
    assert stats.frames_received == (
        stats.binary_frames
        + stats.malformed_frames
        + stats.messages_published
        - stats.notices_published
    )


async def test_published_with_no_consumer_is_unrouted_not_delivered() -> None:
    stats = Stats()
    fan = Fanout(stats)
    await fan.publish([1, 2, 3])
    fan.publish_nowait(Connected(1, "ws://x", 0))
    assert stats.messages_delivered == 0  # regression: was 3
    assert stats.messages_unrouted == 4
    assert stats.notices_published == 1
    check(stats)


async def test_fail_policy_accounts_for_what_the_failed_consumer_never_saw() -> None:
    stats = Stats()
    fan = Fanout(stats, buffer_size=3, overflow="fail")
    slow = fan.open()
    for start in range(0, 200, 10):
        await fan.publish(list(range(start, start + 10)))
    check(stats, slow)
    got = []
    with pytest.raises(ConsumerOverflowError):
        async for m in slow:
            got.append(m)
    assert got == [0, 1, 2]
    assert stats.messages_delivered == 3
    assert stats.messages_dropped_by_overflow == 7  # the rest of the overflowing batch
    assert stats.messages_unrouted == 190  # published after it failed: no consumer left
    check(stats, slow)
    assert stats.messages_published == 200


async def test_closed_consumer_counts_what_it_left_unread() -> None:
    stats = Stats()
    fan = Fanout(stats)
    async with fan.open() as closed:
        gone: MessageStream | None = fan.open()
        kept = fan.open()
        await fan.publish(["a", "b", "c"])
        assert await closed.__anext__() == "a"
    del gone
    gc.collect()
    assert stats.messages_dropped_unread == 2 + 3
    assert stats.messages_delivered == 1
    check(stats, kept)
    assert kept.receive_nowait() == ["a", "b", "c"]
    check(stats, kept)


async def test_failed_consumer_closed_before_draining_counts_the_rest_unread() -> None:
    stats = Stats()
    fan = Fanout(stats, buffer_size=2, overflow="fail")
    stream = fan.open()
    await fan.publish([1, 2, 3])
    await stream.aclose()
    assert (stats.messages_dropped_by_overflow, stats.messages_dropped_unread) == (1, 2)
    check(stats)


async def test_cancelled_blocked_publish_counts_the_unplaced_copies() -> None:
    stats = Stats()
    fan = Fanout(stats, buffer_size=2)
    first = fan.open()
    second = fan.open(buffer_size=10)
    with anyio.CancelScope() as scope:

        async def cancel_when_blocked() -> None:
            await anyio.wait_all_tasks_blocked()
            assert fan.blocked
            check(stats, first, second)
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when_blocked)
            await fan.publish([1, 2, 3, 4, 5])
    assert scope.cancelled_caught
    # first took 2 of 5; 3 never placed; second was never reached: 5 more.
    assert stats.messages_dropped_unread == 3 + 5
    check(stats, first, second)
    assert len(first) == 2 and len(second) == 0


async def test_close_while_blocked_counts_the_rest_unread() -> None:
    stats = Stats()
    fan = Fanout(stats, buffer_size=1)
    stream = fan.open()
    async with anyio.create_task_group() as tg:
        tg.start_soon(fan.publish, [1, 2, 3])
        await anyio.wait_all_tasks_blocked()
        fan.close()
    assert stats.messages_dropped_unread == 2
    check(stats, stream)
    assert [m async for m in stream] == [1]
    check(stats, stream)


async def test_several_filtered_consumers_route_an_item_once() -> None:
    stats = Stats()
    fan = Fanout(stats)
    books = fan.open(make_filter("book", None))
    xbt = fan.open(make_filter(None, "XBT/USD"))
    book = [1, {"a": []}, "book-10", "XBT/USD"]
    ticker = [2, {}, "ticker", "ETH/USD"]
    await fan.publish([book, ticker, {"event": "heartbeat"}])
    assert (stats.messages_routed, stats.messages_unrouted, stats.consumer_copies) == (1, 2, 2)
    check(stats, books, xbt)


# --------------------------------------------------------------------------- end to end


@pytest.fixture
async def server() -> AsyncIterator[FakeKrakenServer]:
    async with open_fake_kraken(heartbeat_interval=1000) as srv:
        yield srv


@pytest.mark.parametrize("overflow", ["block", "fail"])
async def test_every_frame_accounted_with_a_slow_consumer(
    server: FakeKrakenServer, overflow: str
) -> None:
    async with open_kraken(server.url, buffer_size=20, overflow=overflow) as conn:
        slow = conn.messages()
        idle = conn.messages(channel="ohlc")  # keeps notices only
        await conn.subscribe({"name": "ticker"}, ["XBT/USD"])
        await server.send_raw(b"\x00binary")
        await server.send_raw("not json")
        for n in range(300):
            await server.publish("ticker", "XBT/USD", {"c": [str(n), "1"]})
        got: list[Any] = []
        failed = None
        with anyio.fail_after(600):
            try:
                async for msg in slow:
                    got.append(msg)
                    if isinstance(msg, list) and msg[1]["c"][0] == "299":
                        break
                    await anyio.sleep(0.01)  # slower than the feed
            except ConsumerOverflowError as exc:
                failed = exc
        stats = conn.stats
        check_frames(stats)
        check(stats, slow, idle)
        if overflow == "block":
            assert failed is None
            assert stats.messages_dropped_by_overflow == stats.messages_unrouted == 0
        else:
            assert failed is not None and stats.messages_dropped_by_overflow == failed.dropped
            assert stats.messages_unrouted > 0  # after the failure, no consumer took them
            # The idle consumer kept notices only: the ticker data were not routed.
            assert stats.messages_routed < stats.messages_published
        assert stats.binary_frames == 1 and stats.malformed_frames == 1
    check_frames(stats)
