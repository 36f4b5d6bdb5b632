"""One symbol's L3 book on Kraken's v2 ``level3`` channel: sans-I/O and synchronous.

Orders rest at their price level in queue order. A snapshot lists them; an
update's orders carry an ``event``: ``add`` appends the order to the back of
its level, ``modify`` changes its ``order_qty`` in place (queue position
kept), ``delete`` removes it (a level with no order left is gone). After every
entry each side is truncated to ``depth`` price levels, then the checksum is
verified: over the top 10 price levels per side, every order in queue order
contributes ``limit_price`` then ``order_qty``, rendered like the L2 book's
numbers (:func:`~kraky_anyio.book.checksums.v2_fragment`).

Choices where Kraken's guide says nothing: an ``add`` of an order id already
in the book moves that order (removed, then appended); a ``modify`` or
``delete`` of an unknown order id (e.g. one that fell out of depth) changes
nothing, and the checksum judges the result; an order whose quantity is 0
(in an add or a modify) is removed, so no level is ever left without
quantity. A malformed entry raises :class:`~kraky_anyio.errors.BookError`
before anything changes; a mismatch is a :class:`~kraky_anyio.v2.symbol_book.Verdict`,
as in the L2 book.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from decimal import Decimal
from typing import Final
from zlib import crc32

from ..book.checksums import CHECKSUM_DEPTH, v2_fragment
from ..errors import BookError
from .book import Outcome, SymbolBook, Verdict, check_precision
from .messages import BookLevel, Level3Entry, Level3Message, Level3Order, Message
from .params import LEVEL3_DEPTHS

__all__ = ["Level3Book", "PriceLevel"]

_EVENTS: Final = frozenset({"add", "modify", "delete"})
_IGNORED: Final = Verdict(Outcome.IGNORED)


@dataclass(frozen=True)
class PriceLevel:
    """One price level as read from an L3 book: its orders in queue order."""

    price: Decimal
    orders: tuple[Level3Order, ...]

    @property
    def qty(self) -> Decimal:
        """The level's total quantity (its L2 ``qty``)."""
        return sum((order.order_qty for order in self.orders), Decimal(0))


def _check_order(order: Level3Order, update: bool) -> None:
    price, qty = order.limit_price, order.order_qty
    if not (
        type(order.order_id) is str
        and order.order_id
        and type(price) is Decimal
        and type(qty) is Decimal
        and price.is_finite()
        and qty.is_finite()
        and price > 0
        and not qty.is_signed()
    ):
        raise BookError(
            "a level3 order needs an order_id, a positive limit_price and a non-negative "
            f"order_qty, got {order!r:.160}"
        )
    if update and order.event not in _EVENTS:
        raise BookError(f"a level3 update's event must be add, modify or delete: {order!r:.160}")


class _Side:
    """Price levels best first (``keys``: price, negated for bids), each a list of orders."""

    __slots__ = ("is_bids", "keys", "queues", "where")

    def __init__(self, is_bids: bool) -> None:
        self.is_bids = is_bids
        self.keys: list[Decimal] = []
        self.queues: list[list[Level3Order]] = []
        self.where: dict[str, Decimal] = {}  # order id -> its level's key

    def _remove(self, order_id: str) -> None:
        key = self.where.pop(order_id)
        i = bisect_left(self.keys, key)
        queue = self.queues[i]
        for j, resting in enumerate(queue):
            if resting.order_id == order_id:
                del queue[j]
                break
        if not queue:
            del self.keys[i], self.queues[i]

    def apply(self, orders: list[Level3Order], depth: int, update: bool) -> None:
        """Apply validated orders in order, then truncate to ``depth``. Cannot fail."""
        keys, queues, where = self.keys, self.queues, self.where
        for order in orders:
            oid = order.order_id
            event = order.event if update else "add"
            if order.order_qty.is_zero():
                # Kraken: a level with no quantity is removed; so is an order.
                event = "delete"
            if event == "delete" or event == "add":
                if oid in where:
                    self._remove(oid)
                if event == "delete":
                    continue
                if order.event is not None:  # the queue keeps no event
                    order = Level3Order(
                        order_id=oid,
                        limit_price=order.limit_price,
                        order_qty=order.order_qty,
                        timestamp=order.timestamp,
                    )
                price = order.limit_price
                key = price.copy_negate() if self.is_bids else price
                i = bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    queues[i].append(order)
                else:
                    keys.insert(i, key)
                    queues.insert(i, [order])
                where[oid] = key
            elif oid in where:  # modify: the quantity, in place
                queue = queues[bisect_left(keys, where[oid])]
                for j, resting in enumerate(queue):
                    if resting.order_id == oid:
                        queue[j] = Level3Order(
                            order_id=oid,
                            limit_price=resting.limit_price,
                            order_qty=order.order_qty,
                            timestamp=order.timestamp,
                        )
                        break
        if len(keys) > depth:
            for queue in queues[depth:]:
                for order in queue:
                    del where[order.order_id]
            del keys[depth:], queues[depth:]

    def top_bytes(self, pp: int | None, qp: int | None) -> bytes:
        return b"".join(
            v2_fragment(order.limit_price, pp) + v2_fragment(order.order_qty, qp)
            for queue in self.queues[:CHECKSUM_DEPTH]
            for order in queue
        )


class Level3Book(SymbolBook[Level3Entry]):
    """The L3 book of one symbol on the v2 ``level3`` channel at one ``depth``.

    Same interface as :class:`~kraky_anyio.v2.book.Book` (``feed`` returns a
    :class:`Verdict`); reading gives :class:`PriceLevel`s (the queue) through
    :attr:`asks`/:attr:`bids` and the aggregated L2 view through
    :meth:`l2_asks`/:meth:`l2_bids`.
    """

    __slots__ = ("_asks", "_bids")

    _CHANNEL = Level3Message.channel
    _DEPTHS = LEVEL3_DEPTHS

    def __init__(
        self,
        symbol: str,
        depth: int = 10,
        *,
        price_precision: int | None = None,
        qty_precision: int | None = None,
    ) -> None:
        """Raise :class:`ValueError` for an empty symbol, a depth not in
        :data:`~kraky_anyio.v2.params.LEVEL3_DEPTHS`, or a bad precision."""
        super().__init__(symbol, depth, price_precision, qty_precision)
        self._asks = _Side(is_bids=False)
        self._bids = _Side(is_bids=True)

    def feed(self, message: Message) -> Verdict:
        """Apply every entry of ``message`` for this symbol; see :meth:`Book.feed`."""
        if type(message) is not Level3Message:
            return _IGNORED
        return self._feed_all(message.type, message.data)

    def feed_entry(self, kind: str, entry: Level3Entry) -> Verdict:
        """Apply one entry; raises :class:`BookError` as :meth:`Book.feed_entry` does."""
        expected = self._checked(entry)
        update = self._is_update(kind)
        for order in (*entry.asks, *entry.bids):
            _check_order(order, update)
        if update:
            if not self._valid:
                self._refuse_update()
        else:
            self._asks, self._bids = _Side(is_bids=False), _Side(is_bids=True)
        self._asks.apply(entry.asks, self._depth, update)
        self._bids.apply(entry.bids, self._depth, update)
        self._version += 1
        return self._verdict(expected, self.checksum, update)

    def set_precision(self, price_precision: int | None, qty_precision: int | None) -> None:
        """Render numbers at these precisions from now on; raises :class:`ValueError`."""
        self._pp = check_precision(price_precision, "price_precision")
        self._qp = check_precision(qty_precision, "qty_precision")

    def reset(self) -> None:
        """Drop every order; the book is invalid until a snapshot."""
        self._asks, self._bids = _Side(is_bids=False), _Side(is_bids=True)
        self._valid = False
        self._version += 1

    @property
    def asks(self) -> tuple[PriceLevel, ...]:
        """Ask levels, lowest first, each with its orders in queue order."""
        return tuple(PriceLevel(q[0].limit_price, tuple(q)) for q in self._asks.queues)

    @property
    def bids(self) -> tuple[PriceLevel, ...]:
        """Bid levels, highest first, each with its orders in queue order."""
        return tuple(PriceLevel(q[0].limit_price, tuple(q)) for q in self._bids.queues)

    def l2_asks(self) -> tuple[BookLevel, ...]:
        """The aggregated L2 view of the asks: one ``{price, qty}`` per level."""
        return tuple(BookLevel(price=lv.price, qty=lv.qty) for lv in self.asks)

    def l2_bids(self) -> tuple[BookLevel, ...]:
        """The aggregated L2 view of the bids."""
        return tuple(BookLevel(price=lv.price, qty=lv.qty) for lv in self.bids)

    @property
    def checksum(self) -> int:
        """Kraken's L3 checksum of the current book."""
        pp, qp = self._pp, self._qp
        return crc32(self._bids.top_bytes(pp, qp), crc32(self._asks.top_bytes(pp, qp)))
