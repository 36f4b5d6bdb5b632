"""``kraky-anyio serve --replay FILE [--speed 1|10|max] [--loop]``: a
recording served by the fake exchange instead of the simulated market (see
:mod:`kraky_anyio.testing.replay`). The fake exchange is imported only when
the command runs."""

from __future__ import annotations

import argparse
import math
import sys

import anyio

from .args import PROG
from .state import UsageError

__all__ = ["serve_replay"]


async def serve_replay(args: argparse.Namespace) -> None:
    """Serve ``args.replay`` until Ctrl-C. Prints the URL of the recording's
    API first, then the other one's (the live fake, no data), on stdout; a
    line on stderr when the replay starts and when it ends. A file that is
    not a recording: :class:`UsageError` (exit 2)."""
    from ..testing.replay_formats import RecordingFormatError, read_recording
    from ..testing.server import open_fake_kraken

    if getattr(args, "trading", False):
        raise UsageError("--replay serves a recording: it does not take --trading")
    try:
        recording = read_recording(args.replay)
    except (RecordingFormatError, FileNotFoundError, IsADirectoryError) as exc:
        raise UsageError(f"--replay: {exc}") from None
    speed = "max" if math.isinf(args.speed) else args.speed
    async with open_fake_kraken(
        args.host, args.port, replay=recording, speed=speed, loop=args.loop
    ) as server:
        urls = {"v1": server.url, "v2": server.v2_url}
        api = recording.api
        print(urls[api], flush=True)
        print(urls["v2" if api == "v1" else "v1"], flush=True)
        replay = server.replay
        assert replay is not None
        print(
            f"{PROG}: replaying {args.replay} ({api}, {len(replay.tape.frames)} frames, "
            f"{len(replay.tape.keys)} streams, {recording.duration:.1f} s recorded; speed "
            f"{speed}{', looping' if args.loop else ''}) on {urls[api]}; it starts when a "
            "client subscribes; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        await replay.wait_finished()
        print(
            f"{PROG}: the replay has ended ({replay.sent} frames sent); still serving",
            file=sys.stderr,
            flush=True,
        )
        await anyio.sleep_forever()
