"""Replaying recordings through the fake exchange (both backends, virtual
time): the recorded Kraken book sessions and our simulator's recordings
verify every checksum through ``conn.book()``; recorded acks, status and
channelIDs; pacing by ``speed``; pausing while nobody listens and the
catch-up after a drop; faults during a replay; ``loop``; the fixture."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import drop_and_wait_reconnect

from kraky_anyio import v2
from kraky_anyio.book import OrderBook
from kraky_anyio.connection import open_kraken
from kraky_anyio.testing.plugin import ReplayFactory
from kraky_anyio.testing.replay_formats import RecordedEvent, Recording, read_recording
from kraky_anyio.testing.replay_tape import Tape
from kraky_anyio.testing.server import open_fake_kraken
from kraky_anyio.transport import WebSocket, connect_websocket

pytestmark = pytest.mark.anyio

RECORDINGS = Path(__file__).resolve().parents[1] / "docs" / "recordings"
LIMIT = 600  # virtual seconds: a bound, never a synchronisation

STATUS = '{"connectionID":7,"event":"systemStatus","status":"online","version":"1.9.1"}'
ACK = (
    '{"channelID":42,"channelName":"ticker","event":"subscriptionStatus","pair":"XBT/USD",'
    '"reqid":1,"status":"subscribed","subscription":{"name":"ticker"}}'
)
SUBSCRIBE = {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "ticker"}}


def tick(n: int) -> str:
    return f'[42,{{"c":["{n}.0","1"]}},"ticker","XBT/USD"]'


def ticker_recording() -> Recording:
    """Subscribed at t=1; ticks at 2, 3 and 8; a heartbeat at 5."""
    events = [
        RecordedEvent("open", 0.0, 1),
        RecordedEvent("recv", 0.1, 1, STATUS),
        RecordedEvent("sent", 1.0, 1, json.dumps({**SUBSCRIBE, "reqid": 1})),
        RecordedEvent("recv", 1.05, 1, ACK),
        RecordedEvent("recv", 2.0, 1, tick(1)),
        RecordedEvent("recv", 3.0, 1, tick(2)),
        RecordedEvent("recv", 5.0, 1, '{"event":"heartbeat"}'),
        RecordedEvent("recv", 8.0, 1, tick(3)),
    ]
    return Recording("v1", tuple(events), "kraky")


async def recv(ws: WebSocket, buffer: list[str | bytes]) -> str | bytes:
    with anyio.fail_after(LIMIT):
        while not buffer:
            buffer.extend(await ws.receive_batch())
    return buffer.pop(0)


def frames_file(tmp_path: Path, frames: list[Any], name: str) -> Path:
    """The shared fixtures' shape (decoded messages) as a frame-per-line file."""
    path = tmp_path / name
    path.write_bytes(gzip.compress("".join(json.dumps(f) + "\n" for f in frames).encode()))
    return path


# -- the recorded Kraken sessions ---------------------------------------------------


async def test_the_recorded_v1_book_session_verifies_all_979_checksums(
    kraken_recording: Callable[[str], Any], kraken_replay: ReplayFactory, tmp_path: Path
) -> None:
    fixture = kraken_recording("kraken-v1-book10-xbtusd.json")
    path = frames_file(tmp_path, fixture["init"] + fixture["updates"], "v1.jsonl.gz")
    async with kraken_replay(path, speed="max") as server, open_kraken(server.url) as conn:
        with anyio.fail_after(LIMIT):
            async with conn.book("XBT/USD", 10) as book:
                while book.book.updates < 979:
                    await anext(book)
                assert server.replay is not None
                await server.replay.wait_finished()
                assert book.valid and book.book.updates == 979
                assert book.resyncs == 0 and book.checksum_mismatches == 0
    assert server.replay.tape.skipped == {"greeting": 1, "ack": 1, "reply": 16}  # 16 pongs


async def test_the_recorded_v2_book_session_verifies_all_510_checksums(
    kraken_recording: Callable[[str], Any], kraken_replay: ReplayFactory, tmp_path: Path
) -> None:
    fixture = kraken_recording("kraken-v2-book10-btcusd.json")
    path = tmp_path / "v2.json"  # a JSON array of frames, this time
    path.write_text(json.dumps([fixture["init"], *fixture["updates"]], indent=1))
    async with kraken_replay(path, speed="max") as server, v2.open_kraken(server.v2_url) as conn:
        with anyio.fail_after(LIMIT):
            async with conn.book("BTC/USD", 10, price_precision=1, qty_precision=8) as book:
                while book.book.updates < 509:
                    await anext(book)
                assert book.valid and book.book.version == 510  # the snapshot and 509 updates
                assert book.resyncs == 0 and book.checksum_mismatches == 0


# -- our simulator's recordings (docs/recordings) -----------------------------------


def book_updates(recording: Recording, key: tuple[str, str]) -> int:
    return sum(1 for f in Tape(recording).frames if f.key == key and not f.snapshot)


@pytest.mark.parametrize("speed", [1, "max"])
async def test_the_shipped_v1_recording_replays_checksum_for_checksum(speed: Any) -> None:
    path = RECORDINGS / "sim-v1-book.jsonl.gz"
    assert path.stat().st_size < 50_000
    expected = book_updates(read_recording(path), ("book-10", "XBT/USD"))
    assert expected > 400
    async with open_fake_kraken(replay=path, speed=speed) as server, open_kraken(server.url) as c:
        assert server.replay is not None
        start = anyio.current_time()
        with anyio.fail_after(LIMIT):
            async with c.book("XBT/USD", 10) as book:
                while book.book.updates < expected:
                    await anext(book)
                await server.replay.wait_finished()
        assert book.checksum_mismatches == 0 and book.resyncs == 0
        if speed == 1:  # the recorded 30 s, on the virtual clock
            assert anyio.current_time() - start == pytest.approx(30.0, abs=0.5)


async def test_the_shipped_v2_recording_replays_checksum_for_checksum() -> None:
    path = RECORDINGS / "sim-v2-book.jsonl.gz"
    assert path.stat().st_size < 50_000
    expected = book_updates(read_recording(path), ("book", "BTC/USD"))
    assert expected > 400
    async with (
        open_fake_kraken(replay=path, speed=10) as server,
        v2.open_kraken(server.v2_url) as conn,
    ):
        with anyio.fail_after(LIMIT):
            async with conn.book("BTC/USD", 10) as book:
                while book.book.updates < expected:
                    await anext(book)
        assert book.checksum_mismatches == 0 and book.resyncs == 0


# -- what a connection gets ----------------------------------------------------------


async def test_recorded_greeting_ack_and_pace_scaled_by_speed() -> None:
    async with open_fake_kraken(replay=ticker_recording(), speed=10, heartbeat_interval=0.1) as s:
        assert s.replay is not None
        ws = await connect_websocket(s.url)
        got: list[str | bytes] = []
        assert await recv(ws, got) == STATUS  # the recorded greeting, as is
        assert not s.replay.started
        await ws.send_text(json.dumps({**SUBSCRIBE, "reqid": 99}))
        ack = json.loads(await recv(ws, got))
        assert ack == {**json.loads(ACK), "reqid": 99}  # recorded, with the client's reqid
        subscribed = anyio.current_time()
        arrivals = []
        for expected in (tick(1), tick(2), '{"event":"heartbeat"}', tick(3)):
            assert await recv(ws, got) == expected  # no heartbeat made up meanwhile
            arrivals.append(anyio.current_time() - subscribed)
        # Recorded 1, 2, 4 and 7 s after the subscribe; at speed 10:
        assert arrivals == pytest.approx([0.1, 0.2, 0.4, 0.7], abs=0.01)
        await s.replay.wait_finished()
        # Once the tape has ended, the live rule: a heartbeat after 0.1 s of silence.
        assert json.loads(await recv(ws, got)) == {"event": "heartbeat"}
        await ws.aclose()


async def test_an_unrecorded_stream_gets_a_live_ack_and_no_data() -> None:
    async with open_fake_kraken(replay=ticker_recording()) as server:
        assert server.replay is not None
        ws = await connect_websocket(server.url)
        got: list[str | bytes] = []
        await recv(ws, got)
        await ws.send_text(json.dumps({**SUBSCRIBE, "pair": ["ETH/USD"], "reqid": 5}))
        ack = json.loads(await recv(ws, got))
        assert (ack["status"], ack["pair"], ack["reqid"]) == ("subscribed", "ETH/USD", 5)
        with anyio.move_on_after(30):
            got.extend(await ws.receive_batch())
        assert got == [] and not server.replay.started  # nobody listens to the recording
        await ws.aclose()


async def test_an_unsubscribe_keeps_the_recorded_channel_id_and_pauses_the_tape() -> None:
    async with open_fake_kraken(replay=ticker_recording()) as server:
        assert server.replay is not None
        ws = await connect_websocket(server.url)
        got: list[str | bytes] = []
        await recv(ws, got)
        await ws.send_text(json.dumps(SUBSCRIBE))
        await recv(ws, got)
        assert await recv(ws, got) == tick(1)
        await ws.send_text(json.dumps({**SUBSCRIBE, "event": "unsubscribe"}))
        ack = json.loads(await recv(ws, got))
        assert (ack["status"], ack["channelID"]) == ("unsubscribed", 42)
        position = server.replay.position
        await anyio.sleep(30)  # virtual: nobody listens any more
        assert server.replay.position == position and not server.replay.finished
        await ws.aclose()


async def test_the_other_api_path_is_the_live_fake() -> None:
    async with open_fake_kraken(replay=ticker_recording()) as server:
        ws = await connect_websocket(server.v2_url)
        status = json.loads(await recv(ws, []))
        assert status["channel"] == "status" and status["data"][0]["system"] == "online"
        await ws.aclose()


async def test_the_greeting_is_recorded_unless_set_status_changed_it() -> None:
    maintenance = STATUS.replace("online", "maintenance")
    events = (RecordedEvent("recv", 0.0, 1, maintenance), *ticker_recording().events[2:])
    async with open_fake_kraken(replay=Recording("v1", events)) as server:
        ws = await connect_websocket(server.url)
        assert await recv(ws, []) == maintenance  # as recorded, whatever the fake's default
        await ws.aclose()
    async with open_fake_kraken(replay=ticker_recording()) as server:
        await server.set_status("maintenance")
        ws = await connect_websocket(server.url)
        status = json.loads(await recv(ws, []))
        assert status["status"] == "maintenance" and status["connectionID"] != 7
        await ws.aclose()


async def test_bad_arguments_fail_on_entry(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="pass replay="):
        async with open_fake_kraken(speed=10):
            pass
    with pytest.raises(ValueError, match="speed"):
        async with open_fake_kraken(replay=ticker_recording(), speed=0):
            pass
    (tmp_path / "bad.jsonl").write_text('{"event":"heartbeat"}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        async with open_fake_kraken(replay=tmp_path / "bad.jsonl"):
            pass


# -- pausing, catch-up, faults, loop ---------------------------------------------------


async def test_the_tape_pauses_without_listeners_and_a_resubscribe_catches_up() -> None:
    path = RECORDINGS / "sim-v1-book.jsonl.gz"
    key = ("book-10", "XBT/USD")
    async with open_fake_kraken(replay=path) as server:
        replay = server.replay
        assert replay is not None
        sub = {"event": "subscribe", "pair": ["XBT/USD"], "subscription": {"name": "book"}}
        first = await connect_websocket(server.url)
        got: list[str | bytes] = []
        await recv(first, got)
        await first.send_text(json.dumps({**sub, "reqid": 1}))
        await recv(first, got)  # the ack
        for _ in range(100):
            await recv(first, got)
        await server.drop()
        position = replay.position
        await anyio.sleep(60)  # virtual: nobody listens, so the tape holds still
        assert replay.position == position and not replay.running
        played = [f for f in replay.tape.frames[:position] if f.key == key]
        second = await connect_websocket(server.url)
        got = []
        await recv(second, got)
        await second.send_text(json.dumps({**sub, "reqid": 2}))
        ack = json.loads(await recv(second, got))
        assert (ack["reqid"], ack["channelID"]) == (2, 1)  # the recorded channelID
        # The catch-up: the recorded snapshot and every update after it so far.
        caught = [await recv(second, got) for _ in played]
        assert caught == [f.data for f in played] and played[0].snapshot
        later = await recv(second, got)  # then the tape goes on where it was
        frames = replay.tape.frames[position:]
        assert later == next(f.data for f in frames if f.kind != "status" and not f.initial)
        await second.aclose()


def final_book(path: Path) -> OrderBook:
    """The recording's XBT/USD book-10 at its end, built without any socket."""
    book = OrderBook("XBT/USD", 10)
    for frame in Tape(read_recording(path)).frames:
        if frame.key == ("book-10", "XBT/USD"):
            book.feed(json.loads(frame.data))
    return book


async def test_a_client_book_survives_drop_garbage_and_stall_during_a_replay() -> None:
    path = RECORDINGS / "sim-v1-book.jsonl.gz"
    expected = final_book(path)
    async with open_fake_kraken(replay=path) as server, open_kraken(server.url) as conn:
        assert server.replay is not None
        with anyio.fail_after(LIMIT):
            async with conn.book("XBT/USD", 10) as book:
                await server.replay.wait_until(10.0)  # the incident recipe: a recorded time
                assert 10.0 <= server.replay.time < 10.3 and book.valid
                await drop_and_wait_reconnect(server, conn)
                await server.wait_for_subscription("book-10", "XBT/USD")
                await book.wait_valid()  # resubscribed, caught up from the recording
                await server.send_raw("garbage")
                await conn.ping()  # its pong comes after the garbage: that was read
                assert conn.stats.malformed_frames == 1
                server.stall()  # frames played meanwhile are lost, as a hung server's
                await anyio.sleep(3)
                server.stall(False)
                await server.replay.wait_finished()
                while (book.asks, book.bids) != (expected.asks, expected.bids):
                    await anext(book)  # recovered (resynced if it saw the loss)
        assert conn.generation >= 2 and book.valid


async def test_a_v2_book_is_whole_again_after_a_drop_during_a_replay() -> None:
    path = RECORDINGS / "sim-v2-book.jsonl.gz"
    async with (
        open_fake_kraken(replay=path, speed=10) as server,
        v2.open_kraken(server.v2_url) as conn,
    ):
        assert server.replay is not None
        with anyio.fail_after(LIMIT):
            async with conn.book("BTC/USD", 10) as book:
                await server.replay.wait_until(15.0)
                await drop_and_wait_reconnect(server, conn)  # type: ignore[arg-type]
                await server.wait_for_subscription("book", "BTC/USD", api="v2")
                await book.wait_valid()
                await server.replay.wait_finished()
                await conn.ping()  # its pong comes after every frame played
        # One rebuild for the drop; the tape held still while nobody listened,
        # so the catch-up and what followed fit the book, checksum for checksum.
        assert conn.generation == 2 and book.resyncs == 1 and book.checksum_mismatches == 0


async def test_loop_starts_again_with_the_snapshot() -> None:
    recording = ticker_recording()
    async with open_fake_kraken(replay=recording, speed="max", loop=True) as server:
        assert server.replay is not None
        ws = await connect_websocket(server.url)
        got: list[str | bytes] = []
        await recv(ws, got)
        await ws.send_text(json.dumps(SUBSCRIBE))
        await recv(ws, got)
        seen = [await recv(ws, got) for _ in range(8)]
        assert seen == [tick(1), tick(2), '{"event":"heartbeat"}', tick(3)] * 2
        assert server.replay.passes >= 1 and not server.replay.finished
        await ws.aclose()


async def test_a_looped_book_replay_stays_verified_across_passes() -> None:
    path = RECORDINGS / "sim-v1-book.jsonl.gz"
    async with (
        open_fake_kraken(replay=path, speed="max", loop=True) as server,
        open_kraken(server.url) as conn,
    ):
        assert server.replay is not None
        replay = server.replay
        with anyio.fail_after(LIMIT):
            async with conn.book("XBT/USD", 10) as book:
                await replay.wait_for(lambda: replay.passes >= 2)
                await conn.ping()  # its pong comes after every frame queued so far
                # Each pass starts with the recorded snapshot: the book resets, no mismatch.
                assert book.valid and book.checksum_mismatches == 0 and book.resyncs == 0


async def test_the_fixture_serves_a_recording(kraken_replay: ReplayFactory) -> None:
    async with kraken_replay(ticker_recording(), speed="max") as server:
        async with open_kraken(server.url) as conn, conn.messages(channel="ticker") as stream:
            await conn.subscribe({"name": "ticker"}, "XBT/USD")
            with anyio.fail_after(LIMIT):
                got: list[Any] = []
                async for message in stream:
                    if isinstance(message, list):
                        got.append(message)
                    if len(got) == 3:
                        break
        assert [m[1]["c"][0] for m in got] == ["1.0", "2.0", "3.0"]
        assert all(m[0] == 42 for m in got)


async def test_a_cryptofeed_capture_and_a_binary_frame_are_served(tmp_path: Path) -> None:
    # cryptofeed's raw capture shape (see test_replay_formats), v1 ticker.
    start = 1618678132.0
    lines = [
        f"wss://ws.kraken.com <-> {start}",
        f"wss://ws.kraken.com <- {start + 1}: {json.dumps({**SUBSCRIBE, 'reqid': 1})}",
        f"{start + 1.1}: {STATUS}",
        f"{start + 1.2}: {ACK}",
        f"{start + 2}: {tick(1)}",
        f"{start + 3}: b'\\x00\\x01'",  # how cryptofeed writes a binary frame
        f"{start + 4}: {tick(2)}",
    ]
    path = tmp_path / "KRAKEN.ws.1.0"
    path.write_text("\n".join(lines) + "\n")
    # No heartbeat recorded: the fake's own would come after 60 s of silence.
    async with open_fake_kraken(replay=path, heartbeat_interval=60) as server:
        ws = await connect_websocket(server.url)
        got: list[str | bytes] = []
        assert await recv(ws, got) == STATUS
        await ws.send_text(json.dumps({**SUBSCRIBE, "reqid": 3}))
        assert json.loads(await recv(ws, got))["reqid"] == 3
        start_time = anyio.current_time()
        assert [await recv(ws, got) for _ in range(3)] == [tick(1), b"\x00\x01", tick(2)]
        assert anyio.current_time() - start_time == pytest.approx(3.0, abs=0.01)
        await ws.aclose()
