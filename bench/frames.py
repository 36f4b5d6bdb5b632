"""Per-frame cost of the transport's receive path, in-process, no sockets.

    python bench/frames.py [--repeat 15] [--frames 20000]

The fixture's book-10 updates (and a heartbeat every 20) framed as a Kraken
server sends them, cut into 64 KiB reads, fed to
:class:`kraky_anyio.framing.Framing` with the fast path and without it
(websockets' sans-I/O protocol alone: the code path before the fast path).
Also what text-as-bytes would save: ``json.loads`` (and msgspec/orjson if
installed) on ``str`` after the UTF-8 decode against ``bytes`` directly.
Best CPU time of ``--repeat``, the variants interleaved so machine load hits them
alike; prints microseconds per frame and the ratios.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

from kraky_anyio.framing import DEFAULT_MAX_MESSAGE_SIZE, Framing

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
FIXTURE = FIXTURES / "kraken-v1-book10-xbtusd.json"
READ = 65536


def payloads(count: int) -> list[bytes]:
    data = json.loads(FIXTURE.read_text())
    updates = [json.dumps(m, separators=(",", ":")).encode() for m in data["updates"]]
    heartbeat = b'{"event":"heartbeat"}'
    return [heartbeat if i % 20 == 19 else updates[i % len(updates)] for i in range(count)]


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([0x81, n]) + payload
    if n < 65536:
        return bytes([0x81, 126]) + struct.pack("!H", n) + payload
    return bytes([0x81, 127]) + struct.pack("!Q", n) + payload


def reads(frames: list[bytes]) -> list[bytes]:
    stream = b"".join(frames)
    return [stream[i : i + READ] for i in range(0, len(stream), READ)]


def parse_all(chunks: list[bytes], *, fast: bool) -> int:
    protocol = ClientProtocol(
        parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=DEFAULT_MAX_MESSAGE_SIZE
    )
    framing = Framing(protocol, fast=fast)
    n = 0
    for chunk in chunks:
        n += len(framing.receive_data(chunk))
    return n


def best(fn: Callable[[], Any], results: list[float]) -> None:
    # CPU time of this process: other load on the machine counts less.
    t0 = time.process_time()
    fn()
    results.append(time.process_time() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--frames", type=int, default=20000)
    args = parser.parse_args()
    msgs = payloads(args.frames)
    chunks = reads([frame(m) for m in msgs])
    assert parse_all(chunks, fast=True) == parse_all(chunks, fast=False) == len(msgs)
    texts = [m.decode() for m in msgs]
    decoder = json.JSONDecoder(parse_float=Decimal)

    variants: dict[str, Callable[[], Any]] = {
        "websockets alone": lambda: parse_all(chunks, fast=False),
        "fast path": lambda: parse_all(chunks, fast=True),
        "utf-8 decode only": lambda: [m.decode() for m in msgs],
        "json (Decimal) on str": lambda: [decoder.decode(t) for t in texts],
        # json.loads(bytes) decodes to str itself; the decoder built once, as above.
        "json (Decimal) on bytes": lambda: [decoder.decode(m.decode()) for m in msgs],
    }
    try:
        import msgspec

        dec = msgspec.json.Decoder(float_hook=Decimal)
        variants["msgspec (Decimal) on str"] = lambda: [dec.decode(t) for t in texts]
        variants["msgspec (Decimal) on bytes"] = lambda: [dec.decode(m) for m in msgs]
    except ImportError:
        pass
    try:
        import orjson

        variants["orjson on str"] = lambda: [orjson.loads(t) for t in texts]
        variants["orjson on bytes"] = lambda: [orjson.loads(m) for m in msgs]
    except ImportError:
        pass

    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeat):
        for name, fn in variants.items():
            best(fn, times[name])
    per = {name: min(t) / len(msgs) * 1e6 for name, t in times.items()}
    size = sum(map(len, msgs)) / len(msgs)
    print(f"{len(msgs)} frames, {size:.0f} bytes of payload on average, {len(chunks)} reads")
    for name, us in per.items():
        print(f"  {name:28} {us:7.3f} us/frame")
    print(f"fast path / websockets alone: {per['fast path'] / per['websockets alone']:.3f}")
    print(f"websockets alone / fast path: {per['websockets alone'] / per['fast path']:.2f}x")
    for lib in ("json (Decimal)", "msgspec (Decimal)", "orjson"):
        if f"{lib} on str" in per:
            with_decode = per[f"{lib} on str"] + per["utf-8 decode only"]
            print(
                f"{lib}: decode+loads(str) {with_decode:.3f} us, "
                f"loads(bytes) {per[f'{lib} on bytes']:.3f} us"
            )


if __name__ == "__main__":
    main()
