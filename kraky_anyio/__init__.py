"""kraky_anyio: a Kraken Spot WebSocket (v1) client for trio and asyncio.

``async with open_kraken(...) as conn`` is the entry point; see its docstring.
"""

from .backoff import ReconnectPolicy
from .connection import KrakenConnection, open_kraken
from .errors import (
    AuthError,
    BookError,
    ChecksumMismatchError,
    ConnectionClosedError,
    ConnectionFailedError,
    ConsumerOverflowError,
    HandshakeError,
    KrakenError,
    KrakyError,
    MessageTooBigError,
    OrderOutcomeUnknownError,
    ReplyLostError,
    ReplyTimeoutError,
    TransportError,
)
from .fanout import MessageStream, Overflow
from .notices import BookResync, Connected, Disconnected, Notice, SubscriptionLost
from .protocol import ENVIRONMENTS, Stats

__all__ = [
    "ENVIRONMENTS",
    "AuthError",
    "BookError",
    "BookResync",
    "ChecksumMismatchError",
    "Connected",
    "ConnectionClosedError",
    "ConnectionFailedError",
    "ConsumerOverflowError",
    "Disconnected",
    "HandshakeError",
    "KrakenConnection",
    "KrakenError",
    "KrakyError",
    "MessageStream",
    "MessageTooBigError",
    "Notice",
    "OrderOutcomeUnknownError",
    "Overflow",
    "ReconnectPolicy",
    "ReplyLostError",
    "ReplyTimeoutError",
    "Stats",
    "SubscriptionLost",
    "TransportError",
    "open_kraken",
]

__version__ = "0.1.0"
