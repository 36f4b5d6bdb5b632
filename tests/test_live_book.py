"""conn.book(): a live, checksum-verified book on the fake exchange, both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anyio
import pytest

from kraky_anyio import BookResync, Disconnected, open_kraken
from kraky_anyio.book import checksum
from kraky_anyio.testing.server import FakeKrakenServer, open_fake_kraken

pytestmark = pytest.mark.anyio


@pytest.fixture
async def server() -> AsyncIterator[FakeKrakenServer]:
    async with open_fake_kraken() as srv:
        yield srv


ASKS = [(f"{100 + i}.00000", "1.00000000") for i in range(10)]
BIDS = [(f"{99 - i}.00000", "2.00000000") for i in range(10)]


def snapshot() -> dict[str, Any]:
    return {
        "as": [[p, v, "1700000000.000000"] for p, v in ASKS],
        "bs": [[p, v, "1700000000.000000"] for p, v in BIDS],
    }


def ask_update(price: str, volume: str, asks: list[tuple[str, str]]) -> dict[str, Any]:
    """An ask update and its checksum computed on the resulting book."""
    book = dict(asks)
    if Decimal(volume) == 0:
        book.pop(price, None)
    else:
        book[price] = volume
    top = sorted(book.items(), key=lambda kv: Decimal(kv[0]))[:10]
    asks[:] = top
    return {"a": [[price, volume, "1700000001.000000"]], "c": str(checksum(top, BIDS))}


async def test_book_follows_updates_and_resyncs_on_mismatch(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn:
        notices = conn.messages()
        async with conn.book("XBT/USD", depth=10) as book, conn.book("ETH/USD") as other:
            await server.publish("book-10", "XBT/USD", snapshot())
            await server.publish("book-10", "ETH/USD", snapshot())
            with anyio.fail_after(10):
                state = await book.__anext__()
                await other.wait_valid()
            assert state.best_ask is not None and state.best_ask.price == Decimal("100")
            assert book.spread == Decimal("1")
            asks = list(ASKS)
            await server.publish("book-10", "XBT/USD", ask_update("99.50000", "3.0", asks))
            with anyio.fail_after(10):
                await book.__anext__()
            assert book.best_ask == (Decimal("99.5"), Decimal("3.0"))
            assert len(book.asks) == 10  # truncated to depth

            # A corrupt checksum: dropped, resubscribed for this pair only.
            bad = ask_update("99.60000", "1.0", asks)
            bad["c"] = str((int(bad["c"]) + 1) % 2**32)
            await server.publish("book-10", "XBT/USD", bad)
            with anyio.fail_after(10):
                async for msg in notices:
                    if isinstance(msg, BookResync):
                        break
            assert (msg.pair, msg.reason) == ("XBT/USD", "checksum")
            with anyio.fail_after(10):
                await server.wait_for_received(
                    lambda f: f.get("event") == "subscribe" and f.get("pair") == ["XBT/USD"],
                    count=2,
                )
            await server.wait_for_subscription("book-10", "XBT/USD")
            assert not book.valid and book.resyncs == 1
            await server.publish("book-10", "XBT/USD", snapshot())
            with anyio.fail_after(10):
                await book.__anext__()
            assert book.valid and book.best_ask is not None
            assert book.best_ask.price == Decimal("100")
            assert other.valid and other.resyncs == 0
            unsubs = [f for f in server.all_received() if f.get("event") == "unsubscribe"]
            assert [u["pair"] for u in unsubs] == [["XBT/USD"]]
        # Leaving the books unsubscribed both.
        with anyio.fail_after(10):
            await server.wait_for_received(lambda f: f.get("event") == "unsubscribe", count=3)


async def test_slow_book_consumer_coalesces(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn, conn.book("XBT/USD") as book:
        await server.publish("book-10", "XBT/USD", snapshot())
        with anyio.fail_after(10):
            await book.__anext__()
        asks = list(ASKS)
        for i in range(20):
            await server.publish("book-10", "XBT/USD", ask_update(f"{110 + i}.00000", "5.0", asks))
        for i in range(20):
            await server.publish("book-10", "XBT/USD", ask_update(f"{110 + i}.00000", "0", asks))
        await server.publish("book-10", "XBT/USD", ask_update("99.90000", "7.0", asks))
        wakes = 0
        with anyio.fail_after(100):
            while book.best_ask is None or book.best_ask.price != Decimal("99.9"):
                await book.__anext__()
                wakes += 1
                await anyio.sleep(1)  # a slow consumer
        assert book.valid and book.book.updates == 41
        # The consumer was not there for 41 updates: it wakes with the latest
        # verified state, not once per update.
        assert wakes <= 3, wakes
        with anyio.move_on_after(1):
            await book.__anext__()  # the state that came during the last sleep, if any
        before = book.version
        with anyio.move_on_after(5):
            await book.__anext__()  # nothing newer: waits
            pytest.fail("woke without a newer state")
        assert book.version == before


async def test_reconnect_drops_the_book_until_the_new_snapshot(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn, conn.book("XBT/USD") as book:
        await server.publish("book-10", "XBT/USD", snapshot())
        with anyio.fail_after(10):
            await book.__anext__()
        async with conn.messages() as stream:
            await server.drop()
            with anyio.fail_after(60):
                async for msg in stream:
                    if isinstance(msg, BookResync):
                        break
        assert msg.reason == "reconnect" and not book.valid
        with anyio.fail_after(60):
            await server.wait_for_subscription("book-10", "XBT/USD")
        await server.publish("book-10", "XBT/USD", snapshot())
        with anyio.fail_after(10):
            await book.__anext__()
        assert book.valid and book.resyncs == 1
        subs = [f for f in server.all_received() if f.get("event") == "subscribe"]
        assert len(subs) == 2  # the original and the replay, no extra subscribe


async def test_bad_depth_is_refused(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn:
        with pytest.raises(ValueError):
            async with conn.book("XBT/USD", depth=42):
                pass


def test_live_book_does_not_import_the_connection() -> None:
    import ast
    import inspect

    from kraky_anyio import book_engine, live_book

    for module in (live_book, book_engine):
        tree = ast.parse(inspect.getsource(module))
        imported = {
            (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        assert not any("connection" in name for name in imported), imported


async def test_checksum_storm_on_the_wire_is_backed_off() -> None:
    calls = 0

    def snapshot_then_bad_checksum(channel: str, pair: str | None) -> list[Any]:
        nonlocal calls
        calls += 1
        if calls > 50:
            return []  # bounds the test (not the client) if the client storms
        bad = ask_update("99.50000", "3.0", list(ASKS))
        bad["c"] = str((int(bad["c"]) + 1) % 2**32)
        return [snapshot(), bad]

    async with (
        open_fake_kraken(snapshot_provider=snapshot_then_bad_checksum) as srv,
        open_kraken(srv.url) as conn,
    ):
        notices = conn.messages(buffer_size=5, overflow="fail")
        async with conn.book("XBT/USD") as book:
            await anyio.sleep(120)  # two minutes of a hostile server
            assert not book.valid
        subscribes = [f for f in srv.all_received() if f.get("event") == "subscribe"]
        # Regression: hundreds of unsubscribe+subscribe pairs per second.
        assert 4 <= len(subscribes) <= 12, len(subscribes)
        got = notices.receive_nowait()  # still within its buffer: not failed
        assert [m for m in got if isinstance(m, BookResync)] == [
            BookResync("XBT/USD", 10, "checksum")
        ]


async def test_leaving_while_disconnected_then_opening_again(server: FakeKrakenServer) -> None:
    async with open_kraken(server.url) as conn:
        async with conn.book("XBT/USD"):
            assert conn.live_subscriptions() == [({"name": "book", "depth": 10}, "XBT/USD")]
            server.refuse(None)
            async with conn.messages() as stream:
                await server.drop()
                with anyio.fail_after(60):
                    async for msg in stream:
                        if isinstance(msg, Disconnected):
                            break
        # Regression: still in the replay set, re-subscribed on every socket.
        assert conn.live_subscriptions() == []
        server.refuse(0)
        with anyio.fail_after(120):
            await conn.wait_connected()
        async with conn.book("XBT/USD"):  # not "Already subscribed"
            await server.wait_for_subscription("book-10", "XBT/USD")
