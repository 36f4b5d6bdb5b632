"""``record``: subscribe and record the whole connection to a file.

The connection is opened with ``record=`` (:mod:`kraky_anyio.recording`), so
the file holds everything from the first socket on: the status frame, the
subscribe and its acks, every frame after, reconnects. Runs until Ctrl-C,
SIGTERM or ``--duration``; then the file is finished and one summary line goes
to stderr (frames, bytes, dropped). Private channels take their token from
the environment, as ``stream`` does; the token is redacted in the file.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import anyio

from ..errors import KrakenError
from ..recording import Recorder, RecordOptions
from ..taskgroup import task_group
from ..v2.connection import KrakenV2Connection
from .args import PRIVATE_CHANNELS, PROG
from .commands import connect, connect_v2, endpoint, token_from_environment
from .state import CommandError, StateTracker, UsageError, enforce_limits
from .stream_v2 import channel_params

__all__ = ["record_session", "summary"]


def _options(args: argparse.Namespace) -> RecordOptions:
    return RecordOptions(
        Path(args.output),
        overflow=args.overflow,
        rotate_bytes=args.rotate_bytes,
        rotate_seconds=args.rotate_seconds,
        overwrite=args.force,
    )


async def _subscribe(conn: Any, args: argparse.Namespace) -> None:
    """Subscribe to the channel (every pair), then say so on stderr;
    :class:`CommandError` if Kraken refused any pair."""
    pairs: list[str] = args.pairs
    try:
        if isinstance(conn, KrakenV2Connection):
            await conn.subscribe(args.channel, pairs or None, **channel_params(args))
        else:
            await conn.subscribe({"name": args.channel, **channel_params(args)}, pairs or None)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    except KrakenError as exc:
        raise CommandError(f"subscribing to {args.channel} failed: {exc}") from None
    what = " ".join([args.channel, *pairs])
    print(
        f"{PROG}: recording {what} to {args.output} (Ctrl-C to stop)", file=sys.stderr, flush=True
    )


def summary(recorder: Recorder) -> str:
    """One line: frames, bytes, parts, dropped."""
    stats = recorder.stats
    files = f"{stats.parts} files" if stats.parts != 1 else "1 file"
    return (
        f"{PROG}: recorded {stats.frames_recorded} frames received and "
        f"{stats.frames_sent} sent to {recorder.path} ({files}, {stats.bytes_written} bytes, "
        f"{stats.file_bytes} on disk); {stats.frames_dropped} dropped"
    )


async def record_session(args: argparse.Namespace) -> None:
    """The ``record`` command (see the module docstring)."""
    private = args.channel in PRIVATE_CHANNELS or args.channel == "level3"
    token = token_from_environment() if private else None
    options = _options(args)
    default = "level3" if args.channel == "level3" else None
    where = endpoint(args, private and args.api == "v1", default)
    recorder: Recorder | None = None
    opener = connect_v2 if args.api == "v2" else connect
    try:
        async with opener(where, token=token, record=options) as conn, task_group() as tg:
            recorder = conn.recording
            tg.start_soon(enforce_limits, StateTracker(conn), args.max_attempts, args.timeout)
            tg.start_soon(_subscribe, conn, args)
            await anyio.sleep(math.inf if args.duration is None else args.duration)
            tg.cancel_scope.cancel()
    except FileExistsError:
        raise UsageError(f"{args.output} exists: pass --force to replace it") from None
    finally:
        if recorder is not None:
            # Also after Ctrl-C: the file was finished when the block was left.
            print(summary(recorder), file=sys.stderr, flush=True)
