"""What a live book drives: an engine that applies one message and returns a verdict.

:mod:`kraky_anyio.live_book` owns the tasks, the subscription and the resync
policy; it knows nothing of a book's wire format. An engine is any object
satisfying :class:`BookEngine` (sans-I/O, synchronous, never raises from
:meth:`~BookEngine.apply`): :class:`V1BookEngine` wraps v1's
:class:`~kraky_anyio.book.OrderBook`; the v2 L2/L3 books plug in the same way.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from .book import FeedResult, Level, OrderBook
from .errors import BookError, ChecksumMismatchError

__all__ = ["BookEngine", "BookView", "V1BookEngine", "Verdict"]

log = logging.getLogger("kraky_anyio")


class Verdict(enum.Enum):
    """What an engine did with one message."""

    #: A snapshot replaced the book: it is valid again (not yet proven by an update).
    SNAPSHOT = "snapshot"
    #: An update was applied (and verified, where it carried a checksum).
    APPLIED = "applied"
    #: The checksum did not match: the book is invalid until a new snapshot.
    MISMATCH = "mismatch"
    #: A malformed message for a valid book: it cannot be trusted any more.
    MALFORMED = "malformed"
    #: Not this book's business (another channel, or updates of an old
    #: subscription before the new snapshot): ignored.
    NOT_MINE = "not-mine"


class BookView(Protocol):
    """What a live book reads from its engine's book."""

    @property
    def valid(self) -> bool: ...
    @property
    def version(self) -> int: ...
    @property
    def resyncs(self) -> int: ...
    @property
    def updates(self) -> int: ...
    @property
    def bids(self) -> tuple[Level, ...]: ...
    @property
    def asks(self) -> tuple[Level, ...]: ...
    @property
    def best_bid(self) -> Level | None: ...
    @property
    def best_ask(self) -> Level | None: ...
    @property
    def spread(self) -> Decimal | None: ...
    @property
    def mid(self) -> Decimal | None: ...


class BookEngine(Protocol):
    """The sans-I/O side of a live book."""

    #: The pair, as the subscription and the channel data name it.
    pair: str
    #: The subscribed depth.
    depth: int
    #: The ``subscription`` argument of ``conn.subscribe()``.
    subscription: Mapping[str, Any]
    #: The channel name of its data (the stream filter keeps only these).
    channel: str

    @property
    def book(self) -> BookView: ...

    def apply(self, message: Any) -> Verdict:
        """Apply one message of the book's stream; never raises."""
        ...

    def reset(self) -> None:
        """Drop the book (counted as a resync); wait for a new snapshot."""
        ...


class V1BookEngine:
    """Kraken v1's ``book-<depth>`` channel on an :class:`OrderBook`.

    ``ValueError`` for a depth v1 does not offer or an empty pair.
    """

    def __init__(self, pair: str, depth: int = 10) -> None:
        self._book = OrderBook(pair, depth)
        self.pair = pair
        self.depth = depth
        self.subscription: Mapping[str, Any] = {"name": "book", "depth": depth}
        self.channel = f"book-{depth}"

    def __repr__(self) -> str:
        return f"<V1BookEngine {self._book!r}>"

    @property
    def book(self) -> OrderBook:
        return self._book

    def apply(self, message: Any) -> Verdict:
        if message.__class__ is not list:
            return Verdict.NOT_MINE  # events, notices: not book data
        valid = self._book.valid
        try:
            result = self._book.feed(message)
        except ChecksumMismatchError as exc:
            log.warning("%s", exc)
            return Verdict.MISMATCH
        except BookError as exc:
            if not valid:
                return Verdict.NOT_MINE  # the old subscription's data, before the snapshot
            log.warning("book %s: %s", self.pair, exc)
            return Verdict.MALFORMED
        return Verdict.SNAPSHOT if result is FeedResult.SNAPSHOT else Verdict.APPLIED

    def reset(self) -> None:
        self._book.reset(resync=True)
