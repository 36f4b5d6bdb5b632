"""A fake Kraken Spot WebSocket v1 exchange to test clients and bots against.

:func:`open_fake_kraken` runs an in-process server (asyncio or trio) with
fault injection; :class:`FakeKrakenSession` is its protocol logic without I/O.
"""

from .server import FakeKrakenConnection, FakeKrakenServer, open_fake_kraken
from .session import (
    DEFAULT_PAIRS,
    FakeKrakenSession,
    OrderHandler,
    OutgoingMessage,
    SnapshotProvider,
)

__all__ = [
    "DEFAULT_PAIRS",
    "FakeKrakenConnection",
    "FakeKrakenServer",
    "FakeKrakenSession",
    "OrderHandler",
    "OutgoingMessage",
    "SnapshotProvider",
    "open_fake_kraken",
]
