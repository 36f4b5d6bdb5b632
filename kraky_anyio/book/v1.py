"""One pair's order book for Kraken's v1 ``book`` channel: sans-I/O and synchronous.

:class:`OrderBook` takes whole channel-data messages, exactly as decoded from
JSON, applies them and verifies Kraken's CRC32 checksum on every update that
carries one. Prices and volumes are kept as the strings Kraken sent (the
checksum is defined on those strings) and turned into :class:`~decimal.Decimal`
only when the book is read.

Rules applied (see ``kraken-ws-v1.md``, "The order book and its checksum"):

* a snapshot ``{"as": [...], "bs": [...]}`` replaces the whole book and makes
  it valid; updates ``{"a": [...]}`` and/or ``{"b": [...]}`` are applied level
  by level in array order; a zero volume deletes the level; a republished level
  (fourth element ``"r"``) is applied like any other;
* after each message, each side is truncated to the subscribed depth;
* the checksum ``"c"`` of the last payload object is compared with the CRC32 of
  the 10 best asks and 10 best bids, whatever the depth.

Errors: every malformed message raises :class:`~kraky_anyio.errors.BookError`
before anything is changed; a checksum mismatch raises
:class:`BookChecksumMismatchError` (a
:class:`~kraky_anyio.errors.ChecksumMismatchError`) and leaves the book invalid
until the next snapshot.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any, Final
from zlib import crc32

from ..errors import BookError, ChecksumMismatchError
from ._side import Level, Side
from .checksums import MAX_CHECKSUM, checksum_value, describe

__all__ = [
    "DEPTHS",
    "BookChecksumMismatchError",
    "FeedResult",
    "OrderBook",
]

#: The depths Kraken's v1 ``book`` subscription accepts.
DEPTHS: Final = (10, 25, 100, 500, 1000)

_MAX_C: Final = str(MAX_CHECKSUM)


class FeedResult(enum.Enum):
    """What :meth:`OrderBook.feed` did with a message.

    A checksum mismatch is not a result: it raises
    :class:`BookChecksumMismatchError`.
    """

    #: A snapshot replaced the book; the book is now valid.
    SNAPSHOT = "snapshot"
    #: An update was applied; it carried no checksum, so nothing was verified.
    UPDATED = "updated"
    #: An update was applied and its checksum matched the book.
    VERIFIED = "verified"


class BookChecksumMismatchError(ChecksumMismatchError):
    """The checksum of a book message did not match the local book.

    ``expected`` is Kraken's value, ``computed`` the local one, both unsigned
    32-bit integers. The book that raised it is now invalid: resubscribe.
    """

    def __init__(self, pair: str, expected: int, computed: int) -> None:
        super().__init__(
            f"{pair} book checksum mismatch: Kraken sent {expected}, the local book gives "
            f"{computed}; the book is invalid until a new snapshot (resubscribe)"
        )
        self.pair = pair
        self.expected = expected
        self.computed = computed


_SNAPSHOT: Final = FeedResult.SNAPSHOT
_UPDATED: Final = FeedResult.UPDATED
_VERIFIED: Final = FeedResult.VERIFIED


class OrderBook:
    """The book of one pair on Kraken's v1 ``book-<depth>`` channel.

    Feed it every channel-data message of that subscription with :meth:`feed`.
    The counters ``version``, ``updates`` and ``resyncs`` only ever grow, also
    across :meth:`reset`. The levels are always readable; after a checksum
    mismatch they hold the suspect book, so check :attr:`valid` before use.
    """

    __slots__ = (
        "_asks",
        "_bids",
        "_channel",
        "_depth",
        "_not_updates",
        "_pair",
        "_resyncs",
        "_valid",
        "_version",
    )

    def __init__(self, pair: str, depth: int = 10) -> None:
        """Raise :class:`ValueError` unless ``depth`` is one of :data:`DEPTHS`."""
        if type(depth) is not int or depth not in DEPTHS:
            raise ValueError(f"book depth must be one of {DEPTHS}, got {depth!r}")
        if not isinstance(pair, str) or not pair:
            raise ValueError(f"pair must be a non-empty string, got {pair!r}")
        self._pair = pair
        self._depth = depth
        self._channel = f"book-{depth}"
        self._asks = Side(is_bids=False)
        self._bids = Side(is_bids=True)
        self._valid = False
        self._version = 0
        # The changes that were not applied updates (snapshots, mismatches,
        # resets): ``updates`` is ``version`` minus these, so that the hot path
        # counts an update with one increment instead of two.
        self._not_updates = 0
        self._resyncs = 0

    def __repr__(self) -> str:
        state = "valid" if self._valid else "invalid"
        return (
            f"<OrderBook {self._pair} depth={self._depth} {state} "
            f"asks={len(self._asks.entries)} bids={len(self._bids.entries)} "
            f"version={self._version}>"
        )

    # -- feeding -----------------------------------------------------------

    def feed(self, message: list[Any]) -> FeedResult:
        """Apply one channel-data message of this book's subscription.

        ``message`` is ``[channelID, payload, channelName, pair]`` or
        ``[channelID, asks_payload, bids_payload, channelName, pair]``
        (``channelID`` is ignored). Returns :attr:`FeedResult.SNAPSHOT`,
        :attr:`FeedResult.UPDATED` (no checksum present) or
        :attr:`FeedResult.VERIFIED`.

        Raises :class:`BookError`, leaving the book untouched, if the message is
        malformed (types, fields, unknown keys, decimal strings, negative
        volumes, zero prices, another pair or channel name) or is an update
        while the book is not valid (no snapshot yet, after a mismatch or
        :meth:`reset`). Raises :class:`BookChecksumMismatchError` if the
        checksum does not match: the message stays applied, the book becomes
        invalid and refuses updates until the next snapshot.
        """
        # The hot path: a valid book and a well-formed one-sided update with a
        # checksum, [id, {"a"|"b": [...], "c": "..."}, channel, pair]. Anything
        # else (or anything odd) takes the general path, which re-checks it all.
        if self._valid and type(message) is list:
            try:
                _, payload, channel, pair = message
            except ValueError:  # not 4 elements
                return self._feed(message)
            if (
                type(payload) is dict
                and len(payload) == 2
                and channel == self._channel
                and pair == self._pair
            ):
                c = payload.get("c")
                if type(c) is str:
                    levels = payload.get("b")
                    if levels is not None:
                        side = self._bids
                        other = self._asks
                    else:
                        levels = payload.get("a")
                        side = self._asks
                        other = self._bids
                    if type(levels) is list and len(levels) == 1:
                        # One level, the usual update: verified before it is made.
                        ok = side.update_one(levels[0], c, other, self._depth)
                        if ok is not None:
                            self._version += 1
                            if ok:
                                return _VERIFIED
                            self._valid = False
                            self._not_updates += 1
                            raise BookChecksumMismatchError(
                                self._pair, checksum_value(c), self.checksum
                            )
                    # Several levels (or one that update_one() left alone):
                    # validate 'c' and the levels, apply, verify. 'c' is an
                    # unsigned 32-bit decimal: at most 10 ASCII digits, and a
                    # 10-digit one at most _MAX_C, compared as strings (a shorter
                    # one may compare greater). Longer ones: the general path.
                    if (
                        levels is not None
                        and c.isdigit()
                        and c.isascii()
                        and len(c) <= 10
                        and (c <= _MAX_C or len(c) < 10)
                    ):
                        side.apply(side.parse(levels, side.name), self._depth)
                        self._version += 1
                        top = self._bids.top
                        if top is None:
                            top = self._bids.top_bytes()
                        crc = self._asks.crc
                        if crc is None:
                            crc = self._asks.top_crc()
                        computed = crc32(top, crc)
                        if str(computed) != c and computed != int(c):
                            self._valid = False
                            self._not_updates += 1
                            raise BookChecksumMismatchError(self._pair, int(c), computed)
                        return _VERIFIED
        return self._feed(message)

    def _feed(self, message: object) -> FeedResult:
        """:meth:`feed` for any message, checked step by step."""
        if type(message) is not list:
            raise BookError(f"book message must be a list, got {describe(message)}")
        if len(message) not in (4, 5):
            raise BookError(
                "book message must have 4 or 5 elements "
                f"([channelID, payload(s)..., channelName, pair]), got {len(message)}"
            )
        payloads = message[1:-2]
        for payload in payloads:
            if type(payload) is not dict:
                raise BookError(f"book payload must be an object, got {describe(payload)}")
        channel, pair = message[-2], message[-1]
        if channel != self._channel:
            raise BookError(
                f"message for channel {describe(channel)} fed to a {self._channel} book"
            )
        if pair != self._pair:
            raise BookError(f"message for pair {describe(pair)} fed to the {self._pair} book")
        if any("as" in p or "bs" in p for p in payloads):
            if len(payloads) != 1:
                raise BookError("a book snapshot must come as a single payload object")
            return self._snapshot(payloads[0])
        for payload in payloads:
            unknown = payload.keys() - {"a", "b", "c"}
            if unknown:
                raise BookError(f"book payload has unknown keys {sorted(map(str, unknown))}")
        if any("c" in p for p in payloads[:-1]):
            raise BookError("book checksum 'c' must be in the last payload object")
        a = [p["a"] for p in payloads if "a" in p]
        b = [p["b"] for p in payloads if "b" in p]
        if not a and not b:
            raise BookError(f"book update has no 'a' or 'b': {describe(message)}")
        if not self._valid:
            raise BookError(
                f"{self._pair} book is not valid (no snapshot yet, or reset, or a checksum "
                "mismatch): updates are refused until a new snapshot"
            )
        # Validate everything, then apply.
        asks = [level for levels in a for level in self._asks.parse(levels, "a")]
        bids = [level for levels in b for level in self._bids.parse(levels, "b")]
        last = payloads[-1]
        expected = checksum_value(last["c"]) if "c" in last else None
        if a:
            self._asks.apply(asks, self._depth)
        if b:
            self._bids.apply(bids, self._depth)
        self._version += 1
        if expected is None:
            return _UPDATED
        self._verify(expected, update=True)
        return _VERIFIED

    def _snapshot(self, payload: dict[str, Any]) -> FeedResult:
        unknown = payload.keys() - {"as", "bs", "c"}
        if unknown:
            raise BookError(
                f"book snapshot has unexpected keys {sorted(map(str, unknown))} "
                "(snapshot and update keys cannot be mixed)"
            )
        asks = Side(is_bids=False)
        bids = Side(is_bids=True)
        parsed_asks = asks.parse(payload.get("as", []), "as")
        parsed_bids = bids.parse(payload.get("bs", []), "bs")
        expected = checksum_value(payload["c"]) if "c" in payload else None
        asks.apply(parsed_asks, self._depth)
        bids.apply(parsed_bids, self._depth)
        self._asks = asks
        self._bids = bids
        self._version += 1
        self._not_updates += 1
        self._valid = True
        if expected is not None:
            self._verify(expected, update=False)
        return _SNAPSHOT

    def _verify(self, expected: int, *, update: bool) -> None:
        computed = crc32(self._bids.top_bytes(), self._asks.top_crc())
        if computed != expected:
            self._valid = False
            if update:
                self._not_updates += 1
            raise BookChecksumMismatchError(self._pair, expected, computed)

    def reset(self, *, resync: bool = False) -> None:
        """Drop every level and wait for a new snapshot (``valid`` becomes False).

        With ``resync=True`` the reset is counted in :attr:`resyncs`: pass it
        when the book is dropped to resubscribe (after a mismatch or a
        reconnect). Never raises.
        """
        self._asks = Side(is_bids=False)
        self._bids = Side(is_bids=True)
        self._valid = False
        self._version += 1
        self._not_updates += 1
        if resync:
            self._resyncs += 1

    # -- reading -----------------------------------------------------------

    @property
    def pair(self) -> str:
        """The pair, e.g. ``"XBT/USD"``."""
        return self._pair

    @property
    def depth(self) -> int:
        """The subscribed depth; each side holds at most this many levels."""
        return self._depth

    @property
    def channel_name(self) -> str:
        """The channel name this book accepts, e.g. ``"book-10"``."""
        return self._channel

    @property
    def valid(self) -> bool:
        """True from a snapshot until a checksum mismatch or :meth:`reset`."""
        return self._valid

    @property
    def version(self) -> int:
        """Grows on every change (snapshot, update, mismatch, reset): compare to coalesce."""
        return self._version

    @property
    def updates(self) -> int:
        """How many update messages were applied and passed (or had no) checksum."""
        return self._version - self._not_updates

    @property
    def resyncs(self) -> int:
        """How many times :meth:`reset` was called with ``resync=True``."""
        return self._resyncs

    @property
    def asks(self) -> tuple[Level, ...]:
        """The asks, lowest price first."""
        return self._asks.levels()

    @property
    def bids(self) -> tuple[Level, ...]:
        """The bids, highest price first."""
        return self._bids.levels()

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask, or None if there are no asks."""
        return self._asks.best()

    @property
    def best_bid(self) -> Level | None:
        """The highest bid, or None if there are no bids."""
        return self._bids.best()

    @property
    def spread(self) -> Decimal | None:
        """``best_ask.price - best_bid.price``, or None if a side is empty."""
        ask = self._asks.best_price()
        bid = self._bids.best_price()
        return None if ask is None or bid is None else ask - bid

    @property
    def mid(self) -> Decimal | None:
        """The mean of the best ask and best bid prices, or None if a side is empty."""
        ask = self._asks.best_price()
        bid = self._bids.best_price()
        return None if ask is None or bid is None else (ask + bid) / 2

    @property
    def checksum(self) -> int:
        """Kraken's checksum of the current book (top 10 of each side)."""
        return crc32(self._bids.top_bytes(), self._asks.top_crc())
