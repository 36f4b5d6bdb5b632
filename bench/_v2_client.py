"""One v2 benchmark client, run in its own process by bench/peers.py.

    python bench/_v2_client.py --kind KIND --channel book|ticker --url ws://127.0.0.1:PORT --n N

Not meant to be run by hand. Prints exactly one JSON line on stdout. Only the
standard library is imported at the top: the peers run this file under their
own venv (``bench/.venv-peers``), where kraky_anyio is not installed.

Kinds:

``null-asyncio``, ``null-trio``   read the socket, discard the bytes (the ceiling)
``raw-asyncio``, ``raw-trio``     ``kraky_anyio.transport`` without our fast path
                                  (websockets parses) + ``json.loads``
``kraky_anyio_v2-asyncio``/``-trio``  ``kraky_anyio.v2.open_kraken`` +
                                  ``conn.messages(channel=...)``, typed messages
                                  (reports ``skipped`` if the module has no
                                  ``open_kraken``)
``python-kraken-sdk``             ``kraken.spot.SpotWSClient`` with a callback
                                  that counts, ``ws_url`` pointed at the server
``ccxt``                          ``ccxt.pro.kraken``: ``watch_order_book`` or
                                  ``watch_ticker`` in a loop, the ``publicV2`` ws
                                  URL overridden and the one market set locally
                                  (no REST call)

Timing as in bench/_client.py: wall time from the server's first flood write
(``t0`` in the end marker's timestamp) to the client seeing the end marker,
CPU time (``time.process_time``) from the start marker (sent 50 ms before the
flood) to the end marker; per message = over the N messages the server sent.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from typing import Any

from _client_process import add_to_result, emit, start_watchdogs

SYMBOL = "BTC/USD"
START = "START"
END = "END t0="


def url_for(base: str, n: int, kind: str) -> str:
    """The run's URL; python-kraken-sdk appends ``/v2`` itself (ccxt picks its
    v2 ping by finding ``v2`` in the URL)."""
    if kind == "python-kraken-sdk":
        return f"{base}/flood/n={n}"
    return f"{base}/v2/flood/n={n}"


class Sink:
    """Counts data messages of the channel; the markers start and stop the clocks."""

    def __init__(self, n: int) -> None:
        self.expected = n
        self.seen = 0
        self.c0 = self.c1 = 0.0
        self.wall = 0.0

    def timestamp(self, ts: Any) -> bool:
        """Feed one message's timestamp (or None); True at the end marker."""
        if type(ts) is str and ts[0] in "SE":
            if ts == START:
                self.c0 = time.process_time()
                return False
            if ts.startswith(END) and self.c0:
                self.c1 = time.process_time()
                self.wall = (time.time_ns() - int(ts[len(END) :])) / 1e9
                return True
        if self.c0:
            self.seen += 1
        return False

    def on_dict(self, msg: Any) -> bool:
        data = msg.get("data") if type(msg) is dict else None
        if type(data) is list and data and msg.get("channel") in ("book", "ticker"):
            return self.timestamp(data[0].get("timestamp"))
        return False

    def result(self, **extra: Any) -> dict[str, Any]:
        n = self.expected
        cpu = self.c1 - self.c0
        return {
            "n": n,
            "handled": self.seen,
            "wall_s": self.wall,
            "cpu_s": cpu,
            "msgs_per_s": n / self.wall if self.wall > 0 else 0.0,
            "cpu_us_per_msg": cpu / n * 1e6 if n else 0.0,
            "max_rss_kb": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
            **extra,
        }


def subscribe_frame(channel: str) -> str:
    params: dict[str, Any] = {"channel": channel, "symbol": [SYMBOL]}
    if channel == "book":
        params["depth"] = 10
    return json.dumps({"method": "subscribe", "params": params, "req_id": 1})


# -- clients -------------------------------------------------------------------


async def run_null(url: str, channel: str, sink: Sink) -> dict[str, Any]:
    """Read and discard; only the markers are looked for (``bytes.find``)."""
    from _client import NULL_READ_SIZE, null_handshake  # beside this file, on sys.path

    stream, data = await null_handshake(url, subscribe_frame(channel))
    start, end = b'"timestamp":"START"', b'"timestamp":"END t0='
    tail = b""
    try:
        while True:
            window = tail + data
            if not sink.c0 and window.find(start) >= 0:
                sink.c0 = time.process_time()
            i = window.find(end)
            if i >= 0 and sink.c0:
                j = i + len(end)
                sink.timestamp(END + window[j : window.index(b'"', j)].decode())
                break
            tail = window[-128:]
            data = await stream.receive(NULL_READ_SIZE)
    finally:
        await stream.aclose()
    return sink.result(handled=None)


async def run_raw(url: str, channel: str, sink: Sink) -> dict[str, Any]:
    """Issue 16's raw transport: websockets' sans-I/O protocol over anyio
    (``fast_path=False``: websockets parses every frame) + ``json.loads`` per
    message, nothing else; every ``x raw`` ratio is against this."""
    from kraky_anyio.transport import connect_websocket

    ws = await connect_websocket(url, fast_path=False)
    try:
        await ws.send_text(subscribe_frame(channel))
        loads = json.loads
        on = sink.on_dict
        while True:
            for raw in await ws.receive_batch():
                if on(loads(raw)):
                    return sink.result()
    finally:
        await ws.aclose()


async def run_kraky_anyio_v2(url: str, channel: str, sink: Sink) -> dict[str, Any]:
    """The hook for our own v2 client (written by other helpers). Measured as a
    user would use it once ``kraky_anyio.v2.open_kraken`` exists: typed messages
    from ``conn.messages(channel=...)``; the end marker is recognised by the
    ``timestamp`` attribute of the message's first data entry."""
    try:
        from kraky_anyio import v2  # type: ignore[attr-defined]
    except ImportError as exc:
        return {"skipped": f"kraky_anyio.v2 does not import ({exc})"}
    open_kraken = getattr(v2, "open_kraken", None)
    if open_kraken is None:
        return {"skipped": "kraky_anyio.v2 has no open_kraken yet"}
    import anyio

    def stamp(msg: Any) -> Any:
        data = getattr(msg, "data", None)
        if not data:
            return None
        ts = getattr(data[0], "timestamp", None)
        return ts if ts is None or type(ts) is str else str(ts)

    async with open_kraken(url, reconnect=False) as conn, anyio.create_task_group() as tg:
        async with conn.messages(channel=channel) as stream:
            params = {"depth": 10} if channel == "book" else {}
            tg.start_soon(lambda: conn.subscribe(channel, [SYMBOL], **params))
            async for msg in stream:
                if getattr(msg, "channel", None) == channel and sink.timestamp(stamp(msg)):
                    break
        tg.cancel_scope.cancel()
    return sink.result()


async def run_sdk(url: str, channel: str, sink: Sink) -> dict[str, Any]:
    """python-kraken-sdk's ``SpotWSClient`` with a callback, as its README
    shows. It appends ``/v2`` to ``ws_url``; the server ignores that segment."""
    import asyncio

    from kraken.spot import SpotWSClient

    done = asyncio.Event()
    on = sink.on_dict

    async def callback(message: Any) -> None:
        if on(message):
            done.set()

    client = SpotWSClient(callback=callback, ws_url=url)
    await client.start()
    params: dict[str, Any] = {"channel": channel, "symbol": [SYMBOL]}
    if channel == "book":
        params["depth"] = 10
    await client.subscribe(params=params)
    await asyncio.wait_for(done.wait(), 600)
    result = sink.result()
    emit(result)
    try:
        await asyncio.wait_for(client.close(), 15)
    except Exception as exc:
        print(f"client: SpotWSClient did not close cleanly: {exc!r}", file=sys.stderr)
        sys.stdout.flush()
        os._exit(0)
    return result


CCXT_MARKET = {
    "id": "XXBTZUSD",
    "symbol": SYMBOL,
    "base": "BTC",
    "quote": "USD",
    "baseId": "XXBT",
    "quoteId": "ZUSD",
    "type": "spot",
    "spot": True,
    "margin": False,
    "swap": False,
    "future": False,
    "option": False,
    "contract": False,
    "active": True,
    "precision": {"amount": 1e-08, "price": 0.1},
    "limits": {"amount": {"min": 0.0001}, "price": {}, "cost": {}},
    "info": {"altname": "XBTUSD", "wsname": "XBT/USD"},
}


async def run_ccxt(url: str, channel: str, sink: Sink) -> dict[str, Any]:
    """ccxt pro's kraken: ``watch_order_book``/``watch_ticker`` in a loop. ccxt
    handles every frame in its own handler and wakes the watcher with the
    latest state, so a watcher may see fewer returns than messages: msgs/s and
    CPU are over the N frames the server sent."""
    import ccxt.pro as ccxtpro

    ex = ccxtpro.kraken({"enableRateLimit": False})
    ex.urls["api"]["ws"]["publicV2"] = url
    ex.set_markets([CCXT_MARKET])
    returns = 0
    try:
        while True:
            if channel == "book":
                ob = await ex.watch_order_book(SYMBOL)
                ts = ob.get("datetime")
            else:
                t = await ex.watch_ticker(SYMBOL)
                ts = (t.get("info") or {}).get("timestamp")
            returns += 1
            if sink.timestamp(ts):
                break
    finally:
        try:
            await ex.close()
        except Exception as exc:
            print(f"client: ccxt close: {exc!r}", file=sys.stderr)
    return sink.result(handled=None, watcher_returns=returns)


# -- main ----------------------------------------------------------------------


KINDS = {
    "null-asyncio": run_null,
    "null-trio": run_null,
    "raw-asyncio": run_raw,
    "raw-trio": run_raw,
    "kraky_anyio_v2-asyncio": run_kraky_anyio_v2,
    "kraky_anyio_v2-trio": run_kraky_anyio_v2,
    "python-kraken-sdk": run_sdk,
    "ccxt": run_ccxt,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one v2 benchmark client (used by bench/peers.py)")
    p.add_argument("--kind", required=True, choices=sorted(KINDS))
    p.add_argument("--channel", required=True, choices=["book", "ticker"])
    p.add_argument("--url", required=True, help="the server's ws://host:port")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    args = p.parse_args(argv)
    start_watchdogs(args.timeout, args.watch_stdin)
    kind = args.kind
    backend = "trio" if kind.endswith("-trio") else "asyncio"
    add_to_result(kind=kind, backend=backend, channel=args.channel, python=sys.version.split()[0])
    sink = Sink(args.n)
    fn = KINDS[kind]
    url = url_for(args.url, args.n, kind)
    if kind.endswith(("-asyncio", "-trio")) and not kind.startswith("python-"):
        import anyio

        result = anyio.run(fn, url, args.channel, sink, backend=backend)
    else:
        import asyncio

        result = asyncio.run(fn(url, args.channel, sink))
    emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
