"""Tests for kraky_anyio.fanout: per-consumer buffers, filters and overflow.

Runs on asyncio and trio on virtual time (tests/conftest.py); synchronisation is by events and
``anyio.wait_all_tasks_blocked()``, never by sleeping.
"""

from __future__ import annotations

import gc
from typing import Any

import anyio
import pytest

from kraky_anyio.errors import ConsumerOverflowError
from kraky_anyio.fanout import Fanout, MessageStream, Overflow, make_filter
from kraky_anyio.notices import Connected, Disconnected
from kraky_anyio.stats import Stats

pytestmark = pytest.mark.anyio


def ticker(pair: str, n: int = 0) -> list[Any]:
    return [0, {"c": [str(n), "1"]}, "ticker", pair]


def book(pair: str, depth: int = 10, n: int = 0) -> list[Any]:
    return [1, {"a": [[str(n), "1", "0"]]}, f"book-{depth}", pair]


def book5(pair: str) -> list[Any]:
    return [1, {"a": []}, {"b": [], "c": "1"}, "book-10", pair]


def own_trades(seq: int) -> list[Any]:
    return [[{"T1": {}}], "ownTrades", {"sequence": seq}]


HEARTBEAT = {"event": "heartbeat"}
CONNECTED = Connected(1, "ws://x", 0)


async def drain(stream: MessageStream) -> list[Any]:
    return [m async for m in stream]


# --------------------------------------------------------------------------- delivery


async def test_every_consumer_gets_every_message_in_order() -> None:
    stats = Stats()
    fan = Fanout(stats)
    streams = [fan.open() for _ in range(3)]
    assert fan.consumers == 3
    batches = [[1, 2, 3], [4], [5, 6]]
    for batch in batches:
        await fan.publish(batch)
    assert [len(s) for s in streams] == [6, 6, 6]
    fan.close()
    for s in streams:
        assert await drain(s) == [1, 2, 3, 4, 5, 6]
    assert stats.messages_published == stats.messages_routed == 6
    assert stats.messages_delivered == stats.consumer_copies == 18  # one copy per consumer


async def test_consumer_sees_only_messages_after_it_opened() -> None:
    fan = Fanout(Stats())
    early = fan.open()
    await fan.publish(["a"])
    late = fan.open()
    await fan.publish(["b"])
    assert early.receive_nowait() == ["a", "b"]
    assert late.receive_nowait() == ["b"]


async def test_waiting_consumer_is_woken_by_publish() -> None:
    fan = Fanout(Stats())
    stream = fan.open()
    got: list[Any] = []

    async def consume() -> None:
        async for m in stream:
            got.append(m)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        await fan.publish(["x", "y"])
        await anyio.wait_all_tasks_blocked()
        assert got == ["x", "y"]
        fan.close()
    assert got == ["x", "y"]


async def test_cancelled_wait_loses_nothing() -> None:
    fan = Fanout(Stats())
    stream = fan.open()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await stream.__anext__()
    assert scope.cancelled_caught
    with anyio.move_on_after(0):  # a wait cancelled while parked
        await stream.__anext__()
    await fan.publish(["kept"])
    assert await stream.__anext__() == "kept"


async def test_receive_nowait_and_len() -> None:
    fan = Fanout(Stats())
    stream = fan.open()
    assert stream.receive_nowait() == []
    await fan.publish([1, 2])
    await fan.publish([3])
    assert len(stream) == 3
    assert stream.receive_nowait() == [1, 2, 3]
    assert len(stream) == 0
    assert stream.receive_nowait() == []


async def test_publish_nowait_ignores_the_limit_and_keeps_filters() -> None:
    fan = Fanout(Stats(), buffer_size=1)
    everything = fan.open()
    only_book = fan.open(make_filter("book", None))
    await fan.publish([ticker("XBT/USD")])
    fan.publish_nowait(CONNECTED)
    fan.publish_nowait(ticker("ETH/USD"))
    assert everything.receive_nowait() == [ticker("XBT/USD"), CONNECTED, ticker("ETH/USD")]
    assert only_book.receive_nowait() == [CONNECTED]


# --------------------------------------------------------------------------- filters


def test_no_filter_when_nothing_asked() -> None:
    assert make_filter(None, None) is None


def test_channel_family_and_exact_name() -> None:
    family = make_filter("book", None)
    exact = make_filter("book-10", None)
    assert family is not None and exact is not None
    assert family(book("XBT/USD", 10)) and family(book("XBT/USD", 25))
    assert family(book5("XBT/USD"))
    assert exact(book("XBT/USD", 10)) and not exact(book("XBT/USD", 25))
    assert not family(ticker("XBT/USD"))
    assert not family([0, {}, "bookish", "XBT/USD"])
    ohlc = make_filter("ohlc", None)
    assert ohlc is not None and ohlc([0, [], "ohlc-5", "XBT/USD"])


def test_channel_list_and_private_channels() -> None:
    keep = make_filter(["ticker", "ownTrades"], None)
    assert keep is not None
    assert keep(ticker("XBT/USD")) and keep(own_trades(1))
    assert not keep(book("XBT/USD"))


def test_pair_filter() -> None:
    keep = make_filter(None, ["XBT/USD", "ETH/USD"])
    assert keep is not None
    assert keep(ticker("XBT/USD")) and keep(book5("ETH/USD"))
    assert not keep(ticker("XBT/EUR"))
    assert not keep(own_trades(1))  # no pair
    one = make_filter(None, "XBT/USD")
    assert one is not None and one(book("XBT/USD")) and not one(book("XBT/USDT"))


def test_channel_and_pair_together() -> None:
    keep = make_filter("book", "XBT/USD")
    assert keep is not None
    assert keep(book("XBT/USD"))
    assert not keep(book("ETH/USD"))
    assert not keep(ticker("XBT/USD"))


def test_filters_keep_notices_and_drop_events() -> None:
    keep = make_filter("book", "XBT/USD")
    assert keep is not None
    assert keep(CONNECTED) and keep(Disconnected(1, "gone", True))
    assert not keep(HEARTBEAT)
    assert not keep({"event": "subscriptionStatus", "pair": "XBT/USD", "channelName": "book-10"})


async def test_filtered_consumer_through_the_fanout() -> None:
    stats = Stats()
    fan = Fanout(stats, buffer_size=2, overflow="fail")
    books = fan.open(make_filter("book", "XBT/USD"))
    batch = [ticker("XBT/USD", n) for n in range(10)] + [HEARTBEAT, book("XBT/USD"), CONNECTED]
    await fan.publish(batch)  # 13 messages, but only 2 for this consumer: no overflow
    fan.close()
    assert await drain(books) == [book("XBT/USD"), CONNECTED]
    assert stats.consumer_overflows == 0
    assert stats.messages_delivered == 2
    assert stats.messages_unrouted == 11  # no consumer wanted them


# --------------------------------------------------------------------------- overflow: fail


async def test_fail_policy_delivers_what_fit_then_raises() -> None:
    stats = Stats()
    fan = Fanout(stats, buffer_size=100)
    slow = fan.open(buffer_size=3, overflow="fail")
    other = fan.open()
    await fan.publish([1, 2])
    await fan.publish([3, 4, 5])  # only 3 fits
    assert fan.consumers == 1
    assert stats.consumer_overflows == 1
    assert stats.messages_dropped_by_overflow == 2
    await fan.publish([6])  # the failed consumer is gone: no more drops counted
    assert stats.consumer_overflows == 1
    assert stats.messages_dropped_by_overflow == 2
    got = []
    with pytest.raises(ConsumerOverflowError) as info:
        async for m in slow:
            got.append(m)
    assert got == [1, 2, 3]
    assert info.value.dropped == 2
    with pytest.raises(ConsumerOverflowError):  # and again: it stays failed
        await slow.__anext__()
    assert other.receive_nowait() == [1, 2, 3, 4, 5, 6]


async def test_fail_policy_does_not_block_the_publisher() -> None:
    fan = Fanout(Stats(), buffer_size=1, overflow="fail")
    stream = fan.open()
    with anyio.fail_after(5):
        await fan.publish(list(range(50)))
    assert not fan.blocked
    assert stream.receive_nowait() == [0]
    with pytest.raises(ConsumerOverflowError) as info:
        await stream.__anext__()
    assert info.value.dropped == 49


async def test_fail_policy_wakes_a_waiting_consumer() -> None:
    fan = Fanout(Stats(), buffer_size=1, overflow="fail")
    stream = fan.open()
    outcome: list[Any] = []

    async def consume() -> None:
        try:
            async for m in stream:
                outcome.append(m)
                await anyio.wait_all_tasks_blocked()  # the publisher overflows meanwhile
        except ConsumerOverflowError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        await fan.publish(["a", "b", "c"])
    assert outcome[0] == "a"
    assert isinstance(outcome[1], ConsumerOverflowError)
    assert outcome[1].dropped == 2


# --------------------------------------------------------------------------- overflow: block


async def test_block_policy_waits_for_the_consumer() -> None:
    fan = Fanout(Stats(), buffer_size=2)
    stream = fan.open()
    await fan.publish([1, 2])
    assert not fan.blocked
    published = anyio.Event()
    unblocked = anyio.Event()

    async def publisher() -> None:
        await fan.publish([3, 4])
        published.set()

    async def watcher() -> None:
        await fan.wait_unblocked()
        unblocked.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(publisher)
        await anyio.wait_all_tasks_blocked()
        assert fan.blocked
        assert not published.is_set()
        tg.start_soon(watcher)
        await anyio.wait_all_tasks_blocked()
        assert not unblocked.is_set()
        assert await stream.__anext__() == 1  # room for one
        await anyio.wait_all_tasks_blocked()
        assert unblocked.is_set()  # the first wait ended...
        assert fan.blocked and not published.is_set()  # ...but 4 still waits
        assert await stream.__anext__() == 2
        await anyio.wait_all_tasks_blocked()
        assert published.is_set()
        assert not fan.blocked
    await fan.wait_unblocked()  # returns at once
    assert stream.receive_nowait() == [3, 4]


async def test_block_policy_slows_every_consumer_but_loses_nothing() -> None:
    fan = Fanout(Stats(), buffer_size=1)
    slow = fan.open()
    fast = fan.open(buffer_size=100)
    done = anyio.Event()

    async def publisher() -> None:
        for n in range(5):
            await fan.publish([n])
        done.set()

    got: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(publisher)
        while not done.is_set():
            await anyio.wait_all_tasks_blocked()
            got.append(await slow.__anext__())
    got += slow.receive_nowait()
    assert got == [0, 1, 2, 3, 4]
    assert fast.receive_nowait() == [0, 1, 2, 3, 4]


async def test_batch_larger_than_the_buffer_goes_through_in_order() -> None:
    fan = Fanout(Stats(), buffer_size=3)
    stream = fan.open()
    got: list[int] = []

    async def consume() -> None:
        async for m in stream:
            got.append(m)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        with anyio.fail_after(5):
            await fan.publish(list(range(10)))
            await fan.publish(list(range(10, 20)))
        await anyio.wait_all_tasks_blocked()
        fan.close()
    assert got == list(range(20))


async def test_receive_nowait_frees_a_blocked_publisher() -> None:
    fan = Fanout(Stats(), buffer_size=2)
    stream = fan.open()
    async with anyio.create_task_group() as tg:
        tg.start_soon(fan.publish, [1, 2, 3])
        await anyio.wait_all_tasks_blocked()
        assert fan.blocked
        assert stream.receive_nowait() == [1, 2]
        await anyio.wait_all_tasks_blocked()
        assert not fan.blocked
    assert stream.receive_nowait() == [3]


async def test_cancelled_blocked_publish_is_unblocked() -> None:
    fan = Fanout(Stats(), buffer_size=1)
    stream = fan.open()
    await fan.publish([1])
    with anyio.CancelScope() as scope:

        async def cancel_when_blocked() -> None:
            await anyio.wait_all_tasks_blocked()
            assert fan.blocked
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when_blocked)
            await fan.publish([2])
    assert scope.cancelled_caught
    assert not fan.blocked
    assert stream.receive_nowait() == [1]


async def test_dropped_consumer_releases_a_blocked_publisher() -> None:
    fan = Fanout(Stats(), buffer_size=1)
    stream: MessageStream | None = fan.open()
    keeper = fan.open(buffer_size=10)
    await fan.publish([1])
    done = anyio.Event()

    async def publisher() -> None:
        await fan.publish([2, 3])
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(publisher)
        await anyio.wait_all_tasks_blocked()
        assert fan.blocked and not done.is_set()
        del stream  # the only reference: `break` out of `async for` and move on
        gc.collect()
        with anyio.fail_after(5):
            await done.wait()
    assert not fan.blocked
    assert fan.consumers == 1
    assert keeper.receive_nowait() == [1, 2, 3]


async def test_async_with_closes_the_consumer_deterministically() -> None:
    fan = Fanout(Stats(), buffer_size=1)
    async with fan.open() as stream:
        assert fan.consumers == 1
        await fan.publish([1])
    assert fan.consumers == 0
    with anyio.fail_after(5):
        await fan.publish([2, 3, 4])  # would block on a live consumer
    assert not fan.blocked
    assert await drain(stream) == []  # closed: its buffer is gone
    assert stream.receive_nowait() == []


async def test_aclose_releases_a_blocked_publisher() -> None:
    fan = Fanout(Stats(), buffer_size=1)
    stream = fan.open()
    await fan.publish([1])
    async with anyio.create_task_group() as tg:
        tg.start_soon(fan.publish, [2])
        await anyio.wait_all_tasks_blocked()
        assert fan.blocked
        await stream.aclose()
        await anyio.wait_all_tasks_blocked()
        assert not fan.blocked


# --------------------------------------------------------------------------- close


async def test_close_ends_iteration_after_draining() -> None:
    fan = Fanout(Stats())
    stream = fan.open()
    await fan.publish([1, 2])
    fan.close()
    assert fan.consumers == 0
    assert await drain(stream) == [1, 2]
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_close_wakes_a_waiting_consumer() -> None:
    fan = Fanout(Stats())
    stream = fan.open()
    got: list[Any] = []
    ended = anyio.Event()

    async def consume() -> None:
        async for m in stream:
            got.append(m)
        ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        fan.close()
        with anyio.fail_after(5):
            await ended.wait()
    assert got == []


async def test_close_with_error_raises_it_after_draining() -> None:
    fan = Fanout(Stats())
    a = fan.open()
    b = fan.open()
    await fan.publish(["x"])
    boom = RuntimeError("connection failed")
    fan.close(boom)
    for stream in (a, b):
        got = []
        with pytest.raises(RuntimeError) as info:
            async for m in stream:
                got.append(m)
        assert info.value is boom
        assert got == ["x"]


async def test_close_with_error_keeps_an_earlier_overflow_error() -> None:
    fan = Fanout(Stats(), buffer_size=1, overflow="fail")
    stream = fan.open()
    await fan.publish([1, 2])
    fan.close(RuntimeError("later"))
    assert await stream.__anext__() == 1
    with pytest.raises(ConsumerOverflowError):
        await stream.__anext__()


async def test_close_releases_a_blocked_publisher() -> None:
    fan = Fanout(Stats(), buffer_size=1)
    stream = fan.open()
    await fan.publish([1])
    async with anyio.create_task_group() as tg:
        tg.start_soon(fan.publish, [2])
        await anyio.wait_all_tasks_blocked()
        assert fan.blocked
        fan.close()
        await anyio.wait_all_tasks_blocked()
        assert not fan.blocked
    assert await drain(stream) == [1]


async def test_open_after_close_is_an_ended_stream() -> None:
    fan = Fanout(Stats())
    fan.close()
    assert await drain(fan.open()) == []
    assert fan.consumers == 0
    failed = Fanout(Stats())
    boom = ValueError("dead")
    failed.close(boom)
    with pytest.raises(ValueError) as info:
        await failed.open().__anext__()
    assert info.value is boom


# --------------------------------------------------------------------------- configuration


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        Fanout(Stats(), buffer_size=0)
    with pytest.raises(ValueError):
        Fanout(Stats(), overflow="drop")
    with pytest.raises(ValueError):
        Fanout(Stats()).open(overflow="drop")
    assert Fanout(Stats(), overflow=Overflow.FAIL).overflow is Overflow.FAIL
    assert Fanout(Stats(), overflow="block").overflow is Overflow.BLOCK


@pytest.mark.parametrize("size", [0, -1])
def test_open_rejects_a_bad_buffer_size(size: int) -> None:
    # Regression: 0 silently meant the default; -1 dropped the wrong count under
    # "fail" and deadlocked "block".
    with pytest.raises(ValueError):
        Fanout(Stats()).open(buffer_size=size)


async def test_per_consumer_overrides() -> None:
    stats = Stats()
    fan = Fanout(stats, buffer_size=1, overflow="block")
    big = fan.open(buffer_size=5)
    failing = fan.open(buffer_size=5, overflow="fail")
    default = fan.open(overflow="fail")  # buffer 1 from the fan-out
    await fan.publish([1, 2, 3])
    assert big.receive_nowait() == [1, 2, 3]
    assert failing.receive_nowait() == [1, 2, 3]
    assert default.receive_nowait() == [1]
    assert stats.messages_dropped_by_overflow == 2


async def test_consumer_opened_during_a_blocked_publish_gets_only_later_messages() -> None:
    fan = Fanout(Stats(), buffer_size=1)
    slow = fan.open()
    await fan.publish([0])
    async with anyio.create_task_group() as tg:
        tg.start_soon(fan.publish, ["old-1", "old-2"])
        await anyio.wait_all_tasks_blocked()
        assert fan.blocked
        late = fan.open(buffer_size=10)  # opened after "old-*" arrived
        while fan.blocked:
            slow.receive_nowait()
            await anyio.wait_all_tasks_blocked()
    assert slow.receive_nowait() == ["old-2"]
    await fan.publish(["new"])
    assert late.receive_nowait() == ["new"]
