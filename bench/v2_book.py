"""Benchmark v2 decoding and the v2 book engine, run by hand (ratios, one run).

    python bench/v2_book.py [--repeat N] [--smoke]

Frames: the recorded Kraken BTC/USD v2 book-10 session (snapshot + 509
updates, compact JSON as bytes, as a socket gives them), plus ticker and trade
frames of the same shape as Kraken's. Cases, in microseconds per message, each
the best of ``--repeat`` runs:

* decode only, each followed by the field reads a consumer does (channel, and
  per entry symbol and every price/qty): stdlib ``json.loads`` with floats
  (wrong: it loses ``0.50000000``), ``json.loads(parse_float=Decimal)``
  (v1's dict path today: ``kraky_anyio.protocol.decode``), ``orjson.loads``
  (floats; if installed), msgspec untyped, and :func:`kraky_anyio.v2.decode`
  (typed, exact Decimals);
* the book engine: ``v2.decode`` + ``Book.feed`` (apply + verify every
  checksum) against bare ``json.loads`` of the same frames.

``--smoke`` runs once, for CI: it checks the script works; its numbers mean little.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from kraky_anyio.protocol import decode as v1_decode  # noqa: E402
from kraky_anyio.v2 import decode  # noqa: E402
from kraky_anyio.v2.book import Book, Outcome  # noqa: E402

try:
    import orjson
except ImportError:  # optional: pip install orjson
    orjson = None

FIXTURE = ROOT.parent / "shared" / "fixtures" / "kraken-v2-book10-btcusd.json"

TICKER = (
    b'{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":62797.0,'
    b'"bid_qty":0.50000000,"ask":62797.1,"ask_qty":1.23400000,"last":62797.1,'
    b'"volume":1234.56789012,"vwap":62500.3,"low":61000.0,"high":63000.0,"change":797.1,'
    b'"change_pct":1.29,"timestamp":"2026-08-16T23:37:04.334090Z"}]}'
)
TRADE = (
    b'{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
    b'"price":62797.1,"qty":0.00100000,"ord_type":"market","trade_id":123456789,'
    b'"timestamp":"2026-08-16T23:37:04.334090Z"}]}'
)
TICKER_FIELDS = ("bid", "bid_qty", "ask", "ask_qty", "last", "volume")


def load_book_frames() -> list[bytes]:
    if not FIXTURE.is_file():
        raise SystemExit(f"fixture not found: {FIXTURE} (shared/ must sit beside the repo)")
    data = json.loads(FIXTURE.read_text())
    messages = [data["init"], *data["updates"]]
    return [json.dumps(m, separators=(",", ":")).encode() for m in messages]


def read_dict(msg: Any) -> object:
    """The reads a consumer does on a dict-decoded message."""
    channel = msg["channel"]
    last: object = None
    for entry in msg["data"]:
        last = entry["symbol"]
        if channel == "book":
            for level in entry["bids"]:
                last = level["price"], level["qty"]
            for level in entry["asks"]:
                last = level["price"], level["qty"]
        elif channel == "ticker":
            for name in TICKER_FIELDS:
                last = entry[name]
        else:
            last = entry["price"], entry["qty"]
    return last


def read_typed(msg: Any) -> object:
    """The same reads on a typed message."""
    channel = msg.channel
    last: object = None
    for entry in msg.data:
        last = entry.symbol
        if channel == "book":
            for level in entry.bids:
                last = level.price, level.qty
            for level in entry.asks:
                last = level.price, level.qty
        elif channel == "ticker":
            last = entry.bid, entry.bid_qty, entry.ask, entry.ask_qty, entry.last, entry.volume
        else:
            last = entry.price, entry.qty
    return last


def best_of(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="runs per case (best is kept)")
    parser.add_argument("--smoke", action="store_true", help="a single fast run, for CI")
    args = parser.parse_args(argv)
    repeat = 1 if args.smoke else max(1, args.repeat)

    book_frames = load_book_frames()
    sets = {
        "book": book_frames,
        "ticker": [TICKER] * len(book_frames),
        "trade": [TRADE] * len(book_frames),
    }
    untyped = msgspec.json.Decoder(float_hook=Decimal)
    decoders: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], object]]] = {
        "json.loads (float, inexact)": (json.loads, read_dict),
        "v1 path: json parse_float=Decimal": (v1_decode, read_dict),
        "msgspec untyped (Decimal)": (untyped.decode, read_dict),
        "v2.decode typed (msgspec)": (decode, read_typed),
    }
    if orjson is not None:
        decoders["orjson.loads (float, inexact)"] = (orjson.loads, read_dict)

    print(f"us per message, best of {repeat} ({len(book_frames)} frames per set)")
    print(f"{'decoder':36}" + "".join(f"{name:>10}" for name in sets))
    for label, (dec, read) in decoders.items():
        row = []
        for frames in sets.values():

            def run(
                frames: list[bytes] = frames,
                dec: Callable[[bytes], Any] = dec,
                read: Callable[[Any], object] = read,
            ) -> None:
                for frame in frames:
                    read(dec(frame))

            row.append(best_of(repeat, run) / len(frames) * 1e6)
        print(f"{label:36}" + "".join(f"{us:10.2f}" for us in row))

    # The book engine: every checksum verified in an untimed run first.
    check = Book("BTC/USD", 10, price_precision=1, qty_precision=8)
    outcomes = [check.feed(decode(frame)).outcome for frame in book_frames]
    if outcomes[1:] != [Outcome.UPDATED] * (len(book_frames) - 1):
        raise SystemExit("a checksum failed: the engine is broken, the timing meaningless")

    def engine() -> None:
        book = Book("BTC/USD", 10, price_precision=1, qty_precision=8)
        feed = book.feed
        for frame in book_frames:
            feed(decode(frame))

    def bare() -> None:
        loads = json.loads
        for frame in book_frames:
            loads(frame)

    engine_us = best_of(repeat, engine) / len(book_frames) * 1e6
    bare_us = best_of(repeat, bare) / len(book_frames) * 1e6
    print(f"book engine (v2.decode + Book.feed, every checksum): {engine_us:.2f} us/message")
    print(f"bare json.loads of the same frames:                 {bare_us:.2f} us/message")
    print(f"ratio: {engine_us / bare_us:.2f}x (target <= 2.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
