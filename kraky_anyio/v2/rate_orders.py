"""Which orders are open, on which pair, since when: what the rate budget needs
to price a cancel, amend or edit. No I/O; times are the caller's clock.

Kraken charges cancelling, amending or editing an order more the younger it
is (:mod:`.rate_rules`), so the client keeps, for every order it knows, its
pair and the time it was first seen *accepted*: the client's own ``add_order``
/ ``batch_add`` / ``edit_order`` responses, or an ``executions`` ``new``. An
order is always accepted by Kraken before the client hears of it, so the age
the client computes is never more than Kraken's: a cost computed from it is
never less than Kraken's.

Choices where Kraken is silent:

* ``amended``: the age restarts at the amend (whether Kraken's does is not
  documented; assuming it does never under-charges the next action).
* An order known only from ``pending_new``, a ``trade`` or a snapshot entry
  has an unknown placing time (``placed_at`` None): priced as the youngest.
  Snapshot entries are taken as placed when the snapshot arrives.
* ``filled``, ``canceled``, ``expired`` (and a client's successful cancel)
  forget the order; its ids are remembered a while, so a late ``new`` seen on
  a second connection does not bring it back.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MAX_ORDERS", "OrderInfo", "OrderTable", "field_of", "listed"]

#: Open orders remembered at most (the oldest placed go first): Kraken allows
#: far fewer per account, so only orders whose end the client never heard of
#: (no ``executions`` subscription) are ever dropped.
MAX_ORDERS: Final = 10_000
_MAX_GONE: Final = 4096

_OPEN: Final = frozenset({"pending_new", "new", "partially_filled"})
_GONE: Final = frozenset({"filled", "canceled", "cancelled", "expired"})
_ON_ORDERS: Final = frozenset({"cancel_order", "batch_cancel", "amend_order", "edit_order"})


def field_of(entry: Any, name: str) -> Any:
    """``entry[name]`` for a dict, ``entry.name`` for a typed entry, else None
    (``executions`` entries are dicts or structs depending on the decoder)."""
    if isinstance(entry, Mapping):
        return entry.get(name)
    return getattr(entry, name, None)


@dataclass
class OrderInfo:
    """One open order: its ids, pair and when it was first seen accepted
    (None: unknown, priced as the youngest)."""

    order_id: str | None
    pair: str
    placed_at: float | None
    cl_ord_id: str | None = None
    order_userref: int | None = None

    def age(self, now: float) -> float | None:
        """Seconds since it was placed (never negative), or None if unknown."""
        return None if self.placed_at is None else max(0.0, now - self.placed_at)


class OrderTable:
    """The open orders of one account as the client knows them."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, OrderInfo] = OrderedDict()
        self._by_cl: dict[str, OrderInfo] = {}
        self._gone: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id) + sum(1 for o in self._by_cl.values() if o.order_id is None)

    def __iter__(self) -> Iterator[OrderInfo]:
        seen = list(self._by_id.values())
        seen += [o for o in self._by_cl.values() if o.order_id is None]
        return iter(seen)

    # -- lookups ---------------------------------------------------------------

    def get(self, order_id: object = None, cl_ord_id: object = None) -> OrderInfo | None:
        """The order with ``order_id`` (else ``cl_ord_id``), or None."""
        if isinstance(order_id, str) and order_id in self._by_id:
            return self._by_id[order_id]
        if isinstance(cl_ord_id, str):
            return self._by_cl.get(cl_ord_id)
        return None

    def by_userref(self, userref: object) -> list[OrderInfo]:
        """Every open order carrying ``order_userref`` ``userref``."""
        if isinstance(userref, bool) or not isinstance(userref, int):
            return []
        return [o for o in self if o.order_userref == userref]

    def by_ref(self, ref: object) -> list[OrderInfo]:
        """``batch_cancel``'s ``orders`` entries: an order id, a client order id
        or an ``order_userref``."""
        if isinstance(ref, int) and not isinstance(ref, bool):
            return self.by_userref(ref)
        found = self.get(ref, ref)
        return [] if found is None else [found]

    # -- changes ---------------------------------------------------------------

    def placed(
        self,
        pair: str,
        now: float | None,
        order_id: object = None,
        cl_ord_id: object = None,
        order_userref: object = None,
    ) -> OrderInfo | None:
        """Record an accepted order (its first sighting's time is kept: the
        earliest the client saw it, still no earlier than Kraken placed it).
        ``now`` None: known to be open, placing time unknown. Ignored for an
        order already gone, or one with no id at all."""
        oid = order_id if isinstance(order_id, str) and order_id else None
        cl = cl_ord_id if isinstance(cl_ord_id, str) and cl_ord_id else None
        if (oid is None and cl is None) or (oid is not None and oid in self._gone):
            return None
        info = self._by_id.get(oid) if oid is not None else None
        if info is None and cl is not None:
            # The same order known so far by its client id only; never another
            # order that happens to carry that client id too.
            named = self._by_cl.get(cl)
            if named is not None and (oid is None or named.order_id in (None, oid)):
                info = named
        if info is None:
            info = OrderInfo(oid, pair, now, cl)
        elif info.placed_at is None:
            info.placed_at = now
        if info.order_id is None and oid is not None:
            info.order_id = oid
        if cl is not None:
            info.cl_ord_id = cl
        if isinstance(order_userref, int) and not isinstance(order_userref, bool):
            info.order_userref = order_userref
        self._index(info)
        return info

    def amended(self, info: OrderInfo, now: float) -> None:
        """``info`` was amended at ``now``: its age restarts (see the module)."""
        info.placed_at = now

    def gone(self, info: OrderInfo) -> None:
        """``info`` is no longer open (filled, cancelled, expired, replaced)."""
        if info.order_id is not None:
            self._by_id.pop(info.order_id, None)
            self._gone[info.order_id] = None
            while len(self._gone) > _MAX_GONE:
                self._gone.popitem(last=False)
        if info.cl_ord_id is not None and self._by_cl.get(info.cl_ord_id) is info:
            del self._by_cl[info.cl_ord_id]

    def clear(self) -> None:
        """Every order is gone (``cancel_all``)."""
        for info in list(self):
            self.gone(info)

    def _index(self, info: OrderInfo) -> None:
        if info.order_id is not None:
            self._by_id[info.order_id] = info
            while len(self._by_id) > MAX_ORDERS:
                _, oldest = self._by_id.popitem(last=False)
                self.gone(oldest)
        if info.cl_ord_id is not None:
            self._by_cl[info.cl_ord_id] = info

    # -- the client's own responses ----------------------------------------------

    def response(self, method: str, params: Mapping[str, Any], result: Any, now: float) -> None:
        """Apply the successful ``result`` of ``method`` sent with ``params``
        (``validate: true`` requests place nothing)."""
        if params.get("validate") is True:
            return
        symbol = params.get("symbol")
        pair = symbol if isinstance(symbol, str) else ""
        if method == "add_order" and pair:
            self._placed_by(pair, now, result, params)
        elif method == "batch_add" and pair and isinstance(result, list):
            sent = params.get("orders")
            sent = sent if isinstance(sent, list | tuple) else []
            for i, one in enumerate(result):
                self._placed_by(pair, now, one, sent[i] if i < len(sent) else {})
        elif method == "amend_order":
            info = self._find(result, params)
            if info is not None:
                self.amended(info, now)
        elif method == "edit_order":
            old = self.get(field_of(result, "original_order_id") or params.get("order_id"))
            if old is not None:
                self.gone(old)
                pair = pair or old.pair
            if pair:
                self.placed(pair, now, field_of(result, "order_id"))
        elif method == "cancel_order":
            info = self._find(result, {})
            if info is not None:
                self.gone(info)
        elif method == "batch_cancel":
            for ref in [*listed(params.get("orders")), *listed(params.get("cl_ord_id"))]:
                for info in self.by_ref(ref):
                    self.gone(info)
        elif method == "cancel_all":
            self.clear()

    def refused(self, method: str, response: Any) -> None:
        """Apply a refusal: ``EOrder:Unknown order`` on a cancel, amend or
        edit means Kraken has no such open order (the response names it)."""
        error = field_of(response, "error")
        if isinstance(error, str) and error.startswith("EOrder:Unknown order"):
            info = self.get(field_of(response, "order_id"), field_of(response, "cl_ord_id"))
            if info is not None and method in _ON_ORDERS:
                self.gone(info)

    def _placed_by(self, pair: str, now: float, result: Any, sent: Any) -> None:
        self.placed(
            pair,
            now,
            field_of(result, "order_id"),
            field_of(result, "cl_ord_id") or field_of(sent, "cl_ord_id"),
            field_of(result, "order_userref") or field_of(sent, "order_userref"),
        )

    def _find(self, result: Any, params: Mapping[str, Any]) -> OrderInfo | None:
        oid = field_of(result, "order_id") or params.get("order_id")
        return self.get(oid, field_of(result, "cl_ord_id") or params.get("cl_ord_id"))

    # -- executions ------------------------------------------------------------

    def execution(self, entry: Any, now: float, snapshot: bool = False) -> None:
        """Apply one ``executions`` entry (a dict or a typed entry)."""
        oid, cl = field_of(entry, "order_id"), field_of(entry, "cl_ord_id")
        kind = field_of(entry, "exec_type")
        status = field_of(entry, "order_status")
        info = self.get(oid, cl)
        if kind in _GONE or (kind is None and status in _GONE):
            if info is not None:
                self.gone(info)
            return
        symbol = field_of(entry, "symbol")
        if kind == "amended" and info is not None:
            self.amended(info, now)
            return
        if not isinstance(symbol, str) or not symbol:
            return
        if kind == "new" or (snapshot and status in _OPEN and kind != "pending_new"):
            self.placed(symbol, now, oid, cl, field_of(entry, "order_userref"))
        elif kind in ("pending_new", "trade", "amended", "restated") or status in _OPEN:
            self.placed(symbol, None, oid, cl, field_of(entry, "order_userref"))

    def executions(self, entries: Iterable[Any], now: float, snapshot: bool = False) -> None:
        for entry in entries:
            self.execution(entry, now, snapshot)


def listed(value: object) -> list[object]:
    """A wire list parameter as a list (a lone value as a list of one)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]
