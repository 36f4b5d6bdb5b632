"""The life of v2 orders in the fake matching engine: placing, triggers,
``effective_time`` and ``expire_time``, amending.

:class:`V2Book` keeps a :class:`~kraky_anyio.testing.v2_orders.V2Order`
beside each shared :class:`~kraky_anyio.testing.ledger.FakeOrder` a v2
request placed, and changes orders through the
:class:`~kraky_anyio.testing.ledger.Ledger` (so v1 subscribers see v2 orders
too). Every change appends :class:`~kraky_anyio.testing.ledger.Update`\\ s:
the ledger's own, plus ``("amended", [txid, amend_id, wall_time])`` for an amend (a
channel no v1 connection subscribes to; the v2 translation reads it).

The model: an order fills entirely, at once, when it crosses the pair's
reference price (market-like orders always; a limit buy at or above it, a
limit sell at or below). A stop-loss (take-profit) order waits until the
reference reaches its trigger price against (with) the side's direction;
a trailing stop's trigger follows the best reference seen since placement
at the given distance. Then it becomes a market order (a limit order for
the ``-limit`` types). An order with a future ``effective_time`` waits until
then; one with ``expire_time`` expires then. Time is the caller's ``now``
(``anyio.current_time()`` clock); wall times come from the engine's
:class:`~kraky_anyio.testing.order_desk.WallClock`. Pure, no I/O.
"""

from __future__ import annotations

from decimal import Decimal

from .ledger import FakeOrder, Ledger, Update
from .order_checks import ERR_NO_REFERENCE_PRICE, RequestError
from .order_desk import WallClock
from .v2_messages import v2_symbol
from .v2_orders import LIMIT_TYPES, OrderSpec, V2Order, limit_at

__all__ = ["REASON_EXPIRED", "REASON_IOC", "REASON_POST_ONLY", "V2Book"]

REASON_POST_ONLY = "Post only order"
REASON_IOC = "Immediate or cancel"
REASON_EXPIRED = "Order expired"


class V2Book:
    """v2 orders over the shared ledger (see the module docstring).
    ``reference`` is the engine's own dict of market prices by pair (either
    spelling: ``XBT/USD`` serves ``BTC/USD``)."""

    def __init__(self, ledger: Ledger, clock: WallClock, reference: dict[str, Decimal]) -> None:
        self.ledger = ledger
        self.clock = clock
        self.reference = reference
        #: The v2 side of every order a v2 request placed, by order id.
        self.orders: dict[str, V2Order] = {}
        self._timed: set[str] = set()  # orders with an effective or expire time to come

    def reference_for(self, symbol: str) -> Decimal | None:
        """The reference price of ``symbol`` (either spelling), or None."""
        price = self.reference.get(symbol)
        if price is None:
            wanted = v2_symbol(symbol)
            price = next((v for k, v in self.reference.items() if v2_symbol(k) == wanted), None)
        return price

    # -- placing -------------------------------------------------------------

    def place(
        self,
        spec: OrderSpec,
        symbol: str,
        account: str,
        now: float,
        updates: list[Update],
    ) -> FakeOrder:
        """Place ``spec`` (checked) on ``symbol`` for ``account``. Raises
        :class:`RequestError` when the market has no reference price an
        order needs."""
        ref = self.reference_for(symbol)
        market_like = spec.order_type not in LIMIT_TYPES
        if ref is None and (market_like or spec.trigger or spec.limit_price_type != "static"):
            raise RequestError(ERR_NO_REFERENCE_PRICE)
        qty = spec.quantity(ref)
        assert qty is not None
        price: Decimal | None = None
        if spec.limit_price is not None:
            price = limit_at(spec.limit_price, spec.limit_price_type, ref or Decimal(0))
        wall = self.clock.wall_time(now)
        order = FakeOrder(
            txid=self.ledger.new_id("O"),
            account=account,
            pair=symbol,
            type=spec.side,
            ordertype=spec.order_type,
            volume=qty,
            price=price,
            price_text=None if price is None else format(price, "f"),
            userref=spec.order_userref,
            opentm=wall,
            cl_ord_id=spec.cl_ord_id,
            oflags="post" if spec.post_only else "",
        )
        info = V2Order(
            order=order,
            order_type=spec.order_type,
            time_in_force=spec.time_in_force,
            fee_preference=spec.fee_preference,
            limit_price_type=spec.limit_price_type,
            post_only=spec.post_only,
            reduce_only=spec.reduce_only,
            margin=spec.margin,
            display_qty=spec.display_qty,
            trigger=spec.trigger,
            stp_type=spec.stp_type,
        )
        if spec.trigger is not None:
            assert ref is not None
            spec.trigger.extreme = ref
            info.trigger_price = spec.trigger.level(ref)
            info.waiting = "trigger"
        if spec.effective_time is not None and spec.effective_time > wall:
            info.effective_at = now + (spec.effective_time - wall)
            info.waiting = "effective"
        if spec.expire_time is not None:
            info.expire_at = now + (spec.expire_time - wall)
        if info.effective_at is not None or info.expire_at is not None:
            self._timed.add(order.txid)
        self.orders[order.txid] = info
        takes = ref is not None and order.crosses(ref)
        order.held = bool(info.waiting) or (spec.post_only and takes)
        self.ledger.place(order, ref, wall, updates)
        if spec.post_only and takes:
            self.ledger.cancel(order, REASON_POST_ONLY, wall, updates)
        elif info.waiting == "trigger":
            self._check_trigger(info, now, updates)
        if spec.time_in_force == "ioc" and not info.waiting and order.is_open:
            self.ledger.cancel(order, REASON_IOC, wall, updates)
        return order

    # -- amending ------------------------------------------------------------

    def amend(
        self,
        order: FakeOrder,
        amend_id: str,
        *,
        order_qty: Decimal | None,
        display_qty: Decimal | None,
        limit_price: Decimal | None,
        trigger_price: Decimal | None,
        post_only: bool | None,
        now: float,
        updates: list[Update],
    ) -> None:
        """Change ``order`` in place (its ids kept); fill it if it now
        crosses the reference price. The caller has checked the values."""
        info = self.orders.get(order.txid)
        if order_qty is not None:
            order.volume = order_qty
        if limit_price is not None:
            order.price, order.price_text = limit_price, format(limit_price, "f")
        if info is not None:
            if display_qty is not None:
                info.display_qty = display_qty
            if post_only is not None:
                info.post_only = post_only
            if trigger_price is not None and info.trigger is not None:
                info.trigger.price = trigger_price
                if info.trigger.price_type == "static":
                    info.trigger_price = trigger_price
        wall = self.clock.wall_time(now)
        updates.append(Update(order.account, "amended", [order.txid, amend_id, wall]))
        ref = self.reference_for(v2_symbol(order.pair))
        if ref is not None and order.crosses(ref):
            self.ledger.fill(order, ref, self.clock.wall_time(now), updates)
        elif info is not None and info.waiting == "trigger":
            self._check_trigger(info, now, updates)

    # -- the market and the clock ----------------------------------------------

    def on_reference(self, pair: str, now: float, updates: list[Update]) -> None:
        """``pair``'s reference price changed: fire the triggers it reaches,
        and fill the resting orders spelled differently from ``pair``
        (``BTC/USD`` orders when ``XBT/USD`` moved) that it crosses."""
        symbol = v2_symbol(pair)
        ref = self.reference.get(pair)
        if ref is None:
            return
        for other in self.reference:  # one market, whatever its spelling
            if v2_symbol(other) == symbol:
                self.reference[other] = ref
        wall = self.clock.wall_time(now)
        for order in self.ledger.open_orders():
            if order.pair != pair and v2_symbol(order.pair) == symbol and order.crosses(ref):
                assert order.price is not None
                self.ledger.fill(order, order.price, wall, updates)
        for info in list(self.orders.values()):
            order = info.order
            if info.waiting == "trigger" and order.is_open and order.pair == symbol:
                self._check_trigger(info, now, updates)

    def next_due(self) -> float | None:
        """When :meth:`fire_due` next has something to do (loop clock), or None."""
        times: list[float] = []
        for txid in list(self._timed):
            info = self.orders[txid]
            if not info.order.is_open:
                self._timed.discard(txid)
                continue
            if info.waiting == "effective" and info.effective_at is not None:
                times.append(info.effective_at)
            if info.expire_at is not None:
                times.append(info.expire_at)
        return min(times, default=None)

    def fire_due(self, now: float) -> list[Update]:
        """Activate the orders whose ``effective_time`` came, expire those
        whose ``expire_time`` came."""
        updates: list[Update] = []

        def due_at(txid: str) -> float:
            info = self.orders[txid]
            times = (info.effective_at, info.expire_at)
            return min((t for t in times if t is not None), default=now)

        for txid in sorted(self._timed, key=due_at):  # in time order
            info = self.orders[txid]
            order = info.order
            effective = info.effective_at
            due = info.waiting == "effective" and effective is not None and effective <= now
            if due and order.is_open:
                self._activate(info, now, updates)
            if info.expire_at is not None and info.expire_at <= now and order.is_open:
                self.ledger.cancel(
                    order, REASON_EXPIRED, self.clock.wall_time(now), updates, status="expired"
                )
        self.next_due()  # prunes the closed ones
        return updates

    def _activate(self, info: V2Order, now: float, updates: list[Update]) -> None:
        info.waiting = "trigger" if info.trigger is not None else ""
        order = info.order
        order.held = bool(info.waiting)
        ref = self.reference_for(order.pair)
        if info.waiting:
            self._check_trigger(info, now, updates)
        elif ref is not None and order.crosses(ref):
            self.ledger.fill(order, ref, self.clock.wall_time(now), updates)

    def _check_trigger(self, info: V2Order, now: float, updates: list[Update]) -> None:
        trigger, order = info.trigger, info.order
        ref = self.reference_for(order.pair)
        if trigger is None or ref is None:
            return
        sell = order.type == "sell"
        if info.order_type.startswith("trailing"):
            extreme = trigger.extreme if trigger.extreme is not None else ref
            extreme = max(extreme, ref) if sell else min(extreme, ref)
            trigger.extreme = extreme
            offset = (
                trigger.price if trigger.price_type == "quote" else extreme * trigger.price / 100
            )
            info.trigger_price = extreme - offset if sell else extreme + offset
        level = info.trigger_price
        assert level is not None
        if info.order_type.startswith("take-profit"):
            fires = ref >= level if sell else ref <= level
        else:  # stop-loss and trailing stops: the price went against the position
            fires = ref <= level if sell else ref >= level
        if not fires:
            return
        info.waiting = ""
        order.held = False
        if order.crosses(ref):
            self.ledger.fill(order, ref, self.clock.wall_time(now), updates)
        elif info.time_in_force == "ioc":
            self.ledger.cancel(order, REASON_IOC, self.clock.wall_time(now), updates)
