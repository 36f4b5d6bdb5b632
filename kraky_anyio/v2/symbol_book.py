"""What the v2 L2 and L3 books share: the verdict on a message and the base class.

:class:`SymbolBook` is one symbol's book at one depth with the precisions its
numbers render at; :class:`~kraky_anyio.v2.book.Book` (L2) and
:class:`~kraky_anyio.v2.level3.Level3Book` (L3) build on it. Feeding a book
returns a :class:`Verdict` (an :class:`Outcome`, and both checksums on a
mismatch). Sans-I/O and synchronous: nothing here blocks; a malformed
checksum, symbol or message type raises
:class:`~kraky_anyio.errors.BookError`, a bad precision ``ValueError``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Final, Generic, NoReturn, TypeVar

from ..book.checksums import MAX_CHECKSUM
from ..errors import BookError
from .messages import BookEntry, Level3Entry

__all__ = ["Outcome", "SymbolBook", "Verdict", "check_checksum", "check_precision"]


class Outcome(enum.Enum):
    """What a book did with one message."""

    #: A snapshot replaced the book and its checksum matched.
    SNAPSHOT = "snapshot"
    #: An update was applied and its checksum matched.
    UPDATED = "updated"
    #: The checksum did not match: the book is invalid until a new snapshot.
    MISMATCH = "mismatch"
    #: The message is not for this book (another channel or symbol): untouched.
    IGNORED = "ignored"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one message; on a mismatch, Kraken's and the local checksum."""

    outcome: Outcome
    expected: int | None = None
    computed: int | None = None

    @property
    def ok(self) -> bool:
        """True unless the checksum did not match."""
        return self.outcome is not Outcome.MISMATCH


_SNAPSHOT: Final = Verdict(Outcome.SNAPSHOT)
_UPDATED: Final = Verdict(Outcome.UPDATED)
_IGNORED: Final = Verdict(Outcome.IGNORED)


def check_checksum(value: object) -> int:
    """``value`` if it is an unsigned 32-bit int, else raise :class:`BookError`."""
    if type(value) is not int or not 0 <= value <= MAX_CHECKSUM:
        raise BookError(f"book checksum must be an unsigned 32-bit int, got {value!r:.80}")
    return value


def check_precision(value: object, what: str) -> int | None:
    """``value`` if it is None or an int from 0 to 30, else raise :class:`ValueError`."""
    if value is not None and (type(value) is not int or not 0 <= value <= 30):
        raise ValueError(f"{what} must be None or an int from 0 to 30, got {value!r:.80}")
    return value


_Entry = TypeVar("_Entry", BookEntry, Level3Entry)


class SymbolBook(Generic[_Entry]):
    """What the L2 :class:`Book` and the L3 book share: one symbol at one depth,
    the precisions its numbers render at, and the checksum verdict of each entry.

    A subclass sets ``_CHANNEL``/``_DEPTHS``, keeps its sides and implements
    :meth:`feed_entry` and ``checksum``.
    """

    __slots__ = ("_depth", "_pp", "_qp", "_symbol", "_valid", "_version")

    _CHANNEL: ClassVar[str]  # the channel's name, for error texts
    _DEPTHS: ClassVar[tuple[int, ...]]

    def __init__(
        self, symbol: str, depth: int, price_precision: int | None, qty_precision: int | None
    ) -> None:
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"symbol must be a non-empty str, got {symbol!r:.80}")
        if type(depth) is not int or depth not in self._DEPTHS:
            raise ValueError(
                f"{self._CHANNEL} depth must be one of {self._DEPTHS}, got {depth!r:.80}"
            )
        self._symbol = symbol
        self._depth = depth
        self._pp = check_precision(price_precision, "price_precision")
        self._qp = check_precision(qty_precision, "qty_precision")
        self._valid = False
        self._version = 0

    def feed_entry(self, kind: str, entry: _Entry) -> Verdict:
        """Apply one entry of a ``kind`` (``snapshot``/``update``) message: the subclass's."""
        raise NotImplementedError

    def _feed_all(self, kind: str, entries: list[_Entry]) -> Verdict:
        verdict = _IGNORED
        for entry in entries:
            if entry.symbol == self._symbol:
                verdict = self.feed_entry(kind, entry)
                if verdict.outcome is Outcome.MISMATCH:
                    break
        return verdict

    def _checked(self, entry: _Entry) -> int:
        """The entry's checksum, after checking that both it and the symbol are this book's."""
        if entry.symbol != self._symbol:
            raise BookError(f"entry for {entry.symbol!r:.80} fed to the {self._symbol} book")
        return check_checksum(entry.checksum)

    def _is_update(self, kind: str) -> bool:
        """True for ``update``, False for ``snapshot``; raise :class:`BookError` otherwise."""
        if kind == "update":
            return True
        if kind == "snapshot":
            return False
        raise BookError(
            f"{self._CHANNEL} message type must be snapshot or update, got {kind!r:.80}"
        )

    def _refuse_update(self) -> NoReturn:
        """Raise :class:`BookError` for an update while the book is not valid."""
        book = "book" if self._CHANNEL == "book" else f"{self._CHANNEL} book"
        raise BookError(
            f"{self._symbol} {book} is not valid (no snapshot yet, reset, or a "
            "checksum mismatch): updates are refused until a new snapshot"
        )

    def _verdict(self, expected: int, computed: int, update: bool) -> Verdict:
        """The verdict on a changed book whose checksum is ``computed``: valid while they match."""
        if computed != expected:
            self._valid = False
            return Verdict(Outcome.MISMATCH, expected, computed)
        self._valid = True
        return _UPDATED if update else _SNAPSHOT

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def valid(self) -> bool:
        """True from a matching snapshot until a mismatch or a reset."""
        return self._valid

    @property
    def version(self) -> int:
        """Grows on every change: compare to coalesce."""
        return self._version
