"""The order desk of the fake matching engine: one v1 order request, validated
and applied to the ledger.

:class:`OrderDesk` owns what orders are checked against (the pairs traded,
reference prices, minimum volumes) and the dead man's switch timers; it
answers ``addOrder``, ``editOrder``, ``cancelOrder`` and
``cancelAllOrdersAfter`` for an account the engine has already
authenticated. Validation errors raise
:class:`~kraky_anyio.testing.order_checks.RequestError`. :class:`WallClock`
turns the loop's clock into the engine's Unix time. Pure, no I/O.

The field checks, with the reply's ``errorMessage`` (after the engine's
rate limit, token and status checks):

* an unknown ``pair``: ``"EQuery:Unknown asset pair"``;
* a bad ``type``, ``ordertype``, ``volume``, ``price``, ``orderid``,
  ``txid`` or ``timeout``: ``"EGeneral:Invalid arguments:<field>"`` (volume
  and price must be decimal strings such as ``"0.01"``; relative prices are
  not supported);
* a volume under the pair's minimum: ``"EOrder:Order minimum not met"``;
* an order that is not open in the account: ``"EOrder:Unknown order"``;
* a market order on a pair without a reference price:
  :data:`~kraky_anyio.testing.order_checks.ERR_NO_REFERENCE_PRICE`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from . import order_checks as checks
from .ledger import FakeOrder, Ledger, Update, volume_text
from .options import OutgoingMessage
from .order_checks import (
    ERR_LIMIT_ONLY,
    ERR_NO_REFERENCE_PRICE,
    ERR_ORDER_MINIMUM,
    ERR_POST_ONLY,
    ERR_UNKNOWN_ORDER,
    RequestError,
    invalid,
)
from .session import FakeKrakenSession

__all__ = ["OrderDesk", "WallClock"]


class WallClock:
    """Unix time that starts at ``start`` on the first ``now`` seen, then
    follows the loop's clock (``anyio.current_time()``)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start_time must be timezone-aware")
        self._start = start.timestamp()
        self._origin: float | None = None

    def wall_time(self, now: float) -> float:
        """The Unix time at ``now``."""
        if self._origin is None:
            self._origin = now
        return self._start + (now - self._origin)

    def iso_time(self, now: float) -> str:
        """``wall_time(now)`` as Kraken's ``2020-12-21T09:37:09Z``."""
        moment = datetime.fromtimestamp(self.wall_time(now), timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class OrderDesk:
    """Validates and applies order requests (see the module docstring).

    ``min_volume`` maps pairs to minimums, ``default_min_volume`` for the
    others; ``pairs`` limits the pairs traded (None: those the session accepts).
    """

    def __init__(
        self,
        ledger: Ledger,
        clock: WallClock,
        *,
        reference: dict[str, Decimal],
        min_volume: dict[str, Decimal],
        default_min_volume: Decimal,
        pairs: Collection[str] | None,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        #: Market prices by pair: market orders and crossing limits fill there.
        self.reference = reference
        self.pairs = pairs
        #: When each account's dead man's switch fires (loop clock).
        self.timers: dict[str, float] = {}
        self._min_volume = min_volume
        self._default_min_volume = default_min_volume

    def fire_due(self, now: float) -> list[Update]:
        """Cancel the orders of every account whose dead man's switch is due."""
        updates: list[Update] = []
        for account, due in list(self.timers.items()):
            if due <= now:
                del self.timers[account]
                wall = self.clock.wall_time(now)
                self.ledger.cancel_all(account, "Dead man's switch", wall, updates)
        return updates

    def _check_pair(self, session: FakeKrakenSession, pair: object) -> str:
        return checks.check_pair(
            pair, self.pairs if self.pairs is not None else session.options.pairs
        )

    def _check_volume(self, pair: str, value: object) -> Decimal:
        volume = checks.decimal_arg(value)
        if volume is None:
            raise invalid("volume")
        if volume < self._min_volume.get(pair, self._default_min_volume):
            raise RequestError(ERR_ORDER_MINIMUM)
        return volume

    @staticmethod
    def _check_price(value: object) -> tuple[Decimal, str]:
        """A limit price and its text as sent (kept for the order's ``descr``)."""
        price = checks.decimal_arg(value)
        if price is None or price <= 0:
            raise invalid("price")
        return price, str(value)  # a str: decimal_arg takes nothing else

    def add_order(
        self,
        session: FakeKrakenSession,
        request: dict[str, Any],
        account: str,
        now: float,
        updates: list[Update],
    ) -> dict[str, Any]:
        pair = self._check_pair(session, request.get("pair"))
        side = request.get("type")
        if side not in ("buy", "sell"):
            raise invalid("type")
        ordertype = request.get("ordertype")
        if ordertype not in ("limit", "market"):
            raise invalid("ordertype")
        price: Decimal | None = None
        price_text: str | None = None
        if ordertype == "limit":
            price, price_text = self._check_price(request.get("price"))
        volume = self._check_volume(pair, request.get("volume"))
        if ordertype == "market":
            if session.status == "post_only":
                raise RequestError(ERR_POST_ONLY)
            if session.status == "limit_only":
                raise RequestError(ERR_LIMIT_ONLY)
            if pair not in self.reference:
                raise RequestError(ERR_NO_REFERENCE_PRICE)
        userref = checks.userref(request.get("userref"), "userref")
        cl_ord_id = request.get("cl_ord_id")
        if cl_ord_id is not None and not isinstance(cl_ord_id, str):
            raise invalid("cl_ord_id")
        descr = f"{side} {volume_text(volume)} {pair.replace('/', '')} @ {ordertype}"
        if price_text is not None:
            descr += f" {price_text}"
        if checks.validate_only(request):
            return checks.reply(request, "addOrderStatus", descr=descr, status="ok")
        order = FakeOrder(
            txid=self.ledger.new_id("O"),
            account=account,
            pair=pair,
            type=side,
            ordertype=ordertype,
            volume=volume,
            price=price,
            price_text=price_text,
            userref=userref,
            opentm=self.clock.wall_time(now),
            cl_ord_id=cl_ord_id,
            oflags=str(request.get("oflags", "")),
        )
        self.place(order, now, updates)
        return checks.reply(request, "addOrderStatus", descr=descr, status="ok", txid=order.txid)

    def edit_order(
        self,
        session: FakeKrakenSession,
        request: dict[str, Any],
        account: str,
        now: float,
        updates: list[Update],
    ) -> dict[str, Any]:
        orderid = request.get("orderid")
        if not isinstance(orderid, str) or not orderid:
            raise invalid("orderid")
        pair = self._check_pair(session, request.get("pair"))
        original = self.ledger.find_open(orderid, account)
        if original is None:
            raise RequestError(ERR_UNKNOWN_ORDER)
        if original.pair != pair:
            raise invalid("pair")
        volume = original.volume
        if "volume" in request:
            volume = self._check_volume(pair, request["volume"])
        price, price_text = original.price, original.price_text
        if "price" in request:
            price, price_text = self._check_price(request["price"])
        userref = original.userref
        if "newuserref" in request:
            userref = checks.userref(request["newuserref"], "newuserref")
        shown = volume_text(price or Decimal(0))
        descr = f"order edited price = {shown} volume = {volume_text(volume)}"
        if checks.validate_only(request):
            return checks.reply(request, "editOrderStatus", descr=descr, status="ok")
        self.ledger.cancel(original, "Order replaced", self.clock.wall_time(now), updates)
        order = FakeOrder(
            txid=self.ledger.new_id("O"),
            account=account,
            pair=pair,
            type=original.type,
            ordertype=original.ordertype,
            volume=volume,
            price=price,
            price_text=price_text,
            userref=userref,
            opentm=self.clock.wall_time(now),
            cl_ord_id=original.cl_ord_id,
            oflags=str(request.get("oflags", original.oflags)),
        )
        self.place(order, now, updates)
        return checks.reply(
            request,
            "editOrderStatus",
            descr=descr,
            originaltxid=original.txid,
            status="ok",
            txid=order.txid,
        )

    def handle(
        self,
        session: FakeKrakenSession,
        event: str,
        request: dict[str, Any],
        account: str,
        now: float,
        updates: list[Update],
    ) -> list[OutgoingMessage]:
        """Apply an authenticated v1 order ``event`` of ``account``: its
        replies (``updates`` collects the private data). Raises
        :class:`~kraky_anyio.testing.order_checks.RequestError`."""
        if event == "addOrder":
            return [self.add_order(session, request, account, now, updates)]
        if event == "editOrder":
            return [self.edit_order(session, request, account, now, updates)]
        if event == "cancelOrder":
            return self.cancel_order(request, account, now, updates)
        if event == "cancelAll":
            count = self.ledger.cancel_all(
                account, "User requested", self.clock.wall_time(now), updates
            )
            return [checks.reply(request, "cancelAllStatus", count=count, status="ok")]
        if event == "cancelAllOrdersAfter":
            return [self.cancel_after(request, account, now)]
        raise RequestError("EGeneral:Unknown method")

    def cancel_order(
        self, request: dict[str, Any], account: str, now: float, updates: list[Update]
    ) -> list[OutgoingMessage]:
        txids = request.get("txid")
        if not isinstance(txids, list) or not txids:
            raise invalid("txid")
        replies: list[OutgoingMessage] = []
        for txid in txids:
            order = self.ledger.find_open(txid, account) if isinstance(txid, str) else None
            if order is None:
                replies.append(checks.error_reply(request, "cancelOrderStatus", ERR_UNKNOWN_ORDER))
            else:
                self.ledger.cancel(order, "User requested", self.clock.wall_time(now), updates)
                replies.append(checks.reply(request, "cancelOrderStatus", status="ok"))
        return replies

    def cancel_after(self, request: dict[str, Any], account: str, now: float) -> dict[str, Any]:
        timeout = request.get("timeout")
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise invalid("timeout")
        if timeout == 0:
            self.timers.pop(account, None)
            trigger = "0"
        else:
            self.timers[account] = now + timeout
            trigger = self.clock.iso_time(now + timeout)
        return checks.reply(
            request,
            "cancelAllOrdersAfterStatus",
            currentTime=self.clock.iso_time(now),
            status="ok",
            triggerTime=trigger,
        )

    def place(self, order: FakeOrder, now: float, updates: list[Update]) -> None:
        reference = self.reference.get(order.pair)
        self.ledger.place(order, reference, self.clock.wall_time(now), updates)
