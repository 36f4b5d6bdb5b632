"""The v2 side of the fake matching engine: Kraken v2 trading requests and
the ``executions``/``balances`` subscriptions.

:class:`V2Trading` is :attr:`FakeMatchingEngine.v2
<kraky_anyio.testing.engine.FakeMatchingEngine.v2>`: a v2 session hands it
every :data:`~kraky_anyio.testing.v2_session.TRADING_METHODS` request (see
:class:`~kraky_anyio.testing.v2_session.V2OrderHandler`). It shares the
engine's ledger, reference prices, accounts, tokens and dead man's switches,
so v1 and v2 clients of one account see the same orders. The methods
themselves are :mod:`~kraky_anyio.testing.v2_requests` (placing, amending,
editing) and :mod:`~kraky_anyio.testing.v2_cancels`.

Every request, in order:

1. ``params`` must be an object (``"EGeneral:Invalid arguments:params"``);
2. the token (``params.token``): missing ``"EGeneral:Invalid arguments:token"``;
   unknown, revoked or expired ``"ESession:Invalid session"``;
3. the system status: ``maintenance`` refuses everything
   (``"EService:Unavailable"``), ``cancel_only`` refuses ``add_order``,
   ``batch_add``, ``amend_order`` and ``edit_order``, ``post_only`` refuses
   market-like orders;
4. the rate counter of the order's pair (tier ``tier``; see
   :class:`~kraky_anyio.testing.v2_rate.RateCounter`): an action that would
   cross the ceiling gets ``"EOrder:Rate limit exceeded"`` and is not
   charged; any other is charged before its fields are checked, so an order
   that then fails validation still costs. ``cancel_all``,
   ``cancel_all_orders_after`` and the switch firing are free (the fake's
   choice: Kraken's docs do not say);
5. the fields (:mod:`~kraky_anyio.testing.v2_orders`), ``deadline`` (past:
   ``"EOrder:Deadline elapsed"``; more than 60 s ahead:
   ``"EGeneral:Invalid arguments:deadline"``), the pair's minimum
   (``"EOrder:Order minimum not met"``) and, when the engine has
   ``balances``, the funds (``"EOrder:Insufficient funds"``).

Private data: after each request, its ``executions`` events (and a
``{"symbol", "ratecount", "timestamp"}`` entry after each charged action,
to subscribers with ``ratecounter: true``) and ``balances`` updates go to
every v2 connection subscribed with a token of the account, each message
with that connection's ``sequence``. Times: ``deadline``, ``expire_time``
and ``effective_time`` are read on the engine's wall clock
(:meth:`FakeMatchingEngine.wall_time`), and timers fire on
``anyio.current_time()``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any

from . import v2_cancels, v2_requests
from .connection import FakeKrakenConnection
from .ledger import Ledger, Update
from .order_checks import (
    ERR_CANCEL_ONLY,
    ERR_RATE_LIMIT,
    ERR_UNAVAILABLE,
    ERR_UNKNOWN_PAIR,
    RequestError,
    invalid,
)
from .order_desk import OrderDesk
from .session_base import FakeSessionBase
from .v2_book import V2Book
from .v2_messages import ERR_PARAMS, response, v2_symbol
from .v2_orders import ERR_DEADLINE
from .v2_params import moment
from .v2_private import PrivateFeeds, V2Event, deliver_v2, wall_rfc3339
from .v2_rate import RateCounter
from .v2_session import FakeKrakenV2Session

__all__ = ["V2Trading"]

_PLACING = frozenset({"add_order", "batch_add", "amend_order", "edit_order"})
_EXECUTIONS_FLAGS = ("snap_orders", "snap_trades", "order_status", "ratecounter", "snapshot")


class V2Trading:
    """Kraken v2 trading over the engine's shared state (see the module
    docstring). Built by :class:`~kraky_anyio.testing.engine.FakeMatchingEngine`;
    ``check_token(session, token)`` raises ``RequestError`` for a refused
    token, ``deliver(updates, now, caller, events)`` routes private data
    (v1 and v2) and returns ``caller``'s share, ``rearm()`` tells the
    engine's timer task that a due time changed."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        desk: OrderDesk,
        tier: str | None,
        balances: Mapping[str, Decimal] | None,
        seed: int,
        minimums: Mapping[str, Decimal],
        default_minimum: Decimal,
        account_of: Callable[[str], str],
        check_token: Callable[[FakeSessionBase, object], None],
        deliver: Callable[[list[Update], float, FakeSessionBase | None, list[V2Event]], list[Any]],
        rearm: Callable[[], None],
    ) -> None:
        self.ledger = ledger
        self.desk = desk
        self.clock = desk.clock
        self.book = V2Book(ledger, desk.clock, desk.reference)
        self.feeds = PrivateFeeds(ledger, self.book, balances, seed)
        self.rate = RateCounter(tier)
        self.account_of = account_of
        self.rearm = rearm
        self._minimums = {v2_symbol(k): v for k, v in minimums.items()}
        self._default_minimum = default_minimum
        self._check_token = check_token
        self._deliver = deliver
        #: How many requests of each method were handled (refused ones included).
        self.requests: dict[str, int] = {}

    # -- the session hooks -----------------------------------------------------

    def on_request(
        self, session: FakeKrakenV2Session, request: dict[str, Any], now: float
    ) -> list[Any]:
        """Answer one trading request: its responses, then the private data
        it caused for ``session`` (other connections get theirs queued)."""
        method = str(request.get("method"))
        self.requests[method] = self.requests.get(method, 0) + 1
        self.clock.wall_time(now)
        updates = [*self.desk.fire_due(now), *self.book.fire_due(now)]
        events: list[V2Event] = []
        call = Call(self, session, request, now, updates, events)
        try:
            params = request.get("params")
            if not isinstance(params, dict):
                raise RequestError(ERR_PARAMS)
            token = params.get("token")
            self._check_token(session, token)
            assert isinstance(token, str)
            call.account = self.account_of(token)
            if session.status == "maintenance":
                raise RequestError(ERR_UNAVAILABLE)
            if session.status == "cancel_only" and method in _PLACING:
                raise RequestError(ERR_CANCEL_ONLY)
            replies = _METHODS[method](call, params)
        except RequestError as exc:
            replies = v2_cancels.refused(call, str(exc))
        self.rearm()
        return [*replies, *self._deliver(updates, now, session, events)]

    def on_private_subscribe(
        self, session: FakeKrakenV2Session, channel: str, params: dict[str, Any], now: float
    ) -> tuple[dict[str, Any], list[Any]]:
        """The ack's extras (``maxratecount`` for ``executions``) and the
        snapshot for a new subscriber; ``ValueError`` for a flag that is not
        a boolean."""
        for flag in _EXECUTIONS_FLAGS:
            if flag in params and not isinstance(params[flag], bool):
                raise ValueError(f"EGeneral:Invalid arguments:{flag}")
        self.clock.wall_time(now)
        account = self.account_of(str(params.get("token")))
        extras: dict[str, Any] = {}
        if channel == "executions" and self.rate.ceiling is not None:
            extras["maxratecount"] = self.rate.ceiling
        if params.get("snapshot", True) is False:
            return extras, []
        return extras, [self.feeds.snapshot(channel, account, params)]

    # -- for the engine --------------------------------------------------------

    def route(
        self,
        updates: list[Update],
        events: Iterable[V2Event],
        now: float,
        caller: FakeSessionBase | None,
        connections: Iterable[FakeKrakenConnection] | None,
    ) -> list[Any]:
        """Translate ``updates`` (always: balances follow every trade), add
        ``events``, queue them to the v2 subscribers; ``caller``'s share back."""
        translated = [*self.feeds.translate(updates), *events]
        v2_caller = caller if isinstance(caller, FakeKrakenV2Session) else None
        return deliver_v2(translated, now, v2_caller, connections, self.account_of)

    def next_due(self) -> float | None:
        """When an order's ``effective_time``/``expire_time`` next comes."""
        return self.book.next_due()

    def rate_count(self, symbol: str, account: str, now: float) -> float:
        """``account``'s rate counter on ``symbol`` at ``now``."""
        return self.rate.count(account, v2_symbol(symbol), now)

    # -- shared checks ---------------------------------------------------------

    def symbol(self, session: FakeKrakenV2Session, value: object) -> str:
        """A v2 symbol the engine trades, or ``RequestError``."""
        if not isinstance(value, str) or not value:
            raise invalid("symbol")
        pairs: Collection[str] | None = self.desk.pairs
        allowed = session.symbols if pairs is None else {v2_symbol(p) for p in pairs}
        base, _, quote = value.partition("/")
        if not base or not quote or "/" in quote or (allowed is not None and value not in allowed):
            raise RequestError(ERR_UNKNOWN_PAIR)
        return value

    def minimum(self, symbol: str) -> Decimal:
        """The smallest order quantity on ``symbol`` (either spelling)."""
        return self._minimums.get(v2_symbol(symbol), self._default_minimum)


class Call:
    """One request being answered: where handlers find the engine, the
    session, the account, and put updates and events."""

    def __init__(
        self,
        trading: V2Trading,
        session: FakeKrakenV2Session,
        request: dict[str, Any],
        now: float,
        updates: list[Update],
        events: list[V2Event],
    ) -> None:
        self.trading = trading
        self.session = session
        self.request = request
        self.method = str(request.get("method"))
        self.now = now
        self.updates = updates
        self.events = events
        self.account = ""

    @property
    def wall(self) -> float:
        return self.trading.clock.wall_time(self.now)

    def reply(self, result: Any = None, **top: Any) -> dict[str, Any]:
        """A success response (``result`` left out when None)."""
        message = response(self.method, self.request, self.now, result=result)
        message.update(top)
        return message

    def error(self, text: str, **top: Any) -> dict[str, Any]:
        """An error response, with ``top`` fields naming what it is about."""
        message = response(self.method, self.request, self.now, error=text)
        message.update(top)
        return message

    def admit(self, symbol: str, cost: int) -> None:
        """Charge ``cost`` to ``symbol``'s counter (either spelling) and
        report it, or raise ``"EOrder:Rate limit exceeded"`` (not charged)."""
        symbol = v2_symbol(symbol)
        rate = self.trading.rate
        if not rate.allows(self.account, symbol, cost, self.now):
            raise RequestError(ERR_RATE_LIMIT)
        if rate.tier is None:
            return
        rate.charge(self.account, symbol, cost, self.now)
        entry = {
            "symbol": symbol,
            "ratecount": rate.reported(self.account, symbol, self.now),
            "timestamp": wall_rfc3339(self.wall),
        }
        self.events.append(V2Event(self.account, "executions", "ratecount", [entry]))

    def deadline(self, params: Mapping[str, Any]) -> None:
        """Refuse a request whose ``deadline`` has passed (or is > 60 s away)."""
        deadline = moment(params, "deadline")
        if deadline is None:
            return
        if deadline < self.wall:
            raise RequestError(ERR_DEADLINE)
        if deadline > self.wall + 60:
            raise invalid("deadline")


_METHODS: dict[str, Callable[[Call, dict[str, Any]], list[Any]]] = {
    "add_order": v2_requests.add_order,
    "batch_add": v2_requests.batch_add,
    "amend_order": v2_requests.amend_order,
    "edit_order": v2_requests.edit_order,
    "cancel_order": v2_cancels.cancel_order,
    "batch_cancel": v2_cancels.batch_cancel,
    "cancel_all": v2_cancels.cancel_all,
    "cancel_all_orders_after": v2_cancels.cancel_all_orders_after,
}
