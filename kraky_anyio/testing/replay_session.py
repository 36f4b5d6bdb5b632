"""The fake sessions of a replay: v1 and v2, answering from a recording.

A :class:`ReplayV1Session` / :class:`ReplayV2Session` is the live fake's
session (:class:`~kraky_anyio.testing.session.FakeKrakenSession`,
:class:`~kraky_anyio.testing.v2_session.FakeKrakenV2Session`: the same
checks, errors, pongs, faults), with what the recording holds in place of
what the live fake makes up:

* the greeting is the recorded status frame (the one recorded last before
  the replay's position), unless ``set_status()`` changed the server's
  status from its configured one: then the live fake's;
* a successful subscribe or unsubscribe is answered with the recorded ack of
  that stream (the client's own ``reqid``/``req_id`` put in); v1 acks
  without one carry the stream's recorded channelID. v2: only when the
  recorded ack's ``result`` matches the live one (the same depth, ...);
* right after a subscribe ack comes the stream's **catch-up**
  (:meth:`~kraky_anyio.testing.replay_tape.Tape.catch_up`): the last
  recorded snapshot already played and what followed it, so a client that
  joins (or comes back after a drop) mid-replay gets a consistent book;
* heartbeats are the recorded ones; the live rule (one after
  ``heartbeat_interval`` seconds of silence) applies only when the
  recording has none, or once the replay has ended.

The sessions never read a clock and never touch a socket: the replay's
driver (:class:`~kraky_anyio.testing.replay.Replay`) asks each one what to
send of a tape frame (:meth:`deliver`) and queues it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .options import FakeKrakenOptions
from .replay_tape import DATA, STATUS, TapeFrame
from .session import FakeKrakenSession
from .session_base import FakeSessionBase
from .v2_session import FakeKrakenV2Session

if TYPE_CHECKING:
    from .replay import Replay

__all__ = ["Recorded", "ReplaySession", "ReplayV1Session", "ReplayV2Session"]


class Recorded(str):
    """A frame to send exactly as recorded (the sessions' ``encode`` passes it through)."""

    __slots__ = ()


class ReplaySession(FakeSessionBase):
    """What the v1 and v2 replay sessions share (see the module docstring)."""

    replay: Replay

    def __init__(self, options: FakeKrakenOptions | None = None, *, replay: Replay, **kw: Any):
        """``replay`` is the replay it serves; the rest as for the version's
        session (:class:`~kraky_anyio.testing.session.FakeKrakenSession`,
        :class:`~kraky_anyio.testing.v2_session.FakeKrakenV2Session`), next in
        the subclass's order."""
        super().__init__(options, **kw)
        self.replay = replay

    def _replayed_acks(self, replies: list[Any]) -> list[Any]:
        raise NotImplementedError

    def on_open(self, now: float) -> list[Any]:
        greeting = self.replay.tape.greeting(self.replay.position)
        if self.stalled or greeting is None:
            return super().on_open(now)
        text, _ = greeting
        if self.status != self.options.status:
            return super().on_open(now)  # set_status() changed it: say so
        return self._sent([Recorded(text)], now)

    def heartbeat_due(self) -> float | None:
        if self.replay.tape.heartbeats and not self.replay.finished:
            return None  # as recorded
        return super().heartbeat_due()

    def wants(self, frame: TapeFrame) -> bool:
        """Whether this connection gets ``frame`` (nothing while stalled)."""
        if self.stalled:
            return False
        if frame.kind == STATUS:
            return True
        if frame.kind == DATA:
            return frame.key in self.subscriptions
        return bool(self.subscriptions)

    def deliver(self, frame: TapeFrame, now: float) -> list[Any]:
        """The messages to send of a text ``frame`` (none if not :meth:`wants`)."""
        if not self.wants(frame):
            return []
        return self._sent([Recorded(str(frame.data))], now)

    def _dispatch(self, request: Any, now: float) -> list[Any]:
        return self._replayed_acks(super()._dispatch(request, now))

    def _catch_up(self, key: tuple[str, str | None]) -> list[Any]:
        replay = self.replay
        frames = replay.tape.catch_up(key, replay.position, ahead=replay.passes == 0)
        return [Recorded(f.data) for f in frames if isinstance(f.data, str)]


def _with_id(recorded: dict[str, Any], live: dict[str, Any], field: str) -> Recorded:
    message = {k: v for k, v in recorded.items() if k != field}
    if field in live:
        message[field] = live[field]
    return Recorded(json.dumps(message, separators=(",", ":")))


class ReplayV1Session(ReplaySession, FakeKrakenSession):
    """A v1 session answering from a recording (see the module docstring)."""

    @staticmethod
    def encode(message: Any) -> str:
        if isinstance(message, Recorded):
            return str(message)
        return FakeKrakenSession.encode(message)

    def _replayed_acks(self, replies: list[Any]) -> list[Any]:
        out: list[Any] = []
        tape = self.replay.tape
        for reply in replies:
            status = reply.get("status") if isinstance(reply, dict) else None
            name = reply.get("channelName") if isinstance(reply, dict) else None
            if reply.get("event") != "subscriptionStatus" or status not in (
                "subscribed",
                "unsubscribed",
            ):
                out.append(reply)
                continue
            key = (str(name), reply.get("pair"))
            recorded = tape.ack(str(status), key)
            if recorded is not None:
                out.append(_with_id(recorded, reply, "reqid"))
            else:
                channel_id = tape.channel_id(key)
                if channel_id is not None and "channelID" in reply:
                    reply["channelID"] = channel_id
                out.append(reply)
            if status == "subscribed":
                out.extend(self._catch_up(key))
        return out


class ReplayV2Session(ReplaySession, FakeKrakenV2Session):
    """A v2 session answering from a recording (see the module docstring)."""

    @staticmethod
    def encode(message: Any) -> str:
        if isinstance(message, Recorded):
            return str(message)
        return FakeKrakenV2Session.encode(message)

    def _replayed_acks(self, replies: list[Any]) -> list[Any]:
        out: list[Any] = []
        tape = self.replay.tape
        for reply in replies:
            method = reply.get("method") if isinstance(reply, dict) else None
            result = reply.get("result") if isinstance(reply, dict) else None
            if method not in ("subscribe", "unsubscribe") or not isinstance(result, dict):
                out.append(reply)
                continue
            key = (str(result["channel"]), result.get("symbol"))
            recorded = tape.ack(str(method), key)
            if recorded is not None and recorded.get("result") == result:
                out.append(_with_id(recorded, reply, "req_id"))
            else:
                out.append(reply)
            if method == "subscribe" and result.get("snapshot", True):
                out.extend(self._catch_up(key))
        return out
