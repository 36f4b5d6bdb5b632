"""The fast path against websockets alone, with no I/O.

A differential test: hypothesis builds byte streams of server frames (plain
texts mostly, and fragments, binary, pings, pongs, closes, masked frames,
reserved bits, bad opcodes, invalid UTF-8, frames over the size limit,
garbage), splits them at arbitrary points, and feeds the same reads to a
:class:`Framing` with the fast path and one without. Messages, bytes written
back (pongs, close echoes), close verdicts (type, code, reason, message) and
the protocol's final state must be identical after every read and at EOF.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from kraky_anyio.errors import ConnectionClosedError, MessageTooBigError
from kraky_anyio.framing import Framing


def _client(max_size: int | None) -> ClientProtocol:
    return ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=max_size)


@contextmanager
def _fixed_masks() -> Iterator[None]:
    """Client frames are masked with random keys: fix them so the bytes two
    protocols write back can be compared."""
    with mock.patch("websockets.frames.secrets.token_bytes", lambda n: b"\x00" * n):
        yield


def _frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    wide: int = 0,
) -> bytes:
    """Raw frame bytes, rules broken on request (``wide`` forces the 2- or
    8-byte length form even for a short payload)."""
    head1 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if n < 126 and not wide:
        header = bytes([head1, mask_bit | n])
    elif n < 65536 and wide != 8:
        header = bytes([head1, mask_bit | 126]) + struct.pack("!H", n)
    else:
        header = bytes([head1, mask_bit | 127]) + struct.pack("!Q", n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


texts = st.text(max_size=40).map(str.encode) | st.sampled_from(
    [b'{"event":"heartbeat"}', b'[42,{"a":[["1.0","2.0","3"]]},"book-10","XBT/USD"]', b""]
)
invalid_utf8 = st.sampled_from([b"\xff", b"ab\xc3", b"\xed\xa0\x80", b'{"a":"\xe2\x82"}'])
close_payloads = st.one_of(
    st.just(b""),
    st.sampled_from([1000, 1001, 1002, 1011, 3000, 999, 1005, 2999, 5000]).map(
        lambda code: struct.pack("!H", code) + b"bye"
    ),
    st.just(b"\x03"),  # one byte: not a valid close payload
    st.just(struct.pack("!H", 1000) + b"\xff"),  # reason not UTF-8
)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            ["text"] * 8
            + ["long", "bad_utf8", "fragments", "binary", "ping", "pong", "close"]
            + ["masked", "rsv", "bad_opcode", "wide", "control_too_long", "cont", "garbage"]
            + ["open_fragment", "last_fragment"]
        )
    )
    if kind == "text":
        return _frame(0x1, draw(texts))
    if kind == "long":
        return _frame(0x1, b"x" * draw(st.integers(126, 700)))
    if kind == "bad_utf8":
        return _frame(0x1, draw(invalid_utf8))
    if kind == "fragments":
        first = draw(st.sampled_from([0x1, 0x2]))
        parts = draw(st.lists(texts | invalid_utf8, min_size=1, max_size=3))
        out = _frame(first, b"x", fin=False)
        for i, part in enumerate(parts):
            out += _frame(0x0, part, fin=i == len(parts) - 1)
        return out
    if kind == "binary":
        return _frame(0x2, draw(st.binary(max_size=30)))
    if kind == "ping":
        return _frame(0x9, draw(st.binary(max_size=20)))
    if kind == "pong":
        return _frame(0xA, draw(st.binary(max_size=20)))
    if kind == "close":
        return _frame(0x8, draw(close_payloads))
    if kind == "masked":
        return _frame(0x1, draw(texts), mask=b"\x01\x02\x03\x04")
    if kind == "rsv":
        return _frame(draw(st.sampled_from([0x1, 0x9])), b"{}", rsv=draw(st.integers(1, 7)))
    if kind == "bad_opcode":
        return _frame(draw(st.sampled_from([0x3, 0x7, 0xB, 0xF])), b"{}")
    if kind == "wide":
        return _frame(0x1, draw(texts), wide=draw(st.sampled_from([2, 8])))
    if kind == "control_too_long":
        return _frame(0x9, b"p" * 126)
    if kind == "open_fragment":  # left open: what follows must continue it
        return _frame(draw(st.sampled_from([0x1, 0x2, 0x0])), draw(texts), fin=False)
    if kind == "last_fragment":
        return _frame(0x0, draw(texts | invalid_utf8))
    if kind == "cont":
        return _frame(0x0, b"orphan")  # a continuation with no message open
    return draw(st.binary(min_size=1, max_size=12))


streams = st.lists(frames(), min_size=1, max_size=14).map(b"".join)
max_sizes = st.sampled_from([None, 0, 20, 200, 4 * 1024 * 1024])


def _verdict(exc: ConnectionClosedError | None) -> Any:
    if exc is None:
        return None
    return (type(exc), exc.code, exc.reason, str(exc))


def _state(f: Framing) -> Any:
    p = f.protocol
    rcvd = p.close_rcvd
    return (
        p.state,
        None if rcvd is None else (rcvd.code, rcvd.reason),
        type(p.parser_exc),
        _verdict(f.closed),
    )


def _run(reads: list[bytes], max_size: int | None, *, eof: bool) -> None:
    """Feed the same reads to both; compare everything after each."""
    with _fixed_masks():
        fast = Framing(_client(max_size), fast=True)
        slow = Framing(_client(max_size), fast=False)
        for data in reads:
            got, want = fast.receive_data(data), slow.receive_data(data)
            assert got == want
            assert fast.data_to_send() == slow.data_to_send()
            assert _state(fast) == _state(slow)
        if eof:
            assert fast.receive_eof() == slow.receive_eof()
            assert fast.data_to_send() == slow.data_to_send()
            assert _state(fast) == _state(slow)


def _cut(stream: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted(set(points)), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges) if b > a]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=streams, data=st.data(), max_size=max_sizes, eof=st.booleans())
def test_fast_path_matches_websockets_on_random_reads(
    stream: bytes, data: st.DataObject, max_size: int | None, eof: bool
) -> None:
    points = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    _run(_cut(stream, points), max_size, eof=eof)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.lists(frames(), min_size=1, max_size=5).map(b"".join), max_size=max_sizes)
def test_fast_path_matches_websockets_split_at_every_byte(
    stream: bytes, max_size: int | None
) -> None:
    for k in range(len(stream) + 1):
        _run(_cut(stream, [k]), max_size, eof=True)
    _run([stream[i : i + 1] for i in range(len(stream))], max_size, eof=True)


def test_hand_over_keeps_order_of_a_ping_between_texts_and_a_close_after() -> None:
    stream = (
        _frame(0x1, b"one")
        + _frame(0x9, b"p")
        + _frame(0x1, b"two")
        + _frame(0x1, b"t", fin=False)
        + _frame(0x0, b"hree")
        + _frame(0x1, b"four")
        + _frame(0x8, struct.pack("!H", 1001) + b"going away")
        + _frame(0x1, b"after the close")
    )
    for k in range(len(stream) + 1):
        with _fixed_masks():
            f = Framing(_client(None))
            out = f.receive_data(stream[:k]) + f.receive_data(stream[k:])
            assert out == ["one", "two", "three", "four"]
            assert f.closed is not None and f.closed.code == 1001
            sent = b"".join(f.data_to_send())
        assert sent.startswith(_frame(0xA, b"p", mask=b"\x00" * 4))  # the pong
        assert _frame(0x8, struct.pack("!H", 1001) + b"going away", mask=b"\x00" * 4) in sent


@pytest.mark.parametrize("max_size", [None, 1000])
def test_guarantees_hold_on_the_fast_path(max_size: int | None) -> None:
    f = Framing(_client(max_size))
    assert f.receive_data(_frame(0x1, b"ok") + _frame(0x1, b"\xff\xfe")) == ["ok"]
    assert f.closed is not None and f.closed.code == 1007
    f = Framing(_client(10))
    assert f.receive_data(_frame(0x1, b"ok") + _frame(0x1, b"x" * 11, wide=2)) == ["ok"]
    assert isinstance(f.closed, MessageTooBigError) and f.closed.code == 1009
    for bad in (_frame(0x1, b"{}", mask=b"abcd"), _frame(0x1, b"{}", rsv=4)):
        f = Framing(_client(max_size))
        assert f.receive_data(bad) == []
        assert f.closed is not None
        assert f.protocol.close_sent is not None and f.protocol.close_sent.code == 1002


def test_plain_texts_never_reach_websockets() -> None:
    """The fast path really is taken: websockets' parser sees no byte."""
    f = Framing(_client(None))
    with mock.patch.object(f.protocol, "receive_data", side_effect=AssertionError):
        msgs = f.receive_data(_frame(0x1, b"a") + _frame(0x1, b"b" * 300)[:50])
        assert msgs == ["a"]
        assert f.receive_data(_frame(0x1, b"b" * 300)[50:]) == ["b" * 300]
    assert f.at_frame_boundary


def test_server_side_never_takes_the_fast_path() -> None:
    server = ServerProtocol(state=State.OPEN)
    f = Framing(server)
    assert f.receive_data(_frame(0x1, b"hi", mask=b"abcd")) == ["hi"]
    assert f.receive_data(_frame(0x1, b"unmasked")) == []
    assert f.closed is not None and f.closed.code is None
    assert server.close_sent is not None and server.close_sent.code == 1002
