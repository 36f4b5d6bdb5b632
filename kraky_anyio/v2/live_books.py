"""v2 books on the shared live book: engines for :mod:`kraky_anyio.live_book`.

:class:`L2BookEngine` drives :class:`~kraky_anyio.v2.book.Book` (``book``
channel), :class:`L3BookEngine` drives
:class:`~kraky_anyio.v2.level3.Level3Book` (``level3`` channel); both satisfy
:class:`kraky_anyio.book_engine.BookEngine`, so ``conn.book()`` and
``conn.l3_book()`` return the same :class:`~kraky_anyio.live_book.LiveBook`
as v1 (best bid/ask, spread, levels as ``Level(price, volume)``, iteration
once per newer verified state, one ``BookResync`` notice per episode, and on a
mismatch that symbol alone is unsubscribed and subscribed again).
:class:`BookLink` adapts a v2 connection to the live book's
:class:`~kraky_anyio.live_book.BookConnection`. No I/O here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from ..book import Level
from ..book_engine import Verdict
from ..errors import BookError
from ..fanout import MessageStream
from .book import Book, Outcome
from .book import Verdict as BookVerdict
from .level3 import Level3Book, PriceLevel
from .messages import BookLevel, BookMessage, Level3Message, Response

__all__ = ["BookLink", "L2BookEngine", "L2View", "L3BookEngine", "L3View"]

log = logging.getLogger("kraky_anyio")

_VERDICTS = {
    Outcome.SNAPSHOT: Verdict.SNAPSHOT,
    Outcome.UPDATED: Verdict.APPLIED,
    Outcome.MISMATCH: Verdict.MISMATCH,
    Outcome.IGNORED: Verdict.NOT_MINE,
}


def _levels(levels: tuple[BookLevel, ...]) -> tuple[Level, ...]:
    return tuple(Level(lv.price, lv.qty) for lv in levels)


class _Read:
    """What both views compute from their sides (``Level`` tuples)."""

    @property
    def bids(self) -> tuple[Level, ...]:
        raise NotImplementedError

    @property
    def asks(self) -> tuple[Level, ...]:
        raise NotImplementedError

    @property
    def best_bid(self) -> Level | None:
        bids = self.bids
        return bids[0] if bids else None

    @property
    def best_ask(self) -> Level | None:
        asks = self.asks
        return asks[0] if asks else None

    @property
    def spread(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else ask.price - bid.price

    @property
    def mid(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else (ask.price + bid.price) / 2


class L2View(_Read):
    """An L2 book read as the live book reads v1's: levels are ``Level(price, volume)``;
    ``raw`` is the :class:`~kraky_anyio.v2.book.Book` (wire ``{price, qty}`` levels)."""

    def __init__(self, book: Book) -> None:
        self.raw = book

    @property
    def valid(self) -> bool:
        return self.raw.valid

    @property
    def version(self) -> int:
        return self.raw.version

    @property
    def resyncs(self) -> int:
        return self.raw.resyncs

    @property
    def updates(self) -> int:
        return self.raw.updates

    @property
    def bids(self) -> tuple[Level, ...]:
        return _levels(self.raw.bids)

    @property
    def asks(self) -> tuple[Level, ...]:
        return _levels(self.raw.asks)


class L3View(_Read):
    """An L3 book: ``bids``/``asks`` are the aggregated L2 view (``Level``);
    ``l3_bids``/``l3_asks`` each price level's orders in queue order
    (``order_id``, ``limit_price``, ``order_qty``, ``timestamp``)."""

    def __init__(self, book: Level3Book) -> None:
        self.raw = book
        self.resyncs = 0
        self.updates = 0

    @property
    def valid(self) -> bool:
        return self.raw.valid

    @property
    def version(self) -> int:
        return self.raw.version

    @property
    def bids(self) -> tuple[Level, ...]:
        return _levels(self.raw.l2_bids())

    @property
    def asks(self) -> tuple[Level, ...]:
        return _levels(self.raw.l2_asks())

    @property
    def l3_bids(self) -> tuple[PriceLevel, ...]:
        return self.raw.bids

    @property
    def l3_asks(self) -> tuple[PriceLevel, ...]:
        return self.raw.asks


class _Engine:
    """The engine logic both books share: feed, classify, count."""

    channel: str
    pair: str
    depth: int
    subscription: Mapping[str, Any]
    _book: Book | Level3Book
    _message: type

    @property
    def book(self) -> L2View | L3View:
        raise NotImplementedError

    def apply(self, message: Any) -> Verdict:
        if message.__class__ is not self._message or not isinstance(
            message, (BookMessage, Level3Message)
        ):
            return Verdict.NOT_MINE
        valid = self._book.valid
        try:
            verdict: BookVerdict = self._book.feed(message)
        except BookError as exc:
            if not valid:
                return Verdict.NOT_MINE  # the old subscription's data, before the snapshot
            log.warning("%s %s: %s", self.channel, self.pair, exc)
            return Verdict.MALFORMED
        if verdict.outcome is Outcome.MISMATCH:
            log.warning(
                "%s %s: checksum %s, computed %s: resubscribing",
                self.channel,
                self.pair,
                verdict.expected,
                verdict.computed,
            )
        return _VERDICTS[verdict.outcome]

    def set_precision(self, price_precision: int | None, qty_precision: int | None) -> None:
        self._book.set_precision(price_precision, qty_precision)


class L2BookEngine(_Engine):
    """The v2 ``book`` channel of one symbol; ``ValueError`` for a bad depth,
    symbol or precision."""

    _message = BookMessage

    def __init__(
        self,
        symbol: str,
        depth: int = 10,
        *,
        price_precision: int | None = None,
        qty_precision: int | None = None,
    ) -> None:
        self._book = self._l2 = Book(
            symbol, depth, price_precision=price_precision, qty_precision=qty_precision
        )
        self._view = L2View(self._l2)
        self.pair, self.depth, self.channel = symbol, depth, "book"
        self.subscription = {"channel": "book", "depth": depth}

    def __repr__(self) -> str:
        return f"<L2BookEngine {self._l2!r}>"

    @property
    def book(self) -> L2View:
        return self._view

    def reset(self) -> None:
        self._l2.reset(resync=True)


class L3BookEngine(_Engine):
    """The v2 ``level3`` channel of one symbol (``token``: the subscription's,
    or None for the connection's); ``ValueError`` as :class:`L2BookEngine`."""

    _message = Level3Message

    def __init__(
        self,
        symbol: str,
        depth: int = 10,
        *,
        token: str | None = None,
        price_precision: int | None = None,
        qty_precision: int | None = None,
    ) -> None:
        self._book = self._l3 = Level3Book(
            symbol, depth, price_precision=price_precision, qty_precision=qty_precision
        )
        self._view = L3View(self._l3)
        self.pair, self.depth, self.channel = symbol, depth, "level3"
        sub: dict[str, Any] = {"channel": "level3", "depth": depth}
        if token is not None:
            sub["token"] = token
        self.subscription = sub

    def __repr__(self) -> str:
        return f"<L3BookEngine {self.pair} depth={self.depth}>"

    @property
    def book(self) -> L3View:
        return self._view

    def apply(self, message: Any) -> Verdict:
        verdict = super().apply(message)
        if verdict is Verdict.APPLIED:
            self._view.updates += 1
        return verdict

    def reset(self) -> None:
        self._l3.reset()
        self._view.resyncs += 1


class V2Calls(Protocol):
    """The v2 connection methods a :class:`BookLink` forwards to."""

    @property
    def connected(self) -> bool: ...

    def messages(
        self, *, channel: str, symbol: str, overflow: str
    ) -> MessageStream: ...  # pragma: no cover

    async def subscribe(
        self, channel: str, symbols: str | list[str] | None = None, **params: Any
    ) -> list[Response]: ...

    async def unsubscribe(
        self, channel: str, symbols: str | list[str] | None = None, **params: Any
    ) -> list[Response]: ...

    async def wait_connected(self) -> None: ...


class BookLink:
    """A v2 connection as the live book's ``BookConnection``: v1-shaped calls
    (``subscription`` dict, ``pair`` list) forwarded to the v2 methods."""

    def __init__(self, conn: V2Calls) -> None:
        self._conn = conn

    @property
    def connected(self) -> bool:
        return self._conn.connected

    def messages(self, *, channel: str, pair: str, overflow: str) -> MessageStream:
        return self._conn.messages(channel=channel, symbol=pair, overflow=overflow)

    async def subscribe(self, subscription: Mapping[str, Any], pair: list[str]) -> object:
        params = {k: v for k, v in subscription.items() if k != "channel"}
        return await self._conn.subscribe(subscription["channel"], pair, **params)

    async def unsubscribe(self, subscription: Mapping[str, Any], pair: list[str]) -> object:
        params = {k: v for k, v in subscription.items() if k != "channel"}
        return await self._conn.unsubscribe(subscription["channel"], pair, **params)

    async def wait_connected(self) -> None:
        await self._conn.wait_connected()
