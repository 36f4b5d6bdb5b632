"""A recording sorted for replay: which received frame goes to whom, and when.

:class:`Tape` reads a :class:`~kraky_anyio.testing.replay_formats.Recording`
once and sorts each received frame (no I/O, no clock):

* **data** of one stream, keyed ``(channel, pair or symbol)`` as the fake
  sessions key subscriptions (v1 ``("book-10", "XBT/USD")``, private
  ``("ownTrades", None)``; v2 ``("book", "BTC/USD")``, ``("instrument",
  None)``): goes, unchanged (v1 channelIDs as recorded), to the
  connections subscribed to that key. A v1 book payload with ``as``/``bs``
  and a v2 ``"type": "snapshot"`` message are **snapshots**.
* **heartbeats**: to every connection with a subscription.
* **status** (v1 ``systemStatus``, v2 ``status`` channel): the first one
  after each recorded socket opened is a *greeting* (what a new connection
  gets first); any other is sent to every connection at its time.
* **acks** (successful v1 ``subscriptionStatus``, v2 ``subscribe``/
  ``unsubscribe`` responses): kept as the replies to give a client's own
  subscribe, never played. The frame right after a subscribe ack, when it
  is that stream's snapshot (v1 book, v2 ``"type": "snapshot"``) or was
  read with the ack (the same ``t``: v1's first ticker, say), is
  **initial**: a replay client gets it with its own ack, as the recorded
  client did, not in time.
* **replies** to the recording client's requests (pongs, errors, order
  replies): dropped, counted in :attr:`Tape.skipped`.
* anything else (not JSON, binary, unknown shapes): **raw**, sent as is to
  every connection with a subscription.

Times are seconds after the tape's *origin*: the recording client's first
``subscribe`` (a ``sent`` line), or else its first data frame, so that data
come as long after a replay client subscribes as they came after the
recorded one did.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final, NamedTuple, TypeAlias

from .replay_formats import RecordedEvent, Recording

__all__ = ["DATA", "HEARTBEAT", "RAW", "STATUS", "Key", "Tape", "TapeFrame"]

Key: TypeAlias = tuple[str, "str | None"]

DATA: Final = "data"
HEARTBEAT: Final = "heartbeat"
STATUS: Final = "status"
RAW: Final = "raw"
_ACK: Final = "ack"
_REPLY: Final = "reply"


class TapeFrame(NamedTuple):
    """One frame to play: ``t`` seconds after the origin, its ``kind``
    (:data:`DATA`, :data:`HEARTBEAT`, :data:`STATUS` or :data:`RAW`), the
    stream ``key`` (data only), the frame as recorded, whether it is a
    ``snapshot`` and whether it is ``initial``: the frame of its stream
    that came right after the stream's subscribe ack, which a subscriber
    gets with its own ack, never in time."""

    t: float
    kind: str
    key: Key | None
    data: str | bytes
    snapshot: bool = False
    initial: bool = False


class _Sorted(NamedTuple):
    kind: str
    key: Key | None = None
    snapshot: bool = False
    message: Any = None


def _sort_v1(message: Any) -> _Sorted:
    if isinstance(message, list):
        if len(message) >= 4 and isinstance(message[-2], str) and isinstance(message[-1], str):
            payload = message[1]
            snapshot = isinstance(payload, dict) and ("as" in payload or "bs" in payload)
            return _Sorted(DATA, (message[-2], message[-1]), snapshot, message[0])
        if len(message) == 3 and isinstance(message[1], str) and isinstance(message[2], dict):
            return _Sorted(DATA, (message[1], None))
        return _Sorted(RAW)
    if not isinstance(message, dict):
        return _Sorted(RAW)
    event = message.get("event")
    if event == "heartbeat":
        return _Sorted(HEARTBEAT)
    if event == "systemStatus":
        return _Sorted(STATUS, message=message)
    name = message.get("channelName")
    if (
        event == "subscriptionStatus"
        and message.get("status") in ("subscribed", "unsubscribed")
        and isinstance(name, str)
    ):
        pair = message.get("pair")
        return _Sorted(_ACK, (name, pair if isinstance(pair, str) else None), message=message)
    return _Sorted(_REPLY if isinstance(event, str) else RAW)


def _sort_v2(message: Any) -> _Sorted:
    if not isinstance(message, dict):
        return _Sorted(RAW)
    channel = message.get("channel")
    if channel == "heartbeat":
        return _Sorted(HEARTBEAT)
    if channel == "status":
        return _Sorted(STATUS, message=message)
    if isinstance(channel, str):
        data = message.get("data")
        symbol = None
        if isinstance(data, list) and data and isinstance(data[0], dict):
            found = data[0].get("symbol")
            symbol = found if isinstance(found, str) else None
        return _Sorted(DATA, (channel, symbol), message.get("type") == "snapshot")
    method = message.get("method")
    result = message.get("result")
    if (
        method in ("subscribe", "unsubscribe")
        and message.get("success") is True
        and isinstance(result, dict)
        and isinstance(result.get("channel"), str)
    ):
        symbol = result.get("symbol")
        key = (result["channel"], symbol if isinstance(symbol, str) else None)
        return _Sorted(_ACK, key, message=message)
    return _Sorted(_REPLY if isinstance(method, str) else RAW)


def _sort(api: str, data: str | bytes) -> _Sorted:
    if isinstance(data, bytes):
        return _Sorted(RAW)
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        return _Sorted(RAW)
    return _sort_v1(message) if api == "v1" else _sort_v2(message)


def _is_subscribe(api: str, data: str | bytes) -> bool:
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        return False
    if not isinstance(message, dict):
        return False
    return message.get("event" if api == "v1" else "method") == "subscribe"


def _origin(api: str, events: Iterable[RecordedEvent], first_data: float | None) -> float:
    for event in events:
        if event.kind == "sent" and event.data is not None and _is_subscribe(api, event.data):
            return event.t
    return 0.0 if first_data is None else first_data


class Tape:
    """A :class:`Recording` sorted for replay (see the module docstring).

    :attr:`frames` are the frames to play, in order; :attr:`keys` the data
    streams; :attr:`skipped` counts the received frames not played, by why
    (``"ack"``, ``"reply"``, ``"greeting"``); :attr:`heartbeats` how many
    recorded heartbeats there are.
    """

    def __init__(self, recording: Recording) -> None:
        self.api = recording.api
        self.recording = recording
        self.frames: list[TapeFrame] = []
        self.skipped: Counter[str] = Counter()
        self.heartbeats = 0
        self._acks: dict[tuple[str, Key], dict[str, Any]] = {}
        self._channel_ids: dict[Key, int] = {}
        self._greetings: list[tuple[int, str, Any]] = []  # (position, text, message)
        self._by_key: dict[Key, list[int]] = {}
        self._snapshots: dict[Key, list[int]] = {}
        # The stream whose subscribe ack was the last frame, and its time.
        self._following: tuple[Key, float] | None = None
        verdicts: list[_Sorted | None] = []
        first_data: float | None = None
        for event in recording.events:
            verdict = None
            if event.kind == "recv" and event.data is not None:
                verdict = _sort(self.api, event.data)
                if verdict.kind == DATA and first_data is None:
                    first_data = event.t
            verdicts.append(verdict)
        origin = _origin(self.api, recording.events, first_data)
        after_open = True  # the recording starts like a socket opening
        for event, verdict in zip(recording.events, verdicts, strict=True):
            if event.kind == "open":
                after_open = True
            if verdict is None:
                continue
            if after_open and verdict.kind == STATUS:
                # A socket's greeting: what a new connection gets, not played.
                self._greetings.append((len(self.frames), str(event.data), verdict.message))
                self.skipped["greeting"] += 1
            else:
                self._add(event, verdict, origin)
            after_open = False
        #: The data streams the tape holds.
        self.keys = frozenset(self._by_key)

    def _add(self, event: RecordedEvent, verdict: _Sorted, origin: float) -> None:
        assert event.data is not None
        if verdict.kind == _ACK:
            assert verdict.key is not None
            message = verdict.message
            self._acks.setdefault((_ack_kind(self.api, message), verdict.key), message)
            if self.api == "v1" and isinstance(message.get("channelID"), int):
                self._channel_ids.setdefault(verdict.key, message["channelID"])
            self.skipped["ack"] += 1
            subscribed = _ack_kind(self.api, message) in ("subscribed", "subscribe")
            self._following = (verdict.key, event.t) if subscribed else None
            return
        following, self._following = self._following, None
        initial = (
            verdict.kind == DATA
            and following is not None
            and verdict.key == following[0]
            and (verdict.snapshot or event.t == following[1])
        )
        if verdict.kind == _REPLY:
            self.skipped["reply"] += 1
            return
        index = len(self.frames)
        if verdict.kind == DATA:
            assert verdict.key is not None
            self._by_key.setdefault(verdict.key, []).append(index)
            if verdict.snapshot:
                self._snapshots.setdefault(verdict.key, []).append(index)
            channel_id = verdict.message  # v1 public data: its channelID
            if isinstance(channel_id, int) and not isinstance(channel_id, bool):
                self._channel_ids.setdefault(verdict.key, channel_id)
        elif verdict.kind == HEARTBEAT:
            self.heartbeats += 1
        self.frames.append(
            TapeFrame(
                event.t - origin, verdict.kind, verdict.key, event.data, verdict.snapshot, initial
            )
        )
        if verdict.kind == STATUS:  # new connections are greeted with it once played
            self._greetings.append((index + 1, str(event.data), verdict.message))

    # -- queries ---------------------------------------------------------------

    def ack(self, kind: str, key: Key) -> dict[str, Any] | None:
        """The first recorded successful ack of ``kind`` (v1 ``"subscribed"``
        or ``"unsubscribed"``, v2 ``"subscribe"`` or ``"unsubscribe"``) for
        ``key``, as decoded (a copy), or None."""
        found = self._acks.get((kind, key))
        return None if found is None else dict(found)

    def channel_id(self, key: Key) -> int | None:
        """v1: the channelID recorded for ``key`` (its ack's, else its data's)."""
        return self._channel_ids.get(key)

    def greeting(self, position: int) -> tuple[str, Any] | None:
        """The status frame (text, decoded) a connection opened when
        ``position`` frames have been played gets first: the last one
        recorded by then, else the first; None if the tape has none."""
        if not self._greetings:
            return None
        index = bisect.bisect_right([p for p, _, _ in self._greetings], position) - 1
        _, text, message = self._greetings[max(index, 0)]
        return text, message

    def catch_up(self, key: Key, position: int, *, ahead: bool = True) -> list[TapeFrame]:
        """What a subscriber of ``key`` joining when ``position`` frames have
        been played gets with its ack: the last snapshot of ``key`` played
        so far and every frame of ``key`` after it up to ``position``; if no
        snapshot was played yet, the :attr:`TapeFrame.initial` frame of
        ``key`` (what the recorded client got with its ack) if it is the last
        frame of ``key`` passed, or (with ``ahead``: while initial frames are
        not played) the first to come; else nothing."""
        snapshots = self._snapshots.get(key, [])
        last = bisect.bisect_left(snapshots, position) - 1
        indices = self._by_key.get(key, [])
        if last < 0:
            # The initial frame is not played in the first pass: the one just
            # passed, or the stream's first if none has come yet.
            before = bisect.bisect_left(indices, position)
            nearest = indices[before - 1] if before else indices[0] if indices and ahead else None
            if nearest is not None and self.frames[nearest].initial:
                return [self.frames[nearest]]
            return []
        start = bisect.bisect_left(indices, snapshots[last])
        end = bisect.bisect_left(indices, position)
        return [self.frames[i] for i in indices[start:end]]


def _ack_kind(api: str, message: dict[str, Any]) -> str:
    return str(message["status"] if api == "v1" else message["method"])
