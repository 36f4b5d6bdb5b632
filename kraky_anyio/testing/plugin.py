"""pytest plugin (registered as an entry point): fixtures for testing bots
against the built-in fake exchange. Imports nothing heavy until used.

The fixtures are async and run under anyio's pytest plugin, on whatever
backend the ``anyio_backend`` fixture gives (trio's ``MockClock`` and other
virtual clocks included)::

    @pytest.mark.anyio
    async def test_my_bot(kraken_client, kraken_exchange, kraken_market):
        async with kraken_client.book("XBT/USD") as book:
            await book.wait_valid()
            kraken_market.corrupt_next_checksum("XBT/USD")  # the bot must cope
            await kraken_exchange.drop()  # and with this

* ``kraken_market``: the :class:`~kraky_anyio.testing.market.MarketSimulator`
  (seed 0, XBT/USD and ETH/USD). Override it to change seed or pairs.
* ``kraken_market_interval``: seconds between market steps (0.1); override it
  too.
* ``kraken_exchange``: a running
  :class:`~kraky_anyio.testing.server.FakeKrakenServer` fed by that market;
  it accepts only the simulated pairs.
* ``kraken_client``: an ``open_kraken`` connection to it, already connected.
* ``kraken_replay``: a factory, ``async with kraken_replay(path, speed=...)
  as server``: a running fake exchange serving that recording (see
  :mod:`kraky_anyio.testing.replay`).

looptime's pytest plugin (installed with looptime, which the ``test`` extra
brings) patches pytest-asyncio's event loops and fails every test's setup
when pytest-asyncio is not installed (``AttributeError: 'NoneType' object has
no attribute '__name__'``). Without pytest-asyncio it has nothing to do, so
this plugin unregisters it then: plain ``pytest`` works. looptime's loop
itself (``looptime.make_event_loop_class``) is unaffected.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..connection import KrakenConnection
    from .market import MarketSimulator
    from .replay_formats import Recording
    from .server import FakeKrakenServer

#: ``kraken_replay(path, *, speed=1.0, loop=False, **options)``.
ReplayFactory = Callable[..., AbstractAsyncContextManager["FakeKrakenServer"]]

#: How long ``kraken_client`` waits for its first connection.
CONNECT_TIMEOUT = 10.0
#: The name looptime's pytest plugin is registered under (its entry point).
LOOPTIME_PLUGIN = "looptime_plugin"


def pytest_configure(config: pytest.Config) -> None:
    """Unregister looptime's plugin where it could only fail (see above)."""
    manager = config.pluginmanager
    looptime = manager.get_plugin(LOOPTIME_PLUGIN)
    if looptime is not None and not manager.has_plugin("asyncio"):
        manager.unregister(looptime)


@pytest.fixture
def kraken_market() -> MarketSimulator:
    """The simulated market behind ``kraken_exchange``."""
    from .market import MarketSimulator

    return MarketSimulator()


@pytest.fixture
def kraken_market_interval() -> float:
    """Seconds (of the event loop's clock) between two market steps."""
    return 0.1


@pytest.fixture
async def kraken_exchange(
    kraken_market: MarketSimulator, kraken_market_interval: float, anyio_backend: Any
) -> AsyncIterator[FakeKrakenServer]:
    """A fake Kraken exchange with ``kraken_market`` running on it, v1 on
    ``url`` and v2 on ``v2_url``."""
    import functools

    import anyio

    from .market import run_market
    from .server import open_fake_kraken

    async with (
        open_fake_kraken(
            pairs=kraken_market.pairs,
            snapshot_provider=kraken_market.snapshot,
            v2_snapshot_provider=kraken_market.v2_snapshot,
        ) as server,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(
            functools.partial(run_market, server, kraken_market, interval=kraken_market_interval)
        )
        yield server
        tg.cancel_scope.cancel()


@pytest.fixture
async def kraken_client(
    kraken_exchange: FakeKrakenServer, anyio_backend: Any
) -> AsyncIterator[KrakenConnection]:
    """``open_kraken`` connected to ``kraken_exchange``."""
    import anyio

    from ..connection import open_kraken

    async with open_kraken(kraken_exchange.url) as conn:
        with anyio.fail_after(CONNECT_TIMEOUT):
            await conn.wait_connected()
        yield conn


@pytest.fixture
def kraken_replay() -> ReplayFactory:
    """A factory: ``async with kraken_replay(path_or_recording, speed=1.0,
    loop=False, **options) as server`` runs a fake exchange serving that
    recording (v1 on ``server.url`` or v2 on ``server.v2_url``, as recorded)
    for the block, on the test's backend and clock. ``options`` are
    ``open_fake_kraken``'s; a bad file raises on entering the block."""
    from .server import open_fake_kraken

    def replay(
        source: Recording | str | os.PathLike[str],
        *,
        speed: float | str = 1.0,
        loop: bool = False,
        **options: Any,
    ) -> AbstractAsyncContextManager[FakeKrakenServer]:
        return open_fake_kraken(replay=source, speed=speed, loop=loop, **options)

    return replay
