"""Order books and their checksums, sans-I/O and synchronous.

* :mod:`.checksums`: Kraken's CRC32 rules, v1 and v2, and the one place where a
  number becomes checksum text;
* :mod:`.v1`: :class:`OrderBook`, one pair's book on v1's ``book`` channel;
* the v2 L2 and L3 books are in :mod:`kraky_anyio.v2`.
"""

from __future__ import annotations

from ._side import Level
from .checksums import CHECKSUM_DEPTH, checksum
from .v1 import DEPTHS, BookChecksumMismatchError, FeedResult, OrderBook

__all__ = [
    "CHECKSUM_DEPTH",
    "DEPTHS",
    "BookChecksumMismatchError",
    "FeedResult",
    "Level",
    "OrderBook",
    "checksum",
]
