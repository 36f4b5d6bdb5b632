"""The shell's frame tap: what the shell tells an observer of its sockets.

The shell (:class:`~kraky_anyio.shell.Shell`) holds one optional ``tap``
(a :class:`FrameTap`) and calls it from its tasks: the reader after each
socket read (``received``), whoever wrote a frame after the write succeeded
(``sent``: the writer, the replay, the watchdog's pings), the supervisor
when a socket opens and after it closed. ``now`` is ``anyio.current_time()``.
Every method is synchronous and never blocks (it queues); ``received``
returns True when the observer wants the reader to wait for room
(``await tap.wait_room()``) before it reads on: backpressure.

:class:`TapSet` lets several recorders watch one connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["FrameTap", "TapSet"]


class FrameTap(Protocol):
    """What the shell calls (see the module docstring)."""

    def received(self, gen: int, frames: Sequence[str | bytes], now: float) -> bool: ...

    def sent(self, gen: int, text: str, now: float) -> None: ...

    def opened(self, gen: int, now: float) -> None: ...

    def closed(self, gen: int, reason: str, now: float) -> None: ...

    async def wait_room(self) -> None: ...


class TapSet:
    """Several taps as one, in the order they were added."""

    def __init__(self) -> None:
        self._taps: list[FrameTap] = []

    def __bool__(self) -> bool:
        return bool(self._taps)

    def add(self, tap: FrameTap) -> None:
        self._taps.append(tap)

    def remove(self, tap: FrameTap) -> None:
        self._taps.remove(tap)

    def received(self, gen: int, frames: Sequence[str | bytes], now: float) -> bool:
        wait = False
        for tap in self._taps:
            wait = tap.received(gen, frames, now) or wait
        return wait

    def sent(self, gen: int, text: str, now: float) -> None:
        for tap in self._taps:
            tap.sent(gen, text, now)

    def opened(self, gen: int, now: float) -> None:
        for tap in self._taps:
            tap.opened(gen, now)

    def closed(self, gen: int, reason: str, now: float) -> None:
        for tap in self._taps:
            tap.closed(gen, reason, now)

    async def wait_room(self) -> None:
        """Wait until every tap has room (each returns at once if it has)."""
        for tap in list(self._taps):
            await tap.wait_room()
