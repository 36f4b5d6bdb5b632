"""The v2 connection: ``v2.open_kraken`` and the methods a user calls.

The same shell as v1 (:class:`kraky_anyio.shell.Shell`: supervisor, reader,
watchdog, writer; see :mod:`kraky_anyio.connection` for the task tree), driven
by :class:`~kraky_anyio.v2.protocol.KrakenV2Protocol`. Options, reconnects,
backoff, consumers, notices and the exception tree are v1's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

import anyio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus

from ..errors import KrakenError, KrakyError
from ..facade import ConnectionBase
from ..fanout import MessageStream, Overflow
from ..filters import Filter
from ..live_book import LiveBook, open_live_book
from ..notices import Notice
from ..options import ConnectionOptions, resolve_url
from .live_books import BookLink, L2BookEngine, L3BookEngine
from .messages import Pair, Response
from .protocol import KrakenV2Protocol
from .rate_budget import RateBudget
from .rate_gate import RateKeeper
from .trading import OrderMethods

log = logging.getLogger("kraky_anyio")

__all__ = ["ENVIRONMENTS", "KrakenV2Connection", "message_filter", "open_kraken"]

#: Kraken's v2 endpoints (``level3``: the ``level3`` channel, token required).
ENVIRONMENTS: Final[Mapping[str, str]] = {
    "production": "wss://ws.kraken.com/v2",
    "production-auth": "wss://ws-auth.kraken.com/v2",
    "beta": "wss://beta-ws.kraken.com/v2",
    "beta-auth": "wss://beta-ws-auth.kraken.com/v2",
    "level3": "wss://ws-l3.kraken.com/v2",
}


def message_filter(
    channel: str | Iterable[str] | None, symbol: str | Iterable[str] | None
) -> Filter | None:
    """A predicate keeping notices and the channel messages of ``channel``
    and/or ``symbol`` (a message is kept if any of its entries has one of the
    symbols). Responses are channel-less: they are left out by any filter."""
    if channel is None and symbol is None:
        return None
    channels = None if channel is None else {channel} if isinstance(channel, str) else set(channel)
    symbols = None if symbol is None else {symbol} if isinstance(symbol, str) else set(symbol)

    def keep(msg: Any) -> bool:
        if isinstance(msg, Notice):
            return True
        name = getattr(msg, "channel", None)
        if name is None or (channels is not None and name not in channels):
            return False
        if symbols is None:
            return True
        data = getattr(msg, "data", None)
        return isinstance(data, list) and any(
            getattr(entry, "symbol", None) in symbols for entry in data
        )

    return keep


def _responses(replies: list[Any]) -> list[Response]:
    """The shell hands back what the protocol collected: v2 responses."""
    return [r for r in replies if isinstance(r, Response)]


class KrakenV2Connection(OrderMethods, ConnectionBase[KrakenV2Protocol]):
    """One logical connection to Kraken's v2 API, kept alive across sockets.

    Create it with :func:`open_kraken`. Its methods may be called from any
    task while the ``async with`` block is open. :meth:`ping`,
    :meth:`subscribe`, :meth:`unsubscribe` and :meth:`request` take anyio's
    ``task_status`` as v1's do (``await tg.start(...)`` returns once the
    frame was written; see :class:`kraky_anyio.connection.KrakenConnection`).
    """

    api = "v2"

    def __init__(
        self,
        url: str,
        options: ConnectionOptions | None = None,
        *,
        rate_limit: RateBudget | None = None,
    ) -> None:
        super().__init__(url, options, KrakenV2Protocol())
        self._instrument_lock = anyio.Lock()
        #: The order rate budget's link (``rate_limit=``), or None.
        self._rate = None if rate_limit is None else RateKeeper(rate_limit)
        if self._rate is not None:
            self._shell.observers.append(self._rate.observe)

    # -- public state (the rest is ConnectionBase's) -------------------------

    @property
    def rate_limit(self) -> RateBudget | None:
        """The order rate budget given as ``rate_limit=``, or None."""
        return None if self._rate is None else self._rate.budget

    @property
    def system_status(self) -> str | None:
        """The ``system`` of Kraken's last ``status`` message, or None."""
        return self._protocol.system_status

    def live_subscriptions(self) -> list[tuple[dict[str, Any], str | None]]:
        """``(params, symbol)`` for every live entry: what a reconnect replays
        (params without the token)."""
        return [(dict(e.subscription), e.pair) for e in self._protocol.subscriptions.live()]

    # -- consumers ---------------------------------------------------------

    def messages(
        self,
        *,
        channel: str | Iterable[str] | None = None,
        symbol: str | Iterable[str] | None = None,
        buffer_size: int | None = None,
        overflow: Overflow | str | None = None,
    ) -> MessageStream:
        """A new consumer of every message from now on, in order.

        Yields typed messages (:mod:`kraky_anyio.v2.messages`: channel
        messages and :class:`~kraky_anyio.v2.messages.Response`) and
        :class:`~kraky_anyio.notices.Notice` objects. With ``channel`` and/or
        ``symbol`` only matching channel messages (and notices) are kept.
        ``buffer_size``/``overflow`` override the connection's defaults for
        this consumer. Iteration ends when the connection closes.
        """
        return self._fanout.open(message_filter(channel, symbol), buffer_size, overflow)

    # -- books -------------------------------------------------------------

    def book(
        self,
        symbol: str,
        depth: int = 10,
        *,
        price_precision: int | None = None,
        qty_precision: int | None = None,
    ) -> AbstractAsyncContextManager[LiveBook]:
        """``async with conn.book(symbol, depth) as book``: a checksum-verified
        L2 book of ``symbol`` (v2 rules: snapshot and every update verified),
        subscribed on entry and unsubscribed on exit; the same
        :class:`~kraky_anyio.live_book.LiveBook` as v1's. Numbers are rendered
        from their text, at the pair's precision where the text has none:
        given here, or taken from the ``instrument`` channel (see
        :meth:`instrument`). On a mismatch that symbol alone is resubscribed.
        ``ValueError`` at once for a depth other than 10, 25, 100, 500, 1000;
        entering raises like :meth:`subscribe`."""
        engine = L2BookEngine(
            symbol, depth, price_precision=price_precision, qty_precision=qty_precision
        )
        lookup = price_precision is None and qty_precision is None
        return self._live_book(engine, lookup)

    def l3_book(
        self,
        symbol: str,
        depth: int = 10,
        *,
        token: str | None = None,
        price_precision: int | None = None,
        qty_precision: int | None = None,
    ) -> AbstractAsyncContextManager[LiveBook]:
        """``async with conn.l3_book(symbol, depth) as book``: a verified L3
        book (``level3`` channel: open the connection on ``"level3"``; the
        token is the connection's unless given). ``book.book.l3_bids``/
        ``l3_asks`` hold each level's orders in queue order; ``bids``/``asks``
        the aggregated L2 view. Precision: given here, else the numbers'
        text. ``ValueError`` at once for a depth other than 10, 100, 1000."""
        engine = L3BookEngine(
            symbol,
            depth,
            token=token,
            price_precision=price_precision,
            qty_precision=qty_precision,
        )
        return self._live_book(engine, False)

    @asynccontextmanager
    async def _live_book(
        self, engine: L2BookEngine | L3BookEngine, lookup: bool
    ) -> AsyncIterator[LiveBook]:
        self._shell.check_open()
        if lookup:
            pair = await self.instrument(engine.pair)
            if pair is not None:
                engine.set_precision(pair.price_precision, pair.qty_precision)
        notify = self._fanout.publish_nowait
        async with open_live_book(BookLink(self), engine, notify=notify) as live:
            yield live

    async def instrument(self, symbol: str) -> Pair | None:
        """``symbol``'s entry of the ``instrument`` channel (precisions,
        increments), or None if Kraken does not list it or sent no snapshot
        within ``reply_timeout``. Cached per connection from every
        ``instrument`` message; the first call subscribes to the channel,
        reads its snapshot and unsubscribes (unless you subscribed to it)."""
        protocol = self._protocol
        async with self._instrument_lock:
            if symbol in protocol.instruments or protocol.instrument_snapshot:
                return protocol.instruments.get(symbol)
            async with self.messages(channel="instrument") as stream:
                try:
                    await self.subscribe("instrument")
                except KrakenError:  # "Already subscribed": yours; its snapshot came
                    return protocol.instruments.get(symbol)
                try:
                    with anyio.move_on_after(self.options.reply_timeout):
                        async for _msg in stream:
                            if protocol.instrument_snapshot:
                                break
                finally:
                    with anyio.move_on_after(self.options.reply_timeout, shield=True):
                        try:
                            await self.unsubscribe("instrument")
                        except KrakyError as exc:
                            log.warning("instrument: unsubscribe failed: %s", exc)
            if not protocol.instrument_snapshot:
                log.warning("no instrument snapshot: %s rendered from its text only", symbol)
            return protocol.instruments.get(symbol)

    # -- requests ----------------------------------------------------------

    async def ping(
        self,
        req_id: int | None = None,
        *,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> Response:
        """Send ``ping`` and return Kraken's ``pong`` (its ``success`` is None).

        Waits for a socket if there is none. Raises :class:`ReplyLostError` if
        the socket is lost before the pong, :class:`ReplyTimeoutError` after
        ``reply_timeout`` seconds on the wire."""
        self._shell.check_open()
        req = self._protocol.ping(req_id)
        return _responses(await self._shell.request(req, task_status))[0]

    async def subscribe(
        self,
        channel: str,
        symbols: str | Iterable[str] | None = None,
        *,
        req_id: int | None = None,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
        **params: Any,
    ) -> list[Response]:
        """Subscribe and return Kraken's responses, one per symbol (one for a
        channel without symbols), in arrival order.

        ``params`` are Kraken's wire names (``depth``, ``interval``,
        ``event_trigger``, ``snapshot``, ``token``, ...); ``level3``,
        ``executions`` and ``balances`` get the connection's token unless
        given one (remembered for replays). Raises ``ValueError``/``TypeError``
        for a bad channel, symbol list or parameter, before anything is sent;
        :class:`KrakenError` (Kraken's ``error`` text, every response in
        ``replies``) if any symbol was rejected: the accepted ones stay live
        and are replayed after a reconnect; :class:`ReplyLostError` if the
        socket drops before every response (the unanswered symbols are not
        live); :class:`ReplyTimeoutError` after ``reply_timeout``. Waits for a
        socket if there is none; cancelled before it reached the wire, it is
        never sent.
        """
        self._shell.check_open()
        req = self._protocol.subscribe(
            channel,
            symbols,
            req_id=req_id,
            default_token=self._shell.tokens.default(),
            params=params,
        )
        return _responses(await self._shell.request(req, task_status))

    async def unsubscribe(
        self,
        channel: str,
        symbols: str | Iterable[str] | None = None,
        *,
        req_id: int | None = None,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
        **params: Any,
    ) -> list[Response]:
        """Unsubscribe (with the parameters of the subscribe, e.g. ``depth``);
        the entries leave the replay set at once.

        With no socket open, nothing is sent and ``[]`` is returned (unless a
        subscribe of the same entry is still queued: then the unsubscribe
        follows it on the next socket). If the socket drops before the
        responses, those received so far are returned. Raises like
        :meth:`subscribe` (e.g. :class:`KrakenError` for ``Subscription Not
        Found``)."""
        self._shell.check_open()
        connected = self._shell.ws is not None
        req = self._protocol.unsubscribe(
            channel,
            symbols,
            req_id=req_id,
            default_token=self._shell.tokens.default(),
            params=params,
            connected=connected,
            bound_generation=self.generation if connected else None,
        )
        return _responses(await self._shell.request(req, task_status))

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        req_id: int | None = None,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> Response:
        """The escape hatch: send any other method and return its response,
        matched by ``req_id``. ``subscribe``/``unsubscribe`` are refused
        (``ValueError``): use the methods, which keep the replay set. Raises
        :class:`KrakenError` for ``success: false``, else like :meth:`ping`.
        Never re-sent after a drop."""
        self._shell.check_open()
        req = self._protocol.raw(method, params, req_id)
        return _responses(await self._shell.request(req, task_status))[0]

    async def current_token(self) -> str:
        """The token for the current socket (see v1's ``current_token``)."""
        return await self._shell.tokens.for_socket(self.generation)


@asynccontextmanager
async def open_kraken(
    env_or_url: str = "production",
    *,
    options: ConnectionOptions | None = None,
    rate_limit: RateBudget | None = None,
    **kwargs: Any,
) -> AsyncIterator[KrakenV2Connection]:
    """Open a connection to Kraken's v2 WebSocket API for the ``async with`` block.

    ``env_or_url`` is ``"production"``, ``"production-auth"``, ``"beta"``,
    ``"beta-auth"``, ``"level3"`` (see :data:`ENVIRONMENTS`) or a
    ``ws://``/``wss://`` URL. The options and every guarantee are those of
    v1's :func:`kraky_anyio.open_kraken`: the fields of
    :class:`~kraky_anyio.options.ConnectionOptions` as keywords or one
    ``options=`` object, checked here (``TypeError``/``ValueError``) before
    anything starts; connecting in the background (``wait_connected``);
    reconnects with backoff, spaced while Kraken's ``status`` is not
    ``online``; live subscriptions replayed, paced; liveness judged on
    Kraken's frames, with a ``ping`` when idle.

    Leaving the block closes everything; an exception from the block comes
    out as itself. A library failure (the socket lost or never opened with
    ``reconnect=False``, or an internal error) cancels the block and comes out
    as :class:`~kraky_anyio.errors.ConnectionFailedError`.

    ``rate_limit``: a :class:`~kraky_anyio.v2.rate_budget.RateBudget` that
    every order request waits for (or is refused by) before it is sent, so
    Kraken's per-pair order rate counter is never crossed; off by default.
    One budget may be given to several connections of one account.
    """
    if rate_limit is not None and not isinstance(rate_limit, RateBudget):
        raise TypeError(f"rate_limit must be a RateBudget, not {type(rate_limit).__name__}")
    url = resolve_url(env_or_url, ENVIRONMENTS)
    if options is not None:
        if not isinstance(options, ConnectionOptions):
            raise TypeError("options must be a ConnectionOptions")
        if kwargs:
            raise TypeError("pass either options= or keyword options, not both")
    else:
        options = ConnectionOptions.from_kwargs(kwargs)
    async with KrakenV2Connection(url, options, rate_limit=rate_limit).run() as conn:
        yield conn
