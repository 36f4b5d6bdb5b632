"""What a fake Kraken server lets a test observe, and waiting for it.

:class:`ServerObservation` is the part of
:class:`~kraky_anyio.testing.server.FakeKrakenServer` that keeps the live
connections and every frame received, and the ``wait_for*`` helpers built on
them. The server calls ``_notify()`` on every change (a
TCP accept, a connection opening or ending, frames arriving); each waiter
re-checks its condition then, so nothing sleeps to synchronise.

The ``wait_for*`` methods block until their condition holds (at once if it
already does); they have no timeout: wrap them in ``anyio.fail_after``.
Cancelling a wait loses nothing. Nothing else here blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from .connection import FakeKrakenConnection

__all__ = ["ServerObservation"]


class ServerObservation:
    """The live connections and received frames of a fake server, and the
    ``wait_for*`` helpers; a base of
    :class:`~kraky_anyio.testing.server.FakeKrakenServer`."""

    def __init__(self) -> None:
        self._connections: list[FakeKrakenConnection] = []
        self._received: list[Any] = []
        self._changed = anyio.Event()

    @property
    def sessions(self) -> list[FakeKrakenConnection]:
        """The live connections, oldest first (a copy)."""
        return list(self._connections)

    def all_received(self) -> list[Any]:
        """Every client frame that decoded as JSON, on any connection, in
        arrival order (a copy)."""
        return list(self._received)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Block until ``predicate()`` is true. It is re-checked whenever a
        connection opens or ends, a TCP connection is accepted, or frames
        arrive."""
        while True:
            changed = self._changed
            if predicate():
                return
            await changed.wait()

    async def wait_for_connections(self, n: int = 1) -> list[FakeKrakenConnection]:
        """Block until at least ``n`` connections are open at once; returns them."""
        await self.wait_for(lambda: len(self._connections) >= n)
        return self.sessions

    async def wait_for_subscription(
        self, channel_name: str, pair: str | None, *, api: str = "v1"
    ) -> FakeKrakenConnection:
        """Block until a live ``api`` (``"v1"`` or ``"v2"``) connection is
        subscribed to ``(channel_name, pair)`` (v1: ``("book-10", "XBT/USD")``,
        ``pair=None`` for private channels; v2: ``("book", "BTC/USD")``,
        ``None`` for channels without symbols); returns the first one. Its
        reply is queued before anything published later."""
        key = (channel_name, pair)

        def find() -> FakeKrakenConnection | None:
            return next(
                (
                    c
                    for c in self._connections
                    if c.session.api == api and key in c.session.subscriptions
                ),
                None,
            )

        await self.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found

    async def wait_for_received(self, predicate: Callable[[Any], bool], *, count: int = 1) -> Any:
        """Block until ``count`` frames in :meth:`all_received` (past ones
        included) satisfy ``predicate``; returns the ``count``-th of them.
        ``predicate`` sees every decoded frame, not only JSON objects."""
        matches: list[Any] = []
        scanned = 0

        def enough() -> bool:
            nonlocal scanned
            matches.extend(frame for frame in self._received[scanned:] if predicate(frame))
            scanned = len(self._received)
            return len(matches) >= count

        await self.wait_for(enough)
        return matches[count - 1]
