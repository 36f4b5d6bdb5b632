"""One side of a v1 L2 book: levels kept sorted best first, with checksum caches.

The engine of :class:`~kraky_anyio.book.v1.OrderBook`; levels are v1's decimal
strings, validated here before anything changes.
"""

from __future__ import annotations

from bisect import bisect_left
from decimal import Decimal
from typing import Any, Final, NamedTuple, NoReturn
from zlib import crc32

from ..errors import BookError
from .checksums import CHECKSUM_DEPTH, checksum_value, describe, fragment

__all__ = ["Level", "Side"]


class Level(NamedTuple):
    """One price level, as read from the book."""

    price: Decimal
    volume: Decimal


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


def _reject_level(level: object, name: str) -> NoReturn:
    """Raise the precise :class:`BookError` for a level the fast path refused."""
    if type(level) is not list or len(level) not in (3, 4):
        raise BookError(
            f"book level in {name!r} must be [price, volume, time] or "
            f"[price, volume, time, 'r'], got {describe(level)}"
        )
    if len(level) == 4 and level[3] != "r":
        raise BookError(f"book level in {name!r} has an unknown flag: {describe(level)}")
    if type(level[2]) is not str:
        raise BookError(f"book level time in {name!r} must be a string, got {describe(level)}")
    fragment(level[1], "volume")
    if not fragment(level[0], "price"):
        raise BookError(f"book level price in {name!r} must be positive, got {describe(level)}")
    raise BookError(f"malformed book level in {name!r}: {describe(level)}")  # pragma: no cover


class Side:
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
            raise BookError(f"book {name!r} must be a list of levels, got {describe(levels)}")
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

    def update_one(self, level: object, c: str, other: Side, depth: int) -> bool | None:
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
                ok = computed == checksum_value(c)  # e.g. leading zeros
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
