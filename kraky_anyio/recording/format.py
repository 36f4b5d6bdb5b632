"""The recording format, version 1: what each line of a recording holds.

A recording is JSON lines (one object per line, UTF-8), compressed by the
file's suffix (see :mod:`kraky_anyio.recording.writer`). Every line has a
``kind``; times are ``t`` (seconds since the recording started, on the
connection's monotonic clock, ``anyio.current_time()``) and ``wall`` (Unix
epoch seconds, the wall clock when the frame was seen)::

    {"kind":"header","format":"kraky-anyio-recording","version":1,
     "library":"0.1.0","api":"v1"|"v2","url":"wss://ws.kraken.com",
     "started":"2026-12-01T18:00:00.123456Z","part":0}
    {"kind":"open","t":0.01,"wall":1796000000.1,"gen":1}
    {"kind":"recv","t":0.02,"wall":1796000000.2,"gen":1,"text":"<frame exactly>"}
    {"kind":"recv","t":0.02,"wall":1796000000.2,"gen":1,"b64":"<binary frame>"}
    {"kind":"sent","t":0.03,"wall":1796000000.3,"gen":1,"text":"<frame, secrets redacted>"}
    {"kind":"close","t":9.5,"wall":1796000009.6,"gen":1,"reason":"..."}
    {"kind":"gap","t":9.7,"wall":1796000009.8,"dropped":12}

* ``header``: the first line of every file (of every part when rotating,
  ``part`` 0, 1, ...; ``started`` is the start of the whole recording, the
  zero of ``t``, in every part). ``url`` has no query string, fragment or
  user info.
* ``open``/``close``: a socket (its generation ``gen``, counted from 1 for the
  connection) opened or closed. A recording started on a connection whose
  socket is already open begins with an ``open`` line for that socket at the
  recording's start: what came before is not in the file.
* ``recv``: one received frame, the exact text as ``text`` (a JSON string:
  ``json.loads`` gives back the very ``str`` the client decoded), or a binary
  frame's bytes as base64 in ``b64``. Frames of one socket read share ``t``.
* ``sent``: one frame the client wrote (requests, replays, liveness pings),
  with the value of every ``token`` (and ``api_key``, ``api_secret``,
  ``secret``) key at any depth replaced by ``"<redacted>"``; the rest of the
  text is kept as written.
* ``gap``: ``dropped`` received frames were not recorded here because the
  disk could not keep up (``overflow="drop"``); ``t`` is the last lost
  frame's.

Lines appear in the order the client saw them; ``t`` never decreases.
Readers should ignore keys they do not know (later versions may add some).
"""

from __future__ import annotations

import base64
import datetime
import re
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import msgspec

from ..redaction import REDACTED, SECRET_KEYS, redact

__all__ = [
    "FORMAT",
    "VERSION",
    "Entry",
    "clean_url",
    "encode_entry",
    "encode_header",
    "header",
    "redact_frame",
]

#: The ``format`` of every header line.
FORMAT: Final = "kraky-anyio-recording"
#: The ``version`` of the format written here.
VERSION: Final = 1

#: What the recorder queues for each line (encoded later, off the reader's
#: path): ``(kind, t, wall, gen, payload)``. The payload is the frame
#: (``recv``: ``str`` or ``bytes``; ``sent``: the text as written, redacted
#: when encoded), the reason (``close``), the count (``gap``) or None.
Entry = tuple[str, float, float, int, Any]

_encode = msgspec.json.Encoder().encode
# A secret key with a string value, as our encoders write it: replaced in the
# text itself, so that the rest of the frame stays byte for byte.
_SECRET_VALUE = re.compile(
    r'"(' + "|".join(sorted(SECRET_KEYS)) + r')"(\s*):(\s*)"(?:[^"\\]|\\.)*"'
)
# Decimals stay exact if a frame must be written again (see redact_frame).
_decode_exact = msgspec.json.Decoder(float_hook=lambda text: msgspec.Raw(text.encode())).decode


def clean_url(url: str) -> str:
    """``url`` without its query string, fragment and user info (where a
    secret could hide)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def rfc3339(wall: float) -> str:
    """Epoch seconds as RFC 3339 UTC with microseconds: ``2026-12-01T18:00:00.123456Z``."""
    moment = datetime.datetime.fromtimestamp(wall, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def header(api: str, url: str, started_wall: float, part: int) -> dict[str, Any]:
    """The header line of part ``part`` of a recording started at ``started_wall``."""
    from .. import __version__  # here: the package imports this module while it loads

    return {
        "kind": "header",
        "format": FORMAT,
        "version": VERSION,
        "library": __version__,
        "api": api,
        "url": clean_url(url),
        "started": rfc3339(started_wall),
        "part": part,
    }


def encode_header(fields: dict[str, Any]) -> bytes:
    """A header dict as one line (with its newline)."""
    return _encode(fields) + b"\n"


def _has_secret(obj: Any) -> bool:
    if isinstance(obj, dict):
        return any((k in SECRET_KEYS and v != REDACTED) or _has_secret(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_secret(v) for v in obj)
    return False


def redact_frame(text: str) -> str:
    """``text`` with every secret value replaced by ``"<redacted>"``.

    The values are replaced in the text, so the rest stays as written. If a
    secret is still there afterwards (a key spelled with escapes, a value
    that is not a string), the frame is decoded, redacted and encoded again
    (numbers kept exactly, spacing lost). A frame that is not JSON keeps only
    the textual replacement: the shell only writes JSON.
    """
    redacted = _SECRET_VALUE.sub(lambda m: f'"{m[1]}"{m[2]}:{m[3]}"{REDACTED}"', text)
    try:
        obj = _decode_exact(redacted)
    except (msgspec.DecodeError, RecursionError):
        return redacted
    if not _has_secret(obj):
        return redacted
    return _encode(redact(obj)).decode()


def _micro(seconds: float) -> float:
    """To the microsecond (shorter lines; several times cheaper than ``round``)."""
    return int(seconds * 1_000_000 + 0.5) / 1_000_000


def encode_entry(entry: Entry) -> bytes:
    """One queued entry as one line (with its newline)."""
    kind, t, wall, gen, payload = entry
    line: dict[str, Any] = {"kind": kind, "t": _micro(t), "wall": _micro(wall)}
    if kind == "gap":
        line["dropped"] = payload
        return _encode(line) + b"\n"
    line["gen"] = gen
    if kind == "recv":
        if isinstance(payload, str):
            line["text"] = payload
        else:
            line["b64"] = base64.b64encode(payload).decode("ascii")
    elif kind == "sent":
        line["text"] = redact_frame(payload)
    elif kind == "close":
        line["reason"] = payload
    return _encode(line) + b"\n"
