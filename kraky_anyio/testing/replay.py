"""Replaying a recorded session through the fake exchange.

``open_fake_kraken(replay=PATH_or_Recording, speed=1.0, loop=False)`` serves
a recording: a client connects (v1 on ``/``, v2 on ``/v2``, the recording's
API; the other path is the live fake, with no data), subscribes as it would
to Kraken, and receives the recorded frames of what it subscribed to, at the
recorded pace scaled by ``speed`` on ``anyio.current_time()`` (virtual time
in tests). What a connection gets is the sessions'
(:mod:`kraky_anyio.testing.replay_session`); which frame goes where, the
tape's (:mod:`kraky_anyio.testing.replay_tape`); :class:`Replay` is the
clock and the driver:

* The tape starts when a connection first subscribes to a recorded stream:
  the recording's first ``subscribe`` is aligned with that moment.
* It runs while at least one connection is subscribed to a recorded stream,
  and **pauses** while none is (after a ``drop()``, until the client's
  resubscribe): a reconnecting client continues where the replay was, its
  resubscribe answered with the recorded ack and a catch-up from the last
  recorded snapshot. A stalled connection still counts (its frames are
  lost, as a hung server's are).
* ``speed``: ``1`` is the recorded pace, ``10`` ten times faster, ``"max"``
  (or ``math.inf``) as fast as the event loop goes. A frame list without
  times plays all at once at any speed.
* At the end the replay stops (:attr:`Replay.finished`; connections stay
  open, with the live fake's heartbeats from then on), or with ``loop``
  starts again from the beginning (snapshots included).

Fault injection works as on the live fake: ``drop()``, ``close()``,
``stall()``, ``send_raw()``, ``set_status()``, ``rate_limit()``; inject one
at a recorded moment with ``await server.replay.wait_until(t)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel

from .options import FakeKrakenOptions
from .replay_formats import Recording, read_recording
from .replay_session import ReplaySession, ReplayV1Session, ReplayV2Session
from .replay_tape import Tape, TapeFrame
from .session import FakeKrakenSession
from .v2_session import FakeKrakenV2Session

if TYPE_CHECKING:
    from .server import FakeKrakenServer

__all__ = ["Replay", "ReplaySource", "parse_speed"]

#: What ``open_fake_kraken(replay=...)`` takes: a path or a :class:`Recording`.
ReplaySource = Recording | str | os.PathLike[str]


def parse_speed(speed: object) -> float:
    """``speed`` as a factor: a positive number, or ``"max"`` (``math.inf``).
    ``TypeError``/``ValueError`` for anything else."""
    if speed == "max":
        return math.inf
    if isinstance(speed, str):
        try:
            speed = float(speed)
        except ValueError:
            raise ValueError(f"speed must be a positive number or 'max', not {speed!r}") from None
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise TypeError(f"speed must be a positive number or 'max', not {speed!r}")
    if math.isnan(speed) or speed <= 0:
        raise ValueError(f"speed must be a positive number or 'max', not {speed!r}")
    return float(speed)


class Replay:
    """One recording played through a fake server (see the module docstring).

    Built by :func:`~kraky_anyio.testing.server.open_fake_kraken` and found
    as ``server.replay``. Observation: :attr:`recording`, :attr:`tape`,
    :attr:`speed`, :attr:`loop`, :attr:`position` (frames of the tape
    played in this pass), :attr:`passes` (completed passes, with ``loop``),
    :attr:`sent` (frames queued to connections, all connections counted),
    :attr:`time` (the recorded time reached), :attr:`started`,
    :attr:`running`, :attr:`finished`; :meth:`wait_finished`,
    :meth:`wait_until`, :meth:`wait_for`.
    """

    def __init__(self, source: ReplaySource, *, speed: object = 1.0, loop: bool = False) -> None:
        """Reads ``source`` now (a path: see
        :func:`~kraky_anyio.testing.replay_formats.read_recording`, which
        raises for a bad file). ``TypeError``/``ValueError`` for a bad
        ``speed`` or ``loop``."""
        if not isinstance(loop, bool):
            raise TypeError(f"loop must be a bool, not {loop!r}")
        self.speed = parse_speed(speed)
        self.loop = loop
        self.recording = source if isinstance(source, Recording) else read_recording(source)
        self.tape = Tape(self.recording)
        self.position = 0
        self.passes = 0
        self.sent = 0
        self.started = False
        self.running = False
        self.finished = False
        #: The recorded time reached: ``t`` of the last frame played, in
        #: seconds after the recorded first subscribe (see :meth:`wait_until`).
        self.time = -math.inf
        self._finished = anyio.Event()
        self._progress: anyio.Event | None = None  # set on progress, if awaited

    def __repr__(self) -> str:
        return (
            f"<Replay {self.recording.api} {self.recording.source or 'recording'} "
            f"{self.position}/{len(self.tape.frames)} speed={self.speed}>"
        )

    @property
    def api(self) -> str:
        """The recording's API version, ``"v1"`` or ``"v2"``."""
        return self.recording.api

    async def wait_finished(self) -> None:
        """Block until the tape has been played to its end (never, with ``loop``)."""
        await self._finished.wait()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Block until ``predicate()`` holds; re-checked after every frame
        played, every new pass and the end. Not bounded in time (with
        ``speed="max"`` and ``loop`` a virtual clock never jumps: bound it
        by the predicate)."""
        while not predicate():
            if self._progress is None:
                self._progress = anyio.Event()
            await self._progress.wait()

    async def wait_until(self, t: float) -> None:
        """Block until the frames recorded up to ``t`` seconds after the
        recorded first subscribe have been played (in this pass), or the end:
        the moment to inject a fault at a recorded time."""
        await self.wait_for(lambda: self.time >= t or self.finished)

    def _progressed(self) -> None:
        if self._progress is not None:
            self._progress.set()
            self._progress = None

    # -- sessions --------------------------------------------------------------

    def v1_session(self, options: FakeKrakenOptions | None = None, **kw: Any) -> FakeKrakenSession:
        """A session for a connection on the v1 path: a replaying one if the
        recording is v1's, else the live fake's."""
        if self.api == "v1":
            return ReplayV1Session(options, replay=self, **kw)
        return FakeKrakenSession(options, **kw)

    def v2_session(
        self, options: FakeKrakenOptions | None = None, **kw: Any
    ) -> FakeKrakenV2Session:
        """A session for a connection on ``/v2``: a replaying one if the
        recording is v2's, else the live fake's."""
        if self.api == "v2":
            return ReplayV2Session(options, replay=self, **kw)
        return FakeKrakenV2Session(options, **kw)

    # -- playing ---------------------------------------------------------------

    def _listening(self, server: FakeKrakenServer) -> bool:
        keys = self.tape.keys
        return any(
            isinstance(c.session, ReplaySession)
            and c.session.replay is self
            and not keys.isdisjoint(c.session.subscriptions)
            for c in server.sessions
        )

    async def _deliver(self, server: FakeKrakenServer, frame: TapeFrame) -> None:
        now = anyio.current_time()
        for connection in server.sessions:
            session = connection.session
            if not isinstance(session, ReplaySession) or session.replay is not self:
                continue
            if isinstance(frame.data, bytes):
                if session.wants(frame):
                    await connection.send_raw(frame.data)
                    self.sent += 1
            else:
                messages = session.deliver(frame, now)
                connection.send(messages)
                self.sent += len(messages)

    async def _play(self, server: FakeKrakenServer) -> None:
        """One pass over the tape, from :attr:`position` to its end."""
        frames = self.tape.frames
        if not frames:
            return
        # Frames recorded before the origin (the first subscribe) are due at once.
        tape_time = 0.0 if self.passes == 0 else frames[0].t
        anchor: float | None = None  # the clock's time when the tape was at tape_time
        while self.position < len(frames):
            if anchor is not None and not self._listening(server):
                if math.isfinite(self.speed):
                    tape_time += (anyio.current_time() - anchor) * self.speed
                anchor = None
            if anchor is None:
                self.running = False
                await server.wait_for(lambda: self._listening(server))
                self.running = self.started = True
                anchor = anyio.current_time()
            frame = frames[self.position]
            if frame.initial and self.passes == 0:  # given with a subscriber's ack
                self.position += 1
                continue
            if math.isfinite(self.speed) and frame.t > tape_time:
                due = anchor + (frame.t - tape_time) / self.speed
                paused = False
                with anyio.move_on_at(due):
                    await server.wait_for(lambda: not self._listening(server))
                    paused = True
                if paused:  # nobody listens: hold the tape where it is
                    now = anyio.current_time()
                    tape_time += (now - anchor) * self.speed
                    anchor = None
                    continue
                tape_time, anchor = frame.t, due
            await self._deliver(server, frame)
            self.position += 1
            self.time = frame.t
            self._progressed()
            # One frame per turn: each connection's writer sends one frame a
            # turn, so this keeps their queues short at speed "max".
            await anyio.lowlevel.checkpoint()

    async def run(
        self,
        server: FakeKrakenServer,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Play the tape to ``server``'s connections until its end (forever
        with ``loop``, until cancelled); ``open_fake_kraken`` starts it in
        the server's task group. Returns at the end, after waking every
        connection's heartbeat task (the live rule applies from then on)."""
        task_status.started()
        while True:
            await self._play(server)
            if not self.loop or not self.tape.frames:
                break
            # From the second pass on, the initial frames are played in time:
            # the subscribers have their acks already.
            self.passes += 1
            self.position = 0
            self.time = -math.inf
            self._progressed()
            await anyio.lowlevel.checkpoint()
        self.running = False
        self.finished = True
        self._finished.set()
        self._progressed()
        for connection in server.sessions:
            connection.reschedule()
