"""Recording a live session (issue 17 item 1): the file holds exactly the
frames the client received, in order, with what it sent (secrets redacted),
one ``open``/``close`` per socket; rotation; gzip, zstandard, plain; the
overflow policies against a slow sink; a cancelled recording still reads to
its end; bad arguments fail at once. Both backends, virtual time, against
the fake exchange on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime
import gzip
import json
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import free_port, next_of, read_line

from kraky_anyio import Connected, Notice, __version__, open_kraken, v2
from kraky_anyio.recording import RecordingError, RecordOptions, writer
from kraky_anyio.recording.format import Entry, clean_url, redact_frame
from kraky_anyio.recording.recorder import FileSink, Recorder
from kraky_anyio.recording.writer import part_path
from kraky_anyio.testing.server import open_fake_kraken
from kraky_anyio.v1.codec import decode as decode_v1
from kraky_anyio.v2.messages import decode as decode_v2

try:
    import zstandard
except ImportError:  # the optional "record" extra
    zstandard = None

pytestmark = pytest.mark.anyio

TOKEN = "SECRET-TOKEN-4f1d2c"
SUFFIXES = [
    ".jsonl.gz",
    ".jsonl",
    pytest.param(
        ".jsonl.zst",
        marks=pytest.mark.skipif(
            zstandard is None,
            reason='zstandard is not installed (pip install "kraky-anyio[record]")',
        ),
    ),
]


def raw_text(path: Path) -> str:
    """A file's whole text, decompressed as its base name says (a truncated
    compressed stream raises here)."""
    data = path.read_bytes()
    name = path.name.rstrip("0123456789").rstrip(".") if path.suffix[1:].isdigit() else path.name
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    elif name.endswith(".zst"):
        assert zstandard is not None
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data.decode("utf-8")


def parts(path: Path) -> list[list[dict[str, Any]]]:
    """Every part of a recording, each as its lines."""
    found = []
    k = 0
    while part_path(path, k).exists():
        found.append([json.loads(line) for line in raw_text(part_path(path, k)).splitlines()])
        k += 1
    return found


def lines(path: Path) -> list[dict[str, Any]]:
    """The lines of every part, headers left out."""
    return [line for part in parts(path) for line in part if line["kind"] != "header"]


def received(path: Path) -> list[str | bytes]:
    return [
        line["text"] if "text" in line else base64.b64decode(line["b64"])
        for line in lines(path)
        if line["kind"] == "recv"
    ]


async def collect(stream: Any, until: Callable[[Any], bool]) -> list[Any]:
    """The messages of ``stream`` up to and including the first ``until``."""
    got = []
    with anyio.fail_after(60):
        async for msg in stream:
            got.append(msg)
            if until(msg):
                return got
    raise AssertionError("stream ended")


def is_pong(msg: Any) -> bool:
    return (isinstance(msg, dict) and msg.get("event") == "pong") or (
        getattr(msg, "method", None) == "pong"
    )


# -- what the file holds ---------------------------------------------------------

#: Frames the server sends as is: spacing, key order, escapes and non-ASCII
#: text must come back exactly.
ODD_V1 = [
    '{ "event" : "heartbeat" }',
    '{"event":"heartbeat","note":"caf\\u00e9 ☕ \\"quoted\\"\\n"}',
    '[42,{"a":["1.10","2.000"]},"ticker","XBT/USD"]',
]
ODD_V2 = [
    '{ "channel" : "heartbeat" }',
    '{"channel":"heartbeat","note":"caf\\u00e9 ☕ \\"quoted\\"\\n"}',
]


@pytest.mark.parametrize("io", ["thread", "inline"])
@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_the_file_holds_exactly_the_frames_received_in_order(
    tmp_path: Path, api: str, io: Any
) -> None:
    path = tmp_path / "session.jsonl.gz"
    opener = open_kraken if api == "v1" else v2.open_kraken
    decode = decode_v1 if api == "v1" else decode_v2
    odd = ODD_V1 if api == "v1" else ODD_V2
    async with open_fake_kraken() as server:
        url = server.url if api == "v1" else server.v2_url
        async with (
            opener(url, record=RecordOptions(path, io=io)) as conn,
            conn.messages() as stream,
        ):
            if api == "v1":
                await conn.subscribe({"name": "ticker"}, ["XBT/USD"])
            else:
                await conn.subscribe("ticker", ["BTC/USD"])
            for text in odd:
                await server.send_raw(text)
            await server.send_raw(b"\x00\xffbinary")
            await conn.ping()  # its pong comes after every frame above
            got = await collect(stream, is_pong)
            frames = conn.stats.frames_received
            recorder = conn.recording
            assert recorder is not None
        # After the block: the binary frame is counted, not published.
        assert recorder.stats.frames_seen == frames
    assert recorder.stats.frames_recorded == frames and recorder.stats.frames_dropped == 0

    recorded = received(path)
    assert len(recorded) == frames
    assert b"\x00\xffbinary" in recorded
    texts = [r for r in recorded if isinstance(r, str)]
    # Byte for byte: the odd frames appear exactly as the server wrote them.
    start = texts.index(odd[0])
    assert texts[start : start + len(odd)] == odd
    # In order: what the consumer got is what the file holds, frame by frame.
    data = [m for m in got if not isinstance(m, Notice)]
    assert [decode(t) for t in texts[: len(data)]] == data

    header, *_ = parts(path)[0]
    assert header["kind"] == "header" and header["format"] == "kraky-anyio-recording"
    assert header["version"] == 1 and header["library"] == __version__
    assert header["api"] == api and header["url"] == url and header["part"] == 0
    started = datetime.datetime.strptime(header["started"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert started.year >= 2024
    body = lines(path)
    assert body[0] == {"kind": "open", "t": body[0]["t"], "wall": body[0]["wall"], "gen": 1}
    assert body[-1]["kind"] == "close" and body[-1]["gen"] == 1
    ts = [line["t"] for line in body]
    assert ts == sorted(ts) and ts[0] >= 0
    assert all(isinstance(line["wall"], float) for line in body)


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_sent_frames_are_recorded_with_the_token_redacted(tmp_path: Path, api: str) -> None:
    path = tmp_path / "private.jsonl"
    async with open_fake_kraken(valid_tokens={TOKEN}) as server:
        if api == "v1":
            async with open_kraken(server.url, token=TOKEN, record=path) as conn:
                await conn.subscribe({"name": "ownTrades"})
                await conn.subscribe({"name": "ticker"}, ["XBT/USD"])
                await conn.unsubscribe({"name": "ticker"}, ["XBT/USD"])
                await conn.ping()
        else:
            async with v2.open_kraken(server.v2_url, token=TOKEN, record=path) as conn2:
                await conn2.subscribe("executions")
                await conn2.subscribe("ticker", ["BTC/USD"])
                await conn2.unsubscribe("ticker", ["BTC/USD"])
                await conn2.ping()
        wrote = server.all_received()
    text = path.read_text()
    assert TOKEN not in text  # the whole file, read back raw
    sent = [json.loads(line["text"]) for line in lines(path) if line["kind"] == "sent"]
    # Everything the client wrote, in order: the server's view minus the token.
    assert sent == [redact_frame_obj(frame) for frame in wrote]
    assert any(TOKEN in json.dumps(frame) for frame in wrote)  # it was sent, though
    # Every request is on file before its replies (the tap sees it before the write).
    body = lines(path)
    sent_at = {
        req_id(json.loads(line["text"])): k for k, line in enumerate(body) if line["kind"] == "sent"
    }
    replies = 0
    for k, line in enumerate(body):
        reply = json.loads(line["text"]) if line["kind"] == "recv" else None
        if isinstance(reply, dict) and req_id(reply) is not None:
            assert sent_at[req_id(reply)] < k
            replies += 1
    assert replies >= 4
    if api == "v1":
        private = next(s for s in sent if s.get("subscription", {}).get("name") == "ownTrades")
        assert private["subscription"]["token"] == "<redacted>"
        assert [s["event"] for s in sent] == ["subscribe", "subscribe", "unsubscribe", "ping"]
    else:
        private = next(s for s in sent if s["params"].get("channel") == "executions")
        assert private["params"]["token"] == "<redacted>"
        assert [s["method"] for s in sent] == ["subscribe", "subscribe", "unsubscribe", "ping"]


def req_id(frame: dict[str, Any]) -> Any:
    return frame.get("reqid", frame.get("req_id"))


def redact_frame_obj(frame: Any) -> Any:
    """What the recording should hold for a frame the server decoded."""
    return json.loads(redact_frame(json.dumps(frame)))


def test_redaction_keeps_the_rest_of_the_text_and_catches_odd_spellings() -> None:
    exact = '{"method":"add_order","params":{"limit_price":1.10,"token" : "abc\\"d"},"req_id":7}'
    assert redact_frame(exact) == exact.replace('"abc\\"d"', '"<redacted>"')
    escaped = '{"params":{"\\u0074oken":"abc","n":[1.10,2e5],"deep":[{"secret":5}]}}'
    out = redact_frame(escaped)
    assert "abc" not in out and json.loads(out)["params"]["token"] == "<redacted>"
    assert json.loads(out)["params"]["deep"] == [{"secret": "<redacted>"}]
    assert '"n":[1.10,2e5]' in out  # numbers kept as written
    assert redact_frame('{"event":"ping","reqid":1}') == '{"event":"ping","reqid":1}'
    # The header's URL: no query string, fragment or user info.
    assert clean_url("wss://user:pw@[::1]:8443/v2?token=abc#x") == "wss://[::1]:8443/v2"
    assert clean_url("wss://ws.kraken.com") == "wss://ws.kraken.com"


async def test_a_reconnect_is_two_sockets_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "reconnect.jsonl.gz"
    async with (
        open_fake_kraken() as server,
        open_kraken(server.url, record=RecordOptions(path, io="inline")) as conn,
    ):
        await conn.subscribe({"name": "ticker"}, ["XBT/USD"])
        async with conn.messages() as stream:
            await server.drop()
            await next_of(stream, lambda m: isinstance(m, Connected) and m.generation == 2)
        await conn.ping()
    body = lines(path)
    sockets = [(line["kind"], line["gen"]) for line in body if line["kind"] in ("open", "close")]
    assert sockets == [("open", 1), ("close", 1), ("open", 2), ("close", 2)]
    first_close = next(line for line in body if line["kind"] == "close")
    assert first_close["reason"]
    # The subscribe on socket 1, its replay on socket 2, each after its open.
    sent = [(line["gen"], json.loads(line["text"])) for line in body if line["kind"] == "sent"]
    subscribes = [gen for gen, frame in sent if frame.get("event") == "subscribe"]
    assert subscribes == [1, 2]
    gens = [line["gen"] for line in body if "gen" in line]
    assert gens == sorted(gens)


# -- files -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", SUFFIXES)
async def test_each_compression_reads_back_whole(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"s{suffix}"
    async with open_fake_kraken() as server, v2.open_kraken(server.v2_url, record=path) as conn:
        await conn.subscribe("ticker", ["BTC/USD"])
        for n in range(50):
            await server.send_raw(f'{{"channel":"heartbeat","n":{n}}}')
        await conn.ping()
        frames = conn.stats.frames_received
    raw = path.read_bytes()
    magic = {".jsonl.gz": b"\x1f\x8b", ".jsonl.zst": b"\x28\xb5\x2f\xfd", ".jsonl": b'{"kind"'}
    assert raw.startswith(magic[suffix])
    assert len(received(path)) == frames
    assert [f'{{"channel":"heartbeat","n":{n}}}' for n in range(50)] == [
        t for t in received(path) if isinstance(t, str) and '"n":' in t
    ]


async def test_rotation_by_size_splits_into_parts_each_with_a_header(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl.gz"
    sent = [f'{{"channel":"heartbeat","pad":"{"x" * 200}","n":{n}}}' for n in range(40)]
    async with open_fake_kraken() as server:
        opts = RecordOptions(path, rotate_bytes=2000)
        async with v2.open_kraken(server.v2_url, record=opts) as conn:
            await conn.wait_connected()
            for text in sent:
                await server.send_raw(text)
            await conn.ping()
            recorder = conn.recording
        assert recorder is not None
    found = parts(path)
    assert len(found) >= 5 and recorder.stats.parts == len(found)
    for k, part in enumerate(found):
        assert part[0]["kind"] == "header" and part[0]["part"] == k
        assert part[0]["started"] == found[0][0]["started"]
        assert len(part) >= 2  # a header and at least one line
        size = len(raw_text(part_path(path, k)).encode())
        assert size <= 2000 or len(part) == 2
    assert [t for t in received(path) if "pad" in str(t)] == sent


async def test_rotation_by_time_on_recording_time(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    async with open_fake_kraken() as server, v2.open_kraken(server.v2_url) as conn:
        await conn.wait_connected()
        async with conn.record(path, rotate_seconds=60, io="inline") as recorder:
            for minute in range(3):
                await server.send_raw(f'{{"channel":"heartbeat","minute":{minute}}}')
                await conn.ping()
                await anyio.sleep(61)  # virtual time: a minute passes
    found = parts(path)
    assert recorder.stats.parts == len(found) >= 3
    starts = [part[1]["t"] for part in found]
    for k, part in enumerate(found):
        # A part spans less than rotate_seconds; the next starts past them.
        assert part[-1]["t"] - part[1]["t"] < 60
        if k:
            assert starts[k] - starts[k - 1] >= 60
    minute_parts = [
        k
        for k, part in enumerate(found)
        for line in part
        if line["kind"] == "recv" and "minute" in line["text"]
    ]
    assert minute_parts == sorted(set(minute_parts)) and len(minute_parts) == 3


# -- record(): a block of a connection ---------------------------------------------------


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_record_block_starts_mid_socket_and_stops_on_exit(tmp_path: Path, api: str) -> None:
    path = tmp_path / "block.jsonl.gz"
    async with open_fake_kraken() as server:
        opener = open_kraken(server.url) if api == "v1" else v2.open_kraken(server.v2_url)
        async with opener as conn:
            await conn.wait_connected()
            await server.send_raw('{"before":1}')  # not Kraken's: counted malformed
            await conn.ping()
            async with conn.record(path, io="inline") as recorder:
                await server.send_raw('{"during":1}')
                await conn.ping()
            await server.send_raw('{"after":1}')
            await conn.ping()
    body = lines(path)
    assert body[0]["kind"] == "open" and body[0]["gen"] == 1 and body[0]["t"] == 0
    texts = received(path)
    assert len(texts) == recorder.stats.frames_recorded
    # Heartbeats may come in between (on virtual time, the clock jumps to
    # them while the file is opened): the rest is this block's, in order.
    mine = [t for t in texts if "heartbeat" not in str(t)]
    assert mine[0] == '{"during":1}' and "pong" in str(mine[1]) and len(mine) == 2
    sent = [json.loads(line["text"]) for line in body if line["kind"] == "sent"]
    assert len(sent) == 1 and ("ping" in (sent[0].get("event"), sent[0].get("method")))


async def test_two_recordings_at_once_each_get_every_frame(tmp_path: Path) -> None:
    whole, part = tmp_path / "whole.jsonl", tmp_path / "part.jsonl.gz"
    async with (
        open_fake_kraken() as server,
        open_kraken(server.url, record=RecordOptions(whole, io="inline")) as conn,
    ):
        await conn.ping()  # the status frame came before the pong
        async with conn.record(part, io="inline"):
            await server.send_raw('{"both":1}')
            await conn.ping()
    assert '{"both":1}' in received(whole) and '{"both":1}' in received(part)
    assert len(received(whole)) > len(received(part))


# -- overflow: a slow disk ---------------------------------------------------------------


class GatedSink:
    """A sink that holds each write until the test opens the gate."""

    def __init__(self) -> None:
        self.written: list[Entry] = []
        self.entered = anyio.Event()
        self.gate = anyio.Event()
        self.closed = False

    async def write(self, entries: list[Entry]) -> None:
        self.entered.set()
        await self.gate.wait()
        self.written.extend(entries)

    async def aclose(self) -> None:
        self.closed = True


def recorder_with(sink: GatedSink, **options: Any) -> Recorder:
    opts = RecordOptions.make("unused.jsonl", options)
    return Recorder(opts, api="v1", url="ws://127.0.0.1:1", sink=sink)


async def test_overflow_drop_counts_the_lost_frames_and_marks_a_gap() -> None:
    sink = GatedSink()
    recorder = recorder_with(sink, buffer=3, overflow="drop")
    await recorder.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(recorder.run)
        recorder.opened(1, 0.0)
        assert recorder.received(1, ["f0"], 1.0) is False
        with anyio.fail_after(10):
            await sink.entered.wait()  # the writer holds [open, f0] at the gate
        assert recorder.received(1, ["f1", "f2"], 2.0) is False
        assert recorder.received(1, ["f3", "f4", "f5"], 3.0) is False  # f3 kept, 2 dropped
        assert recorder.received(1, ["f6"], 4.0) is False  # dropped
        recorder.sent(1, '{"event":"ping"}', 5.0)  # never dropped; the gap goes first
        stats = recorder.stats
        assert stats.frames_dropped == 3 and stats.frames_seen == 7
        sink.gate.set()
        tg.cancel_scope.cancel()
    await recorder.aclose()
    kinds = [(e[0], e[4]) for e in sink.written]
    assert kinds == [
        ("open", None),
        ("recv", "f0"),
        ("recv", "f1"),
        ("recv", "f2"),
        ("recv", "f3"),
        ("gap", 3),
        ("sent", '{"event":"ping"}'),
    ]
    gap = sink.written[5]
    assert gap[1] == 4.0  # the last lost frame's time
    assert stats.frames_recorded == 4 and stats.gaps == 1 and sink.closed
    assert stats.frames_seen == stats.frames_recorded + stats.frames_dropped


async def test_overflow_block_holds_the_reader_until_the_disk_catches_up() -> None:
    sink = GatedSink()
    recorder = recorder_with(sink, buffer=2, overflow="block")
    await recorder.start()
    progress: list[str] = []

    async def reader() -> None:
        for n in range(6):
            if recorder.received(1, [f"f{n}"], float(n)):
                await recorder.wait_room()
            progress.append(f"f{n}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(recorder.run)
        recorder.received(1, ["first"], 0.0)
        with anyio.fail_after(10):
            await sink.entered.wait()
        tg.start_soon(reader)
        await anyio.wait_all_tasks_blocked()
        assert progress == ["f0"]  # f1 filled the buffer: the reader waits
        sink.gate.set()
        with anyio.fail_after(10):
            while len(progress) < 6:
                await anyio.wait_all_tasks_blocked()
                await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    await recorder.aclose()
    assert [e[4] for e in sink.written] == ["first", *(f"f{n}" for n in range(6))]
    assert recorder.stats.frames_dropped == 0 and recorder.stats.frames_recorded == 7


async def test_a_failing_disk_stops_the_recording_not_the_connection(tmp_path: Path) -> None:
    class BrokenSink(GatedSink):
        async def write(self, entries: list[Entry]) -> None:
            raise OSError(28, "No space left on device")

    sink = BrokenSink()
    recorder = recorder_with(sink)
    await recorder.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(recorder.run)
        recorder.received(1, ["a", "b"], 1.0)
        await anyio.wait_all_tasks_blocked()
        recorder.received(1, ["c"], 2.0)
        tg.cancel_scope.cancel()
    with pytest.raises(RecordingError, match="No space left") as caught:
        await recorder.aclose()
    assert isinstance(caught.value.__cause__, OSError)
    assert recorder.stats.frames_dropped == 3 and recorder.stats.frames_recorded == 0


# -- cancellation: the file is always complete --------------------------------------------


@pytest.mark.parametrize("suffix", SUFFIXES)
async def test_cancelled_mid_recording_the_file_reads_to_its_end(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"cut{suffix}"
    async with open_fake_kraken() as server:

        async def flood() -> None:
            n = 0
            while True:
                await server.send_raw(f'{{"channel":"heartbeat","n":{n}}}')
                n += 1
                await anyio.sleep(0.001)

        with anyio.CancelScope() as scope:
            async with v2.open_kraken(server.v2_url, record=path) as conn:
                await conn.wait_connected()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(flood)
                    async with conn.messages() as stream:
                        seen = 0
                        async for _msg in stream:
                            seen += 1
                            if seen == 200:
                                scope.cancel()  # Ctrl-C, as far as the block can tell
        assert scope.cancelled_caught
        recorder = conn.recording
        assert recorder is not None
    body = lines(path)  # raises if a compressed stream was left unfinished
    assert body[-1]["kind"] == "close"
    assert len(received(path)) == recorder.stats.frames_recorded >= 200
    assert recorder.stats.frames_dropped == 0


async def test_cancelled_record_block_leaves_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "block.jsonl.gz"
    async with open_fake_kraken() as server, open_kraken(server.url) as conn:
        await conn.ping()  # the status frame came before the pong
        with anyio.CancelScope() as scope:
            async with conn.record(path, io="inline"):
                await server.send_raw('{"x":1}')
                await conn.ping()
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught
    assert received(path)[0] == '{"x":1}'


# -- bad arguments fail at once ----------------------------------------------------------


async def test_bad_arguments_fail_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "ws://127.0.0.1:9"  # nothing is connected to: the checks come first
    with pytest.raises(ValueError, match=r"\.jsonl\.gz, \.jsonl\.zst or \.jsonl"):
        async with open_kraken(url, record=tmp_path / "x.txt"):
            pass
    with pytest.raises(ValueError, match="overflow must be"):
        RecordOptions(tmp_path / "x.jsonl", overflow="wait")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="buffer must be >= 1"):
        RecordOptions(tmp_path / "x.jsonl", buffer=0)
    with pytest.raises(TypeError, match="rotate_bytes must be an int"):
        RecordOptions(tmp_path / "x.jsonl", rotate_bytes="1k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rotate_seconds must be > 0"):
        RecordOptions(tmp_path / "x.jsonl", rotate_seconds=float("inf"))
    with pytest.raises(TypeError, match="a str or a path"):
        RecordOptions(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown recording option"):
        RecordOptions.make(tmp_path / "x.jsonl", {"rotate": 5})
    with pytest.raises(TypeError, match="not both"):
        RecordOptions.make(RecordOptions(tmp_path / "x.jsonl"), {"buffer": 5})
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(RecordingError, match=r"kraky-anyio\[record\]"):
        async with v2.open_kraken(url, record=tmp_path / "x.jsonl.zst"):
            pass
    assert not await anyio.Path(tmp_path).exists() or not [
        p async for p in anyio.Path(tmp_path).iterdir()
    ]  # nothing was created


async def test_an_existing_recording_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("precious\n")
    (tmp_path / "s.jsonl.3").write_text("old part\n")
    async with open_fake_kraken() as server:
        with pytest.raises(FileExistsError, match="overwrite=True"):
            async with open_kraken(server.url, record=path):
                pass
        assert server.connection_attempts == 0
        async with open_kraken(server.url) as conn:
            with pytest.raises(FileExistsError):
                async with conn.record(path):
                    pass
            async with conn.record(path, overwrite=True):
                await conn.ping()
    assert path.read_text().startswith('{"kind":"header"')
    assert not (tmp_path / "s.jsonl.3").exists()  # the old recording's part went with it


async def test_record_on_a_closed_connection_is_refused(tmp_path: Path) -> None:
    async with open_fake_kraken() as server, open_kraken(server.url) as conn:
        pass
    with pytest.raises(Exception, match="closed"):
        async with conn.record(tmp_path / "late.jsonl"):
            pass
    assert not (tmp_path / "late.jsonl").exists()


# -- the command line: real processes, real time, each bounded ------------------------

CLI = [sys.executable, "-m", "kraky_anyio"]
TIMEOUT = 30.0  # seconds: a bound for each process, never a synchronisation


def _default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


@pytest.fixture(scope="module")
def serve() -> Iterator[tuple[str, str]]:
    """``kraky-anyio serve`` (the simulated market) for this module: its URLs."""
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        bufsize=0,
        preexec_fn=_default_signals,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + TIMEOUT
        yield read_line(proc.stdout, deadline).strip(), read_line(proc.stdout, deadline).strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cli_records_for_its_duration(serve: tuple[str, str], tmp_path: Path, backend: str) -> None:
    path = tmp_path / "book.jsonl.gz"
    argv = ["--duration", "1.5", "--backend", backend]
    done = subprocess.run(
        [*CLI, "record", *argv, "book", "BTC/USD", "--url", serve[1], "-o", str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    summary = done.stderr.splitlines()[-1]
    recorded = received(path)
    assert f"recorded {len(recorded)} frames received and 1 sent" in summary
    assert summary.endswith("0 dropped")
    header = parts(path)[0][0]
    assert header["api"] == "v2" and header["url"] == serve[1]
    sent = [json.loads(line["text"]) for line in lines(path) if line["kind"] == "sent"]
    assert sent[0]["method"] == "subscribe" and sent[0]["params"]["channel"] == "book"
    frames = [json.loads(t) for t in recorded if isinstance(t, str)]
    assert any(f.get("channel") == "book" and f.get("type") == "snapshot" for f in frames)
    assert any(f.get("channel") == "book" and f.get("type") == "update" for f in frames)


def test_cli_ctrl_c_finishes_the_file(serve: tuple[str, str], tmp_path: Path) -> None:
    path = tmp_path / "ticker.jsonl.gz"
    argv = ["--rotate-bytes", "1500", "--api", "v1"]
    proc = subprocess.Popen(
        [*CLI, "record", *argv, "ticker", "XBT/USD", "--url", serve[0], "-o", str(path)],
        stderr=subprocess.PIPE,
        bufsize=0,
        preexec_fn=_default_signals,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + TIMEOUT
    assert "recording ticker XBT/USD" in read_line(proc.stderr, deadline)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("did not exit on Ctrl-C")
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and b"recorded " in err
    body = lines(path)  # every part reads to its end
    assert body[-1]["kind"] == "close"
    frames = [json.loads(t) for t in received(path) if isinstance(t, str)]
    assert frames[0]["event"] == "systemStatus"
    assert any(f.get("event") == "subscriptionStatus" for f in frames)


def test_cli_bad_output_is_refused_before_connecting(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}"  # nothing listens: nothing may connect
    bad = subprocess.run(
        [*CLI, "record", "ticker", "BTC/USD", "--url", url, "-o", str(tmp_path / "x.csv")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert bad.returncode == 2 and ".jsonl.gz, .jsonl.zst or .jsonl" in bad.stderr
    assert len(bad.stderr.splitlines()) == 1
    existing = tmp_path / "x.jsonl"
    existing.write_text("keep me\n")
    taken = subprocess.run(
        [*CLI, "record", "ticker", "BTC/USD", "--url", url, "-o", str(existing)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert taken.returncode == 2 and "--force" in taken.stderr, taken.stderr
    assert existing.read_text() == "keep me\n"
    missing = subprocess.run(
        [*CLI, "record", "ticker", "--url", url, "-o", str(tmp_path / "y.jsonl")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert missing.returncode == 2 and "needs at least one symbol" in missing.stderr


async def test_overflow_block_through_the_shell_loses_nothing(tmp_path: Path) -> None:
    # buffer=1: every read waits for the writer (the shell's backpressure path).
    path = tmp_path / "block.jsonl"
    record = RecordOptions(path, overflow="block", buffer=1, io="inline")
    sent = [f'{{"channel":"heartbeat","n":{n}}}' for n in range(300)]
    async with open_fake_kraken() as server:
        async with v2.open_kraken(server.v2_url, record=record) as conn:
            await conn.wait_connected()
            for text in sent:
                await server.send_raw(text)
            await conn.ping()
            recorder = conn.recording
            assert recorder is not None
        stats = recorder.stats
    assert stats.frames_dropped == 0 and stats.frames_recorded == stats.frames_seen
    assert [t for t in received(path) if '"n":' in str(t)] == sent


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_live_part_is_flushed_so_it_can_be_followed(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "FLUSH_SECONDS", 0.0)  # every batch flushes
    path = tmp_path / f"live{suffix}"
    files = writer.PartWriter(path, lambda part: {"kind": "header", "part": part})
    try:
        files.write([("recv", 0.5, 1.0, 1, '{"live":1}')])
        data = path.read_bytes()  # the file is still open: its stream is not finished
        if suffix.endswith(".gz"):
            data = zlib.decompressobj(wbits=31).decompress(data)
        elif suffix.endswith(".zst"):
            assert zstandard is not None
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        assert b'"text":"{\\"live\\":1}"' in data
    finally:
        files.close()


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_a_socket_opening_while_the_file_is_created_still_gets_its_open_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    # conn.record() entered before the first socket is open; the file is
    # created in a worker thread, and the socket opens meanwhile. The tap is
    # attached only after that, so its open line must come from the attach.
    path = tmp_path / "early.jsonl.gz"
    create = FileSink.open

    async with open_fake_kraken() as server:
        opener = open_kraken(server.url) if api == "v1" else v2.open_kraken(server.v2_url)
        async with opener as conn:

            async def create_late(cls: type[FileSink], *args: Any) -> FileSink:
                await conn.wait_connected()  # the socket opens while the file is created
                return await create(*args)

            monkeypatch.setattr(FileSink, "open", classmethod(create_late))
            assert not conn.connected
            async with conn.record(path) as recorder:
                assert conn.connected
                await conn.ping()
    body = lines(path)
    assert body[0]["kind"] == "open" and body[0]["gen"] == conn.generation == 1
    assert [line["kind"] for line in body].count("open") == 1
    assert len(received(path)) == recorder.stats.frames_recorded > 0
