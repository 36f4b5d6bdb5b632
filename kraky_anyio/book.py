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
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any, Final, NamedTuple, NoReturn
from zlib import crc32

from .errors import BookError, ChecksumMismatchError

__all__ = [
    "CHECKSUM_DEPTH",
    "DEPTHS",
    "BookChecksumMismatchError",
    "FeedResult",
    "Level",
    "OrderBook",
    "checksum",
]

#: The depths Kraken's v1 ``book`` subscription accepts.
DEPTHS: Final = (10, 25, 100, 500, 1000)
#: How many levels per side the checksum covers, whatever the depth.
CHECKSUM_DEPTH: Final = 10


class Level(NamedTuple):
    """One price level, as read from the book."""

    price: Decimal
    volume: Decimal


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

# A validated level: (price string, volume string, price fragment, volume
# fragment). The fragments are the strings, as ASCII bytes, with the '.' removed
# and leading zeros stripped; an empty volume fragment means a zero volume: a
# delete. Bytes, not str: bytes.isdigit() accepts ASCII digits only (one check
# instead of isdigit() and isascii()) and the checksum needs bytes anyway.
_Parsed = tuple[str, str, bytes, bytes]

# A stored level is a 4-item list, for speed (mutated in place):
# [sort key, price string, volume string, price fragment (bytes)].
_Entry = list[Any]

# Prices of at most this many characters are sorted by float(price): a decimal
# string of at most 15 digits (hence of magnitude within 1e-15..1e15) rounds to
# a distinct double and rounding is monotonic, so that order is exact. The first
# longer price switches its side to Decimal keys for good.
_FLOAT_KEY_MAX_LEN: Final = 15


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _fragment(value: object, what: str) -> str:
    """The checksum fragment of one price or volume string.

    Raises :class:`BookError` unless ``value`` is a plain non-negative decimal
    string (ASCII digits, at most one '.'; no sign, exponent, NaN or Infinity).
    """
    if type(value) is not str:
        raise BookError(f"{what} must be a string, got {_short(value)}")
    digits = value.replace(".", "", 1)
    if not (digits.isdigit() and digits.isascii()):
        raise BookError(f"{what} is not a non-negative decimal string: {_short(value)}")
    return digits.lstrip("0")


def _reject_level(level: object, name: str) -> NoReturn:
    """Raise the precise :class:`BookError` for a level the fast path refused."""
    if type(level) is not list or len(level) not in (3, 4):
        raise BookError(
            f"book level in {name!r} must be [price, volume, time] or "
            f"[price, volume, time, 'r'], got {_short(level)}"
        )
    if len(level) == 4 and level[3] != "r":
        raise BookError(f"book level in {name!r} has an unknown flag: {_short(level)}")
    if type(level[2]) is not str:
        raise BookError(f"book level time in {name!r} must be a string, got {_short(level)}")
    _fragment(level[1], "volume")
    if not _fragment(level[0], "price"):
        raise BookError(f"book level price in {name!r} must be positive, got {_short(level)}")
    raise BookError(f"malformed book level in {name!r}: {_short(level)}")  # pragma: no cover


# The largest checksum, as a string: a 10-digit 'c' is in range if it is <= this.
_MAX_C: Final = str(0xFFFFFFFF)


def _checksum_value(value: object) -> int:
    """The value of a checksum field ``c``: an unsigned 32-bit decimal string.

    Raises :class:`BookError` if it is anything else. Leading zeros are
    accepted; a larger value could never match, and ``int()`` of a string of
    over 4300 digits (even zeros) would raise a plain ValueError.
    """
    if not (type(value) is str and value.isdigit() and value.isascii()):
        raise BookError(f"book checksum 'c' must be a string of digits, got {_short(value)}")
    digits = value.lstrip("0")
    if len(digits) > 10 or (len(digits) == 10 and digits > _MAX_C):
        raise BookError(f"book checksum 'c' is not a 32-bit value: {_short(value)}")
    return int(digits) if digits else 0


def checksum(asks: Iterable[Sequence[str]], bids: Iterable[Sequence[str]]) -> int:
    """Kraken's v1 book checksum of ``asks`` and ``bids``.

    Each is an iterable of levels ``(price_str, volume_str, ...)`` best first
    (asks ascending, bids descending); only the first 10 of each are used.
    For each level, the price and then the volume with the '.' removed and
    leading zeros stripped; all asks, then all bids; CRC32, unsigned.
    Raises :class:`BookError` if a price or volume is not a decimal string.
    """
    parts: list[str] = []
    for side in (asks, bids):
        for level in islice(side, CHECKSUM_DEPTH):
            parts.append(_fragment(level[0], "price"))
            parts.append(_fragment(level[1], "volume"))
    return crc32("".join(parts).encode("ascii"))


class _Side:
    """One side of the book, best level first.

    ``keys``, ``entries`` and ``frags`` (each level's checksum fragment, price
    then volume) are parallel lists kept sorted by ``keys`` with ``bisect``:
    the price for asks, its negation for bids, so both run best first.
    ``by_price`` maps each price string to its entry. ``top`` and ``crc`` cache
    the checksum bytes of the first 10 levels and their CRC32, ``view`` the
    levels as :class:`Level`; None means stale. The book's checksum is the CRC
    of the asks' ``top`` running on over the bids' ``top`` (``zlib.crc32``
    takes a starting value), so an update recomputes only its own side's part.
    """

    __slots__ = (
        "by_price",
        "crc",
        "entries",
        "exact",
        "frags",
        "is_bids",
        "keys",
        "name",
        "top",
        "view",
    )

    def __init__(self, is_bids: bool) -> None:
        self.is_bids = is_bids
        self.name = "b" if is_bids else "a"  # the update key, for error messages
        self.exact = False  # False: float keys; True: Decimal keys
        self.by_price: dict[str, _Entry] = {}
        self.keys: list[Any] = []
        self.entries: list[_Entry] = []
        self.frags: list[bytes] = []
        self.top: bytes | None = b""
        self.crc: int | None = 0
        self.view: tuple[Level, ...] | None = ()

    def parse(self, levels: object, name: str) -> list[_Parsed]:
        """Validate the level array ``name``; raise :class:`BookError` if malformed.

        Changes nothing: it only reuses the price fragments of known prices.
        """
        if type(levels) is not list:
            raise BookError(f"book {name!r} must be a list of levels, got {_short(levels)}")
        by_price = self.by_price
        out: list[_Parsed] = []
        append = out.append
        for level in levels:
            if type(level) is list and len(level) == 3:
                price, volume, stamp = level
            elif type(level) is list and len(level) == 4 and level[3] == "r":
                price, volume, stamp, _ = level
            else:
                _reject_level(level, name)
            if type(price) is str and type(volume) is str and type(stamp) is str:
                # Strip first, then check: stripping '0's from a digit string
                # leaves a digit string. An empty volume fragment is a zero
                # volume if the string had a digit at all. Any non-ASCII
                # character encodes to non-digit bytes; a lone surrogate, which
                # JSON can decode, does not encode at all.
                try:
                    entry = by_price.get(price)
                    if entry is not None:
                        pf = entry[3]
                    else:
                        pf = price.encode().replace(b".", b"", 1).lstrip(b"0")
                        if not pf.isdigit():
                            pf = b""  # not a decimal string, or a zero price
                    vf = volume.encode().replace(b".", b"", 1).lstrip(b"0")
                except UnicodeEncodeError:
                    _reject_level(level, name)
                if pf and (vf.isdigit() if vf else volume != "." and volume != ""):
                    append((price, volume, pf, vf))
                    continue
            _reject_level(level, name)
        return out

    def update_one(self, level: object, c: str, other: _Side, depth: int) -> bool | None:
        """Apply the only level of an update and verify the book's checksum ``c``.

        The hot path of :meth:`OrderBook.feed`: ``c`` is only known to be a
        string. The fragments change first and the checksum is computed with
        them; if ``c`` then turns out to be malformed, they are changed back and
        :class:`BookError` is raised, the book as it was. Otherwise the rest of
        the change is made and the result is whether ``c`` matched.

        Returns None, changing nothing, for anything unusual, left to the
        general path: a malformed level, a delete of an unknown price, another
        spelling of a known price, a new level past the end of a full side.
        """
        if type(level) is list and len(level) == 3:
            price, volume, stamp = level
        elif type(level) is list and len(level) == 4 and level[3] == "r":
            price, volume, stamp, _ = level
        else:
            return None
        if not (type(price) is str and type(volume) is str and type(stamp) is str):
            return None
        # As in parse(): strip, then check the fragment (bytes).
        try:
            vf = volume.encode().replace(b".", b"", 1).lstrip(b"0")
        except UnicodeEncodeError:
            return None
        if not (vf.isdigit() if vf else (volume != "" and volume != ".")):
            return None
        frags = self.frags
        entry = self.by_price.get(price)
        if entry is not None:  # a level of the book: change or delete it
            i = bisect_left(self.keys, entry[0])
            old = frags[i]  # for the undo
            if vf:
                frags[i] = entry[3] + vf
            else:
                del frags[i]
        else:  # a new level
            if not vf:
                return None
            try:
                pf = price.encode().replace(b".", b"", 1).lstrip(b"0")
            except UnicodeEncodeError:
                return None
            if not pf.isdigit():
                return None
            if self.exact or len(price) > _FLOAT_KEY_MAX_LEN:
                key = self.key_of(price)
            else:
                key = -float(price) if self.is_bids else float(price)
            keys = self.keys
            i = bisect_left(keys, key)
            if i >= depth or (i < len(keys) and keys[i] == key):
                return None
            frags.insert(i, pf + vf)
            cut = frags.pop() if len(frags) > depth else None  # for the undo
        # The checksum: CRC32 of the asks' top 10 running on over the bids' top
        # 10; the other side's part comes from its cache.
        if i < CHECKSUM_DEPTH:
            head = frags
            if depth > CHECKSUM_DEPTH and len(head) > CHECKSUM_DEPTH:
                head = head[:CHECKSUM_DEPTH]
            top = b"".join(head)
            if self.is_bids:
                asks_crc = other.crc
                if asks_crc is None:
                    asks_crc = other.top_crc()
                computed = crc32(top, asks_crc)
                crc = None  # the bids' CRC on its own is not used
            else:
                crc = crc32(top)
                bids_top = other.top
                if bids_top is None:
                    bids_top = other.top_bytes()
                computed = crc32(bids_top, crc)
        elif self.is_bids:  # the top 10 did not change
            computed = crc32(self.top_bytes(), other.top_crc())
        else:
            computed = crc32(other.top_bytes(), self.top_crc())
        ok = str(computed) == c
        if not ok:
            try:
                ok = computed == _checksum_value(c)  # e.g. leading zeros
            except BookError:  # malformed: change the fragments back
                if entry is not None:
                    if vf:
                        frags[i] = old
                    else:
                        frags.insert(i, old)
                else:
                    del frags[i]
                    if cut is not None:
                        frags.append(cut)
                raise
        # The rest of the change; it cannot fail.
        if entry is not None:
            if vf:
                entry[2] = volume
            else:
                del self.by_price[price]
                del self.keys[i]
                del self.entries[i]
        else:
            entry = [key, price, volume, pf]
            keys.insert(i, key)
            self.entries.insert(i, entry)
            self.by_price[price] = entry
            if cut is not None:  # truncated to the depth
                del self.by_price[self.entries.pop()[1]]
                keys.pop()
        if i < CHECKSUM_DEPTH:
            self.top = top
            self.crc = crc
        self.view = None
        return ok

    def key_of(self, price: str) -> Any:
        """The sort key of a validated price string."""
        if not self.exact:
            if len(price) <= _FLOAT_KEY_MAX_LEN:
                key = float(price)
                return -key if self.is_bids else key
            self._make_exact()
        exact = Decimal(price)
        # copy_negate, unlike unary minus, never rounds to the context precision.
        return exact.copy_negate() if self.is_bids else exact

    def _make_exact(self) -> None:
        self.exact = True
        for entry in self.entries:
            exact = Decimal(entry[1])
            entry[0] = exact.copy_negate() if self.is_bids else exact
        self.keys[:] = [entry[0] for entry in self.entries]

    def apply(self, parsed: list[_Parsed], depth: int) -> None:
        """Apply validated levels in order, then truncate to ``depth``. Cannot fail."""
        by_price = self.by_price
        keys = self.keys
        entries = self.entries
        frags = self.frags
        exact = self.exact
        is_bids = self.is_bids
        low = CHECKSUM_DEPTH  # the best index touched, if it is in the top 10
        for price, volume, pf, vf in parsed:
            entry = by_price.get(price)
            if entry is not None:
                i = bisect_left(keys, entry[0])
            else:
                if exact or len(price) > _FLOAT_KEY_MAX_LEN:
                    key = self.key_of(price)
                    exact = self.exact
                else:
                    key = -float(price) if is_bids else float(price)
                i = bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    # A price in the book, spelt differently ("1.5" vs "1.50"):
                    # the same level, known from now on by the latest spelling.
                    entry = entries[i]
                    del by_price[entry[1]]
                    entry[1] = price
                    entry[3] = pf
                    by_price[price] = entry
                elif vf:
                    entry = [key, price, volume, pf]
                    keys.insert(i, key)
                    entries.insert(i, entry)
                    frags.insert(i, pf + vf)
                    by_price[price] = entry
                    if i < low:
                        low = i
                    continue
                else:
                    continue  # deleting a level that is not in the book
            if vf:
                entry[2] = volume
                frags[i] = pf + vf
            else:
                del by_price[price]
                del keys[i]
                del entries[i]
                del frags[i]
            if i < low:
                low = i
        excess = len(keys) - depth
        if excess > 0:  # depth >= 10: the top 10 stays as it is
            if excess == 1:
                del by_price[entries.pop()[1]]
                keys.pop()
                frags.pop()
            else:
                for entry in entries[depth:]:
                    del by_price[entry[1]]
                del keys[depth:]
                del entries[depth:]
                del frags[depth:]
        if low < CHECKSUM_DEPTH:
            self.top = None
            self.crc = None
        self.view = None

    def top_bytes(self) -> bytes:
        top = self.top
        if top is None:
            frags = self.frags
            if len(frags) > CHECKSUM_DEPTH:
                frags = frags[:CHECKSUM_DEPTH]
            top = self.top = b"".join(frags)
        return top

    def top_crc(self) -> int:
        crc = self.crc
        if crc is None:
            crc = self.crc = crc32(self.top_bytes())
        return crc

    def levels(self) -> tuple[Level, ...]:
        view = self.view
        if view is None:
            view = self.view = tuple([Level(Decimal(e[1]), Decimal(e[2])) for e in self.entries])
        return view

    def best(self) -> Level | None:
        if not self.entries:
            return None
        if self.view is not None:
            return self.view[0]
        entry = self.entries[0]
        return Level(Decimal(entry[1]), Decimal(entry[2]))

    def best_price(self) -> Decimal | None:
        return Decimal(self.entries[0][1]) if self.entries else None


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
        self._asks = _Side(is_bids=False)
        self._bids = _Side(is_bids=True)
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
                                self._pair, _checksum_value(c), self.checksum
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
            raise BookError(f"book message must be a list, got {_short(message)}")
        if len(message) not in (4, 5):
            raise BookError(
                "book message must have 4 or 5 elements "
                f"([channelID, payload(s)..., channelName, pair]), got {len(message)}"
            )
        payloads = message[1:-2]
        for payload in payloads:
            if type(payload) is not dict:
                raise BookError(f"book payload must be an object, got {_short(payload)}")
        channel, pair = message[-2], message[-1]
        if channel != self._channel:
            raise BookError(f"message for channel {_short(channel)} fed to a {self._channel} book")
        if pair != self._pair:
            raise BookError(f"message for pair {_short(pair)} fed to the {self._pair} book")
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
            raise BookError(f"book update has no 'a' or 'b': {_short(message)}")
        if not self._valid:
            raise BookError(
                f"{self._pair} book is not valid (no snapshot yet, or reset, or a checksum "
                "mismatch): updates are refused until a new snapshot"
            )
        # Validate everything, then apply.
        asks = [level for levels in a for level in self._asks.parse(levels, "a")]
        bids = [level for levels in b for level in self._bids.parse(levels, "b")]
        last = payloads[-1]
        expected = _checksum_value(last["c"]) if "c" in last else None
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
        asks = _Side(is_bids=False)
        bids = _Side(is_bids=True)
        parsed_asks = asks.parse(payload.get("as", []), "as")
        parsed_bids = bids.parse(payload.get("bs", []), "bs")
        expected = _checksum_value(payload["c"]) if "c" in payload else None
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
        self._asks = _Side(is_bids=False)
        self._bids = _Side(is_bids=True)
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
