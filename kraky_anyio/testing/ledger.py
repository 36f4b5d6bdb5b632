"""The matching engine's ledger: orders, trades, ids, and their v1 private-feed shapes.

:class:`Ledger` keeps every :class:`FakeOrder` and :class:`FakeTrade` and
performs the state changes (place, fill, cancel); each change appends an
:class:`Update` (account, channel, payload) that the engine later delivers
to the subscribers of that account. The ledger knows nothing of requests,
validation, sessions or time sources: the engine passes wall-clock seconds
in. Pure, no I/O.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

__all__ = ["FakeOrder", "FakeTrade", "Ledger", "Update", "money_text", "volume_text"]

_ID_CHARS = string.ascii_uppercase + string.digits
_TRADE_SNAPSHOT_SIZE = 50


def _amount(value: Decimal, places: int) -> str:
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def volume_text(value: Decimal) -> str:
    """A volume as Kraken writes it: 8 decimals."""
    return _amount(value, 8)


def money_text(value: Decimal) -> str:
    """A price, cost or fee as Kraken's private feeds write it: 5 decimals."""
    return _amount(value, 5)


@dataclass
class FakeOrder:
    """One order of the engine (read it, do not change it).

    ``status`` is ``"pending"`` only while being placed, then ``"open"``,
    ``"closed"`` (filled), ``"canceled"`` or ``"expired"`` (a v2
    ``expire_time``). Times are Unix seconds on the engine's wall clock
    (see :class:`~kraky_anyio.testing.engine.FakeMatchingEngine`).
    """

    txid: str
    account: str
    pair: str
    type: str
    ordertype: str
    volume: Decimal
    price: Decimal | None
    price_text: str | None
    userref: int
    opentm: float
    cl_ord_id: str | None = None
    oflags: str = ""
    status: str = "pending"
    vol_exec: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    closetm: float | None = None
    cancel_reason: str | None = None
    #: Kept out of the book (an untriggered stop, a v2 order before its
    #: ``effective_time``): it never fills while held.
    held: bool = False

    @property
    def is_open(self) -> bool:
        """True while the order rests in the book (``pending`` or ``open``)."""
        return self.status in ("pending", "open")

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.vol_exec if self.vol_exec else Decimal(0)

    def crosses(self, reference: Decimal) -> bool:
        """Whether the order fills at ``reference`` (a market order always
        does, a held one never)."""
        if self.held:
            return False
        if self.price is None:
            return True
        return self.price >= reference if self.type == "buy" else self.price <= reference


@dataclass(frozen=True)
class FakeTrade:
    """One fill of a :class:`FakeOrder` (the whole order: no partial fills)."""

    txid: str
    ordertxid: str
    postxid: str
    account: str
    pair: str
    type: str
    ordertype: str
    price: Decimal
    vol: Decimal
    cost: Decimal
    fee: Decimal
    time: float


class Update(NamedTuple):
    """Private data for the subscribers of ``account`` to ``channel``."""

    account: str
    channel: str
    payload: list[Any]


class Ledger:
    """Orders and trades; ids from ``random.Random(seed)`` (same seed, same
    requests: same ids). ``fee_rate`` is the fee as a fraction of the cost."""

    def __init__(self, seed: int, fee_rate: Decimal) -> None:
        self.fee_rate = fee_rate
        self.orders: dict[str, FakeOrder] = {}
        self.trades: list[FakeTrade] = []
        self._rng = random.Random(seed)
        self._ids: set[str] = set()

    def new_id(self, prefix: str) -> str:
        """A fresh ``OXXXXX-XXXXX-XXXXXX``-shaped id starting with ``prefix``."""
        while True:
            chars = "".join(self._rng.choice(_ID_CHARS) for _ in range(16))
            txid = f"{prefix}{chars[:5]}-{chars[5:10]}-{chars[10:]}"
            if txid not in self._ids:
                self._ids.add(txid)
                return txid

    def open_orders(self, account: str | None = None) -> list[FakeOrder]:
        """The open orders (of ``account``, or of all), in placement order."""
        return [
            o
            for o in self.orders.values()
            if o.is_open and (account is None or o.account == account)
        ]

    def find_open(self, txid: str, account: str) -> FakeOrder | None:
        """``account``'s open order ``txid``, or None."""
        order = self.orders.get(txid)
        if order is None or not order.is_open or order.account != account:
            return None
        return order

    # -- changes (each appends its private data to ``updates``) ---------------

    def place(
        self, order: FakeOrder, reference: Decimal | None, wall: float, updates: list[Update]
    ) -> None:
        """Add ``order`` (``pending``, then ``open``); fill it at once at
        ``reference`` if it crosses it."""
        self.orders[order.txid] = order
        updates.append(_order_update(order, order_fields(order)))
        order.status = "open"
        updates.append(_order_update(order, {"status": "open", "userref": order.userref}))
        if reference is not None and order.crosses(reference):
            self.fill(order, reference, wall, updates)

    def fill(self, order: FakeOrder, price: Decimal, wall: float, updates: list[Update]) -> None:
        """Fill the whole order at ``price``: one trade, order closed."""
        cost = price * order.volume
        fee = cost * self.fee_rate
        trade = FakeTrade(
            txid=self.new_id("T"),
            ordertxid=order.txid,
            postxid=self.new_id("T"),
            account=order.account,
            pair=order.pair,
            type=order.type,
            ordertype=order.ordertype,
            price=price,
            vol=order.volume,
            cost=cost,
            fee=fee,
            time=wall,
        )
        self.trades.append(trade)
        order.vol_exec, order.cost, order.fee = order.volume, cost, fee
        order.status, order.closetm = "closed", wall
        updates.append(Update(order.account, "ownTrades", [{trade.txid: trade_fields(trade)}]))
        updates.append(_order_update(order, _close_fields(order)))

    def cancel(
        self,
        order: FakeOrder,
        reason: str,
        wall: float,
        updates: list[Update],
        status: str = "canceled",
    ) -> None:
        """Cancel ``order`` with ``cancel_reason`` ``reason`` (``status``
        ``"expired"`` for an order whose time ran out)."""
        order.status, order.closetm, order.cancel_reason = status, wall, reason
        fields = _close_fields(order)
        fields["cancel_reason"] = reason
        updates.append(_order_update(order, fields))

    def cancel_all(self, account: str, reason: str, wall: float, updates: list[Update]) -> int:
        """Cancel every open order of ``account``; returns how many."""
        orders = self.open_orders(account)
        for order in orders:
            self.cancel(order, reason, wall, updates)
        return len(orders)

    def private_snapshot(
        self, account: str, channel_name: str, subscription: dict[str, Any]
    ) -> list[Any]:
        """What a new ``openOrders`` (the open orders) or ``ownTrades`` (the
        last 50 trades, unless ``"snapshot": false``) subscriber gets."""
        if channel_name == "openOrders":
            return [[{o.txid: order_fields(o)} for o in self.open_orders(account)]]
        if channel_name == "ownTrades" and subscription.get("snapshot", True) is not False:
            trades = [t for t in self.trades if t.account == account][-_TRADE_SNAPSHOT_SIZE:]
            return [[{t.txid: trade_fields(t)} for t in trades]]
        return []


# -- v1 private-feed shapes ------------------------------------------------------


def _order_update(order: FakeOrder, fields: dict[str, Any]) -> Update:
    return Update(order.account, "openOrders", [{order.txid: fields}])


def order_fields(order: FakeOrder) -> dict[str, Any]:
    """Every field of an ``openOrders`` entry, as Kraken sends a new order."""
    price = order.price_text or "0.00000"
    description = f"{order.type} {volume_text(order.volume)} {order.pair} @ {order.ordertype}"
    if order.price_text is not None:
        description += f" {order.price_text}"
    fields: dict[str, Any] = {
        "avg_price": money_text(order.avg_price),
        "cost": money_text(order.cost),
        "descr": {
            "close": None,
            "leverage": None,
            "order": description,
            "ordertype": order.ordertype,
            "pair": order.pair,
            "price": price,
            "price2": "0.00000",
            "type": order.type,
        },
        "expiretm": None,
        "fee": money_text(order.fee),
        "limitprice": "0.00000",
        "misc": "",
        "oflags": order.oflags,
        "opentm": f"{order.opentm:.6f}",
        "refid": None,
        "starttm": None,
        "status": order.status,
        "stopprice": "0.00000",
        "userref": order.userref,
        "vol": volume_text(order.volume),
        "vol_exec": volume_text(order.vol_exec),
    }
    if order.cl_ord_id is not None:
        fields["cl_ord_id"] = order.cl_ord_id
    return fields


def _close_fields(order: FakeOrder) -> dict[str, Any]:
    return {
        "avg_price": money_text(order.avg_price),
        "cost": money_text(order.cost),
        "fee": money_text(order.fee),
        "lastupdated": f"{order.closetm or 0:.6f}",
        "status": order.status,
        "userref": order.userref,
        "vol_exec": volume_text(order.vol_exec),
    }


def trade_fields(trade: FakeTrade) -> dict[str, Any]:
    """An ``ownTrades`` entry."""
    return {
        "cost": money_text(trade.cost),
        "fee": money_text(trade.fee),
        "margin": "0.00000",
        "ordertxid": trade.ordertxid,
        "ordertype": trade.ordertype,
        "pair": trade.pair,
        "postxid": trade.postxid,
        "price": money_text(trade.price),
        "time": f"{trade.time:.6f}",
        "type": trade.type,
        "vol": volume_text(trade.vol),
    }
