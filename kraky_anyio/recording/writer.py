"""Writing a recording's files: compression by suffix, rotation into parts.

Synchronous, blocking file I/O: :class:`PartWriter` is driven by the
recorder's writer task through ``anyio.to_thread.run_sync``, one batch of
lines per call, never from the event loop's thread.

* Compression by the path's last suffix: ``.gz`` gzip (level 6),
  ``.zst`` zstandard (level 3; the ``zstandard`` package, the ``record``
  extra), ``.jsonl`` none. Anything else is refused (``ValueError``) before a
  file is opened.
* Parts: the first file is the path itself, the next ones ``PATH.1``,
  ``PATH.2``, ... (the number in each header's ``part`` too: sort parts by
  it, not by name, as ``PATH.10`` sorts before ``PATH.2``). A new part starts
  before a line that would take the part past ``rotate_bytes`` of
  *uncompressed* lines (so a compressed part is smaller), or before the first
  line at least ``rotate_seconds`` of recording time after the part began.
  Every part holds its header and at least one line.
* While batches keep coming, a part is flushed (compressed streams too) with
  the first batch ``FLUSH_SECONDS`` after the last flush, so a reader can
  follow a live recording and a crash loses little; :meth:`PartWriter.close`
  finishes the stream (a complete gzip or zstandard frame).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final, cast

from ..errors import KrakyError
from .format import Entry, encode_entry, encode_header

__all__ = [
    "COMPRESSIONS",
    "FLUSH_SECONDS",
    "PartWriter",
    "RecordingError",
    "compression_of",
    "part_path",
]

#: Suffix -> compression name.
COMPRESSIONS: Final = {".gz": "gzip", ".zst": "zstandard", ".jsonl": "none"}
#: A batch written this long (seconds, wall clock) after a part's last flush flushes it.
FLUSH_SECONDS: Final = 1.0
ZSTANDARD_HINT: Final = (
    'recording to .zst needs the zstandard package: pip install "kraky-anyio[record]"'
)


class RecordingError(KrakyError):
    """A recording could not be written (its cause chained), or ``.zst``
    without the ``zstandard`` package."""


def compression_of(path: Path) -> str:
    """``"gzip"``, ``"zstandard"`` or ``"none"`` for ``path``'s suffix;
    ``ValueError`` for another suffix, :class:`RecordingError` for ``.zst``
    without the zstandard package."""
    compression = COMPRESSIONS.get(path.suffix)
    if compression is None:
        raise ValueError(
            f"a recording's name ends in .jsonl.gz, .jsonl.zst or .jsonl, not {path.name!r}"
        )
    if compression == "zstandard":
        try:
            import zstandard  # noqa: F401
        except ImportError:
            raise RecordingError(ZSTANDARD_HINT) from None
    return compression


def part_path(path: Path, part: int) -> Path:
    """The file of part ``part``: ``path`` itself for 0, else ``path.<part>``."""
    return path if part == 0 else path.with_name(f"{path.name}.{part}")


def existing_parts(path: Path) -> list[Path]:
    """Files of an earlier recording at ``path`` (itself and ``path.<n>``)."""
    found = [path] if path.exists() else []
    prefix = path.name + "."
    if path.parent.is_dir():
        found += [
            p
            for p in path.parent.iterdir()
            if p.name.startswith(prefix) and p.name[len(prefix) :].isdigit()
        ]
    return found


def _open(path: Path, compression: str) -> IO[bytes]:
    if compression == "gzip":
        return cast(IO[bytes], gzip.GzipFile(path, "wb", compresslevel=6))
    raw = open(path, "wb")  # noqa: SIM115 -- the stream over it closes it
    if compression == "zstandard":
        import zstandard

        try:
            writer: IO[bytes] = zstandard.ZstdCompressor(level=3).stream_writer(raw)
        except BaseException:
            raw.close()
            raise
        return writer
    return raw


class PartWriter:
    """The files of one recording: opens part 0 (header written) on creation,
    writes batches of entries, rotates, closes. Blocking; not thread-safe
    (one call at a time). ``OSError`` from the disk propagates."""

    def __init__(
        self,
        path: Path,
        header: Callable[[int], dict[str, Any]],
        *,
        rotate_bytes: int | None = None,
        rotate_seconds: float | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = path
        self.compression = compression_of(path)
        self._header = header
        self._rotate_bytes = rotate_bytes
        self._rotate_seconds = rotate_seconds
        old = existing_parts(path)
        if old and not overwrite:
            raise FileExistsError(f"a recording exists at {path} (pass overwrite=True to replace)")
        for stale in old:
            stale.unlink()
        #: Parts opened so far.
        self.parts = 0
        #: Lines written (headers included) and their uncompressed bytes.
        self.lines = 0
        self.bytes = 0
        self._file: IO[bytes] | None = None
        self._part_bytes = 0
        self._part_lines = 0
        self._part_t = 0.0
        self._flushed_at = time.monotonic()
        self._start_part(0.0)

    def _start_part(self, t: float) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._file = _open(part_path(self.path, self.parts), self.compression)
        line = encode_header(self._header(self.parts))
        self.parts += 1
        self._part_bytes, self._part_lines, self._part_t = 0, 0, t
        self._write(line)
        self._part_lines = 0  # the header does not count as the part's line

    def _write(self, line: bytes) -> None:
        assert self._file is not None
        self._file.write(line)
        self._part_bytes += len(line)
        self._part_lines += 1
        self.lines += 1
        self.bytes += len(line)

    def write(self, entries: list[Entry]) -> None:
        """Encode and write ``entries`` in order, rotating where due."""
        if self._file is None:
            raise RecordingError(f"the recording {self.path} is closed")
        limit, every = self._rotate_bytes, self._rotate_seconds
        for entry in entries:
            line = encode_entry(entry)
            if self._part_lines and (
                (limit is not None and self._part_bytes + len(line) > limit)
                or (every is not None and entry[1] - self._part_t >= every)
            ):
                self._start_part(entry[1])
            self._write(line)
        now = time.monotonic()
        if now - self._flushed_at >= FLUSH_SECONDS:
            self._file.flush()
            self._flushed_at = now

    def close(self) -> None:
        """Finish the current part's stream and close it (idempotent)."""
        if self._file is not None:
            file, self._file = self._file, None
            file.close()

    def file_bytes(self) -> int:
        """Bytes on disk of every part (compressed)."""
        total = 0
        for part in range(self.parts):
            with contextlib.suppress(OSError):  # removed meanwhile: not ours to count
                total += os.path.getsize(part_path(self.path, part))
        return total
