"""Kraken WebSocket v2 frames as typed, exact messages: one decoder, no I/O.

:func:`decode` turns one frame (``bytes`` or ``str``) straight into a
:class:`msgspec.Struct` whose attribute names are Kraken's wire names
(``msg.channel``, ``msg.type``, ``msg.data``; ``entry.symbol``, ``entry.bid``,
``level.price``, ``level.qty``, ...).

Numbers: every price, quantity and amount is a :class:`~decimal.Decimal` built
from the number's text, so ``0.50000000`` stays ``Decimal("0.50000000")`` and
``1e-08`` is ``Decimal("1E-8")`` (render with ``format(d, "f")``, never
``str(d)``; see :func:`kraky_anyio.book.checksums.number_text`). Never float.
msgspec also accepts a decimal *string* for a ``Decimal`` field (Kraken sends
numbers); counts, ids, precisions and checksums are ``int``. Loosely typed
parts (unknown channels, ``Response.result``) hold plain JSON values with
every non-integer number as ``Decimal``.

What :func:`decode` returns:

* a channel message: :class:`TickerMessage`, :class:`BookMessage`,
  :class:`Level3Message`, :class:`TradeMessage`, :class:`OHLCMessage`,
  :class:`InstrumentMessage`, :class:`StatusMessage`,
  :class:`HeartbeatMessage`, and the private
  :class:`~.private_messages.ExecutionsMessage` and
  :class:`~.private_messages.BalancesMessage` (:mod:`.private_messages`); a
  channel this module does not know arrives as a :class:`ChannelMessage` with
  the raw ``data``, so a new channel never breaks a user. Unknown fields are
  ignored everywhere.
* a :class:`Response` for every frame with a ``method`` (acks, errors, pong,
  trading replies): typed, so that ``resp.success``/``resp.error`` read the
  same for every method; ``result`` is left loose (its shape is per method).

Anything else (not JSON, not an object, a known channel with a missing or
mistyped field, neither ``channel`` nor ``method``) raises
:class:`MessageError`, a :class:`ValueError`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar, Union, get_args

import msgspec

from ..errors import KrakyError
from .private_messages import BalancesMessage, ExecutionsMessage

__all__ = [
    "Asset",
    "BalancesMessage",
    "BookEntry",
    "BookLevel",
    "BookMessage",
    "Candle",
    "ChannelMessage",
    "ExecutionsMessage",
    "HeartbeatMessage",
    "Instrument",
    "InstrumentMessage",
    "Level3Entry",
    "Level3Message",
    "Level3Order",
    "Message",
    "MessageError",
    "OHLCMessage",
    "Pair",
    "Response",
    "Status",
    "StatusMessage",
    "Ticker",
    "TickerMessage",
    "Trade",
    "TradeMessage",
    "decode",
]


class MessageError(KrakyError, ValueError):
    """A frame that is not a valid Kraken v2 message; the text says why and where."""


class _Entry(msgspec.Struct, gc=False):
    """Base of the data entries: no GC tracking (they hold no cycles)."""


# -- data entries -------------------------------------------------------------


class Ticker(_Entry, kw_only=True):
    """One ``ticker`` entry: best bid/ask and 24 h statistics of ``symbol``."""

    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    last: Decimal
    volume: Decimal
    vwap: Decimal
    low: Decimal
    high: Decimal
    change: Decimal
    change_pct: Decimal
    timestamp: str | None = None  # absent in older frames


class BookLevel(_Entry, kw_only=True):
    """One price level of an L2 ``book`` entry; ``qty`` 0 deletes the level."""

    price: Decimal
    qty: Decimal


class BookEntry(_Entry, kw_only=True):
    """One ``book`` entry: levels in wire order, and the checksum of the top 10."""

    symbol: str
    bids: list[BookLevel] = []
    asks: list[BookLevel] = []
    checksum: int
    timestamp: str | None = None


class Level3Order(_Entry, kw_only=True):
    """One order of a ``level3`` entry; ``event`` (``add``/``modify``/``delete``) in updates."""

    order_id: str
    limit_price: Decimal
    order_qty: Decimal
    timestamp: str | None = None
    event: str | None = None


class Level3Entry(_Entry, kw_only=True):
    """One ``level3`` entry: orders in wire order, and the checksum of the top 10 levels."""

    symbol: str
    bids: list[Level3Order] = []
    asks: list[Level3Order] = []
    checksum: int
    timestamp: str | None = None


class Trade(_Entry, kw_only=True):
    """One ``trade`` entry."""

    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    ord_type: str
    trade_id: int
    timestamp: str


class Candle(_Entry, kw_only=True):
    """One ``ohlc`` entry; ``interval`` in minutes."""

    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vwap: Decimal
    volume: Decimal
    trades: int
    interval_begin: str
    interval: int
    timestamp: str | None = None


class Asset(_Entry, kw_only=True):
    """One asset of the ``instrument`` channel."""

    id: str
    status: str
    precision: int
    precision_display: int
    borrowable: bool | None = None
    collateral_value: Decimal | None = None
    margin_rate: Decimal | None = None


class Pair(_Entry, kw_only=True):
    """One pair of the ``instrument`` channel: its precisions and increments.

    Numbers here often come in exponent form (``1e-08``): the text carries no
    precision, use ``price_precision``/``qty_precision``.
    """

    symbol: str
    base: str
    quote: str
    status: str
    price_precision: int
    qty_precision: int
    price_increment: Decimal
    qty_increment: Decimal
    qty_min: Decimal
    cost_min: Decimal | None = None
    cost_precision: int | None = None
    marginable: bool | None = None
    has_index: bool | None = None
    margin_initial: Decimal | None = None
    position_limit_long: int | None = None
    position_limit_short: int | None = None
    tick_size: Decimal | None = None


class Instrument(_Entry, kw_only=True):
    """The ``instrument`` channel's data: an object, not a list."""

    assets: list[Asset] = []
    pairs: list[Pair] = []


class Status(_Entry, kw_only=True):
    """The ``status`` entry; ``connection_id`` may be absent (maintenance) and exceed 2**63."""

    system: str
    api_version: str | None = None
    version: str | None = None
    connection_id: int | None = None


# -- channel messages ---------------------------------------------------------


class _Channel(msgspec.Struct, kw_only=True, tag_field="channel"):
    """Base of the channel messages; the tag ``channel`` is a class attribute."""

    channel: ClassVar[str]


_Data = TypeVar("_Data")


class _Typed(_Channel, Generic[_Data]):
    """A channel message with a ``type`` and its ``data``: the shape of every channel but one."""

    type: str
    data: _Data


class TickerMessage(_Typed[list[Ticker]], tag="ticker"):
    channel: ClassVar[str] = "ticker"


class BookMessage(_Typed[list[BookEntry]], tag="book"):
    channel: ClassVar[str] = "book"


class Level3Message(_Typed[list[Level3Entry]], tag="level3"):
    channel: ClassVar[str] = "level3"


class TradeMessage(_Typed[list[Trade]], tag="trade"):
    channel: ClassVar[str] = "trade"


class OHLCMessage(_Typed[list[Candle]], tag="ohlc"):
    channel: ClassVar[str] = "ohlc"


class InstrumentMessage(_Typed[Instrument], tag="instrument"):
    channel: ClassVar[str] = "instrument"


class StatusMessage(_Typed[list[Status]], tag="status"):
    channel: ClassVar[str] = "status"


class HeartbeatMessage(_Channel, tag="heartbeat"):
    channel: ClassVar[str] = "heartbeat"


class ChannelMessage(msgspec.Struct, kw_only=True):
    """A message of a channel this version does not know: ``data`` as decoded JSON."""

    channel: str
    type: str | None = None
    data: Any = None


class Response(msgspec.Struct, kw_only=True):
    """A reply to a request: ack, error, pong or trading reply.

    ``success`` is None for ``pong`` (Kraken sends none); ``result`` is the
    method's result as plain JSON (a dict, or a list for ``batch_add``);
    ``error`` is Kraken's error text when ``success`` is False; ``symbol``
    names the symbol an error is about (Kraken puts it at the top level; an
    ack carries it in ``result``). ``order_id``/``cl_ord_id``/``order_userref``
    name the order a ``cancel_order`` error is about; ``orders_cancelled`` is
    ``batch_cancel``'s count (top level in real frames).
    """

    method: str
    req_id: int | None = None
    success: bool | None = None
    result: Any = None
    error: str | None = None
    symbol: str | None = None
    order_id: str | None = None
    cl_ord_id: str | None = None
    order_userref: int | None = None
    orders_cancelled: int | None = None
    warnings: list[str] | None = None
    time_in: str | None = None
    time_out: str | None = None


_Known = Union[  # noqa: UP007 -- a runtime value for msgspec, on Python 3.10 too
    TickerMessage,
    BookMessage,
    Level3Message,
    TradeMessage,
    OHLCMessage,
    InstrumentMessage,
    StatusMessage,
    HeartbeatMessage,
    ExecutionsMessage,
    BalancesMessage,
]

#: Every message :func:`decode` can return.
Message = Union[_Known, ChannelMessage, Response]  # noqa: UP007

#: The channels with a typed message.
KNOWN_CHANNELS: frozenset[str] = frozenset(t.channel for t in get_args(_Known))

# Built once: a Decoder keeps its compiled type information.
_typed = msgspec.json.Decoder(_Known, float_hook=Decimal)
_loose = msgspec.json.Decoder(float_hook=Decimal)
_response = msgspec.json.Decoder(Response, float_hook=Decimal)


def decode(raw: bytes | str) -> Message:
    """Decode one v2 frame into its typed message; see the module text.

    The common case (a known channel) is one pass of msgspec. Raises
    :class:`MessageError` for a malformed frame; never returns None.
    """
    try:
        return _typed.decode(raw)
    except msgspec.ValidationError as exc:
        first: Exception = exc
    except msgspec.DecodeError as exc:
        raise MessageError(f"not a JSON frame: {exc}") from None
    except RecursionError:
        raise MessageError("a frame nested too deeply") from None
    # Not a known channel message: a reply, an unknown channel, or malformed.
    try:
        frame = _loose.decode(raw)
    except msgspec.DecodeError as exc:  # pragma: no cover -- _typed parsed it
        raise MessageError(f"not a JSON frame: {exc}") from None
    except RecursionError:
        raise MessageError("a frame nested too deeply") from None
    if type(frame) is not dict:
        raise MessageError(f"a frame must be a JSON object, got {type(frame).__name__}")
    channel = frame.get("channel")
    if channel is not None:
        if type(channel) is not str:
            raise MessageError(f"'channel' must be a string, got {channel!r:.80}")
        if channel in KNOWN_CHANNELS:
            raise MessageError(f"malformed {channel!r} message: {first}")
        kind = frame.get("type")
        if kind is not None and type(kind) is not str:
            raise MessageError(f"'type' must be a string, got {kind!r:.80}")
        return ChannelMessage(channel=channel, type=kind, data=frame.get("data"))
    if "method" in frame:
        try:
            return _response.decode(raw)
        except msgspec.ValidationError as exc:
            raise MessageError(f"malformed response: {exc}") from None
    raise MessageError("a frame must have a 'channel' or a 'method'")
