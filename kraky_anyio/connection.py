"""``open_kraken`` and the connection: the task group and its tasks.

Task ownership, all inside the task group that ``open_kraken`` opens (the
tasks live in :mod:`kraky_anyio.shell`)::

    open_kraken (task group)
    ├── supervisor   opens sockets, waits out backoff, writes the replay
    │   └── per-socket task group (cancelled to hand a failed socket back)
    │       ├── reader    socket -> protocol.receive_frames() -> fan-out
    │       ├── retry     (v2) a rate-limited replay's retries, queued for
    │       │             the writer after their delay (none while idle)
    │       └── watchdog  liveness: ping when idle (the deadline covers the
    │                     send), drop the socket when dead
    └── writer       the only task that sends requests, from the send channel:
                     asks protocol.next_to_send() what to do on this socket

    conn.book() (the caller's ``async with``)
    └── live_book task group: the book's feed task, its resubscribe task

Leaving the ``async with`` block (normally, by exception or by cancellation)
cancels this group, closes the socket with a bounded close handshake, wakes
every caller still waiting with ``KrakyError("the connection is closed ...")``
and ends every consumer's iteration; no task outlives the block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskStatus

from .facade import ConnectionBase
from .fanout import MessageStream, Overflow, make_filter
from .live_book import LiveBook, ResyncPolicy, open_book
from .options import ConnectionOptions, resolve_url
from .orders import OrderMethods
from .v1.protocol import KrakenProtocol


class KrakenConnection(ConnectionBase[KrakenProtocol], OrderMethods):
    """One logical connection to Kraken, kept alive across sockets.

    Create it with :func:`open_kraken`. Its methods may be called from any task
    while the ``async with`` block is open.

    **Written, not yet answered**: :meth:`ping`, :meth:`subscribe`,
    :meth:`unsubscribe`, :meth:`request` and :meth:`request_raw` take anyio's
    ``task_status``, so ``await tg.start(functools.partial(conn.subscribe,
    sub, pairs))`` returns once the frame was handed to the socket (not when
    the reply comes; at once if there was nothing to write), and the call goes
    on in ``tg`` to its reply, raising there as usual. Before the write it
    waits for a socket like any call (across reconnects); cancelled then, the
    frame is never sent; an error before the write comes out of
    ``tg.start``. A written request whose call is cancelled is still tracked:
    its reply is matched (late ones counted) and updates the state.
    """

    api = "v1"

    def __init__(self, url: str, options: ConnectionOptions | None = None) -> None:
        super().__init__(url, options, KrakenProtocol())

    # -- public state (the rest is ConnectionBase's) -------------------------

    @property
    def system_status(self) -> str | None:
        """The last ``systemStatus`` status Kraken sent, or None."""
        return self._protocol.system_status

    def live_subscriptions(self) -> list[tuple[dict[str, Any], str | None]]:
        """``(subscription, pair)`` for every live entry: what a reconnect replays."""
        return [(dict(e.subscription), e.pair) for e in self._protocol.subscriptions.live()]

    # -- consumers ---------------------------------------------------------

    def messages(
        self,
        *,
        channel: str | Iterable[str] | None = None,
        pair: str | Iterable[str] | None = None,
        buffer_size: int | None = None,
        overflow: Overflow | str | None = None,
    ) -> MessageStream:
        """A new consumer of every message from now on, in order.

        Yields ``dict`` events, ``list`` channel data and
        :class:`~kraky_anyio.notices.Notice` objects (``Connected``,
        ``Disconnected``, ...). With ``channel`` and/or ``pair`` only matching
        channel data (and notices) are kept. ``buffer_size`` and ``overflow``
        override the connection's defaults for this consumer (see
        :mod:`kraky_anyio.fanout`). Iteration ends when the connection closes.
        """
        return self._fanout.open(make_filter(channel, pair), buffer_size, overflow)

    def book(
        self, pair: str, depth: int = 10, *, policy: ResyncPolicy | None = None
    ) -> AbstractAsyncContextManager[LiveBook]:
        """``async with conn.book(pair, depth) as book``: a checksum-verified
        local book of ``pair``, subscribed on entry and unsubscribed on exit
        (see :mod:`kraky_anyio.live_book`). Entering waits for the subscribe
        reply and raises like :meth:`subscribe`; ``ValueError`` for a depth
        other than 10, 25, 100, 500, 1000. ``policy`` paces repeated resyncs
        (default :class:`ResyncPolicy`)."""
        return open_book(self, pair, depth, notify=self._fanout.publish_nowait, policy=policy)

    # -- requests ----------------------------------------------------------

    async def ping(
        self,
        reqid: int | None = None,
        *,
        send_reqid: bool = True,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> dict[str, Any]:
        """Send a ``ping`` event and return Kraken's ``pong``.

        Waits for a socket if there is none. Raises :class:`ReplyLostError` if
        the socket is lost before the pong, :class:`ReplyTimeoutError` after
        ``reply_timeout`` seconds on the wire. ``send_reqid=False`` sends it
        without a reqid, as kraky did (``reqid`` must then be None): the pongs
        without one answer such pings in the order sent. ``task_status``:
        see the class docstring.
        """
        self._shell.check_open()
        req = self._protocol.ping(reqid, send_reqid=send_reqid)
        return (await self._shell.request(req, task_status))[0]

    async def subscribe(
        self,
        subscription: Mapping[str, Any],
        pair: str | Iterable[str] | None = None,
        reqid: int | None = None,
        *,
        send_reqid: bool = True,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> list[dict[str, Any]]:
        """Subscribe and return the ``subscriptionStatus`` replies, one per pair.

        ``pair`` is a list of pairs (a bare string means one pair); private
        channels take none and get the connection's token (or the one in the
        subscription dict, remembered for replays). Raises
        :class:`KrakenError` (with every reply) if any pair was rejected: the
        accepted pairs stay live. Raises :class:`ReplyLostError` if the socket
        drops before all replies (those pairs are not live and not replayed),
        :class:`ReplyTimeoutError` after ``reply_timeout``; ``ValueError`` or
        ``TypeError`` for bad arguments, before anything is sent. Waits for a
        socket if there is none; if cancelled before the request reached the
        wire, it is never sent.

        ``send_reqid=False`` sends the frame without a reqid, as kraky did
        (``reqid`` must then be None): its replies are matched by channel and
        pair, in the order sent. A public channel needs ``pair`` (Kraken v1
        has no all-pairs subscribe). ``task_status``: see the class docstring.
        """
        self._shell.check_open()
        req = self._protocol.subscribe(
            subscription,
            pair,
            reqid,
            default_token=self._shell.tokens.default(),
            send_reqid=send_reqid,
        )
        return await self._shell.request(req, task_status)

    async def unsubscribe(
        self,
        subscription: Mapping[str, Any],
        pair: str | Iterable[str] | None = None,
        reqid: int | None = None,
        *,
        send_reqid: bool = True,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> list[dict[str, Any]]:
        """Unsubscribe; the entries leave the replay set at once.

        With no socket open, nothing is sent and ``[]`` is returned (unless a
        subscribe of the same entry is still queued: then the unsubscribe
        waits for the next socket and goes out after it). If the
        socket drops before the replies, the replies received so far are
        returned (the next socket will not have the subscription). Raises
        :class:`KrakenError` if Kraken rejects it (e.g. ``Subscription Not
        Found``). ``send_reqid``, ``task_status``: as for :meth:`subscribe`.
        """
        self._shell.check_open()
        connected = self._shell.ws is not None
        req = self._protocol.unsubscribe(
            subscription,
            pair,
            reqid,
            default_token=self._shell.tokens.default(),
            connected=connected,
            bound_generation=self.generation if connected else None,
            send_reqid=send_reqid,
        )
        return await self._shell.request(req, task_status)

    async def request(
        self,
        message: Mapping[str, Any],
        expected_replies: int = 1,
        reqid: int | None = None,
        *,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> list[dict[str, Any]]:
        """Send an order event (``addOrder``, ``cancelOrder``, ...) as given and
        return its replies; used by the trading methods. An order is never
        re-sent: if the socket drops after it was written and before its reply,
        :class:`OrderOutcomeUnknownError` is raised; one that never reached a
        socket raises a plain ``ConnectionClosedError`` saying so (safe to retry).
        ``task_status``: see the class docstring."""
        self._shell.check_open()
        req = self._protocol.order(message, expected_replies, reqid)
        return await self._shell.request(req, task_status)

    async def request_raw(
        self,
        message: Mapping[str, Any],
        *,
        task_status: TaskStatus[None] = TASK_STATUS_IGNORED,
    ) -> list[dict[str, Any]]:
        """The escape hatch: send any v1 event (a ``reqid`` is added unless
        given) and return its reply, matched by reqid. ``subscribe`` and
        ``unsubscribe`` are refused (``ValueError``): use the methods, which
        keep the replay set. Raises like :meth:`ping`; ``task_status``: see
        the class docstring."""
        self._shell.check_open()
        return await self._shell.request(self._protocol.raw(message), task_status)

    def _connection_token(self) -> str:
        """The fixed token, or a placeholder the writer replaces with the token
        of the socket the request goes out on. ``ValueError`` without a token."""
        token = self._shell.tokens.default()
        if token is None:
            raise ValueError("this call needs a token: pass token= to open_kraken or the call")
        return token

    async def current_token(self) -> str:
        """The token for the current socket: the fixed string, or one fetched
        from the provider once per socket. Raises ``ValueError`` without a
        token, :class:`AuthError` if the provider fails, hangs past
        ``connect_timeout`` or returns no str (a provider's own ``KrakyError``
        comes out as itself)."""
        return await self._shell.tokens.for_socket(self.generation)


@asynccontextmanager
async def open_kraken(
    connection_env: str = "production",
    *,
    options: ConnectionOptions | None = None,
    **kwargs: Any,
) -> AsyncIterator[KrakenConnection]:
    """Open a connection to Kraken's v1 WebSocket API for the ``async with`` block.

    ``connection_env`` is ``"production"``, ``"production-auth"``, ``"beta"``,
    ``"beta-auth"`` or a ``ws://``/``wss://`` URL. The options are the fields of
    :class:`~kraky_anyio.options.ConnectionOptions` (``token``,
    ``ssl_context``, ``reconnect``, ``reconnect_policy``, ``reply_timeout``,
    ``idle_timeout``, ``ping_timeout``, ``connect_timeout``, ``close_timeout``,
    ``buffer_size``, ``overflow``, ``max_message_size``, ``send_buffer``,
    ``rng``, ``record``), as keywords or as one ``options=`` object. A bad URL
    or option raises ``TypeError``/``ValueError`` here, before anything starts.
    ``record="s.jsonl.gz"`` records the whole connection (see
    :meth:`~kraky_anyio.facade.ConnectionBase.record`).

    Entering does not wait for the server: connecting goes on in the
    background (use :meth:`KrakenConnection.wait_connected`). Sockets are
    re-opened with backoff after any loss (unless ``reconnect=False``) and
    live subscriptions replayed. ``token`` is a string or, better, an async
    callable returning a fresh token: it is called once per new socket that
    needs one (Kraken wants a token used within 15 minutes of its creation).

    Leaving the block closes everything; an exception from the block comes out
    as itself. A library failure (the socket lost or never opened with
    ``reconnect=False``, or an internal error) cancels the block and comes out
    as :class:`ConnectionFailedError`.
    """
    url = resolve_url(connection_env)
    if options is not None:
        if not isinstance(options, ConnectionOptions):
            raise TypeError("options must be a ConnectionOptions")
        if kwargs:
            raise TypeError("pass either options= or keyword options, not both")
    else:
        options = ConnectionOptions.from_kwargs(kwargs)
    async with KrakenConnection(url, options).run() as conn:
        yield conn
