"""Reading a MessageStream: shared by several tasks, batches, the fast path and
its checkpoints. Both backends, virtual time, no sleep as synchronisation."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from kraky_anyio.fanout import CHECKPOINT_EVERY, Fanout
from kraky_anyio.stats import Stats

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------- shared


async def test_two_iterating_tasks_never_lose_a_wake_up() -> None:
    # Regression: the waiter slot held one task; the second waiter replaced the
    # first, which then slept forever beside a non-empty buffer.
    fan = Fanout(Stats())
    stream = fan.open()
    got: dict[str, list[Any]] = {"A": [], "B": []}
    gates = {"A": anyio.Event(), "B": anyio.Event()}
    got_y = anyio.Event()

    async def worker(name: str) -> None:
        async for m in stream:
            got[name].append(m)
            if m == "y":
                got_y.set()
            await gates[name].wait()  # busy with its message: not waiting on the stream

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker, "A")
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(worker, "B")
        await anyio.wait_all_tasks_blocked()
        await fan.publish(["x"])
        await anyio.wait_all_tasks_blocked()
        (first,) = [n for n in got if got[n] == ["x"]]
        other = "B" if first == "A" else "A"
        await fan.publish(["y"])  # only the other one is waiting: it must wake
        with anyio.fail_after(5):
            await got_y.wait()
        assert got[other] == ["y"]
        assert len(stream) == 0
        fan.close()
        for gate in gates.values():
            gate.set()


async def test_worker_pool_under_block_with_a_full_buffer() -> None:
    stats = Stats()
    fan = Fanout(stats, buffer_size=2)
    stream = fan.open()
    taken: list[tuple[str, int]] = []
    all_taken = anyio.Event()

    async def worker(name: str, pause: float) -> None:
        async for m in stream:
            taken.append((name, m))
            if len(taken) == 40:
                all_taken.set()
            await anyio.sleep(pause)  # work, not synchronisation

    # Bounded as a whole: before the fix, a worker slept forever even after close.
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker, "A", 0.3)
            tg.start_soon(worker, "B", 0.7)
            await anyio.wait_all_tasks_blocked()
            for start in range(0, 40, 4):
                await fan.publish(list(range(start, start + 4)))  # blocks: buffer 2
            await all_taken.wait()
            fan.close()
    assert sorted(m for _, m in taken) == list(range(40))  # each exactly once
    assert {n for n, _ in taken} == {"A", "B"}
    assert [m for n, m in taken if n == "A"] == sorted(m for n, m in taken if n == "A")
    assert stats.messages_delivered == stats.consumer_copies == 40
    assert not fan.blocked


async def test_shared_batches_each_message_once() -> None:
    fan = Fanout(Stats())
    stream = fan.open()
    seen: list[Any] = []

    async def worker() -> None:
        async for batch in stream.batches():
            assert batch
            seen.extend(batch)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(worker)
        await anyio.wait_all_tasks_blocked()
        for n in range(10):
            await fan.publish([n, n + 100])
            await anyio.wait_all_tasks_blocked()
        fan.close()
    assert sorted(seen) == sorted([*range(10), *range(100, 110)])


# --------------------------------------------------------------------------- batches


async def test_batches_take_everything_buffered_then_end() -> None:
    stats = Stats()
    fan = Fanout(stats)
    stream = fan.open()
    await fan.publish([1, 2, 3])
    await fan.publish([4])
    batches = stream.batches()
    assert await batches.__anext__() == [1, 2, 3, 4]
    assert len(stream) == 0 and stats.messages_delivered == 4
    await fan.publish([5])
    fan.close(RuntimeError("gone"))
    assert await batches.__anext__() == [5]
    with pytest.raises(RuntimeError, match="gone"):
        await batches.__anext__()


async def test_batches_wait_and_end_cleanly() -> None:
    fan = Fanout(Stats())
    stream = fan.open()
    got: list[list[Any]] = []

    async def consume() -> None:
        async for batch in stream.batches():
            got.append(batch)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        await fan.publish(["a", "b"])
        await anyio.wait_all_tasks_blocked()
        await fan.publish(["c"])
        await anyio.wait_all_tasks_blocked()
        fan.close()
    assert got == [["a", "b"], ["c"]]


async def test_batches_are_cancellation_safe() -> None:
    fan = Fanout(Stats())
    stream = fan.open()
    await fan.publish([1, 2])
    with anyio.CancelScope() as scope:
        scope.cancel()
        await stream.batches().__anext__()  # checkpoints first: nothing taken
    assert scope.cancelled_caught
    assert len(stream) == 2
    with anyio.move_on_after(1):
        assert await stream.batches().__anext__() == [1, 2]
        await stream.batches().__anext__()  # parked, then cancelled
    await fan.publish([3])
    assert await stream.batches().__anext__() == [3]


async def test_batches_release_a_blocked_publisher() -> None:
    fan = Fanout(Stats(), buffer_size=2)
    stream = fan.open()
    async with anyio.create_task_group() as tg:
        tg.start_soon(fan.publish, [1, 2, 3, 4, 5])
        await anyio.wait_all_tasks_blocked()
        assert fan.blocked
        got = []
        while len(got) < 5:
            got += await stream.batches().__anext__()
    assert got == [1, 2, 3, 4, 5] and not fan.blocked


# --------------------------------------------------------------------------- fast path


async def test_plain_iterator_takes_buffered_messages_without_waiting_then_checkpoints() -> None:
    fan = Fanout(Stats(), buffer_size=1000)
    stream = fan.open()
    await fan.publish(list(range(3 * CHECKPOINT_EVERY)))
    got = []
    with anyio.CancelScope() as scope:
        scope.cancel()  # any checkpoint now raises: count how far it gets
        while True:
            got.append(await stream.__anext__())
    assert scope.cancelled_caught
    assert got == list(range(CHECKPOINT_EVERY))  # no await on the fast path...
    assert len(stream) == 2 * CHECKPOINT_EVERY  # ...and the checkpoint took nothing
    assert await stream.__anext__() == CHECKPOINT_EVERY


async def test_a_hot_consumer_does_not_starve_other_tasks() -> None:
    # Regression: a consumer that never ran dry never yielded to the loop.
    fan = Fanout(Stats(), buffer_size=10_000)
    stream = fan.open()
    n = 20 * CHECKPOINT_EVERY
    await fan.publish(list(range(n)))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await checkpoint()
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await checkpoint()
        ticks = 0
        taken = 0
        async for _ in stream:
            taken += 1
            if taken == n:
                break
        assert ticks >= 10, ticks
        tg.cancel_scope.cancel()
