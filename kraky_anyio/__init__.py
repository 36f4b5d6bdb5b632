"""kraky_anyio: a Kraken Spot WebSocket (v1) client for trio and asyncio.

``async with open_kraken(...) as conn`` is the entry point; see its docstring.
"""

from .auth import KrakenTokenProvider
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
    RateLimitError,
    ReplyLostError,
    ReplyTimeoutError,
    TransportError,
)
from .fanout import MessageBatches, MessageStream, Overflow
from .live_book import LiveBook, ResyncPolicy
from .notices import (
    BookResync,
    Connected,
    Disconnected,
    Notice,
    SequenceGap,
    SubscriptionLost,
)
from .options import ConnectionOptions, TokenProvider, check_url
from .stats import Stats
from .status import ConnectionState, ConnectionStatus
from .v1.codec import ENVIRONMENTS

__all__ = [
    "ENVIRONMENTS",
    "AuthError",
    "BookError",
    "BookResync",
    "ChecksumMismatchError",
    "Connected",
    "ConnectionClosedError",
    "ConnectionFailedError",
    "ConnectionOptions",
    "ConnectionState",
    "ConnectionStatus",
    "ConsumerOverflowError",
    "Disconnected",
    "HandshakeError",
    "KrakenConnection",
    "KrakenError",
    "KrakenTokenProvider",
    "KrakyError",
    "LiveBook",
    "MessageBatches",
    "MessageStream",
    "MessageTooBigError",
    "Notice",
    "OrderOutcomeUnknownError",
    "Overflow",
    "RateLimitError",
    "ReconnectPolicy",
    "ReplyLostError",
    "ReplyTimeoutError",
    "ResyncPolicy",
    "SequenceGap",
    "Stats",
    "SubscriptionLost",
    "TokenProvider",
    "TransportError",
    "check_url",
    "open_kraken",
]

__version__ = "0.1.0"
