"""Reading recordings for replay (our format, cryptofeed's raw capture, plain
frame lists) and sorting them into a tape. Plain pytest: no event loop."""

from __future__ import annotations

import gzip
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from kraky_anyio.testing.replay import parse_speed
from kraky_anyio.testing.replay_formats import (
    Recording,
    RecordingFormatError,
    detect_format,
    read_recording,
)
from kraky_anyio.testing.replay_tape import DATA, HEARTBEAT, RAW, STATUS, Tape

STATUS_V1 = '{"connectionID":1,"event":"systemStatus","status":"online","version":"1.9.1"}'
SUB_V1 = '{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"book"},"reqid":1}'
ACK_V1 = (
    '{"channelID":336,"channelName":"book-10","event":"subscriptionStatus","pair":"XBT/USD",'
    '"reqid":1,"status":"subscribed","subscription":{"depth":10,"name":"book"}}'
)
SNAP_V1 = (
    '[336,{"as":[["5541.30000","2.50700000","1534614248.123678"]],'
    '"bs":[["5541.20000","1.52900000","1534614248.765567"]]},"book-10","XBT/USD"]'
)
UPD_V1 = '[336,{"a":[["5541.30000","2.00000000","1534614249.1"]],"c":"1"},"book-10","XBT/USD"]'
BEAT_V1 = '{"event":"heartbeat"}'


def header(api: str = "v1", part: int = 0) -> dict[str, Any]:
    return {
        "kind": "header",
        "format": "kraky-anyio-recording",
        "version": 1,
        "library": "0.1.0",
        "api": api,
        "url": "wss://ws.kraken.com" + ("/v2" if api == "v2" else ""),
        "started": "2026-12-01T18:00:00Z",
        "part": part,
    }


def line(kind: str, t: float, text: str | None = None, **more: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": kind, "t": t, "wall": 1796000000 + t, "gen": 1, **more}
    if text is not None:
        entry["text"] = text
    return entry


def v1_lines() -> list[dict[str, Any]]:
    return [
        line("open", 0.0),
        line("recv", 0.1, STATUS_V1),
        line("sent", 1.0, SUB_V1),
        line("recv", 1.05, ACK_V1),
        line("recv", 1.1, SNAP_V1),
        line("recv", 2.0, UPD_V1),
        line("recv", 2.5, BEAT_V1),
        line("gap", 2.6, dropped=3),
        line("recv", 3.0, '{"event":"pong","reqid":9}'),
        line("close", 4.0, reason="done"),
    ]


def write_jsonl(path: Path, entries: list[dict[str, Any]]) -> Path:
    text = "".join(json.dumps(e) + "\n" for e in entries).encode()
    name = path.name.rstrip("0123456789").rstrip(".")  # a part: NAME.1
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text))
    elif name.endswith(".zst"):
        zstandard = pytest.importorskip("zstandard")
        path.write_bytes(zstandard.ZstdCompressor().compress(text))
    else:
        path.write_bytes(text)
    return path


# -- our format -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["s.jsonl", "s.jsonl.gz", "s.jsonl.zst"])
def test_our_format_plain_gzip_and_zstandard(tmp_path: Path, name: str) -> None:
    path = write_jsonl(tmp_path / name, [header(), *v1_lines()])
    assert detect_format(path) == "kraky"
    rec = read_recording(path)
    assert (rec.api, rec.format, rec.url) == ("v1", "kraky", "wss://ws.kraken.com")
    assert [e.kind for e in rec.events] == [
        "open", "recv", "sent", "recv", "recv", "recv", "recv", "gap", "recv", "close"
    ]  # fmt: skip
    assert rec.received[:2] == [STATUS_V1, ACK_V1] and rec.dropped == 3
    assert rec.events[-1].data == "done" and rec.duration == 4.0


def test_rotated_parts_are_read_in_part_order(tmp_path: Path) -> None:
    lines = v1_lines()
    path = write_jsonl(tmp_path / "s.jsonl.gz", [header(), *lines[:4]])
    write_jsonl(tmp_path / "s.jsonl.gz.1", [header(part=1), *lines[4:7]])
    write_jsonl(tmp_path / "s.jsonl.gz.2", [header(part=2), *lines[7:]])
    rec = read_recording(path)
    assert [e.t for e in rec.events] == [e["t"] for e in lines]


def test_a_binary_frame_and_unknown_kinds(tmp_path: Path) -> None:
    entries = [header(), line("recv", 0.0, STATUS_V1), {"kind": "recv", "t": 0.5, "b64": "AAE="}]
    entries.append({"kind": "later-kind", "t": 0.6})  # readers ignore what they do not know
    rec = read_recording(write_jsonl(tmp_path / "b.jsonl", entries))
    assert rec.received == [STATUS_V1, b"\x00\x01"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not JSON"),
        ('{"kind":"recv","t":"soon","text":"x"}', "'t' must be a number"),
        ('{"kind":"recv","t":1}', "needs 'text' or 'b64'"),
        ('{"kind":"recv","t":1,"b64":"!!"}', "bad base64"),
        ("[1,2]", "not an object with a 'kind'"),
    ],
)
def test_a_malformed_line_names_its_number(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(header()) + "\n" + json.dumps(line("recv", 0, STATUS_V1)) + "\n")
    with path.open("a") as f:
        f.write(bad + "\n")
    with pytest.raises(RecordingFormatError, match=rf"m\.jsonl:3: .*{message}") as info:
        read_recording(path)
    assert info.value.line == 3


def test_a_header_of_another_version_or_format(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "v.jsonl", [{**header(), "version": 2}, line("recv", 0, "{}")])
    with pytest.raises(RecordingFormatError, match=r"v\.jsonl:1: format version 2"):
        read_recording(path)
    other = write_jsonl(tmp_path / "o.jsonl", [{**header(), "format": "x"}])
    with pytest.raises(RecordingFormatError, match=r"o\.jsonl:1: a header of format 'x'"):
        read_recording(other)


def test_bad_arguments_and_missing_files(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [header(), *v1_lines()])
    with pytest.raises(ValueError, match="format must be one of"):
        read_recording(path, format="csv")
    with pytest.raises(ValueError, match="api must be"):
        read_recording(path, api="v3")
    with pytest.raises(FileNotFoundError):
        read_recording(tmp_path / "nowhere.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(RecordingFormatError, match="empty"):
        read_recording(tmp_path / "empty.jsonl")
    (tmp_path / "prose.txt").write_text("hello world\n")
    with pytest.raises(RecordingFormatError, match=r"prose\.txt:1: not a recording"):
        read_recording(tmp_path / "prose.txt")
    assert read_recording(path, api="v2").api == "v2"  # forced


# -- cryptofeed's raw capture ------------------------------------------------------


def cryptofeed_lines(address: str, frames: list[str], start: float = 1618678132.0) -> list[str]:
    """The shape cryptofeed's AsyncFileCallback writes for one WebSocket."""
    out = [f"{address} <-> {start}", f"{address} <- {start + 0.4}: {SUB_V1}"]
    out += [f"{start + 0.5 + i / 10}: {frame}" for i, frame in enumerate(frames)]
    return out


def test_cryptofeed_raw_capture(tmp_path: Path) -> None:
    lines = cryptofeed_lines("wss://ws.kraken.com", [STATUS_V1, ACK_V1, SNAP_V1, BEAT_V1])
    lines.insert(2, "https://api.kraken.com/0/public/AssetPairs -> 1618678132.1: {}")
    path = tmp_path / "KRAKEN.ws.48.0"
    path.write_text("\n".join(lines) + "\n\n")
    (tmp_path / "KRAKEN.ws.48.1").write_text(f"1618678140.0: {UPD_V1}\n")  # its rotation
    assert detect_format(path) == "cryptofeed"
    rec = read_recording(path)
    assert (rec.api, rec.url) == ("v1", "wss://ws.kraken.com")
    assert [e.kind for e in rec.events] == ["open", "sent", "recv", "recv", "recv", "recv", "recv"]
    assert rec.events[1].t == pytest.approx(0.4) and rec.events[-1].t == pytest.approx(8.0)
    assert rec.received == [STATUS_V1, ACK_V1, SNAP_V1, BEAT_V1, UPD_V1]
    tape = Tape(rec)
    assert tape.frames[0].t == pytest.approx(0.3)  # the snapshot, after the recorded subscribe


def test_cryptofeed_v2_address_and_a_bad_line(tmp_path: Path) -> None:
    v2 = tmp_path / "KRAKEN.ws.1.0"
    v2.write_text("\n".join(cryptofeed_lines("wss://ws.kraken.com/v2", ['{"channel":"x"}'])))
    assert read_recording(v2).api == "v2"
    bad = tmp_path / "KRAKEN.ws.2.0"
    bad.write_text(f"1618678132.1: {STATUS_V1}\nnot a line\n")
    with pytest.raises(RecordingFormatError, match=r"KRAKEN\.ws\.2\.0:2: expected"):
        read_recording(bad)


# -- plain frame lists ------------------------------------------------------------


def test_a_json_array_keeps_each_frames_exact_text(tmp_path: Path) -> None:
    v2_frame = '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","qty":4.0}]}'
    path = tmp_path / "frames.json"
    path.write_text(f'[\n  {v2_frame},\n  "{{\\"channel\\":\\"heartbeat\\"}}"\n]\n')
    assert detect_format(path) == "frames"
    rec = read_recording(path)
    assert rec.received == [v2_frame, '{"channel":"heartbeat"}'] and rec.api == "v2"
    one_line = tmp_path / "one.json"
    one_line.write_text(f"[{STATUS_V1},{SNAP_V1}]")
    assert read_recording(one_line).received == [STATUS_V1, SNAP_V1]


def test_one_frame_per_line(tmp_path: Path) -> None:
    path = tmp_path / "frames.jsonl.gz"
    path.write_bytes(gzip.compress(f"{STATUS_V1}\n\n{SNAP_V1}\n".encode()))
    rec = read_recording(path)
    assert rec.received == [STATUS_V1, SNAP_V1] and rec.api == "v1" and rec.format == "frames"
    single = tmp_path / "single.jsonl"
    single.write_text(SNAP_V1 + "\n")  # one v1 frame, not an array of frames
    assert read_recording(single).received == [SNAP_V1]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(f"{STATUS_V1}\n{SNAP_V1}\n[336, oops\n")
    with pytest.raises(RecordingFormatError, match=r"bad\.jsonl:3: a frame must be JSON"):
        read_recording(bad)
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"hello": 1}\n')
    with pytest.raises(RecordingFormatError, match="cannot tell the API version"):
        read_recording(unknown)
    assert read_recording(unknown, api="v1").api == "v1"


# -- the tape ---------------------------------------------------------------------


def test_the_tape_sorts_v1_frames() -> None:
    frames = [STATUS_V1, ACK_V1, SNAP_V1, UPD_V1, BEAT_V1, '{"event":"pong"}', "garbage"]
    rec = Recording.from_frames(frames)
    tape = Tape(rec)
    assert [f.kind for f in tape.frames] == [DATA, DATA, HEARTBEAT, RAW]
    assert [f.snapshot for f in tape.frames] == [True, False, False, False]
    assert tape.keys == {("book-10", "XBT/USD")} and tape.channel_id(("book-10", "XBT/USD")) == 336
    assert tape.skipped == {"greeting": 1, "ack": 1, "reply": 1}
    assert tape.greeting(0) == (STATUS_V1, json.loads(STATUS_V1))
    ack = tape.ack("subscribed", ("book-10", "XBT/USD"))
    assert ack is not None and ack["channelID"] == 336
    key = ("book-10", "XBT/USD")
    assert [f.initial for f in tape.frames] == [True, False, False, False]
    # Nothing played yet: the snapshot that followed the recorded ack comes with the ack.
    assert [f.data for f in tape.catch_up(key, 0)] == [SNAP_V1]
    assert [f.data for f in tape.catch_up(key, 2)] == [SNAP_V1, UPD_V1]


def test_the_tape_sorts_v2_frames_and_later_status() -> None:
    status = '{"channel":"status","type":"update","data":[{"system":"online"}]}'
    maintenance = '{"channel":"status","type":"update","data":[{"system":"maintenance"}]}'
    ack = (
        '{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,'
        '"symbol":"BTC/USD"},"success":true,"req_id":3}'
    )
    snap = '{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[]}]}'
    instrument = '{"channel":"instrument","type":"snapshot","data":{"assets":[]}}'
    rec = Recording.from_frames([status, ack, snap, instrument, maintenance, '{"method":"pong"}'])
    tape = Tape(rec)
    assert [f.kind for f in tape.frames] == [DATA, DATA, STATUS]
    assert tape.keys == {("book", "BTC/USD"), ("instrument", None)}
    assert tape.greeting(0) == (status, json.loads(status))
    assert tape.greeting(3) is not None and tape.greeting(3)[0] == maintenance  # type: ignore[index]
    assert tape.ack("subscribe", ("book", "BTC/USD")) == json.loads(ack)


def test_speeds() -> None:
    assert parse_speed("max") == math.inf and parse_speed(10) == 10.0 and parse_speed("2.5") == 2.5
    for bad in (0, -1, "fast", float("nan")):
        with pytest.raises(ValueError):
            parse_speed(bad)
    for wrong in (True, None, [1]):
        with pytest.raises(TypeError):
            parse_speed(wrong)


def test_zstandard_missing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.jsonl.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd")  # never decompressed: the import fails first
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard -> ImportError
    with pytest.raises(RecordingFormatError, match=r"pip install \"kraky-anyio\[record\]\""):
        read_recording(path)


def test_parts_of_another_api_are_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [header(), *v1_lines()[:3]])
    write_jsonl(tmp_path / "s.jsonl.1", [header("v2", part=1), *v1_lines()[3:]])
    with pytest.raises(RecordingFormatError, match=r"s\.jsonl\.1:1: api v2, not v1"):
        read_recording(path)
