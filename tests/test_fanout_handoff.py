"""The reader-to-consumer hand-off: ``Fanout.publish`` says whether it woke
a waiting consumer (the reader then yields to it with ``yield_to_woken``), and
the notice count the fan-out keeps is exact whatever the batch holds."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kraky_anyio.fanout import Fanout
from kraky_anyio.notices import Connected, Disconnected
from kraky_anyio.stats import Stats

pytestmark = pytest.mark.anyio

DATA: list[Any] = [336, {"a": [["1.0", "2", "3"]]}, "book-10", "XBT/USD"]


async def test_publish_reports_a_woken_consumer_and_only_then() -> None:
    fan = Fanout(Stats())
    stream = fan.open()
    assert await fan.publish([DATA]) is False  # nobody waiting: it just buffers
    got: list[Any] = []

    async def consume() -> None:
        async for msg in stream:
            got.append(msg)
            if len(got) == 2:
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()  # the consumer drained and waits
        assert got == [DATA]
        assert await fan.publish([DATA]) is True
    assert got == [DATA, DATA]


async def test_the_woken_consumer_runs_before_the_publisher_goes_on() -> None:
    # One plain yield is not enough on trio: it runs the woken consumer and the
    # publisher in random order, so with it this fails on trio (each of the 64
    # rounds passes with probability 1/2).
    fan = Fanout(Stats())
    stream = fan.open()
    got: list[Any] = []

    async def consume() -> None:
        async for msg in stream:
            got.append(msg)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        for i in range(64):
            await anyio.wait_all_tasks_blocked()  # the consumer waits again
            assert await fan.publish([i]) is True
            await fan.yield_to_woken()
            assert got == list(range(i + 1))
        tg.cancel_scope.cancel()


async def test_yield_to_woken_with_nobody_woken_is_one_checkpoint() -> None:
    fan = Fanout(Stats())
    stream = fan.open()
    assert await fan.publish([DATA]) is False
    with anyio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(anyio.get_cancelled_exc_class()):
            await fan.yield_to_woken()  # a checkpoint: cancellation is noticed
    assert stream.receive_nowait() == [DATA]


async def test_no_consumer_means_nothing_woken() -> None:
    assert await Fanout(Stats()).publish([DATA, DATA]) is False


async def test_notices_are_counted_exactly_among_messages() -> None:
    stats = Stats()
    fan = Fanout(stats)
    stream = fan.open()
    notices = [Connected(1, "ws://x", 0), Disconnected(1, "gone", True)]
    batch: list[Any] = [DATA, notices[0], {"event": "heartbeat"}, notices[1], DATA]
    await fan.publish(batch)
    await fan.publish([DATA, {"event": "pong"}])
    assert stats.notices_published == 2
    assert stats.messages_published == 7
    assert stream.receive_nowait() == [*batch, DATA, {"event": "pong"}]
