"""The orders behind each simulated price level, and what a v2 ``level3``
subscriber of each depth is sent.

The market (:mod:`kraky_anyio.testing.market_dynamics`) changes levels'
*volumes*; :class:`OrderQueues` turns every change into order events, with
its own random generator so that the v1 and v2 L2 streams do not depend on it:

* more volume at a level: a new order (a fresh id) joins the back of its queue;
* less volume from a trade: the front of the queue is filled first (price-time
  priority): front orders are deleted, the next one modified;
* less volume from a cancel or an amend: random orders of the queue are
  deleted, the last one touched modified (a reduce keeps its place);
* a level gone: every order deleted, in queue order.

A depth-D subscriber holds the top D price levels with all their orders:
events at a level it holds, or at a new level inside the top D, are sent
(``add``/``modify``/``delete``); a level pushed below D is not deleted (the
client truncates after each message); when a held level disappears, the
level that comes back into scope at rank D is sent as an ``add`` of each of
its orders, in queue order. The invariant, as for the L2 views in
:mod:`kraky_anyio.testing.market_book`: between messages each view holds
exactly the top D levels, each with the full book's queue.
"""

from __future__ import annotations

import random
import zlib
from bisect import bisect_left
from typing import TYPE_CHECKING

from ..book.checksums import CHECKSUM_DEPTH

if TYPE_CHECKING:
    from .market_book import BookSide

__all__ = ["L3View", "OrderQueues", "order_id"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_MIX = 0x9E3779B97F4A7C15  # odd: n -> n * _MIX mod 2**64 is a bijection

#: One resting order: [order_id, qty in units of 1e-8, time of its last change (v1 text)].
Order = list[str | int]
#: One event sent: (event, order_id, price units, qty units, timestamp).
Event = tuple[str, str, int, int, str]


def order_id(n: int, salt: int) -> str:
    """The ``n``-th order id of a pair: Kraken's ``OXXXXX-XXXXX-XXXXXX``
    shape, distinct for every ``n`` below 2**64 (a bijective mix)."""
    x = (salt & 0xFFFF) << 64 | (n * _MIX) % 2**64
    chars = "".join(_ALPHABET[(x >> (5 * i)) & 31] for i in range(16))
    return f"O{chars[:5]}-{chars[5:10]}-{chars[10:]}"


class L3View:
    """What a level3 subscriber of ``depth`` holds (``have``: prices), and
    the events of the current engine event (``out``)."""

    __slots__ = ("depth", "have", "out")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.have: set[int] = set()
        self.out: list[Event] = []


class OrderQueues:
    """The order queues of one side of a pair's book, and its level3 views.

    Prices are the book side's integer units; ranks come from the side's own
    sorted keys, so the queues always cover exactly the side's levels.
    """

    def __init__(self, name: str, seed: int, is_bids: bool, depths: tuple[int, ...]) -> None:
        self.rng = random.Random(f"kraky-anyio level3 {seed} {name} {is_bids}")
        self.salt = zlib.crc32(f"{name} {is_bids}".encode())
        self.count = 0
        self.queues: dict[int, list[Order]] = {}
        self.views = [L3View(d) for d in depths]

    def _new(self, qty: int, ts: str) -> Order:
        self.count += 1
        return [order_id(self.count, self.salt), qty, ts]

    def seed_level(self, price: int, volume: int, ts: str) -> None:
        """An initial level (no subscriber yet): its volume split into 1 to 3 orders."""
        parts = min(volume, self.rng.choice((1, 1, 2, 3)))
        queue = self.queues[price] = []
        for i in range(parts):
            qty = volume // parts + (1 if i < volume % parts else 0)
            queue.append(self._new(qty, ts))

    def seed_views(self, side: BookSide) -> None:
        for view in self.views:
            view.have = {side.price_at(r) for r in range(min(view.depth, len(side)))}

    def _send(self, event: str, price: int, order: Order, ts: str) -> None:
        item: Event = (event, str(order[0]), price, int(order[1]), ts)
        for view in self.views:
            if price in view.have:
                view.out.append(item)

    def change(self, side: BookSide, price: int, old: int, new: int, ts: str, fill: bool) -> None:
        """One level's volume went from ``old`` to ``new`` (the side already
        changed); ``fill``: by a trade. Records the order events."""
        if new > old:
            order = self._new(new - old, ts)
            self.queues.setdefault(price, []).append(order)
            rank = bisect_left(side.keys, price * side.sign)
            for view in self.views:
                if rank < view.depth:
                    view.have.add(price)
            self._send("add", price, order, ts)
            return
        if new == old:
            return
        queue = self.queues[price]
        if new == 0:
            for order in queue:
                self._send("delete", price, order, ts)
            del self.queues[price]
            for view in self.views:
                if price not in view.have:
                    continue
                view.have.discard(price)
                if len(side) >= view.depth:
                    back = side.price_at(view.depth - 1)  # back in scope
                    if back not in view.have:
                        view.have.add(back)
                        view.out.extend(
                            ("add", str(o[0]), back, int(o[1]), str(o[2]))
                            for o in self.queues[back]
                        )
            return
        take = old - new
        while take:
            i = 0 if fill else self.rng.randrange(len(queue))
            order = queue[i]
            qty = int(order[1])
            if qty <= take:
                take -= qty
                del queue[i]
                self._send("delete", price, order, ts)
            else:
                order[1] = qty - take
                order[2] = ts
                take = 0
                self._send("modify", price, order, ts)

    def drop_level(self, price: int) -> None:
        """The full book forgot a level far below every view."""
        del self.queues[price]

    def end_event(self, side: BookSide) -> None:
        """Truncate every view to its depth, as the client does after a message."""
        for view in self.views:
            extra = len(view.have) - min(view.depth, len(side))
            rank = view.depth
            while extra > 0:
                price = side.price_at(rank)
                rank += 1
                if price in view.have:
                    view.have.discard(price)
                    extra -= 1

    def top(self, side: BookSide, depth: int) -> list[tuple[int, list[Order]]]:
        """The best ``depth`` levels with their queues (shared: do not change)."""
        return [(p, self.queues[p]) for p in map(side.price_at, range(min(depth, len(side))))]

    def checksum_top(self, side: BookSide) -> list[tuple[int, list[Order]]]:
        return self.top(side, CHECKSUM_DEPTH)
