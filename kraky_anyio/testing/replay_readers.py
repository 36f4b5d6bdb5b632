"""The three readers behind :func:`~kraky_anyio.testing.replay_formats.read_recording`.

Each takes a path and returns ``(events, url, api)``: the
:class:`~kraky_anyio.testing.replay_formats.RecordedEvent` list, the URL
recorded (or None) and the API version the file declares (or None). Each
raises :class:`~kraky_anyio.testing.replay_formats.RecordingFormatError`
naming the line of the first malformed one. No I/O beyond reading the files.
"""

from __future__ import annotations

import ast
import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any

from .replay_formats import (
    API_VERSIONS,
    CRYPTOFEED_LINE,
    KRAKY_FORMAT,
    RecordedEvent,
    RecordingFormatError,
    numbered_lines,
    open_text,
)

__all__ = ["read_cryptofeed", "read_frames", "read_kraky"]

Read = tuple[list[RecordedEvent], "str | None", "str | None"]
_KINDS = frozenset({"open", "recv", "sent", "close", "gap"})


# -- kraky -------------------------------------------------------------------


def _parts(path: Path) -> list[Path]:
    parts = [path]
    while (nxt := path.with_name(f"{path.name}.{len(parts)}")).is_file():
        parts.append(nxt)
    return parts


def _number(path: Path, line: int, entry: dict[str, Any], key: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordingFormatError(str(path), line, f"{key!r} must be a number, not {value!r}")
    return float(value)


def _frame(path: Path, line: int, entry: dict[str, Any]) -> str | bytes:
    if isinstance(entry.get("text"), str):
        text: str = entry["text"]
        return text
    if isinstance(entry.get("b64"), str):
        try:
            return base64.b64decode(entry["b64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RecordingFormatError(str(path), line, f"bad base64: {exc}") from None
    raise RecordingFormatError(str(path), line, f"a {entry['kind']} line needs 'text' or 'b64'")


def _kraky_event(path: Path, line: int, entry: dict[str, Any]) -> RecordedEvent:
    kind = entry["kind"]
    t = _number(path, line, entry, "t")
    gen = entry.get("gen", 0)
    if isinstance(gen, bool) or not isinstance(gen, int):
        raise RecordingFormatError(str(path), line, f"'gen' must be an int, not {gen!r}")
    if kind in ("recv", "sent"):
        return RecordedEvent(kind, t, gen, _frame(path, line, entry))
    if kind == "close":
        return RecordedEvent(kind, t, gen, str(entry.get("reason", "")))
    if kind == "gap":
        return RecordedEvent(kind, t, gen, None, int(_number(path, line, entry, "dropped")))
    return RecordedEvent(kind, t, gen)


def _header(path: Path, number: int, text: str) -> dict[str, Any]:
    try:
        header = json.loads(text)
    except ValueError:
        header = None
    if not (isinstance(header, dict) and header.get("kind") == "header"):
        raise RecordingFormatError(str(path), number, "the first line must be a header")
    if header.get("format") != KRAKY_FORMAT:
        raise RecordingFormatError(str(path), number, f"not a {KRAKY_FORMAT}")
    if header.get("version") != 1:
        raise RecordingFormatError(
            str(path), number, f"format version {header.get('version')!r}; this reader reads 1"
        )
    if header.get("api") not in API_VERSIONS:
        raise RecordingFormatError(str(path), number, f"api {header.get('api')!r}")
    return header


def read_kraky(path: Path) -> Read:
    """A kraky-anyio recording, its rotated parts (``NAME.1``, ...) included."""
    events: list[RecordedEvent] = []
    api = url = None
    ordered: list[tuple[int, Path]] = []
    for index, part in enumerate(_parts(path)):
        number, first = next(numbered_lines(part), (1, ""))
        header = _header(part, number, first)
        ordered.append((int(header.get("part", index)), part))
        if api is None:
            api, url = header["api"], header.get("url")
        elif header["api"] != api:
            raise RecordingFormatError(str(part), number, f"api {header['api']}, not {api}")
    for _, part in sorted(ordered):
        lines = numbered_lines(part)
        next(lines)  # its header, checked above
        for number, text in lines:
            if not text.strip():
                continue
            try:
                entry = json.loads(text)
            except ValueError as exc:
                raise RecordingFormatError(str(part), number, f"not JSON: {exc}") from None
            if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
                raise RecordingFormatError(str(part), number, "not an object with a 'kind'")
            if entry["kind"] in _KINDS:  # later versions may add kinds: ignored
                events.append(_kraky_event(part, number, entry))
    return events, url if isinstance(url, str) else None, api


# -- cryptofeed --------------------------------------------------------------


def _cryptofeed_parts(path: Path) -> list[Path]:
    stem, dot, number = path.name.rpartition(".")
    if not dot or number != "0":
        return [path]
    parts = [path]
    while (nxt := path.with_name(f"{stem}.{len(parts)}")).is_file():
        parts.append(nxt)
    return parts


def _cryptofeed_frame(text: str) -> str | bytes:
    # cryptofeed writes some exchanges' binary frames as Python bytes reprs.
    if text[:2] in ("b'", 'b"'):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, bytes):
            return value
    return text


def read_cryptofeed(path: Path) -> Read:
    """cryptofeed's raw capture lines (see the module docstring of
    :mod:`~kraky_anyio.testing.replay_formats`)."""
    events: list[RecordedEvent] = []
    url: str | None = None
    start: float | None = None
    gen = 0
    for part in _cryptofeed_parts(path):
        for number, line in numbered_lines(part):
            if not line.strip() or line.startswith("configuration: "):
                continue
            match = CRYPTOFEED_LINE.match(line)
            if match is None:
                raise RecordingFormatError(
                    str(part), number, "expected 'TIMESTAMP: FRAME' or 'ADDRESS <-/<-> TIMESTAMP'"
                )
            address, arrow, stamp, data = match.groups()
            if arrow == "->":
                continue  # an HTTP request's reply, not a WebSocket frame
            when = float(stamp)
            start = when if start is None else start
            t = when - start
            if arrow == "<->":
                gen += 1
                url = url or address
                events.append(RecordedEvent("open", t, gen))
            elif data is None:
                raise RecordingFormatError(str(part), number, "a frame line needs ': FRAME'")
            else:
                kind = "sent" if arrow == "<-" else "recv"
                events.append(RecordedEvent(kind, t, max(gen, 1), _cryptofeed_frame(data)))
    return events, url, None


# -- frames ------------------------------------------------------------------

_WHITESPACE = re.compile(r"\s*")


def _array_elements(text: str) -> list[str] | None:
    """The exact text of each element of the one JSON array ``text`` holds,
    or None if it does not hold exactly one array."""
    decoder = json.JSONDecoder()
    pos = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
    if text[pos : pos + 1] != "[":
        return None
    pos = _WHITESPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
    elements: list[str] = []
    if text[pos : pos + 1] == "]":
        return elements if not text[pos + 1 :].strip() else None
    while True:
        try:
            _, end = decoder.raw_decode(text, pos)
        except ValueError:
            return None
        elements.append(text[pos:end])
        pos = _WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
        if text[pos : pos + 1] == "]":
            return elements if not text[pos + 1 :].strip() else None
        if text[pos : pos + 1] != ",":
            return None
        pos = _WHITESPACE.match(text, pos + 1).end()  # type: ignore[union-attr]


def _framelike(element: str) -> bool:
    return element[:1] in '[{"'


def _array_frame(element: str) -> str:
    # A string element holds a frame's text; any other element is the frame.
    if element.startswith('"'):
        value = json.loads(element)
        return str(value)
    return element


def read_frames(path: Path) -> Read:
    """A JSON array of frames, or one frame per line."""
    with open_text(path) as f:
        try:
            text = f.read()
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise RecordingFormatError(str(path), None, f"cannot read: {exc}") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    single = len(lines) <= 1
    first_alone = True
    if lines:
        try:
            json.loads(lines[0])
        except ValueError:
            first_alone = False
    if single or not first_alone:
        elements = _array_elements(text)
        if elements is not None and (not single or all(map(_framelike, elements))):
            frames = [_array_frame(e) for e in elements]
            return [RecordedEvent("recv", 0.0, 1, f) for f in frames], None, None
    events: list[RecordedEvent] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError as exc:
            raise RecordingFormatError(str(path), number, f"a frame must be JSON: {exc}") from None
        events.append(RecordedEvent("recv", 0.0, 1, line.strip()))
    return events, None, None
