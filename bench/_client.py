"""One benchmark client, run in its own process by the benchmark scripts.

    python bench/_client.py --kind KIND --mode MODE --url ws://127.0.0.1:PORT/...

Not meant to be run by hand. Prints exactly one JSON line (its result) on
stdout; logs go to stderr. Only the standard library is imported at the top:
the ``kraky`` client runs this file under its own venv (``bench/.venv-kraky``),
where neither kraky_anyio nor anyio is installed.

Kinds: ``null-asyncio``, ``null-trio`` (read the socket and discard the
bytes: the physical ceiling, flood mode only), ``raw-asyncio``, ``raw-trio``
(websockets' sans-I/O protocol over anyio, i.e. ``connect_websocket(...,
fast_path=False)``, + ``json.loads``, no library), ``rawfast-asyncio``,
``rawfast-trio`` (the same with our frame fast path), ``floor-asyncio``,
``floor-trio`` (our fast path + kraky_anyio's own decoder, msgspec: the least
any client that parses every message can do here),
``kraky_anyio-asyncio``, ``kraky_anyio-trio`` (``open_kraken`` +
``conn.messages()``), ``websockets`` (``websockets.asyncio.client`` +
``json.loads``), ``kraky`` (``kraky.KrakyWsClient``, a handler coroutine).
``--what-if record-gz`` (``-plain``, ``-gz-drop``, ``-zst``) on a
``kraky_anyio-*`` kind: the same inside ``conn.record()`` to a temporary file
(see :data:`RECORD_VARIANTS`; flood mode).

Modes (what the per-message handler does):

``flood``   count; wall time from the server's first flood write (its stamp
            in the end marker) and CPU time from the start marker, both to
            the end marker.
``paced``   record ``now - stamp`` for every data message (server-stamped, µs).
``slow``    take ``--sleep-ms`` per message for ``--seconds``, then drain.
``fanout``  (kraky_anyio only) ``--consumers`` consumers on one connection.

Every run ends at the server's end marker ``[0, {}, "end", "XBT/USD"]``; the
server repeats it until the client hangs up, so a consumer that was failed
and reopened still sees one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from typing import Any

from _client_process import add_to_result, emit, start_watchdogs

SUBSCRIPTION = {"name": "book", "depth": 10}
PAIRS = ["XBT/USD"]
SUBSCRIBE_FRAME = json.dumps(
    {"event": "subscribe", "reqid": 1, "pair": PAIRS, "subscription": SUBSCRIPTION}
)


def rss_kb() -> int:
    """Current resident set size (VmRSS) in KiB, 0 where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def max_rss_kb() -> int:
    """Peak RSS of this process so far (ru_maxrss is KiB on Linux)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class RssSampler:
    """A thread sampling VmRSS every ``interval`` s: peak and a timeline."""

    def __init__(self, interval: float = 0.1, keep_every: float = 0.5) -> None:
        self.interval = interval
        self.keep_every = keep_every
        self.peak = 0
        self.timeline: list[tuple[float, int]] = []
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        last_kept = -1e9
        while not self._stop.is_set():
            kb = rss_kb()
            self.peak = max(self.peak, kb)
            now = time.monotonic() - self.t0
            if now - last_kept >= self.keep_every:
                self.timeline.append((round(now, 2), kb))
                last_kept = now
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1)
        kb = rss_kb()
        self.peak = max(self.peak, kb)
        self.timeline.append((round(time.monotonic() - self.t0, 2), kb))


def is_end(msg: list[Any]) -> bool:
    return len(msg) >= 4 and msg[-2] == "end"


def stamp_us(msg: list[Any]) -> int:
    """The server's stamp: the time field of the first level, ``sec.usec``."""
    payload = msg[1]
    if type(payload) is dict:
        levels = payload.get("a") or payload.get("b")
        text = levels[0][2]
    else:
        text = payload[0][2]
    return int(text.replace(".", ""))


# -- sinks: what the consumer does with each message ---------------------------


class FloodSink:
    """Count data messages. Wall time: from the server's first flood write
    (``t0`` in the end marker, system-wide clock) to the end marker; CPU time
    (``time.process_time``) from the start marker, which comes 50 ms before the
    flood, to the end marker."""

    is_async = False

    def __init__(self) -> None:
        self.n = 0
        self.c0 = self.c1 = 0.0
        self.wall = 0.0
        self.t0_ns = 0
        self.recording: dict[str, Any] | None = None

    def on_message(self, msg: Any) -> bool:
        if type(msg) is list:
            name = msg[-2]
            if name == "end":
                self.c1 = time.process_time()
                self.t0_ns = int(msg[1]["t0"])
                self.wall = (time.time_ns() - self.t0_ns) / 1e9
                return True
            if name == "start":
                self.c0 = time.process_time()
                return False
            self.n += 1
        return False

    def result(self) -> dict[str, Any]:
        wall = self.wall
        cpu = self.c1 - self.c0
        return {
            "n": self.n,
            "wall_s": wall,
            "cpu_s": cpu,
            "msgs_per_s": self.n / wall if wall > 0 else 0.0,
            "cpu_us_per_msg": cpu / self.n * 1e6 if self.n else 0.0,
            "max_rss_kb": max_rss_kb(),
            **({"recording": self.recording} if self.recording is not None else {}),
        }


class PacedSink:
    """Latency of every data message: local ``time.time_ns`` minus the stamp."""

    is_async = False

    def __init__(self) -> None:
        self.lat_us: list[int] = []

    def on_message(self, msg: Any) -> bool:
        if type(msg) is list:
            now = time.time_ns() // 1000
            if msg[-2] == "end":
                return True
            if msg[-2] == "start":
                return False
            self.lat_us.append(now - stamp_us(msg))
        return False

    def result(self) -> dict[str, Any]:
        return {"n": len(self.lat_us), "lat_us": self.lat_us, "max_rss_kb": max_rss_kb()}


class SlowSink:
    """Take ``sleep_s`` per data message for ``seconds`` (from the first one),
    then drain as fast as possible up to the end marker."""

    is_async = True

    def __init__(self, sleep: Any, sleep_s: float, seconds: float, sampler: RssSampler):
        self.sleep = sleep
        self.sleep_s = sleep_s
        self.seconds = seconds
        self.sampler = sampler
        self.slow_until = 0.0
        self.delivered_slow = 0
        self.delivered_drain = 0
        self.rss_start_kb = 0
        self.first_at = 0.0
        self.overflows = 0
        self.stats: dict[str, int] = {}

    async def on_message(self, msg: Any) -> bool:
        if type(msg) is not list:
            return False
        if msg[-2] == "end":
            return True
        now = time.monotonic()
        if not self.slow_until:
            self.slow_until = now + self.seconds
            self.first_at = now - self.sampler.t0
            self.rss_start_kb = rss_kb()
        if now < self.slow_until:
            self.delivered_slow += 1
            await self.sleep(self.sleep_s)
        else:
            self.delivered_drain += 1
        return False

    def result(self) -> dict[str, Any]:
        self.sampler.stop()
        return {
            "delivered_slow": self.delivered_slow,
            "delivered_drain": self.delivered_drain,
            "delivered": self.delivered_slow + self.delivered_drain,
            "overflows": self.overflows,
            "rss_start_kb": self.rss_start_kb,
            "rss_peak_kb": self.sampler.peak,
            "max_rss_kb": max_rss_kb(),
            "first_data_at_s": round(self.first_at, 2),
            "rss_timeline": self.sampler.timeline,
            "library_stats": self.stats,
        }


# -- clients -------------------------------------------------------------------


async def run_raw(url: str, sink: Any, fast_path: bool, loads: Any = json.loads) -> None:
    """The raw transport: websockets' sans-I/O protocol over anyio (kraky_anyio's
    ``connect_websocket(..., fast_path=False)``: every frame parsed by
    websockets), one ``receive_batch`` per socket read and ``json.loads`` per
    message -- issue 16's reference. With ``fast_path`` (``rawfast-*``), our
    frame fast path in front of it: the ceiling for anything built on it."""
    from kraky_anyio.transport import connect_websocket

    ws = await connect_websocket(url, fast_path=fast_path)
    try:
        await ws.send_text(SUBSCRIBE_FRAME)
        on = sink.on_message
        if sink.is_async:
            while True:
                for raw in await ws.receive_batch():
                    if await on(loads(raw)):
                        return
        else:
            while True:
                for raw in await ws.receive_batch():
                    if on(loads(raw)):
                        return
    finally:
        await ws.aclose()


NULL_READ_SIZE = 65536  # kraky_anyio.transport reads this much per receive
START_MARK = b'"start","XBT/USD"]'
END_MARK = b'"end","XBT/USD"]'


async def null_handshake(url: str, subscribe: str) -> Any:
    """A minimal client handshake on a bare anyio TCP stream (the server is
    ours), then the masked subscribe frame; returns (stream, bytes already read)."""
    import base64
    from urllib.parse import urlsplit

    import anyio

    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    stream = await anyio.connect_tcp(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    await stream.send(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += await stream.receive(NULL_READ_SIZE)
    head, _, rest = buf.partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"handshake refused: {head[:200]!r}")
    payload = subscribe.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    await stream.send(bytes((0x81, 0x80 | len(payload))) + mask + masked)
    return stream, rest


async def run_null(url: str, n: int) -> dict[str, Any]:
    """The physical ceiling: read the socket and throw the bytes away. No frame
    parsing and no JSON; the only work per read is finding the start and end
    markers (``bytes.find`` over the read plus a short tail of the previous one).
    Wall and CPU time are taken exactly as ``FloodSink`` takes them; msgs/s and
    CPU per message use the N the server was asked for."""
    stream, data = await null_handshake(url, SUBSCRIBE_FRAME)
    c0 = c1 = 0.0
    t0 = now = 0
    tail = b""
    receive = stream.receive
    try:
        while True:
            window = tail + data
            if not c0 and window.find(START_MARK) >= 0:
                c0 = time.process_time()
            i = window.find(END_MARK)
            if i >= 0 and c0:
                c1 = time.process_time()
                now = time.time_ns()
                j = window.rfind(b'"t0":', 0, i)
                t0 = int(window[j + 5 : window.index(b"}", j)])
                break
            tail = window[-128:]
            data = await receive(NULL_READ_SIZE)
    finally:
        await stream.aclose()
    wall = (now - t0) / 1e9
    cpu = c1 - c0
    return {
        "n": n,
        "wall_s": wall,
        "cpu_s": cpu,
        "msgs_per_s": n / wall if wall > 0 else 0.0,
        "cpu_us_per_msg": cpu / n * 1e6 if n else 0.0,
        "max_rss_kb": max_rss_kb(),
    }


async def run_kraky_anyio(
    url: str,
    sink: Any,
    overflow: str,
    buffer_size: int,
    record: tuple[str, str] | None = None,
    check: bool = False,
) -> None:
    """``open_kraken`` + ``async for msg in conn.messages()``, as a user would.
    With ``record`` (``KIND+record-*``), the same inside ``conn.record()`` to a
    temporary file (see :func:`consume_recording`)."""
    import anyio

    from kraky_anyio import open_kraken

    async with (
        open_kraken(url, reconnect=False, overflow=overflow, buffer_size=buffer_size) as conn,
        anyio.create_task_group() as tg,
    ):
        if record is None:
            await consume(conn, tg, sink)
        else:
            await consume_recording(conn, tg, sink, record, check)


async def consume(conn: Any, tg: Any, sink: Any) -> None:
    """Subscribe and hand every message to the sink up to the end marker."""
    from kraky_anyio import ConsumerOverflowError

    stream = conn.messages()
    tg.start_soon(conn.subscribe, SUBSCRIPTION, PAIRS)
    on = sink.on_message
    done = False
    while not done:
        try:
            if sink.is_async:
                async for msg in stream:
                    if await on(msg):
                        done = True
                        break
            else:
                async for msg in stream:
                    if on(msg):
                        done = True
                        break
            if not done:
                raise RuntimeError("the connection closed before the end marker")
        except ConsumerOverflowError:
            # What an app would do: note the gap and start consuming again.
            sink.overflows += 1
            stream = conn.messages()
    s = conn.stats
    if hasattr(sink, "stats"):
        sink.stats = {
            "frames_received": s.frames_received,
            "messages_delivered": s.messages_delivered,
            "consumer_overflows": s.consumer_overflows,
            "messages_dropped_by_overflow": s.messages_dropped_by_overflow,
        }


#: ``kraky_anyio-BACKEND+record-*``: the shipped library recording every
#: frame of the connection (``conn.record()``, opened before the subscribe)
#: to a temporary file: (file suffix, ``overflow`` policy of the recording).
RECORD_VARIANTS = {
    "record-gz": (".jsonl.gz", "block"),
    "record-plain": (".jsonl", "block"),
    "record-gz-drop": (".jsonl.gz", "drop"),
    "record-zst": (".jsonl.zst", "block"),  # needs the optional zstandard package
}


async def consume_recording(
    conn: Any, tg: Any, sink: FloodSink, record: tuple[str, str], check: bool
) -> None:
    """:func:`consume` inside ``conn.record(path, overflow=...)``. The
    recording is finished (every queued line written, the file closed) when
    its block is left, so wall and CPU time run to that moment, not to the end
    marker: the lines still queued there are part of the cost. The figures at
    the end marker are kept under ``recording``. With ``check`` (never under
    callgrind: reading the file back costs per message), the file is read
    back and compared with the recorder's counters and the messages counted."""
    import tempfile
    from pathlib import Path

    from kraky_anyio.recording import RecordOptions

    suffix, policy = record
    with tempfile.TemporaryDirectory(prefix="kraky-bench-rec-") as tmp:
        path = Path(tmp) / f"flood{suffix}"
        async with conn.record(RecordOptions(path, overflow=policy)) as recorder:
            await consume(conn, tg, sink)
            received_at_end = conn.stats.frames_received
        c_closed, t_closed = time.process_time(), time.time_ns()
        st = recorder.stats
        info: dict[str, Any] = {
            "suffix": suffix,
            "overflow": policy,
            "at_end_marker": {"wall_s": sink.wall, "cpu_s": sink.c1 - sink.c0},
            "frames_received_at_end_marker": received_at_end,
            "frames_seen": st.frames_seen,
            "frames_recorded": st.frames_recorded,
            "frames_dropped": st.frames_dropped,
            "gaps": st.gaps,
            "batches": st.batches,
            "largest_batch": st.largest_batch,
            "bytes_written": st.bytes_written,
            "file_bytes": st.file_bytes,
        }
        sink.c1, sink.wall = c_closed, (t_closed - sink.t0_ns) / 1e9
        if check:
            info["check"] = check_recording(path, sink.n, st.frames_recorded, st.frames_dropped)
        sink.recording = info


def check_recording(path: Any, n: int, recorded: int, dropped: int) -> dict[str, Any]:
    """Read a recording back: its ``recv`` lines against the recorder's
    ``frames_recorded``, the flood's data messages in it against ``n`` (the
    messages the handler counted), the ``gap`` lines' total against
    ``frames_dropped``. ``complete``: all of them agree and nothing was dropped."""
    import gzip
    from pathlib import Path

    data = Path(path).read_bytes()
    if str(path).endswith(".gz"):
        data = gzip.decompress(data)
    elif str(path).endswith(".zst"):
        import zstandard

        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    f = iter(data.decode("utf-8").splitlines())
    kinds: dict[str, int] = {}
    found = markers = gap_total = 0
    first = json.loads(next(f))
    for line in f:
        entry = json.loads(line)
        kind = entry["kind"]
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "gap":
            gap_total += entry["dropped"]
        elif kind == "recv" and entry["text"].startswith("["):
            if entry["text"].endswith(('"start","XBT/USD"]', '"end","XBT/USD"]')):
                markers += 1
            else:
                found += 1
    return {
        "header_ok": first.get("format") == "kraky-anyio-recording",
        "lines": kinds,
        "data_messages": found,
        "markers": markers,
        "gap_total": gap_total,
        "data_lost": n - found,
        "complete": kinds.get("recv", 0) == recorded
        and found == n
        and dropped == 0
        and gap_total == 0,
    }


async def run_kraky_anyio_fanout(url: str, consumers: int, buffer_size: int) -> dict[str, Any]:
    """``consumers`` tasks, each iterating its own ``conn.messages()``."""
    import anyio

    from kraky_anyio import open_kraken

    counts = [0] * consumers
    c0: list[float] = []
    t0: list[int] = []

    async def consume(stream: Any, i: int) -> None:
        n = 0
        async for msg in stream:
            if type(msg) is list:
                name = msg[-2]
                if name == "end":
                    if not t0:
                        t0.append(int(msg[1]["t0"]))
                    break
                if name == "start":
                    if not c0:
                        c0.append(time.process_time())
                    continue
                n += 1
        counts[i] = n

    async with open_kraken(url, reconnect=False, buffer_size=buffer_size) as conn:
        async with anyio.create_task_group() as tg:
            for i in range(consumers):
                tg.start_soon(consume, conn.messages(), i)
            await conn.subscribe(SUBSCRIPTION, PAIRS)
        t1, c1 = time.time_ns(), time.process_time()
    total = sum(counts)
    wall, cpu = (t1 - t0[0]) / 1e9, c1 - c0[0]
    return {
        "consumers": consumers,
        "per_consumer": counts[0],
        "all_equal": len(set(counts)) == 1,
        "total": total,
        "wall_s": wall,
        "cpu_s": cpu,
        "deliveries_per_s": total / wall if wall > 0 else 0.0,
        "msgs_per_s": counts[0] / wall if wall > 0 else 0.0,
        "cpu_us_per_delivery": cpu / total * 1e6 if total else 0.0,
        "max_rss_kb": max_rss_kb(),
    }


async def run_websockets(url: str, sink: Any, max_queue: int | None) -> None:
    """``websockets.asyncio.client.connect`` + ``json.loads``."""
    from websockets.asyncio.client import connect

    async with connect(url, max_queue=max_queue) as ws:
        await ws.send(SUBSCRIBE_FRAME)
        loads = json.loads
        on = sink.on_message
        if sink.is_async:
            async for raw in ws:
                if await on(loads(raw)):
                    return
        else:
            async for raw in ws:
                if on(loads(raw)):
                    return
        raise RuntimeError("the connection closed before the end marker")


async def run_kraky(url: str, sink: Any) -> None:
    """kraky's ``KrakyWsClient``: ``connect(handler)`` runs until cancelled, so
    the handler sets an event at the end marker and the task is cancelled."""
    import asyncio

    from kraky import KrakyWsClient

    client = KrakyWsClient(url, logging_level="WARNING")
    done = asyncio.Event()
    on = sink.on_message

    if sink.is_async:

        async def handler(data: Any) -> None:
            if await on(data):
                done.set()
    else:

        async def handler(data: Any) -> None:
            if on(data):
                done.set()

    task = asyncio.ensure_future(client.connect(handler))
    waiter = asyncio.ensure_future(done.wait())
    try:
        await client.subscribe(subscription=SUBSCRIPTION, pair=PAIRS)
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not done.is_set():
            task.result()  # raises what ended it
            raise RuntimeError("kraky's connect() returned before the end marker")
    finally:
        waiter.cancel()
    # Measured: report now. kraky's connect() swallows cancellation (a
    # `continue` in its `finally`), so it is stopped with disconnect().
    emit(sink.result())
    try:
        await asyncio.wait_for(client.disconnect(), 5)
        await asyncio.wait_for(asyncio.shield(task), 5)
    except Exception as exc:
        print(f"client: kraky did not stop cleanly: {exc!r}", file=sys.stderr)
    if not task.done():
        sys.stdout.flush()
        os._exit(0)


# -- experiments ---------------------------------------------------------------


def _cached_decoder() -> None:
    """kraky_anyio.protocol.decode calls ``json.loads(text, parse_float=Decimal)``,
    which builds a new JSONDecoder for every message; use one built once."""
    from decimal import Decimal

    import kraky_anyio.protocol as proto

    proto.decode = json.JSONDecoder(parse_float=Decimal).decode  # type: ignore[assignment]


def _yield_once() -> None:
    """The reader's hand-off before 2026-12-01 19:30 UTC: one yield after a
    publish that woke a consumer, whichever task then runs first (on trio the
    reader, half the time). Kept to measure ``Fanout.yield_to_woken`` against."""
    from anyio.lowlevel import checkpoint

    from kraky_anyio.fanout import Fanout

    async def once(self: Any) -> None:
        await checkpoint()

    Fanout.yield_to_woken = once  # type: ignore[method-assign]


def _as_shipped() -> None:
    """Nothing changed, but the same imports as ``yield-once`` made at the same
    point: any what-if imports kraky_anyio before the event loop starts, and
    that alone moved the p50 at 1k msgs/s by ~10% (2026-12-01, a no-op what-if
    against none), so compare what-ifs with this, not with the plain kind."""
    from anyio.lowlevel import checkpoint  # noqa: F401

    from kraky_anyio.fanout import Fanout  # noqa: F401


WHAT_IFS = {
    "as-shipped": _as_shipped,
    "cached-decoder": _cached_decoder,
    "yield-once": _yield_once,
}


# -- main ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one benchmark client (used by bench/*.py)")
    p.add_argument("--kind", required=True)
    p.add_argument("--mode", required=True, choices=["flood", "paced", "slow", "fanout"])
    p.add_argument("--url", required=True)
    p.add_argument("--overflow", default="block")
    p.add_argument("--buffer-size", type=int, default=1000)
    p.add_argument("--max-queue", default="16", help="websockets: an int or 'none'")
    p.add_argument("--sleep-ms", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--consumers", type=int, default=1)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    p.add_argument(
        "--what-if",
        action="append",
        default=[],
        choices=sorted([*WHAT_IFS, *RECORD_VARIANTS]),
        help="an experiment on kraky_anyio (monkeypatched here, library untouched),"
        " or record-* (the library recording the connection, flood mode)",
    )
    p.add_argument(
        "--check-recording",
        action="store_true",
        help="record-*: read the file back and check it (not under callgrind)",
    )
    args = p.parse_args(argv)
    start_watchdogs(args.timeout, args.watch_stdin)

    kind = args.kind
    backend = "trio" if kind.endswith("-trio") else "asyncio"
    records = [RECORD_VARIANTS[name] for name in args.what_if if name in RECORD_VARIANTS]
    if records and (len(records) > 1 or not kind.startswith("kraky_anyio-")):
        raise SystemExit("one record-* variant, on a kraky_anyio kind")
    if records and args.mode != "flood":
        raise SystemExit("record-* runs in flood mode only")
    for name in args.what_if:
        if name in WHAT_IFS:
            WHAT_IFS[name]()
    sampler = RssSampler().start() if args.mode == "slow" else None

    if backend == "trio":
        import trio

        sleep: Any = trio.sleep
    else:
        import asyncio

        sleep = asyncio.sleep

    sink: Any
    if args.mode == "flood":
        sink = FloodSink()
    elif args.mode == "paced":
        sink = PacedSink()
    elif args.mode == "slow":
        sink = SlowSink(sleep, args.sleep_ms / 1000, args.seconds, sampler)  # type: ignore[arg-type]
    else:
        sink = None

    async def body() -> Any:
        if args.mode == "fanout":
            if not kind.startswith("kraky_anyio-"):
                raise SystemExit("fanout mode is for kraky_anyio only")
            return await run_kraky_anyio_fanout(args.url, args.consumers, args.buffer_size)
        if kind.startswith("null-"):
            if args.mode != "flood":
                raise SystemExit("the null reader runs in flood mode only")
            from urllib.parse import parse_qs, urlsplit

            n = int(parse_qs(urlsplit(args.url).query).get("n", ["10000"])[-1])
            return await run_null(args.url, n)
        if kind.startswith(("raw-", "rawfast-")):
            await run_raw(args.url, sink, fast_path=kind.startswith("rawfast-"))
        elif kind.startswith("floor-"):
            from kraky_anyio.v1.codec import decode

            await run_raw(args.url, sink, fast_path=True, loads=decode)
        elif kind.startswith("kraky_anyio-"):
            await run_kraky_anyio(
                args.url,
                sink,
                args.overflow,
                args.buffer_size,
                records[0] if records else None,
                args.check_recording,
            )
        elif kind == "websockets":
            mq = None if args.max_queue.lower() == "none" else int(args.max_queue)
            await run_websockets(args.url, sink, mq)
        elif kind == "kraky":
            await run_kraky(args.url, sink)
            return None
        else:
            raise SystemExit(f"unknown client kind {kind!r}")
        return sink.result()

    add_to_result(
        kind="+".join([kind, *args.what_if]),
        backend=backend,
        mode=args.mode,
        python=sys.version.split()[0],
    )
    if kind.startswith(("raw-", "rawfast-", "floor-", "kraky_anyio-", "null-")):
        import anyio

        result = anyio.run(body, backend=backend)
    else:
        import asyncio

        result = asyncio.run(body())
    if result is not None:
        emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
