"""The exception tree.

Everything the library raises on purpose derives from :class:`KrakyError`.
Messages never contain a token, API key or secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class KrakyError(Exception):
    """Base class of every exception raised by kraky_anyio."""


class KrakenError(KrakyError):
    """Kraken answered a request with ``status: "error"``.

    ``error_message`` is Kraken's ``errorMessage`` (of the first failed reply);
    ``replies`` holds every reply the request received, in arrival order, so a
    partly accepted multi-pair subscribe or a multi-txid cancel can be inspected.
    """

    def __init__(self, error_message: str, replies: Sequence[Any] = ()) -> None:
        super().__init__(error_message)
        self.error_message = error_message
        self.replies: list[Any] = list(replies)  # v1: dicts; v2: typed responses


class ReplyLostError(KrakyError):
    """The request was written, but the socket was lost before its reply came.

    The request is never replayed or re-sent. ``replies`` holds the replies
    that did arrive: for a multi-pair subscribe, the pairs accepted before the
    drop stay live (and are replayed); the others are not.
    """

    def __init__(self, message: str, replies: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.replies: list[Any] = list(replies)  # v1: dicts; v2: typed responses


class OrderOutcomeUnknownError(ReplyLostError):
    """An order request was written but its reply was lost to a disconnect.

    Kraken may or may not have executed it: check ``openOrders``/``ownTrades``
    (v2: ``executions``) or the REST API. The library never re-sends it.
    ``cl_ord_ids``: the client order ids the request named (v2), to find its
    orders by; ``cl_ord_id``: that id when there is exactly one, else None.
    """

    def __init__(
        self, message: str, replies: Sequence[Any] = (), *, cl_ord_ids: Sequence[str] = ()
    ) -> None:
        super().__init__(message, replies)
        self.cl_ord_ids: list[str] = list(cl_ord_ids)

    @property
    def cl_ord_id(self) -> str | None:
        return self.cl_ord_ids[0] if len(self.cl_ord_ids) == 1 else None


class RateLimitError(KrakyError):
    """The client's order rate budget (``rate_limit=RateBudget(policy="raise")``)
    refused an order request: sending it now would take ``pair``'s counter
    over the ceiling. Nothing was sent. ``needed`` is the request's cost on
    ``pair``, ``level`` the counter now, ``ceiling`` Kraken's limit and
    ``wait`` the seconds until it fits (``math.inf``: it never will; split it).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        pair: str = "",
        needed: int = 0,
        level: float = 0.0,
        ceiling: int = 0,
        wait: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.pair = pair
        self.needed = needed
        self.level = level
        self.ceiling = ceiling
        self.wait = wait


class ReplyTimeoutError(KrakyError, TimeoutError):
    """No reply within ``reply_timeout`` seconds after the request was written."""


class ConsumerOverflowError(KrakyError):
    """A message consumer under the ``"fail"`` overflow policy fell too far behind.

    Raised from the consumer's iteration once the messages buffered before the
    overflow have been delivered; ``dropped`` counts the messages of the
    overflowing batch that did not fit.
    """

    def __init__(self, message: str, dropped: int = 0) -> None:
        super().__init__(message)
        self.dropped = dropped


class TransportError(KrakyError):
    """A WebSocket-level failure (connect, handshake, I/O)."""


class HandshakeError(TransportError):
    """The WebSocket opening handshake failed."""


class ConnectionClosedError(TransportError):
    """The WebSocket is closed; ``code`` and ``reason`` are the close frame's, if any.

    Raised by a send, ``written`` says whether any byte of it may have left
    (False only when the send never reached the socket: closed before it, or
    its deadline passed while it waited for the send lock).
    """

    def __init__(
        self, message: str, code: int | None = None, reason: str = "", *, written: bool = True
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.written = written


class MessageTooBigError(ConnectionClosedError):
    """A frame over ``max_message_size`` arrived; the socket was closed with 1009."""


class ConnectionFailedError(KrakyError):
    """``open_kraken`` gave up: the socket was lost or could not be opened
    while reconnecting is off, or an internal task failed (a bug: the original
    exception is chained as ``__cause__``). Raised from the ``async with``
    block. A failing token provider is not fatal: see ``open_kraken``."""


class BookError(KrakyError, ValueError):
    """A book message that cannot be applied (malformed, or before a snapshot)."""


class ChecksumMismatchError(BookError):
    """A book update's checksum did not match the local book."""


class AuthError(KrakyError):
    """Fetching a WebSockets token failed (network, HTTP status or Kraken error)."""
