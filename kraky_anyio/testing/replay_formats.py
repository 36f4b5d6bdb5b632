"""Recorded WebSocket sessions, read from three formats for replay.

:func:`read_recording` reads a file into a :class:`Recording`: the frames a
client received (and what it sent, where the format keeps it) with their
times. The format is detected from the first line, or named:

* ``"kraky"``: kraky-anyio's own recordings (``kraky-anyio record``,
  ``conn.record(path)``): JSON lines, the first a header
  (``{"kind":"header","format":"kraky-anyio-recording","version":1,
  "api":"v1"|"v2",...}``), then ``open``/``recv``/``sent``/``close``/``gap``
  lines; rotated parts ``NAME``, ``NAME.1``, ``NAME.2``, ... are read in
  order of their header's ``part``.
* ``"cryptofeed"``: cryptofeed's raw capture (``raw_data_collection``, its
  ``sample_data/KRAKEN.ws.*`` files): ``TIMESTAMP: FRAME`` for a received
  frame, ``ADDRESS <- TIMESTAMP: FRAME`` for a sent one, ``ADDRESS <->
  TIMESTAMP`` for a connect; epoch-second timestamps. Its HTTP lines
  (``ADDRESS -> TIMESTAMP: BODY``) and ``configuration:`` lines are skipped;
  a path ending in ``.0`` is continued by ``.1``, ``.2``, ... (its rotation).
* ``"frames"``: a plain list of received frames without times: a JSON array
  (each element a frame, written as JSON, or a string holding the frame's
  text) or one frame per line. Each frame is kept as its exact text.

Every format may be compressed: ``.gz`` (gzip) or ``.zst`` (zstandard, the
optional ``zstandard`` package), by the file name's suffix (a rotation
number after it is ignored). The API version comes from the kraky header,
else from a ``/v2`` URL, else from the frames (a v1 frame is an array or has
an ``event``, a v2 frame has a ``channel`` or a ``method``); ``api=`` forces
it. A malformed line raises :class:`RecordingFormatError` naming the file and
the line number. The recording is read whole into memory.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Final, NamedTuple, cast

__all__ = [
    "API_VERSIONS",
    "FORMATS",
    "KRAKY_FORMAT",
    "RecordedEvent",
    "Recording",
    "RecordingFormatError",
    "detect_format",
    "open_text",
    "read_recording",
]

#: The formats :func:`read_recording` reads.
FORMATS: Final = ("kraky", "cryptofeed", "frames")
#: The ``format`` of a kraky-anyio recording's header line.
KRAKY_FORMAT: Final = "kraky-anyio-recording"
API_VERSIONS: Final = ("v1", "v2")
ZSTANDARD_HINT: Final = (
    'reading .zst needs the zstandard package: pip install "kraky-anyio[record]"'
)

#: One line of a cryptofeed raw capture: address, arrow, timestamp, frame.
CRYPTOFEED_LINE: Final = re.compile(r"^(?:(\S+) (<->|<-|->) )?(\d+(?:\.\d*)?)(?:: (.*))?$", re.S)


class RecordingFormatError(ValueError):
    """A recording that cannot be read: ``path``, ``line`` (1-based, or
    None when the problem is the whole file) and what is wrong."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class RecordedEvent(NamedTuple):
    """One line of a recording.

    ``kind`` is ``"open"``, ``"recv"``, ``"sent"``, ``"close"`` or ``"gap"``;
    ``t`` seconds since the recording started (0.0 for every event of a
    format without times); ``gen`` the socket generation (0 where unknown);
    ``data`` the frame (``str`` text, ``bytes`` for a binary frame) of a
    ``recv``/``sent``, the reason of a ``close``, None otherwise;
    ``dropped`` the frames a ``gap`` lost.
    """

    kind: str
    t: float
    gen: int = 0
    data: str | bytes | None = None
    dropped: int = 0


@dataclass(frozen=True)
class Recording:
    """A recorded session (see the module docstring): ``api`` (``"v1"`` or
    ``"v2"``), ``events`` in recorded order, the ``format`` it was read
    from, the ``url`` recorded (None where the format has none) and the
    ``source`` it was read from."""

    api: str
    events: tuple[RecordedEvent, ...]
    format: str = "frames"
    url: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.api not in API_VERSIONS:
            raise ValueError(f"api must be 'v1' or 'v2', not {self.api!r}")

    @property
    def received(self) -> list[str | bytes]:
        """The received frames, in order."""
        return [e.data for e in self.events if e.kind == "recv" and e.data is not None]

    @property
    def dropped(self) -> int:
        """Frames the recorder could not write (the sum of its ``gap`` lines)."""
        return sum(e.dropped for e in self.events if e.kind == "gap")

    @property
    def duration(self) -> float:
        """Seconds from the first event to the last."""
        return self.events[-1].t - self.events[0].t if self.events else 0.0

    @classmethod
    def from_frames(
        cls, frames: Sequence[str | bytes], *, api: str | None = None, interval: float = 0.0
    ) -> Recording:
        """A recording of ``frames`` (texts, or bytes for binary frames)
        received ``interval`` seconds apart; ``api`` inferred when None
        (``ValueError`` if it cannot be)."""
        events = tuple(RecordedEvent("recv", i * interval, 1, f) for i, f in enumerate(frames))
        found = api or infer_api(events)
        if found is None:
            raise ValueError("cannot tell the API version from the frames: pass api='v1' or 'v2'")
        return cls(found, events)


def _decompressed(path: Path) -> BinaryIO:
    name = re.sub(r"\.\d+$", "", path.name)
    if name.endswith(".gz"):
        return cast(BinaryIO, gzip.open(path, "rb"))
    if name.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise RecordingFormatError(str(path), None, ZSTANDARD_HINT) from None
        reader = zstandard.ZstdDecompressor().stream_reader(path.open("rb"), closefd=True)
        return cast(BinaryIO, reader)
    return path.open("rb")


def open_text(path: Path) -> IO[str]:
    """``path`` opened for reading UTF-8 text, decompressed by its suffix."""
    return io.TextIOWrapper(_decompressed(path), encoding="utf-8", newline="\n")


def _first_line(path: Path) -> str:
    try:
        with open_text(path) as f:
            for line in f:
                if line.strip():
                    return line.strip()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise RecordingFormatError(str(path), None, f"cannot read: {exc}") from exc
    raise RecordingFormatError(str(path), None, "empty: no frames")


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of ``path`` (one of :data:`FORMATS`), from its first
    non-empty line; :class:`RecordingFormatError` if none fits."""
    path = Path(path)
    line = _first_line(path)
    try:
        first = json.loads(line)
    except ValueError:
        first = None
    if isinstance(first, dict) and first.get("format") == KRAKY_FORMAT:
        return "kraky"
    if isinstance(first, dict) and first.get("kind") == "header":
        raise RecordingFormatError(str(path), 1, f"a header of format {first.get('format')!r}")
    if CRYPTOFEED_LINE.match(line) or line.startswith("configuration: "):
        return "cryptofeed"
    if line[:1] in '[{"':
        return "frames"
    raise RecordingFormatError(
        str(path), 1, f"not a recording kraky-anyio reads (formats: {', '.join(FORMATS)})"
    )


def infer_api(events: tuple[RecordedEvent, ...] | list[RecordedEvent]) -> str | None:
    """``"v1"`` or ``"v2"`` from the first received frame that tells, or None."""
    for event in events:
        if event.kind != "recv" or event.data is None:
            continue
        try:
            frame = json.loads(event.data)
        except ValueError:
            continue
        if isinstance(frame, list) or (isinstance(frame, dict) and "event" in frame):
            return "v1"
        if isinstance(frame, dict) and ("channel" in frame or "method" in frame):
            return "v2"
    return None


def api_of_url(url: str | None) -> str | None:
    """``"v2"`` for a URL whose path is ``/v2``, ``"v1"`` for another
    ``ws(s)://`` URL, None without one."""
    if not url or "://" not in url:
        return None
    path = url.split("://", 1)[1].partition("/")[2].partition("?")[0]
    return "v2" if path.rstrip("/") == "v2" else "v1"


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of ``path`` without the line ends; a file
    that cannot be read or decompressed raises :class:`RecordingFormatError`."""
    number = 0
    try:
        with open_text(path) as f:
            for number, line in enumerate(f, 1):
                yield number, line.rstrip("\r\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise RecordingFormatError(str(path), number + 1, f"cannot read: {exc}") from exc


def read_recording(
    path: str | os.PathLike[str], *, format: str | None = None, api: str | None = None
) -> Recording:
    """Read the recording at ``path`` (see the module docstring).

    ``format`` (one of :data:`FORMATS`) skips detection; ``api`` (``"v1"``
    or ``"v2"``) overrides the one recorded or inferred. Raises
    ``FileNotFoundError`` for a missing file, ``ValueError`` for a bad
    argument, :class:`RecordingFormatError` for a malformed file (with its
    line number) or one whose API version cannot be told.
    """
    from . import replay_readers

    path = Path(path)
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if api is not None and api not in API_VERSIONS:
        raise ValueError(f"api must be 'v1' or 'v2', not {api!r}")
    if not path.is_file():
        raise FileNotFoundError(f"no recording at {path}")
    kind = format or detect_format(path)
    reader = {
        "kraky": replay_readers.read_kraky,
        "cryptofeed": replay_readers.read_cryptofeed,
        "frames": replay_readers.read_frames,
    }[kind]
    events, url, recorded_api = reader(path)
    found = api or recorded_api or api_of_url(url) or infer_api(events)
    if found is None:
        raise RecordingFormatError(
            str(path), None, "cannot tell the API version (no header, URL or known frame): pass api"
        )
    if not any(e.kind == "recv" for e in events):
        raise RecordingFormatError(str(path), None, "no received frame to replay")
    return Recording(found, tuple(events), kind, url, str(path))
