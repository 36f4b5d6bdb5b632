"""Benchmark the order book against bare ``json.loads``, run by hand.

    python bench/book.py [--repeat N] [--smoke]

Loads the recorded Kraken XBT/USD book-10 session, serialises every book
message back to a JSON string, then times, in one run and side by side:

(a) ``json.loads`` of every update;
(b) ``json.loads`` + ``OrderBook.feed`` of the snapshot and every update,
    verifying every checksum.

Each is the best of ``--repeat`` runs (``time.perf_counter``). Before timing,
one untimed replay checks that every update verifies, so the timed loop holds
nothing but ``json.loads`` and ``feed`` (counting results there would time the
harness too: on Python 3.11 reading ``FeedResult.VERIFIED`` alone costs about a
tenth of a ``feed``). ``--smoke`` runs once, for CI: it checks the script works,
its numbers mean little.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import best_of, repeat_from_args  # noqa: E402

from kraky_anyio.book import FeedResult, OrderBook  # noqa: E402

FIXTURE = ROOT.parent / "shared" / "fixtures" / "kraken-v1-book10-xbtusd.json"


def load_frames() -> tuple[str, list[str]]:
    if not FIXTURE.is_file():
        raise SystemExit(f"fixture not found: {FIXTURE} (shared/ must sit beside the repo)")
    data = json.loads(FIXTURE.read_text())
    snapshot = json.dumps(data["init"][-1])
    updates = [json.dumps(m) for m in data["updates"] if isinstance(m, list)]
    return snapshot, updates


def main(argv: list[str] | None = None) -> int:
    repeat = repeat_from_args(argv, __doc__.split("\n\n")[0], default=50)

    snapshot, updates = load_frames()
    loads = json.loads

    def decode_only() -> None:
        loads(snapshot)
        for frame in updates:
            loads(frame)

    def decode_and_feed() -> None:
        book = OrderBook("XBT/USD", 10)
        feed = book.feed
        feed(loads(snapshot))
        for frame in updates:
            feed(loads(frame))

    # Untimed: every update must verify (feed raises on a mismatch).
    book = OrderBook("XBT/USD", 10)
    book.feed(loads(snapshot))
    verified = sum(book.feed(loads(frame)) is FeedResult.VERIFIED for frame in updates)
    if verified != len(updates):
        raise SystemExit(f"only {verified} of {len(updates)} checksums verified")

    # Interleave the two cases so drifts in machine load hit both alike.
    t_a = t_b = float("inf")
    for _ in range(repeat):
        t_a = min(t_a, best_of(1, decode_only))
        t_b = min(t_b, best_of(1, decode_and_feed))

    n = len(updates)
    print(f"{n} updates (+1 snapshot), best of {repeat}, Python {sys.version.split()[0]}")
    print(f"{'case':<28} {'updates/s':>12} {'µs/update':>10} {'ratio':>6}")
    for name, t in (("(a) json.loads", t_a), ("(b) json.loads + feed", t_b)):
        print(f"{name:<28} {n / t:>12,.0f} {t / n * 1e6:>10.2f} {t / t_a:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
