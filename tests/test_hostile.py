"""Hostile input: generated and mutated Kraken frames never break a library
task; oversized frames close the socket with 1009 and the client reconnects."""

from __future__ import annotations

import functools
import json
import random
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kraky_anyio import Connected, Disconnected, open_kraken
from kraky_anyio.book import OrderBook
from kraky_anyio.errors import BookError
from kraky_anyio.protocol import KrakenProtocol
from kraky_anyio.testing.market import MarketSimulator
from kraky_anyio.testing.server import open_fake_kraken

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["NaN", "Infinity", "-1", "1e999", "0.00000000", "", "book-10", "XBT/USD"]),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=30,
)
kraken_keys = st.sampled_from(
    ["event", "reqid", "status", "pair", "errorMessage", "channelName", "Error", "subscription"]
)
kraken_like = st.one_of(
    json_value,
    st.dictionaries(kraken_keys, json_value, max_size=6),
    st.tuples(json_value, json_value, st.text(max_size=10), st.text(max_size=10)).map(list),
    st.tuples(json_value, st.sampled_from(["ownTrades", "openOrders"]), json_value).map(list),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(kraken_like, max_size=20))
def test_classifier_never_raises_on_generated_frames(frames: list[Any]) -> None:
    protocol = KrakenProtocol()
    for frame in frames:
        protocol.receive(json.dumps(frame))
    assert protocol.stats.frames_received == len(frames)


def test_deeply_nested_frame_is_counted_not_a_crash() -> None:
    protocol = KrakenProtocol()
    assert protocol.receive("[" * 100_000) is None
    assert protocol.stats.malformed_frames == 1


@functools.cache
def _fixture_messages() -> list[Any]:
    """A book-10 snapshot and its updates, Kraken-shaped, from the simulator
    (realistic data is all this needs, not Kraken's own recording)."""
    sim = MarketSimulator(["XBT/USD"], seed=11, book_levels=100, depths=(10,))
    (snapshot,) = sim.snapshot("book-10", "XBT/USD")
    messages: list[Any] = [[0, snapshot, "book-10", "XBT/USD"]]
    while len(messages) < 200:
        messages += [p.message() for p in sim.step() if p.channel_name == "book-10"]
    return messages


def _mutate(value: Any, rng: random.Random) -> Any:
    """One random structural or value mutation somewhere in ``value``."""
    if isinstance(value, list) and value and rng.random() < 0.7:
        i = rng.randrange(len(value))
        out = list(value)
        out[i] = _mutate(value[i], rng)
        return out
    if isinstance(value, dict) and value and rng.random() < 0.7:
        k = rng.choice(list(value))
        out2 = dict(value)
        out2[k] = _mutate(value[k], rng)
        return out2
    return rng.choice(
        [None, 0, -1, 2**80, 1.5, "NaN", "-Infinity", "abc", "", [], {}, [[[[]]]], "1e5", "-0.1"]
    )


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_book_rejects_mutated_frames_without_tearing(seed: int) -> None:
    rng = random.Random(seed)
    messages = _fixture_messages()
    book = OrderBook("XBT/USD", 10)
    book.feed(messages[0])
    for msg in messages[1:200]:
        candidate = _mutate(msg, rng) if rng.random() < 0.2 else msg
        before = (book.asks, book.bids, book.version)
        try:
            book.feed(candidate)
        except BookError:
            if book.valid:
                # A rejected message changed nothing.
                assert (book.asks, book.bids, book.version) == before
            else:
                book.feed(messages[0])  # resync from the snapshot, as the live book does
        # Anything else (TypeError, KeyError, ...) fails the test.


@pytest.mark.anyio
async def test_oversized_frame_closes_with_1009_and_reconnects() -> None:
    async with (
        open_fake_kraken() as server,
        open_kraken(server.url, max_message_size=64 * 1024) as conn,
    ):
        async with conn.messages() as stream:
            with anyio.fail_after(10):
                await conn.subscribe({"name": "ticker"}, pair=["XBT/USD"])
            await server.send_raw(json.dumps({"event": "heartbeat", "pad": "x" * 200_000}))
            with anyio.fail_after(60):
                async for msg in stream:
                    if isinstance(msg, Disconnected):
                        assert "too big" in msg.reason or "1009" in msg.reason
                    if isinstance(msg, Connected) and msg.generation == 2:
                        break
        with anyio.fail_after(10):
            await conn.wait_connected()
            await server.wait_for_subscription("ticker", "XBT/USD")
        assert conn.stats.disconnects == 1
