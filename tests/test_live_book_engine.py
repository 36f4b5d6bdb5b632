"""LiveBook against a fake connection (the BookConnection protocol): resync
storms, notice coalescing, leaving during a resync or while disconnected, and a
plugged-in engine. Both backends on virtual time.

The fake applies a request when it is sent and answers after ``rtt`` seconds,
as a server would; while disconnected, unsubscribe settles locally (the core's
promise) and subscribe waits for the connection.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import pytest

from kraky_anyio.book import checksum
from kraky_anyio.book_engine import Verdict
from kraky_anyio.errors import KrakenError
from kraky_anyio.fanout import Fanout, MessageStream, make_filter
from kraky_anyio.live_book import ResyncPolicy, open_book, open_live_book
from kraky_anyio.notices import BookResync, Disconnected, Notice
from kraky_anyio.stats import Stats

pytestmark = pytest.mark.anyio

PAIR = "XBT/USD"
ASKS = [(f"{100 + i}.00000", "1.00000000") for i in range(10)]
BIDS = [(f"{99 - i}.00000", "2.00000000") for i in range(10)]
TS = "1700000000.000000"
SNAPSHOT = [
    1,
    {"as": [[p, v, TS] for p, v in ASKS], "bs": [[p, v, TS] for p, v in BIDS]},
    "book-10",
    PAIR,
]


def update(ok: bool = True) -> list[Any]:
    """Sets the best ask's volume to 1.5 (checksum right or off by one)."""
    asks = [("100.00000", "1.50000000"), *ASKS[1:]]
    c = checksum(asks, BIDS) + (0 if ok else 1)
    return [1, {"a": [["100.00000", "1.50000000", TS]], "c": str(c % 2**32)}, "book-10", PAIR]


class FakeConn:
    def __init__(self, rtt: float = 0.001) -> None:
        self.fanout = Fanout(Stats())
        self.rtt = rtt
        self.connected = True
        self._up = anyio.Event()
        self._up.set()
        self.live: set[str] = set()
        self.calls: list[tuple[str, float]] = []
        self._called = anyio.Event()
        self.on_subscribe: Callable[[], Awaitable[None]] | None = None

    def messages(self, *, channel: str, pair: str, overflow: str) -> MessageStream:
        return self.fanout.open(make_filter(channel, pair), overflow=overflow)

    def _record(self, what: str) -> None:
        self.calls.append((what, anyio.current_time()))
        self._called.set()
        self._called = anyio.Event()

    async def wait_subscribes(self, n: int) -> None:
        while len(self.subscribes()) < n:
            await self._called.wait()

    async def subscribe(self, subscription: Mapping[str, Any], pair: list[str]) -> object:
        await self.wait_connected()
        self._record("subscribe")
        if len(self.calls) > 400:
            raise AssertionError("resubscribe storm")
        (p,) = pair
        if p in self.live:
            raise KrakenError("Already subscribed")
        self.live.add(p)
        await anyio.sleep(self.rtt)
        if self.on_subscribe is not None:
            await self.on_subscribe()
        return []

    async def unsubscribe(self, subscription: Mapping[str, Any], pair: list[str]) -> object:
        self._record("unsubscribe")
        (p,) = pair
        if not self.connected:
            self.live.discard(p)  # settled locally: out of the replay set
            return []
        found = p in self.live
        self.live.discard(p)
        await anyio.sleep(self.rtt)
        if not found:
            raise KrakenError("Subscription Not Found")
        return []

    async def wait_connected(self) -> None:
        await self._up.wait()

    def disconnect(self) -> None:
        self.connected = False
        self._up = anyio.Event()
        self.fanout.publish_nowait(Disconnected(1, "gone", True))

    def reconnect(self) -> None:
        self.connected = True
        self._up.set()

    def subscribes(self) -> list[float]:
        return [t for what, t in self.calls if what == "subscribe"]


async def test_a_mismatch_storm_is_backed_off_and_notified_once() -> None:
    conn = FakeConn()
    notices: list[Notice] = []

    async def snapshot_then_bad_checksum() -> None:
        await conn.fanout.publish([SNAPSHOT, update(ok=False)])

    conn.on_subscribe = snapshot_then_bad_checksum
    async with open_book(conn, PAIR, notify=notices.append, rng=random.Random(7)) as book:
        await anyio.sleep(300)  # watch five minutes of a hostile server
        assert not book.valid
    subs = conn.subscribes()
    # Regression: resubscribed as fast as the round trip (here 1 ms), forever.
    assert 6 <= len(subs) <= 14, subs
    gaps = [b - a for a, b in itertools.pairwise(subs)]
    assert gaps[0] < 0.1  # the first resync is immediate
    assert all(later >= earlier / 2 - 0.01 for earlier, later in itertools.pairwise(gaps))
    assert 30 - 0.1 <= max(gaps) <= 60 + 0.1  # capped at 60 s, jitter down to half
    # One notice for the whole storm: a consumer's buffer bound holds.
    assert notices == [BookResync(PAIR, 10, "checksum")]
    assert book.checksum_mismatches == len(subs)


async def test_a_valid_update_ends_the_episode() -> None:
    conn = FakeConn()
    notices: list[Notice] = []
    good = anyio.Event()

    async def answer() -> None:
        await conn.fanout.publish([SNAPSHOT, update(ok=good.is_set())])

    conn.on_subscribe = answer
    async with open_book(conn, PAIR, notify=notices.append, rng=random.Random(1)) as book:
        await anyio.sleep(10)
        assert len(conn.subscribes()) >= 4 and not book.valid
        good.set()
        with anyio.fail_after(120):
            await book.wait_valid()
        await anyio.wait_all_tasks_blocked()
        n = len(conn.subscribes())
        assert book.valid and notices == [BookResync(PAIR, 10, "checksum")]
        # Healthy again: the next mismatch resyncs at once, with a new notice.
        await conn.fanout.publish([update(ok=False)])
        with anyio.fail_after(1):
            await conn.wait_subscribes(n + 1)
        assert len(notices) == 2


async def test_leaving_during_a_resync_leaves_nothing_subscribed() -> None:
    conn = FakeConn(rtt=1.0)
    notices: list[Notice] = []
    async with open_book(conn, PAIR, notify=notices.append) as book:
        await conn.fanout.publish([SNAPSHOT, update(ok=False)])
        await anyio.sleep(0.5)  # the resync's unsubscribe is on the wire
        assert not book.valid and PAIR not in conn.live
    # Regression: the resync went on after the exit's unsubscribe and
    # subscribed the pair again, for good.
    await anyio.sleep(5)
    assert PAIR not in conn.live
    assert conn.calls[-1][0] == "unsubscribe"
    async with open_book(conn, PAIR, notify=notices.append):
        assert PAIR in conn.live  # the same book opens again


async def test_leaving_while_disconnected_still_unsubscribes() -> None:
    conn = FakeConn()
    async with open_book(conn, PAIR, notify=lambda n: None):
        await conn.fanout.publish([SNAPSHOT])
        conn.disconnect()
    # Regression: the exit skipped unsubscribe while disconnected; the pair
    # stayed in the replay set and every later open was "Already subscribed".
    assert conn.calls[-1][0] == "unsubscribe" and PAIR not in conn.live
    conn.reconnect()
    async with open_book(conn, PAIR, notify=lambda n: None):
        assert PAIR in conn.live


async def test_exit_is_bounded_when_unsubscribe_never_returns() -> None:
    conn = FakeConn()
    with anyio.fail_after(100):
        async with open_book(conn, PAIR, notify=lambda n: None, exit_timeout=2):
            conn.rtt = 1e9
    assert conn.calls[-1][0] == "unsubscribe"


async def test_cancelled_while_subscribing_undoes_the_subscribe() -> None:
    conn = FakeConn(rtt=5)
    with anyio.move_on_after(1):
        async with open_book(conn, PAIR, notify=lambda n: None):
            pytest.fail("entered")
    assert PAIR not in conn.live


class ToyView:
    valid = False
    version = 0
    resyncs = 0
    updates = 0
    bids: tuple[Any, ...] = ()
    asks: tuple[Any, ...] = ()
    best_bid = best_ask = spread = mid = None


class ToyEngine:
    """Any engine: 'snap' makes it valid, 'ok' applies, 'bad' mismatches."""

    pair = "P"
    depth = 1
    subscription: Mapping[str, Any] = {"name": "toy"}
    channel = "toy"

    def __init__(self) -> None:
        self.book = ToyView()
        self.seen: list[Any] = []

    def apply(self, message: Any) -> Verdict:
        self.seen.append(message)
        kind = message[1] if isinstance(message, list) else None
        if kind == "snap":
            self.book.valid = True
            self.book.version += 1
            return Verdict.SNAPSHOT
        if kind == "ok" and self.book.valid:
            self.book.version += 1
            return Verdict.APPLIED
        if kind == "bad" and self.book.valid:
            self.book.valid = False
            return Verdict.MISMATCH
        return Verdict.NOT_MINE

    def reset(self) -> None:
        self.book.valid = False
        self.book.resyncs += 1


async def test_a_plugged_in_engine_is_driven_by_its_verdicts() -> None:
    conn = FakeConn()
    engine = ToyEngine()
    notices: list[Notice] = []
    async with open_live_book(conn, engine, notify=notices.append) as book:
        msgs = [[0, k, "toy", "P"] for k in ("ok", "snap", "ok", "bad")]
        await conn.fanout.publish([*msgs, [0, "snap", "other", "P"]])
        with anyio.fail_after(5):
            await conn.wait_subscribes(2)
        assert engine.seen == msgs  # the stream kept its channel and pair only
        assert not book.valid and book.resyncs == 1 and book.checksum_mismatches == 1
        assert notices == [BookResync("P", 1, "checksum")]
        await conn.fanout.publish([[0, "snap", "toy", "P"]])
        with anyio.fail_after(5):
            assert await book.__anext__() is engine.book


def test_resync_policy_is_validated_and_capped() -> None:
    with pytest.raises(ValueError):
        ResyncPolicy(base_delay=0)
    with pytest.raises(ValueError):
        ResyncPolicy(base_delay=2, max_delay=1)
    policy = ResyncPolicy()
    rng = random.Random(3)
    assert policy.delay(1, rng) == 0
    assert 0.5 <= policy.delay(2, rng) <= 1
    assert 30 <= policy.delay(10_000, rng) <= 60


async def test_a_reconnect_within_a_checksum_episode_is_notified() -> None:
    conn = FakeConn()
    notices: list[Notice] = []

    async def snapshot() -> None:
        await conn.fanout.publish([SNAPSHOT])

    conn.on_subscribe = snapshot
    async with open_book(conn, PAIR, notify=notices.append) as book:
        await conn.fanout.publish([update(ok=False)])
        with anyio.fail_after(5):
            await conn.wait_subscribes(2)
            await book.wait_valid()  # rebuilt by a snapshot: no update proved it yet
        conn.disconnect()
        await anyio.wait_all_tasks_blocked()
        assert not book.valid
    assert notices == [BookResync(PAIR, 10, "checksum"), BookResync(PAIR, 10, "reconnect")]
