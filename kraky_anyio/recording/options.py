"""What a recording is told: a frozen, validated :class:`RecordOptions`.

Built where the recording is asked for (``conn.record(path, ...)``, the
``record=`` option of ``open_kraken``), so a bad path suffix or option raises
``TypeError``/``ValueError`` there, before anything is opened.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeAlias

from .writer import compression_of

__all__ = ["DEFAULT_BUFFER", "RecordOptions", "RecordTarget"]

#: Frames the recorder queues before its overflow policy applies.
DEFAULT_BUFFER = 10_000

#: What ``record=`` accepts: a path, or the options with one.
RecordTarget: TypeAlias = "str | os.PathLike[str] | RecordOptions"


@dataclass(frozen=True)
class RecordOptions:
    """Where and how to record.

    ``path``: the first file; its suffix picks the compression (``.jsonl.gz``,
    ``.jsonl.zst``, ``.jsonl``; see :mod:`kraky_anyio.recording.writer`).
    ``overflow``: what happens when ``buffer`` received frames wait for the
    disk: ``"drop"`` (the default: the reader never waits; the frames are
    counted in ``frames_dropped`` and a ``gap`` line marks the spot) or
    ``"block"`` (the reader waits for the writer: nothing is lost, and the
    connection reads no faster than the disk writes).
    ``rotate_bytes``/``rotate_seconds``: start a new part past that many
    uncompressed bytes / seconds of recording time (None: never).
    ``overwrite``: replace an earlier recording at ``path`` (and its parts);
    without it an existing file is ``FileExistsError`` when recording starts.
    ``io``: ``"thread"`` (the default) writes each batch in a worker thread;
    ``"inline"`` writes it in the event loop's thread, blocking every task for
    that write (10-20 µs a line, see ``docs/record-replay.md``). Use
    ``"inline"`` on virtual time (trio's ``MockClock``, looptime): there a
    wait for a thread lets the clock jump to the next timer, so timeouts
    would fire while the disk is written.
    """

    path: Path
    overflow: Literal["drop", "block"] = "drop"
    buffer: int = DEFAULT_BUFFER
    rotate_bytes: int | None = None
    rotate_seconds: float | None = None
    overwrite: bool = False
    io: Literal["thread", "inline"] = "thread"

    def __post_init__(self) -> None:
        path: object = self.path
        if isinstance(path, str):
            path = Path(path)
        if not isinstance(path, os.PathLike):
            raise TypeError(f"a recording path is a str or a path, not {type(path).__name__}")
        path = Path(path)
        object.__setattr__(self, "path", path)
        compression_of(path)
        if self.overflow not in ("drop", "block"):
            raise ValueError(f"overflow must be 'drop' or 'block', not {self.overflow!r}")
        _count("buffer", self.buffer)
        if self.rotate_bytes is not None:
            _count("rotate_bytes", self.rotate_bytes)
        seconds = self.rotate_seconds
        if seconds is not None:
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise TypeError(f"rotate_seconds must be a number, not {type(seconds).__name__}")
            if not (seconds > 0 and math.isfinite(seconds)):
                raise ValueError(f"rotate_seconds must be > 0 and finite, got {seconds!r}")
        if not isinstance(self.overwrite, bool):
            raise TypeError("overwrite must be True or False")
        if self.io not in ("thread", "inline"):
            raise ValueError(f"io must be 'thread' or 'inline', not {self.io!r}")

    @classmethod
    def make(cls, target: object, options: dict[str, Any]) -> RecordOptions:
        """From a path and keyword options, or a :class:`RecordOptions` alone;
        ``TypeError`` for an unknown option or both forms at once."""
        if isinstance(target, RecordOptions):
            if options:
                raise TypeError("pass either RecordOptions or keyword options, not both")
            return target
        unknown = sorted(set(options) - {f.name for f in fields(cls)} | ({"path"} & set(options)))
        if unknown:
            raise TypeError(f"unknown recording option(s): {', '.join(unknown)}")
        return cls(target, **options)  # type: ignore[arg-type]


def _count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
