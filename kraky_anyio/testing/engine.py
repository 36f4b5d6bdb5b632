"""A small matching engine for the fake exchange: orders and private feeds.

Attach it as the server's ``order_handler``::

    engine = FakeMatchingEngine(reference_prices={"XBT/USD": "30000"})
    async with open_fake_kraken(order_handler=engine) as server:
        async with open_kraken(server.url, token="tok-1") as conn:
            reply = await conn.add_order(pair="XBT/USD", type="buy",
                                         ordertype="limit", volume="0.01", price="4000")

:func:`~kraky_anyio.testing.server.open_fake_kraken` starts :meth:`FakeMatchingEngine.run`
in the server's task group: that binds the engine to the server (private data
reach every connection of the account, new private subscribers get a snapshot,
expired tokens are refused on every connection) and fires the dead man's
switch (``cancelAllOrdersAfter``) on time. Time is ``anyio.current_time()``
only, so trio's ``MockClock`` and looptime drive it. An engine serves one
server at a time. Used bare as a :class:`~kraky_anyio.testing.session.FakeKrakenSession`
``order_handler`` (no server), it still answers and keeps its book, but
private data reach only the session that sent the request and timers fire
only when it handles the next request.

The model, kept small on purpose:

* **Accounts.** Every token belongs to an account: :data:`DEFAULT_ACCOUNT`
  unless :meth:`FakeMatchingEngine.assign_token` says otherwise (the tokens a
  client fetches one after another for one API key share an account). An
  order, its trades and the dead man's switch belong to the account of the
  token that placed or armed them; every request sees only its account's
  orders. Private data go to every connection subscribed to ``openOrders`` /
  ``ownTrades`` with a token of that account, as Kraken-shaped channel data
  (``[[{"OXXXXX-XXXXX-XXXXXX": {...}}], "openOrders", {"sequence": n}]``), the
  sequence counting per connection and channel.
* **Orders.** ``limit`` and ``market`` only. A market order, or a limit order
  that crosses the pair's reference price (buy at or above, sell at or below;
  see :meth:`FakeMatchingEngine.set_reference_price`), fills entirely at once
  at the reference price; any other limit order rests. Raising or lowering a
  reference price fills the resting orders it crosses, at their limit price.
  No partial fills, no order book between clients, no balances.
* **Updates.** A new order gets an ``openOrders`` message with every field and
  status ``pending``, then ``{"status": "open"}``; a fill adds an
  ``ownTrades`` trade and an ``openOrders`` ``closed`` update; a cancel an
  ``openOrders`` ``canceled`` update with ``cancel_reason``. A new
  ``openOrders`` subscriber first gets the account's open orders (one
  message, ``[]`` when none); a new ``ownTrades`` subscriber its last 50
  trades, unless it subscribed with ``"snapshot": false``.
* **Ids.** Order txids (``OXXXXX-XXXXX-XXXXXX``) and trade ids
  (``TXXXXX-XXXXX-XXXXXX``) come from ``random.Random(seed)``: the same seed
  and the same requests give the same ids.

Validation, in this order, with the reply's ``errorMessage``:

1. :meth:`FakeMatchingEngine.rate_limit_orders` in effect:
   ``"EOrder:Rate limit exceeded"``.
2. The token: missing or empty ``"EGeneral:Invalid arguments:token"``; not
   among the server's ``valid_tokens``, revoked, or expired with
   :meth:`FakeMatchingEngine.expire_token`: ``"ESession:Invalid session"``.
3. The system status: ``maintenance`` refuses everything
   (``"EService:Unavailable"``); ``cancel_only`` refuses ``addOrder`` and
   ``editOrder``; ``post_only`` and ``limit_only`` refuse market orders.
4. The fields: an unknown ``pair`` ``"EQuery:Unknown asset pair"``; a bad
   ``type``, ``ordertype``, ``volume``, ``price``, ``orderid``, ``txid`` or
   ``timeout`` ``"EGeneral:Invalid arguments:<field>"`` (volume and price
   must be decimal strings such as ``"0.01"``; relative prices are not
   supported); a volume under the pair's minimum
   ``"EOrder:Order minimum not met"``; an order that is not open in the
   account ``"EOrder:Unknown order"``; a market order on a pair without a
   reference price :data:`ERR_NO_REFERENCE_PRICE`.

``validate: "true"`` (or ``true``) answers ``ok`` with ``descr`` but no
``txid``, and changes nothing. ``cancelOrder`` gets one ``cancelOrderStatus``
per txid, in request order, each ``ok`` or ``"EOrder:Unknown order"``; an
error about the whole request (rate limit, token, status) is also repeated
once per txid, so a client waiting for one reply per txid is answered
(Kraken's own behaviour there is unconfirmed). Replies carry the request's
``reqid`` only when it had one; their keys are sorted, like Kraken's.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import anyio
import anyio.abc

from .server import FakeKrakenConnection, FakeKrakenServer
from .session import (
    ERR_INVALID_SESSION,
    FakeKrakenSession,
    OutgoingMessage,
)

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_MIN_VOLUME",
    "ERR_CANCEL_ONLY",
    "ERR_INVALID_ARGUMENTS",
    "ERR_LIMIT_ONLY",
    "ERR_NO_REFERENCE_PRICE",
    "ERR_ORDER_MINIMUM",
    "ERR_POST_ONLY",
    "ERR_RATE_LIMIT",
    "ERR_UNAVAILABLE",
    "ERR_UNKNOWN_ORDER",
    "ERR_UNKNOWN_PAIR",
    "FakeMatchingEngine",
    "FakeOrder",
    "FakeTrade",
]

#: The account of every token not given one with :meth:`FakeMatchingEngine.assign_token`.
DEFAULT_ACCOUNT = "default"
#: The smallest volume accepted on a pair unless told otherwise.
DEFAULT_MIN_VOLUME = Decimal("0.0001")

ERR_UNKNOWN_PAIR = "EQuery:Unknown asset pair"
ERR_ORDER_MINIMUM = "EOrder:Order minimum not met"
ERR_UNKNOWN_ORDER = "EOrder:Unknown order"
ERR_RATE_LIMIT = "EOrder:Rate limit exceeded"
#: Followed by ``:`` and the field name.
ERR_INVALID_ARGUMENTS = "EGeneral:Invalid arguments"
ERR_UNAVAILABLE = "EService:Unavailable"
ERR_CANCEL_ONLY = "EService:Market in cancel_only mode"
ERR_POST_ONLY = "EService:Market in post_only mode"
ERR_LIMIT_ONLY = "EService:Market in limit_only mode"
#: The fake's own message (Kraken always has a market price).
ERR_NO_REFERENCE_PRICE = "EOrder:No market price (fake exchange: no reference price for this pair)"

_DECIMAL_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")
_ID_CHARS = string.ascii_uppercase + string.digits
_TRADE_SNAPSHOT_SIZE = 50


@dataclass
class FakeOrder:
    """One order of the engine (read it, do not change it).

    ``status`` is ``"pending"`` only while being placed, then ``"open"``,
    ``"closed"`` (filled) or ``"canceled"``. Times are Unix seconds on the
    engine's wall clock (see :class:`FakeMatchingEngine`).
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

    @property
    def is_open(self) -> bool:
        """True while the order rests in the book (``pending`` or ``open``)."""
        return self.status in ("pending", "open")

    @property
    def avg_price(self) -> Decimal:
        return self.cost / self.vol_exec if self.vol_exec else Decimal(0)


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


class _Update(NamedTuple):
    account: str
    channel: str
    payload: list[Any]


class _RequestError(Exception):
    """An ``errorMessage`` for the whole request."""


def _amount(value: Decimal, places: int) -> str:
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def _volume(value: Decimal) -> str:
    return _amount(value, 8)


def _money(value: Decimal) -> str:
    return _amount(value, 5)


def _decimal_arg(value: object) -> Decimal | None:
    """A decimal string as Kraken takes it, or None."""
    if not isinstance(value, str) or not _DECIMAL_RE.fullmatch(value):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex only lets decimals through
        return None


def _invalid(field: str) -> _RequestError:
    return _RequestError(f"{ERR_INVALID_ARGUMENTS}:{field}")


def _reply(request: Mapping[str, Any], event: str, **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"event": event, **fields}
    if "reqid" in request:
        message["reqid"] = request["reqid"]
    return dict(sorted(message.items()))


def _error_reply(request: Mapping[str, Any], event: str, text: str) -> dict[str, Any]:
    return _reply(request, event, errorMessage=text, status="error")


class FakeMatchingEngine:
    """A matching engine for :func:`~kraky_anyio.testing.server.open_fake_kraken`
    (see the module docstring for the model and the errors).

    Pass it as ``order_handler``; it is called as
    ``engine(session, request, now)`` for every order event and returns the
    replies (and private data) for the requesting connection.

    ``seed`` fixes the ids. ``reference_prices`` maps pairs to the price at
    which market orders fill (``str``/``Decimal``/``int``). ``min_volume`` is
    one minimum for every pair or a mapping of pairs to minimums
    (:data:`DEFAULT_MIN_VOLUME` for pairs it does not name). ``pairs`` limits
    the pairs traded (default: those the server accepts, ``BASE/QUOTE``
    spelling). ``accounts`` maps tokens to account names. ``fee_rate`` is the
    fee as a fraction of the cost. ``start_time`` is the wall-clock time
    (``currentTime``, ``opentm``, trade times) of the first moment the engine
    sees; the wall clock then follows ``anyio.current_time()``.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        reference_prices: Mapping[str, Decimal | str | int] | None = None,
        min_volume: Decimal | str | Mapping[str, Decimal | str] = DEFAULT_MIN_VOLUME,
        pairs: Collection[str] | None = None,
        accounts: Mapping[str, str] | None = None,
        fee_rate: Decimal | str = "0.0026",
        start_time: datetime = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    ) -> None:
        if start_time.tzinfo is None:
            raise ValueError("start_time must be timezone-aware")
        self._rng = random.Random(seed)
        self._ids: set[str] = set()
        self._reference: dict[str, Decimal] = {}
        for pair, price in (reference_prices or {}).items():
            self._reference[pair] = self._check_price(price)
        if isinstance(min_volume, Mapping):
            self._min_volume = {p: Decimal(v) for p, v in min_volume.items()}
            self._default_min_volume = DEFAULT_MIN_VOLUME
        else:
            self._min_volume = {}
            self._default_min_volume = Decimal(min_volume)
        self.pairs = None if pairs is None else frozenset(pairs)
        self._accounts: dict[str, str] = dict(accounts or {})
        self.fee_rate = Decimal(fee_rate)
        self._start = start_time.timestamp()
        self._origin: float | None = None
        self._last_now = 0.0
        self._orders: dict[str, FakeOrder] = {}
        self._trades: list[FakeTrade] = []
        self._timers: dict[str, float] = {}
        self._expired: set[str] = set()
        self._rate_limited = 0
        self._server: FakeKrakenServer | None = None
        self._wake: anyio.Event | None = None
        #: How many order events of each kind were handled (rate-limited ones included).
        self.requests: dict[str, int] = {}

    def __repr__(self) -> str:
        open_count = sum(order.is_open for order in self._orders.values())
        return f"<FakeMatchingEngine orders={len(self._orders)} open={open_count}>"

    # -- configuration -------------------------------------------------------

    def assign_token(self, token: str, account: str) -> None:
        """Make ``token`` belong to ``account`` (from now on)."""
        self._accounts[token] = account

    def account_of(self, token: str) -> str:
        """The account of ``token`` (:data:`DEFAULT_ACCOUNT` unless assigned)."""
        return self._accounts.get(token, DEFAULT_ACCOUNT)

    def expire_token(self, token: str) -> None:
        """Make ``token`` invalid from now on: order requests with it answer
        ``"ESession:Invalid session"``, and so do private subscribes on the
        bound server (see :meth:`FakeKrakenServer.revoke_token`). Live private
        subscriptions made with it keep receiving (as on Kraken)."""
        self._expired.add(token)
        if self._server is not None:
            self._server.revoke_token(token)

    def rate_limit_orders(self, n: int) -> None:
        """Answer the next ``n`` order requests ``"EOrder:Rate limit exceeded"``
        (``0`` cancels what is left)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self._rate_limited = n

    def reference_price(self, pair: str) -> Decimal | None:
        """The price market orders on ``pair`` fill at, or None."""
        return self._reference.get(pair)

    def set_reference_price(self, pair: str, price: Decimal | str | int) -> None:
        """Set ``pair``'s market price. Resting orders it crosses fill at
        their limit price; on a bound server their updates are queued at once."""
        self._reference[pair] = self._check_price(price)
        now = anyio.current_time() if self._server is not None else self._last_now
        updates: list[_Update] = []
        ref = self._reference[pair]
        for order in list(self._orders.values()):
            if order.status == "open" and order.pair == pair and self._crosses(order, ref):
                assert order.price is not None
                self._fill(order, order.price, now, updates)
        self._deliver(updates, now, None)

    # -- inspection ----------------------------------------------------------

    @property
    def orders(self) -> dict[str, FakeOrder]:
        """Every order ever placed, by txid, in placement order (a copy)."""
        return dict(self._orders)

    def open_orders(self, account: str | None = None) -> list[FakeOrder]:
        """The open orders (of ``account``, or of all), in placement order."""
        return [
            o
            for o in self._orders.values()
            if o.is_open and (account is None or o.account == account)
        ]

    @property
    def trades(self) -> list[FakeTrade]:
        """Every trade, oldest first (a copy)."""
        return list(self._trades)

    def dead_man_switch(self, account: str = DEFAULT_ACCOUNT) -> float | None:
        """When ``account``'s ``cancelAllOrdersAfter`` fires
        (``anyio.current_time()`` clock), or None when it is off."""
        return self._timers.get(account)

    def wall_time(self, now: float) -> float:
        """The engine's Unix time at ``now`` (``anyio.current_time()`` clock)."""
        if self._origin is None:
            self._origin = now
        return self._start + (now - self._origin)

    def iso_time(self, now: float) -> str:
        """``wall_time(now)`` as Kraken's ``2020-12-21T09:37:09Z``."""
        moment = datetime.fromtimestamp(self.wall_time(now), timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- the server hook -----------------------------------------------------

    async def run(
        self,
        server: FakeKrakenServer,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Bind to ``server`` and fire dead man's switches until cancelled.

        Started by ``open_fake_kraken`` (with ``TaskGroup.start``) when the
        engine is its ``order_handler``. Raises ``RuntimeError`` if the engine
        already serves a server.
        """
        if self._server is not None:
            raise RuntimeError("this FakeMatchingEngine already serves a server")
        self._server = server
        self._wake = anyio.Event()
        server.configure(private_snapshot_provider=self._private_snapshot)
        for token in self._expired:
            server.revoke_token(token)
        self.wall_time(anyio.current_time())
        task_status.started()
        try:
            while True:
                self._wake = anyio.Event()
                due = min(self._timers.values(), default=None)
                if due is None:
                    await self._wake.wait()
                    continue
                with anyio.CancelScope(deadline=due) as scope:
                    await self._wake.wait()
                now = anyio.current_time()
                if scope.cancelled_caught:
                    # A quantised virtual clock (looptime) may stop a float
                    # rounding short of `due`: fire anyway, or we would spin.
                    now = max(now, due)
                self._deliver(self._fire_due(now), now, None)
        finally:
            self._server = None
            self._wake = None
            if server.options.private_snapshot_provider == self._private_snapshot:
                server.configure(private_snapshot_provider=None)

    def __call__(
        self, session: FakeKrakenSession, request: dict[str, Any], now: float
    ) -> list[OutgoingMessage]:
        """Answer one order event from ``session`` at ``now``: its replies,
        then the private data it caused for that connection (other
        connections of the account get theirs queued at once)."""
        event = str(request.get("event"))
        self.requests[event] = self.requests.get(event, 0) + 1
        self._last_now = now
        self.wall_time(now)
        updates = self._fire_due(now)
        replies = self._handle(session, event, request, now, updates)
        return [*replies, *self._deliver(updates, now, session)]

    # -- requests ------------------------------------------------------------

    def _handle(
        self,
        session: FakeKrakenSession,
        event: str,
        request: dict[str, Any],
        now: float,
        updates: list[_Update],
    ) -> list[OutgoingMessage]:
        status_event = f"{event}Status"
        txids = request.get("txid")
        copies = 1
        if event == "cancelOrder" and isinstance(txids, list) and txids:
            copies = len(txids)
        try:
            if self._rate_limited:
                self._rate_limited -= 1
                raise _RequestError(ERR_RATE_LIMIT)
            token = request.get("token")
            self._check_token(session, token)
            assert isinstance(token, str)
            account = self.account_of(token)
            self._check_status(session, event)
            if event == "addOrder":
                return [self._add_order(session, request, account, now, updates)]
            if event == "editOrder":
                return [self._edit_order(session, request, account, now, updates)]
            if event == "cancelOrder":
                return self._cancel_order(request, account, now, updates)
            if event == "cancelAll":
                count = self._cancel_all(account, "User requested", now, updates)
                return [_reply(request, status_event, count=count, status="ok")]
            if event == "cancelAllOrdersAfter":
                return [self._cancel_after(request, account, now)]
            raise _RequestError("EGeneral:Unknown method")
        except _RequestError as exc:
            return [_error_reply(request, status_event, str(exc)) for _ in range(copies)]

    def _check_token(self, session: FakeKrakenSession, token: object) -> None:
        error = session.token_error(token)
        if error is None and token in self._expired:
            error = ERR_INVALID_SESSION
        if error is not None:
            raise _RequestError(error)

    @staticmethod
    def _check_status(session: FakeKrakenSession, event: str) -> None:
        if session.status == "maintenance":
            raise _RequestError(ERR_UNAVAILABLE)
        if session.status == "cancel_only" and event in ("addOrder", "editOrder"):
            raise _RequestError(ERR_CANCEL_ONLY)

    def _check_pair(self, session: FakeKrakenSession, pair: object) -> str:
        if not isinstance(pair, str) or not pair:
            raise _invalid("pair")
        base, _, quote = pair.partition("/")
        allowed = self.pairs if self.pairs is not None else session.options.pairs
        if not base or not quote or "/" in quote or (allowed is not None and pair not in allowed):
            raise _RequestError(ERR_UNKNOWN_PAIR)
        return pair

    def _check_volume(self, pair: str, value: object) -> Decimal:
        volume = _decimal_arg(value)
        if volume is None:
            raise _invalid("volume")
        if volume < self._min_volume.get(pair, self._default_min_volume):
            raise _RequestError(ERR_ORDER_MINIMUM)
        return volume

    @staticmethod
    def _check_price(value: object) -> Decimal:
        price: Decimal | None = None
        if isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
            price = Decimal(value)
        elif isinstance(value, str):
            price = _decimal_arg(value)
        if price is None or not price.is_finite() or price <= 0:
            raise ValueError("a reference price must be a positive decimal")
        return price

    @staticmethod
    def _validate_only(request: Mapping[str, Any]) -> bool:
        return request.get("validate") in ("true", True)

    def _add_order(
        self,
        session: FakeKrakenSession,
        request: dict[str, Any],
        account: str,
        now: float,
        updates: list[_Update],
    ) -> dict[str, Any]:
        pair = self._check_pair(session, request.get("pair"))
        side = request.get("type")
        if side not in ("buy", "sell"):
            raise _invalid("type")
        ordertype = request.get("ordertype")
        if ordertype not in ("limit", "market"):
            raise _invalid("ordertype")
        price: Decimal | None = None
        price_text: str | None = None
        if ordertype == "limit":
            price = _decimal_arg(request.get("price"))
            if price is None or price <= 0:
                raise _invalid("price")
            price_text = request["price"]
        volume = self._check_volume(pair, request.get("volume"))
        if ordertype == "market":
            if session.status == "post_only":
                raise _RequestError(ERR_POST_ONLY)
            if session.status == "limit_only":
                raise _RequestError(ERR_LIMIT_ONLY)
            if pair not in self._reference:
                raise _RequestError(ERR_NO_REFERENCE_PRICE)
        userref = self._userref(request.get("userref"), "userref")
        cl_ord_id = request.get("cl_ord_id")
        if cl_ord_id is not None and not isinstance(cl_ord_id, str):
            raise _invalid("cl_ord_id")
        descr = f"{side} {_volume(volume)} {pair.replace('/', '')} @ {ordertype}"
        if price_text is not None:
            descr += f" {price_text}"
        if self._validate_only(request):
            return _reply(request, "addOrderStatus", descr=descr, status="ok")
        order = FakeOrder(
            txid=self._new_id("O"),
            account=account,
            pair=pair,
            type=side,
            ordertype=ordertype,
            volume=volume,
            price=price,
            price_text=price_text,
            userref=userref,
            opentm=self.wall_time(now),
            cl_ord_id=cl_ord_id,
            oflags=str(request.get("oflags", "")),
        )
        self._place(order, now, updates)
        return _reply(request, "addOrderStatus", descr=descr, status="ok", txid=order.txid)

    def _edit_order(
        self,
        session: FakeKrakenSession,
        request: dict[str, Any],
        account: str,
        now: float,
        updates: list[_Update],
    ) -> dict[str, Any]:
        orderid = request.get("orderid")
        if not isinstance(orderid, str) or not orderid:
            raise _invalid("orderid")
        pair = self._check_pair(session, request.get("pair"))
        original = self._find_open(orderid, account)
        if original is None:
            raise _RequestError(ERR_UNKNOWN_ORDER)
        if original.pair != pair:
            raise _invalid("pair")
        volume = original.volume
        if "volume" in request:
            volume = self._check_volume(pair, request["volume"])
        price, price_text = original.price, original.price_text
        if "price" in request:
            price = _decimal_arg(request["price"])
            if price is None or price <= 0:
                raise _invalid("price")
            price_text = request["price"]
        userref = original.userref
        if "newuserref" in request:
            userref = self._userref(request["newuserref"], "newuserref")
        descr = f"order edited price = {_volume(price or Decimal(0))} volume = {_volume(volume)}"
        if self._validate_only(request):
            return _reply(request, "editOrderStatus", descr=descr, status="ok")
        self._cancel(original, "Order replaced", now, updates)
        order = FakeOrder(
            txid=self._new_id("O"),
            account=account,
            pair=pair,
            type=original.type,
            ordertype=original.ordertype,
            volume=volume,
            price=price,
            price_text=price_text,
            userref=userref,
            opentm=self.wall_time(now),
            cl_ord_id=original.cl_ord_id,
            oflags=str(request.get("oflags", original.oflags)),
        )
        self._place(order, now, updates)
        return _reply(
            request,
            "editOrderStatus",
            descr=descr,
            originaltxid=original.txid,
            status="ok",
            txid=order.txid,
        )

    def _cancel_order(
        self, request: dict[str, Any], account: str, now: float, updates: list[_Update]
    ) -> list[OutgoingMessage]:
        txids = request.get("txid")
        if not isinstance(txids, list) or not txids:
            raise _invalid("txid")
        replies: list[OutgoingMessage] = []
        for txid in txids:
            order = self._find_open(txid, account) if isinstance(txid, str) else None
            if order is None:
                replies.append(_error_reply(request, "cancelOrderStatus", ERR_UNKNOWN_ORDER))
            else:
                self._cancel(order, "User requested", now, updates)
                replies.append(_reply(request, "cancelOrderStatus", status="ok"))
        return replies

    def _cancel_after(self, request: dict[str, Any], account: str, now: float) -> dict[str, Any]:
        timeout = request.get("timeout")
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise _invalid("timeout")
        if timeout == 0:
            self._timers.pop(account, None)
            trigger = "0"
        else:
            self._timers[account] = now + timeout
            trigger = self.iso_time(now + timeout)
        if self._wake is not None:
            self._wake.set()
        return _reply(
            request,
            "cancelAllOrdersAfterStatus",
            currentTime=self.iso_time(now),
            status="ok",
            triggerTime=trigger,
        )

    @staticmethod
    def _userref(value: object, field: str) -> int:
        if value is None:
            return 0
        if isinstance(value, bool):
            raise _invalid(field)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            return int(value)
        raise _invalid(field)

    # -- the book ------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        while True:
            chars = "".join(self._rng.choice(_ID_CHARS) for _ in range(16))
            txid = f"{prefix}{chars[:5]}-{chars[5:10]}-{chars[10:]}"
            if txid not in self._ids:
                self._ids.add(txid)
                return txid

    def _find_open(self, txid: str, account: str) -> FakeOrder | None:
        order = self._orders.get(txid)
        if order is None or not order.is_open or order.account != account:
            return None
        return order

    @staticmethod
    def _crosses(order: FakeOrder, reference: Decimal) -> bool:
        if order.price is None:
            return True
        return order.price >= reference if order.type == "buy" else order.price <= reference

    def _place(self, order: FakeOrder, now: float, updates: list[_Update]) -> None:
        self._orders[order.txid] = order
        updates.append(self._order_update(order, self._order_fields(order)))
        order.status = "open"
        updates.append(self._order_update(order, {"status": "open", "userref": order.userref}))
        reference = self._reference.get(order.pair)
        if reference is not None and self._crosses(order, reference):
            self._fill(order, reference, now, updates)

    def _fill(self, order: FakeOrder, price: Decimal, now: float, updates: list[_Update]) -> None:
        wall = self.wall_time(now)
        cost = price * order.volume
        fee = cost * self.fee_rate
        trade = FakeTrade(
            txid=self._new_id("T"),
            ordertxid=order.txid,
            postxid=self._new_id("T"),
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
        self._trades.append(trade)
        order.vol_exec, order.cost, order.fee = order.volume, cost, fee
        order.status, order.closetm = "closed", wall
        updates.append(_Update(order.account, "ownTrades", [{trade.txid: _trade_fields(trade)}]))
        updates.append(self._order_update(order, self._close_fields(order)))

    def _cancel(self, order: FakeOrder, reason: str, now: float, updates: list[_Update]) -> None:
        order.status, order.closetm, order.cancel_reason = "canceled", self.wall_time(now), reason
        fields = self._close_fields(order)
        fields["cancel_reason"] = reason
        updates.append(self._order_update(order, fields))

    def _cancel_all(self, account: str, reason: str, now: float, updates: list[_Update]) -> int:
        orders = self.open_orders(account)
        for order in orders:
            self._cancel(order, reason, now, updates)
        return len(orders)

    def _fire_due(self, now: float) -> list[_Update]:
        updates: list[_Update] = []
        for account, due in list(self._timers.items()):
            if due <= now:
                del self._timers[account]
                self._cancel_all(account, "Dead man's switch", now, updates)
        return updates

    # -- private data --------------------------------------------------------

    @staticmethod
    def _order_update(order: FakeOrder, fields: dict[str, Any]) -> _Update:
        return _Update(order.account, "openOrders", [{order.txid: fields}])

    @staticmethod
    def _order_fields(order: FakeOrder) -> dict[str, Any]:
        price = order.price_text or "0.00000"
        description = f"{order.type} {_volume(order.volume)} {order.pair} @ {order.ordertype}"
        if order.price_text is not None:
            description += f" {order.price_text}"
        fields: dict[str, Any] = {
            "avg_price": _money(order.avg_price),
            "cost": _money(order.cost),
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
            "fee": _money(order.fee),
            "limitprice": "0.00000",
            "misc": "",
            "oflags": order.oflags,
            "opentm": f"{order.opentm:.6f}",
            "refid": None,
            "starttm": None,
            "status": order.status,
            "stopprice": "0.00000",
            "userref": order.userref,
            "vol": _volume(order.volume),
            "vol_exec": _volume(order.vol_exec),
        }
        if order.cl_ord_id is not None:
            fields["cl_ord_id"] = order.cl_ord_id
        return fields

    @staticmethod
    def _close_fields(order: FakeOrder) -> dict[str, Any]:
        return {
            "avg_price": _money(order.avg_price),
            "cost": _money(order.cost),
            "fee": _money(order.fee),
            "lastupdated": f"{order.closetm or 0:.6f}",
            "status": order.status,
            "userref": order.userref,
            "vol_exec": _volume(order.vol_exec),
        }

    def _private_snapshot(
        self, session: FakeKrakenSession, channel_name: str, subscription: dict[str, Any]
    ) -> list[Any]:
        account = self.account_of(str(subscription.get("token")))
        if channel_name == "openOrders":
            return [[{o.txid: self._order_fields(o)} for o in self.open_orders(account)]]
        if channel_name == "ownTrades" and subscription.get("snapshot", True) is not False:
            trades = [t for t in self._trades if t.account == account][-_TRADE_SNAPSHOT_SIZE:]
            return [[{t.txid: _trade_fields(t)} for t in trades]]
        return []

    def _targets(
        self, caller: FakeKrakenSession | None
    ) -> Iterable[tuple[FakeKrakenSession, FakeKrakenConnection | None]]:
        seen_caller = False
        if self._server is not None:
            for connection in self._server.sessions:
                session = connection.session
                if isinstance(session, FakeKrakenSession):  # v2 trading: not yet
                    seen_caller = seen_caller or session is caller
                    yield session, connection
        if caller is not None and not seen_caller:
            yield caller, None

    def _deliver(
        self, updates: list[_Update], now: float, caller: FakeKrakenSession | None
    ) -> list[OutgoingMessage]:
        """Queue ``updates`` to the subscribers of their account; return the
        caller's share (to send after its replies)."""
        out: list[OutgoingMessage] = []
        if not updates:
            return out
        for session, connection in self._targets(caller):
            for update in updates:
                token = session.private_tokens.get(update.channel)
                if token is None or self.account_of(token) != update.account:
                    continue
                if session is caller:
                    out.extend(session.publish(update.channel, None, update.payload, now=now))
                elif connection is not None:
                    connection.publish_nowait(update.channel, None, update.payload)
        return out


def _trade_fields(trade: FakeTrade) -> dict[str, Any]:
    return {
        "cost": _money(trade.cost),
        "fee": _money(trade.fee),
        "margin": "0.00000",
        "ordertxid": trade.ordertxid,
        "ordertype": trade.ordertype,
        "pair": trade.pair,
        "postxid": trade.postxid,
        "price": _money(trade.price),
        "time": f"{trade.time:.6f}",
        "type": trade.type,
        "vol": _volume(trade.vol),
    }
