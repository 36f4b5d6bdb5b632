"""The fake engine's private data in v2 shapes: ``executions`` and ``balances``.

:class:`PrivateFeeds` turns the :class:`~kraky_anyio.testing.ledger.Update`\\ s
every change appends (the ledger's v1-shaped ``openOrders``/``ownTrades``
ones, and the v2 book's ``amended``) into :class:`V2Event`\\ s: one
``executions`` entry per order event (``pending_new``, ``new``, ``trade``,
``filled``, ``canceled``, ``expired``, ``amended``) and, per trade, one
``balances`` update with an entry per asset moved. It keeps the accounts'
balances (each account starts with a copy of ``initial``; ``None``: funds are
not checked and balances start at zero) and writes the snapshots a new
subscriber gets. :func:`deliver_v2` routes events to the v2 connections
subscribed with a token of the event's account. Numbers are ``Decimal``
(written as bare JSON numbers); timestamps RFC 3339 on the engine's wall
clock. Nothing here blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from .connection import FakeKrakenConnection
from .ledger import FakeOrder, FakeTrade, Ledger, Update
from .v2_book import V2Book
from .v2_messages import v2_symbol
from .v2_orders import V2Order
from .v2_session import FakeKrakenV2Session

__all__ = ["PrivateFeeds", "V2Event", "deliver_v2", "wall_rfc3339"]

_TRADE_SNAPSHOT_SIZE = 50
#: exec_types that only subscribers with ``order_status`` (the default) get.
_STATUS_ONLY = frozenset({"pending_new", "amended"})
_CLOSED = {"closed": "filled", "canceled": "canceled", "expired": "expired"}


class V2Event(NamedTuple):
    """One v2 private message's ``data`` for the subscribers of ``account``
    to ``channel``; ``kind`` is the exec_type, ``"ratecount"`` or ``"balance"``."""

    account: str
    channel: str
    kind: str
    data: list[dict[str, Any]]


def wall_rfc3339(wall: float) -> str:
    """Unix seconds as Kraken's ``2024-01-02T03:04:05.123456Z``."""
    return datetime.fromtimestamp(wall, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = v2_symbol(symbol).partition("/")
    return base, quote


class PrivateFeeds:
    """Balances and the v2 shapes of private data (see the module docstring)."""

    def __init__(
        self, ledger: Ledger, book: V2Book, initial: Mapping[str, Decimal] | None, seed: int
    ) -> None:
        self.ledger = ledger
        self.book = book
        self.initial = None if initial is None else dict(initial)
        self._balances: dict[str, dict[str, Decimal]] = {}
        self._ids = Ledger(seed + 1, Decimal(0))  # ledger ids, apart from order ids
        self._trade_ids: dict[str, int] = {}  # Kraken's trade_id: 1, 2, ... in trade order

    # -- balances --------------------------------------------------------------

    def balances(self, account: str) -> dict[str, Decimal]:
        """``account``'s balances by asset (the live dict)."""
        found = self._balances.get(account)
        if found is None:
            found = self._balances[account] = dict(self.initial or {})
        return found

    def available(self, account: str, asset: str, exclude: str | None = None) -> Decimal | None:
        """``asset``'s balance less what ``account``'s open orders (but
        ``exclude``) hold; None when funds are not checked."""
        if self.initial is None:
            return None
        held = Decimal(0)
        for order in self.ledger.open_orders(account):
            if order.txid == exclude:
                continue
            base, quote = split_symbol(order.pair)
            if order.type == "sell" and base == asset:
                held += order.volume
            elif order.type == "buy" and quote == asset:
                price = order.price or self.book.reference_for(v2_symbol(order.pair))
                held += order.volume * (price or Decimal(0))
        return self.balances(account).get(asset, Decimal(0)) - held

    # -- translation -----------------------------------------------------------

    def translate(self, updates: Iterable[Update]) -> list[V2Event]:
        """The v2 events of ``updates`` (applying each trade to the balances)."""
        events: list[V2Event] = []
        opened: set[str] = set()  # placed in this batch: a fill now takes liquidity
        for update in updates:
            if update.channel == "openOrders":
                for item in update.payload:
                    for txid, fields in item.items():
                        events.extend(self._order_event(txid, fields.get("status"), opened))
            elif update.channel == "ownTrades":
                for item in update.payload:
                    for txid in item:
                        events.extend(self._trade_events(self._trade(txid), opened))
            elif update.channel == "amended":
                txid, amend_id, wall = update.payload
                order = self.ledger.orders[txid]
                entry = self.order_entry(order, "amended", "new", wall)
                entry.update(amend_id=amend_id, reason="User requested")
                events.append(V2Event(order.account, "executions", "amended", [entry]))
        return events

    def _order_event(self, txid: str, status: object, opened: set[str]) -> list[V2Event]:
        order = self.ledger.orders[txid]
        if status == "pending":
            opened.add(txid)
            entry = self.order_entry(order, "pending_new", "pending_new", order.opentm)
            entry["cum_qty"] = entry["cum_cost"] = Decimal(0)
            return [V2Event(order.account, "executions", "pending_new", [entry])]
        if status == "open":
            entry = self._sparse(order, "new", "new", order.opentm)
            return [V2Event(order.account, "executions", "new", [entry])]
        exec_type = _CLOSED.get(str(status))
        if exec_type is None:
            return []
        entry = self._sparse(order, exec_type, exec_type, order.closetm or order.opentm)
        entry.update(cum_qty=order.vol_exec, cum_cost=order.cost, avg_price=order.avg_price)
        if order.cancel_reason is not None:
            entry["reason"] = order.cancel_reason
        return [V2Event(order.account, "executions", exec_type, [entry])]

    def _trade(self, txid: str) -> FakeTrade:
        trades = self.ledger.trades
        for number in range(len(self._trade_ids), len(trades)):
            self._trade_ids[trades[number].txid] = number + 1
        return trades[self._trade_ids[txid] - 1]

    def _fee(self, trade: FakeTrade, info: V2Order | None) -> tuple[str, Decimal]:
        base, quote = split_symbol(trade.pair)
        if info is not None and info.fee_preference == "base":
            return base, trade.vol * self.ledger.fee_rate
        return quote, trade.fee

    def trade_entry(self, trade: FakeTrade, liquidity: str = "t") -> dict[str, Any]:
        """An ``executions`` ``trade`` entry."""
        order = self.ledger.orders[trade.ordertxid]
        self._trade(trade.txid)  # numbers it
        fee_asset, fee = self._fee(trade, self.book.orders.get(order.txid))
        entry = self._sparse(order, "trade", "filled", trade.time)
        entry.update(
            exec_id=trade.txid,
            trade_id=self._trade_ids[trade.txid],
            symbol=v2_symbol(trade.pair),
            side=trade.type,
            order_type=order.ordertype,
            last_qty=trade.vol,
            last_price=trade.price,
            cost=trade.cost,
            liquidity_ind=liquidity,
            fees=[{"asset": fee_asset, "qty": fee}],
            cum_qty=order.vol_exec,
            cum_cost=order.cost,
            avg_price=order.avg_price,
        )
        if split_symbol(trade.pair)[1] == "USD":
            entry["fee_usd_equiv"] = trade.fee
        return entry

    def _trade_events(self, trade: FakeTrade, opened: set[str]) -> list[V2Event]:
        entry = self.trade_entry(trade, "t" if trade.ordertxid in opened else "m")
        events = [V2Event(trade.account, "executions", "trade", [entry])]
        base, quote = split_symbol(trade.pair)
        fee_asset, fee = self._fee(trade, self.book.orders.get(trade.ordertxid))
        sign = 1 if trade.type == "buy" else -1
        moves = {base: sign * trade.vol, quote: -sign * trade.cost}
        balances = self.balances(trade.account)
        data: list[dict[str, Any]] = []
        for asset, amount in moves.items():
            charged = fee if asset == fee_asset else Decimal(0)
            balances[asset] = balances.get(asset, Decimal(0)) + amount - charged
            data.append(
                {
                    "ledger_id": self._ids.new_id("L"),
                    "ref_id": trade.txid,
                    "timestamp": wall_rfc3339(trade.time),
                    "type": "trade",
                    "category": "trade",
                    "asset": asset,
                    "asset_class": "currency",
                    "wallet_type": "spot",
                    "wallet_id": "main",
                    "amount": amount,
                    "fee": charged,
                    "balance": balances[asset],
                }
            )
        events.append(V2Event(trade.account, "balances", "balance", data))
        return events

    # -- entries and snapshots -------------------------------------------------

    def _sparse(self, order: FakeOrder, exec_type: str, status: str, wall: float) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "order_id": order.txid,
            "exec_type": exec_type,
            "order_status": status,
            "order_userref": order.userref,
            "timestamp": wall_rfc3339(wall),
        }
        if order.cl_ord_id is not None:
            entry["cl_ord_id"] = order.cl_ord_id
        return entry

    def order_entry(
        self, order: FakeOrder, exec_type: str, status: str, wall: float
    ) -> dict[str, Any]:
        """Every field of an order, as a new order's (or a snapshot's) entry."""
        info = self.book.orders.get(order.txid)
        entry = self._sparse(order, exec_type, status, wall)
        entry.update(
            symbol=v2_symbol(order.pair),
            side=order.type,
            order_type=info.order_type if info else order.ordertype,
            order_qty=order.volume,
            cum_qty=order.vol_exec,
            cum_cost=order.cost,
            time_in_force=(info.time_in_force if info else "gtc").upper(),
            post_only=bool(info and info.post_only),
            reduce_only=bool(info and info.reduce_only),
            fee_ccy_pref="fcib" if info and info.fee_preference == "base" else "fciq",
        )
        if order.price is not None:
            entry.update(limit_price=order.price, limit_price_type="static")
        if info is not None:
            if info.display_qty is not None:
                entry["display_qty"] = info.display_qty
            if info.trigger is not None:
                entry["triggers"] = {
                    "reference": info.trigger.reference,
                    "price": info.trigger.price,
                    "price_type": info.trigger.price_type,
                    "actual_price": info.trigger_price,
                    "status": "untriggered" if info.waiting == "trigger" else "triggered",
                }
        return entry

    def snapshot(self, channel: str, account: str, params: Mapping[str, Any]) -> list[Any]:
        """The ``data`` of the snapshot a new subscriber of ``account`` gets:
        ``executions``: its open orders (``snap_orders``, default true) then
        its last 50 trades (``snap_trades``, default false); ``balances``:
        one entry per asset."""
        if channel == "balances":
            return [
                {
                    "asset": asset,
                    "asset_class": "currency",
                    "balance": amount,
                    "wallets": [{"type": "spot", "id": "main", "balance": amount}],
                }
                for asset, amount in sorted(self.balances(account).items())
            ]
        data: list[Any] = []
        if params.get("snap_orders", True):
            for order in self.ledger.open_orders(account):
                data.append(self.order_entry(order, "new", "new", order.opentm))
        if params.get("snap_trades", False):
            trades = [t for t in self.ledger.trades if t.account == account]
            data.extend(self.trade_entry(t, "m") for t in trades[-_TRADE_SNAPSHOT_SIZE:])
        return data


def _wants(params: Mapping[str, Any], event: V2Event) -> bool:
    if event.kind == "ratecount":
        return params.get("ratecounter", False) is True
    return not (event.kind in _STATUS_ONLY and params.get("order_status", True) is False)


def deliver_v2(
    events: list[V2Event],
    now: float,
    caller: FakeKrakenV2Session | None,
    connections: Iterable[FakeKrakenConnection] | None,
    account_of: Callable[[str], str],
) -> list[Any]:
    """Queue ``events`` to the v2 connections among ``connections`` (None:
    no server, only ``caller``) subscribed to their channel with a token of
    their account, each message with that connection's next ``sequence``;
    return ``caller``'s share (to send after its responses)."""
    out: list[Any] = []
    if not events:
        return out
    targets: list[tuple[FakeKrakenV2Session, FakeKrakenConnection | None]] = []
    for connection in connections or ():
        if isinstance(connection.session, FakeKrakenV2Session):
            targets.append((connection.session, connection))
    if caller is not None and all(session is not caller for session, _ in targets):
        targets.append((caller, None))
    for session, target in targets:
        for event in events:
            params = session.private_params.get(event.channel)
            token = None if params is None else params.get("token")
            if not isinstance(token, str) or account_of(token) != event.account:
                continue
            assert params is not None
            if not _wants(params, event):
                continue
            messages = session.publish(event.channel, None, event.data, now=now)
            if session is caller:
                out.extend(messages)
            elif target is not None:
                target.send(messages)
    return out
