"""A fake Kraken Spot WebSocket exchange (v1, and v2 on ``/v2``) to test clients and bots against.

* :func:`open_fake_kraken` runs an in-process server (asyncio or trio) with
  fault injection; :class:`FakeKrakenSession` is its protocol logic without I/O.
* :class:`MarketSimulator` is a deterministic, checksum-consistent market to
  feed it, in v1 and v2 (:func:`run_market` publishes its steps).
* :class:`FakeMatchingEngine` answers orders and feeds the private channels.
* ``open_fake_kraken(replay=PATH)`` serves a recorded session
  (:mod:`kraky_anyio.testing.replay`; :func:`read_recording` reads ours,
  cryptofeed's and plain frame lists).
* The pytest fixtures ``kraken_market``, ``kraken_market_interval``,
  ``kraken_exchange``, ``kraken_client`` and ``kraken_replay`` come with the installed pytest
  plugin (:mod:`kraky_anyio.testing.plugin`); they are importable from here
  too, for a ``conftest.py`` when plugin autoloading is off.

The simulator, the engine and the fixtures are imported on first use: the
pytest plugin, loaded by every pytest run, stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .server import FakeKrakenConnection, FakeKrakenServer, open_fake_kraken
from .session import (
    DEFAULT_PAIRS,
    FakeKrakenSession,
    OrderHandler,
    OutgoingMessage,
    SnapshotProvider,
)

if TYPE_CHECKING:
    from .engine import FakeMatchingEngine
    from .market import MarketSimulator, Publication, Step, V2Publication, run_market
    from .plugin import (
        kraken_client,
        kraken_exchange,
        kraken_market,
        kraken_market_interval,
        kraken_replay,
    )
    from .replay_formats import Recording, RecordingFormatError, read_recording

__all__ = [
    "DEFAULT_PAIRS",
    "FakeKrakenConnection",
    "FakeKrakenServer",
    "FakeKrakenSession",
    "FakeMatchingEngine",
    "MarketSimulator",
    "OrderHandler",
    "OutgoingMessage",
    "Publication",
    "Recording",
    "RecordingFormatError",
    "SnapshotProvider",
    "Step",
    "V2Publication",
    "kraken_client",
    "kraken_exchange",
    "kraken_market",
    "kraken_market_interval",
    "kraken_replay",
    "open_fake_kraken",
    "read_recording",
    "run_market",
]

# name -> the module (under this package) that defines it
_LAZY = {
    "FakeMatchingEngine": "engine",
    "MarketSimulator": "market",
    "Publication": "market",
    "Step": "market",
    "V2Publication": "market",
    "run_market": "market",
    "kraken_client": "plugin",
    "kraken_exchange": "plugin",
    "kraken_market": "plugin",
    "kraken_market_interval": "plugin",
    "kraken_replay": "plugin",
    "Recording": "replay_formats",
    "RecordingFormatError": "replay_formats",
    "read_recording": "replay_formats",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
