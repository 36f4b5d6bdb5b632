"""One symbol's L2 book on Kraken's v2 ``book`` channel: sans-I/O and synchronous.

:meth:`Book.feed` takes a decoded :class:`~kraky_anyio.v2.messages.BookMessage`
and returns a :class:`Verdict`; nothing here does I/O or raises on a checksum
mismatch. The v2 rules (``kraken-ws-v2.md``, "The book checksum (v2)"):

* a checksum comes on the snapshot and on every update: both are verified;
* every entry of a message is applied in array order (a price may come twice),
  ``qty`` 0 removes the level; then each side is truncated to the depth; then
  the checksum of the top 10 levels per side (whatever the depth) is compared;
* each number is rendered from its exact text, padded to the pair's
  ``price_precision``/``qty_precision`` where the text has fewer decimals
  (:func:`~kraky_anyio.book.checksums.number_text`, the one place for that).

After a mismatch the book is invalid (updates are refused with
:class:`~kraky_anyio.errors.BookError`) until the next snapshot: resubscribe.
A malformed entry (non-finite, negative or zero price, negative quantity, a
checksum outside 32 bits, an unknown ``type``) raises :class:`BookError`
before anything changes.

This module holds the L2 book, its sides and the level validation; what it
shares with the L3 book (the verdict, the symbol/depth/precision checks) is
:mod:`kraky_anyio.v2.symbol_book`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from decimal import Decimal
from typing import Final
from zlib import crc32

from ..book.checksums import CHECKSUM_DEPTH, v2_fragment
from ..errors import BookError
from .messages import BookEntry, BookLevel, BookMessage, Message
from .params import BOOK_DEPTHS
from .symbol_book import Outcome, SymbolBook, Verdict, check_checksum, check_precision

# Outcome, SymbolBook, Verdict and the checks live in .symbol_book (shared with
# the L3 book); re-exported for the old imports.

__all__ = ["Book", "Outcome", "SymbolBook", "Verdict", "check_checksum", "check_precision"]


_IGNORED: Final = Verdict(Outcome.IGNORED)


# A validated level ready to apply: (sort key, level, checksum text or None for a delete).
_Prepared = tuple[Decimal, BookLevel, bytes | None]


def _prepare(
    levels: Sequence[BookLevel], is_bids: bool, pp: int | None, qp: int | None
) -> list[_Prepared]:
    """Validate and render ``levels``; raise :class:`BookError` for a bad one. Changes nothing."""
    out: list[_Prepared] = []
    for level in levels:
        price = level.price
        qty = level.qty
        try:
            ok = (
                type(price) is Decimal
                and type(qty) is Decimal
                and price.is_finite()
                and price > 0
                and qty >= 0
            )
        except ArithmeticError:  # a NaN compared
            ok = False
        if not ok:
            raise BookError(
                f"a book level needs a positive price and a non-negative qty, got {level!r:.120}"
            )
        key = price.copy_negate() if is_bids else price
        # number_text() raises BookError for an infinite qty.
        frag = None if qty.is_zero() else v2_fragment(price, pp) + v2_fragment(qty, qp)
        out.append((key, level, frag))
    return out


class _Side:
    """One side, best first: parallel lists sorted by ``keys`` (the price; negated for bids)."""

    __slots__ = ("frags", "is_bids", "keys", "levels", "top")

    def __init__(self, is_bids: bool) -> None:
        self.is_bids = is_bids
        self.keys: list[Decimal] = []
        self.levels: list[BookLevel] = []
        self.frags: list[bytes] = []  # each level's checksum text: price then qty
        self.top: bytes | None = b""  # the checksum text of the top 10; None: stale

    def apply(self, prepared: list[_Prepared], depth: int) -> None:
        """Apply prepared levels in order, then truncate to ``depth``. Cannot fail."""
        keys = self.keys
        levels = self.levels
        frags = self.frags
        low = CHECKSUM_DEPTH
        for key, level, frag in prepared:
            i = bisect_left(keys, key)
            found = i < len(keys) and keys[i] == key
            if frag is None:
                if not found:
                    continue  # Kraken deletes levels that already fell out of depth
                del keys[i], levels[i], frags[i]
            elif found:
                levels[i] = level
                frags[i] = frag
            else:
                keys.insert(i, key)
                levels.insert(i, level)
                frags.insert(i, frag)
            if i < low:
                low = i
        if len(keys) > depth:
            del keys[depth:], levels[depth:], frags[depth:]
        if low < CHECKSUM_DEPTH:
            self.top = None

    def top_bytes(self) -> bytes:
        top = self.top
        if top is None:
            top = self.top = b"".join(self.frags[:CHECKSUM_DEPTH])
        return top

    def rerender(self, pp: int | None, qp: int | None) -> None:
        self.frags = [v2_fragment(lv.price, pp) + v2_fragment(lv.qty, qp) for lv in self.levels]
        self.top = None


class Book(SymbolBook[BookEntry]):
    """The L2 book of one symbol on the v2 ``book`` channel at one ``depth``.

    ``price_precision``/``qty_precision`` are the pair's (from the
    ``instrument`` channel); needed only when the numbers' text lost its
    trailing zeros (see the module text); :meth:`set_precision` changes them.
    ``version`` grows on every change; ``updates`` and ``resyncs`` only grow.
    """

    __slots__ = ("_asks", "_bids", "_resyncs", "_updates")

    _CHANNEL = BookMessage.channel
    _DEPTHS = BOOK_DEPTHS

    def __init__(
        self,
        symbol: str,
        depth: int = 10,
        *,
        price_precision: int | None = None,
        qty_precision: int | None = None,
    ) -> None:
        """Raise :class:`ValueError` for an empty symbol, a depth not in
        :data:`~kraky_anyio.v2.params.BOOK_DEPTHS`, or a bad precision."""
        super().__init__(symbol, depth, price_precision, qty_precision)
        self._asks = _Side(is_bids=False)
        self._bids = _Side(is_bids=True)
        self._updates = 0
        self._resyncs = 0

    def __repr__(self) -> str:
        state = "valid" if self._valid else "invalid"
        return (
            f"<v2.Book {self._symbol} depth={self._depth} {state} "
            f"asks={len(self._asks.keys)} bids={len(self._bids.keys)} version={self._version}>"
        )

    # -- feeding -----------------------------------------------------------

    def feed(self, message: Message) -> Verdict:
        """Apply every entry of ``message`` for this symbol, in order.

        Returns the verdict of the last entry applied, or of the first that
        did not match (later entries are then not applied); ``IGNORED`` if
        ``message`` is not a ``book`` message or has no entry for this symbol.
        Raises :class:`BookError` as :meth:`feed_entry` does.
        """
        if type(message) is not BookMessage:
            return _IGNORED
        return self._feed_all(message.type, message.data)

    def feed_entry(self, kind: str, entry: BookEntry) -> Verdict:
        """Apply one entry of a message of type ``kind`` (``snapshot``/``update``).

        Raises :class:`BookError`, changing nothing, for another symbol, an
        unknown ``kind``, a malformed level or checksum, or an update while
        the book is not valid (no snapshot yet, or after a mismatch).
        """
        expected = self._checked(entry)
        depth, pp, qp = self._depth, self._pp, self._qp
        new_asks = _prepare(entry.asks, False, pp, qp) if entry.asks else None
        new_bids = _prepare(entry.bids, True, pp, qp) if entry.bids else None
        update = self._is_update(kind)
        if update:
            if not self._valid:
                self._refuse_update()
            asks, bids = self._asks, self._bids
        else:
            asks, bids = _Side(is_bids=False), _Side(is_bids=True)
        if new_asks:
            asks.apply(new_asks, depth)
        if new_bids:
            bids.apply(new_bids, depth)
        self._asks, self._bids = asks, bids
        self._version += 1
        verdict = self._verdict(expected, crc32(bids.top_bytes(), crc32(asks.top_bytes())), update)
        if verdict.outcome is Outcome.UPDATED:
            self._updates += 1
        return verdict

    def set_precision(self, price_precision: int | None, qty_precision: int | None) -> None:
        """Render the book's numbers at these precisions from now on (e.g. from ``instrument``).

        Raises :class:`ValueError` for a bad precision. Does not verify anything.
        """
        self._pp = check_precision(price_precision, "price_precision")
        self._qp = check_precision(qty_precision, "qty_precision")
        self._asks.rerender(self._pp, self._qp)
        self._bids.rerender(self._pp, self._qp)

    def reset(self, *, resync: bool = False) -> None:
        """Drop every level; the book is invalid until a snapshot. ``resync`` counts it."""
        self._asks = _Side(is_bids=False)
        self._bids = _Side(is_bids=True)
        self._valid = False
        self._version += 1
        if resync:
            self._resyncs += 1

    # -- reading -----------------------------------------------------------

    @property
    def updates(self) -> int:
        """How many updates were applied and verified."""
        return self._updates

    @property
    def resyncs(self) -> int:
        """How many times :meth:`reset` was called with ``resync=True``."""
        return self._resyncs

    @property
    def asks(self) -> tuple[BookLevel, ...]:
        """The asks, lowest price first, as the wire's ``{price, qty}`` levels."""
        return tuple(self._asks.levels)

    @property
    def bids(self) -> tuple[BookLevel, ...]:
        """The bids, highest price first."""
        return tuple(self._bids.levels)

    @property
    def best_ask(self) -> BookLevel | None:
        levels = self._asks.levels
        return levels[0] if levels else None

    @property
    def best_bid(self) -> BookLevel | None:
        levels = self._bids.levels
        return levels[0] if levels else None

    @property
    def spread(self) -> Decimal | None:
        """``best_ask.price - best_bid.price``, or None if a side is empty."""
        ask, bid = self.best_ask, self.best_bid
        return None if ask is None or bid is None else ask.price - bid.price

    @property
    def checksum(self) -> int:
        """Kraken's checksum of the current book (top 10 of each side)."""
        return crc32(self._bids.top_bytes(), crc32(self._asks.top_bytes()))
