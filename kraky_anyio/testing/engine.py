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

This module authenticates requests and runs the timers;
:mod:`~kraky_anyio.testing.private_delivery` routes private data to the
account's subscribers, :mod:`~kraky_anyio.testing.order_desk` validates and applies each
request (with :mod:`~kraky_anyio.testing.order_checks`) to the
:mod:`~kraky_anyio.testing.ledger` of orders and trades.

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
* **v2.** v2 connections (``/v2``) trade on the same ledger through
  :attr:`FakeMatchingEngine.v2` (:mod:`~kraky_anyio.testing.v2_engine`): more
  order types, ``executions``/``balances``, Kraken's rate counter. What this
  docstring says of orders and validation is the v1 side.

Validation (v1), in order, and the replies' shapes: see
:mod:`~kraky_anyio.testing.order_checks`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import anyio
import anyio.abc

from . import order_checks as checks
from .ledger import FakeOrder, FakeTrade, Ledger, Update
from .order_checks import (
    ERR_CANCEL_ONLY,
    ERR_INVALID_ARGUMENTS,
    ERR_LIMIT_ONLY,
    ERR_NO_REFERENCE_PRICE,
    ERR_ORDER_MINIMUM,
    ERR_POST_ONLY,
    ERR_RATE_LIMIT,
    ERR_UNAVAILABLE,
    ERR_UNKNOWN_ORDER,
    ERR_UNKNOWN_PAIR,
    RequestError,
)
from .order_desk import OrderDesk, WallClock
from .private_delivery import deliver_private
from .server import FakeKrakenServer
from .session import FakeKrakenSession, OutgoingMessage
from .session_base import FakeSessionBase
from .v1_messages import ERR_INVALID_SESSION
from .v2_engine import V2Trading
from .v2_private import V2Event

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

    v2 (:attr:`v2`, :mod:`~kraky_anyio.testing.v2_engine`): ``tier`` is the
    rate counter's tier (``"starter"``, ``"intermediate"``, ``"pro"``; None:
    no counter), enforced on v2 requests; ``balances`` the assets every
    account starts with (None: funds not checked, balances from zero).
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
        tier: str | None = "starter",
        balances: Mapping[str, Decimal | str | int] | None = None,
    ) -> None:
        self._clock = WallClock(start_time)
        self._ledger = Ledger(seed, Decimal(fee_rate))
        if isinstance(min_volume, Mapping):
            minimums = {p: Decimal(v) for p, v in min_volume.items()}
            default_minimum = DEFAULT_MIN_VOLUME
        else:
            minimums, default_minimum = {}, Decimal(min_volume)
        self._desk = OrderDesk(
            self._ledger,
            self._clock,
            reference={p: checks.positive_price(v) for p, v in (reference_prices or {}).items()},
            min_volume=minimums,
            default_min_volume=default_minimum,
            pairs=None if pairs is None else frozenset(pairs),
        )
        self._accounts: dict[str, str] = dict(accounts or {})
        self._last_now = 0.0
        self._expired: set[str] = set()
        self._rate_limited = 0
        self._server: FakeKrakenServer | None = None
        self._wake: anyio.Event | None = None
        #: How many order events of each kind were handled (rate-limited ones included).
        self.requests: dict[str, int] = {}
        #: The v2 side: the hook v2 sessions call (see :mod:`~kraky_anyio.testing.v2_engine`).
        self.v2 = V2Trading(
            ledger=self._ledger,
            desk=self._desk,
            tier=tier,
            balances=None if balances is None else {a: Decimal(v) for a, v in balances.items()},
            seed=seed,
            minimums=minimums,
            default_minimum=default_minimum,
            account_of=self.account_of,
            check_token=self._check_token,
            deliver=self._deliver,
            rearm=self._rearm,
        )

    def __repr__(self) -> str:
        open_count = sum(order.is_open for order in self._ledger.orders.values())
        return f"<FakeMatchingEngine orders={len(self._ledger.orders)} open={open_count}>"

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
        """Answer the next ``n`` v1 order events ``"EOrder:Rate limit exceeded"``
        (``0`` cancels what is left; v2 has Kraken's real counter, ``tier``)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self._rate_limited = n

    def reference_price(self, pair: str) -> Decimal | None:
        """The price market orders on ``pair`` fill at, or None."""
        return self._desk.reference.get(pair)

    def set_reference_price(self, pair: str, price: Decimal | str | int) -> None:
        """Set ``pair``'s market price. Resting orders it crosses fill at
        their limit price; on a bound server their updates are queued at once."""
        self._desk.reference[pair] = checks.positive_price(price)
        now = anyio.current_time() if self._server is not None else self._last_now
        updates: list[Update] = []
        ref = self._desk.reference[pair]
        for order in list(self._ledger.orders.values()):
            if order.status == "open" and order.pair == pair and order.crosses(ref):
                assert order.price is not None
                self._ledger.fill(order, order.price, self.wall_time(now), updates)
        self.v2.book.on_reference(pair, now, updates)  # other spellings, triggers
        self._deliver(updates, now, None)

    # -- inspection ----------------------------------------------------------

    @property
    def pairs(self) -> Collection[str] | None:
        """The pairs traded (None: those the server accepts)."""
        return self._desk.pairs

    @property
    def fee_rate(self) -> Decimal:
        """The fee as a fraction of the cost."""
        return self._ledger.fee_rate

    @property
    def orders(self) -> dict[str, FakeOrder]:
        """Every order ever placed, by txid, in placement order (a copy)."""
        return dict(self._ledger.orders)

    def open_orders(self, account: str | None = None) -> list[FakeOrder]:
        """The open orders (of ``account``, or of all), in placement order."""
        return self._ledger.open_orders(account)

    @property
    def trades(self) -> list[FakeTrade]:
        """Every trade, oldest first (a copy)."""
        return list(self._ledger.trades)

    def dead_man_switch(self, account: str = DEFAULT_ACCOUNT) -> float | None:
        """When ``account``'s ``cancelAllOrdersAfter`` fires
        (``anyio.current_time()`` clock), or None when it is off."""
        return self._desk.timers.get(account)

    def rate_count(
        self, symbol: str, account: str = DEFAULT_ACCOUNT, *, now: float | None = None
    ) -> float:
        """``account``'s order rate counter on ``symbol`` at ``now`` (default:
        ``anyio.current_time()``); v2 requests count, either spelling."""
        at = anyio.current_time() if now is None else now
        return self.v2.rate_count(symbol, account, at)

    def wall_time(self, now: float) -> float:
        """The engine's Unix time at ``now`` (``anyio.current_time()`` clock)."""
        return self._clock.wall_time(now)

    def iso_time(self, now: float) -> str:
        """``wall_time(now)`` as Kraken's ``2020-12-21T09:37:09Z``."""
        return self._clock.iso_time(now)

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
                dues = [*self._desk.timers.values(), self.v2.next_due()]
                due = min((d for d in dues if d is not None), default=None)
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
                self._deliver([*self._desk.fire_due(now), *self.v2.book.fire_due(now)], now, None)
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
        updates = [*self._desk.fire_due(now), *self.v2.book.fire_due(now)]
        replies = self._handle(session, event, request, now, updates)
        return [*replies, *self._deliver(updates, now, session)]

    # -- requests ------------------------------------------------------------

    def _handle(
        self,
        session: FakeKrakenSession,
        event: str,
        request: dict[str, Any],
        now: float,
        updates: list[Update],
    ) -> list[OutgoingMessage]:
        status_event = f"{event}Status"
        txids = request.get("txid")
        copies = 1
        if event == "cancelOrder" and isinstance(txids, list) and txids:
            copies = len(txids)
        try:
            if self._rate_limited:
                self._rate_limited -= 1
                raise RequestError(ERR_RATE_LIMIT)
            token = request.get("token")
            self._check_token(session, token)
            assert isinstance(token, str)
            account = self.account_of(token)
            checks.check_status(session.status, event)
            replies = self._desk.handle(session, event, request, account, now, updates)
            if event == "cancelAllOrdersAfter":
                self._rearm()  # the switch's due time changed
            return replies
        except RequestError as exc:
            return [checks.error_reply(request, status_event, str(exc)) for _ in range(copies)]

    def _rearm(self) -> None:
        if self._wake is not None:
            self._wake.set()  # a due time may have changed

    def _check_token(self, session: FakeSessionBase, token: object) -> None:
        error = session.token_error(token)
        if error is None and token in self._expired:
            error = ERR_INVALID_SESSION
        if error is not None:
            raise RequestError(error)

    # -- private data --------------------------------------------------------

    def _private_snapshot(
        self, session: FakeKrakenSession, channel_name: str, subscription: dict[str, Any]
    ) -> list[Any]:
        account = self.account_of(str(subscription.get("token")))
        return self._ledger.private_snapshot(account, channel_name, subscription)

    def _deliver(
        self,
        updates: list[Update],
        now: float,
        caller: FakeSessionBase | None,
        events: list[V2Event] | None = None,
    ) -> list[OutgoingMessage]:
        connections = None if self._server is None else self._server.sessions
        v1_caller = caller if isinstance(caller, FakeKrakenSession) else None
        out = deliver_private(updates, now, v1_caller, connections, self.account_of)
        return [*out, *self.v2.route(updates, events or [], now, caller, connections)]
