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
from .notices import (
    BookResync,
    Connected,
    Disconnected,
    Notice,
    SequenceGap,
    SubscriptionLost,
)
from .options import ConnectionOptions, check_url
from .stats import Stats
from .status import ConnectionStatus
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
    "ConnectionStatus",
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
    "SequenceGap",
    "Stats",
    "SubscriptionLost",
    "TransportError",
    "check_url",
    "open_kraken",
]

__version__ = "0.1.0"
