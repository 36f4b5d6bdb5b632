"""``kraky-anyio``: the command line (also ``python -m kraky_anyio``).

* ``demo``: the fake exchange and its simulated market in-process, and a live
  checksum-verified book of BTC/USD (v1: XBT/USD) drawn in the terminal.
* ``stream CHANNEL [PAIR...]``: every message as one JSON line.
* ``book PAIR``: the live book view against any endpoint.
* ``trade add|cancel|cancel-all``: orders (v1), with the API key and secret
  read from ``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET``.
* ``serve``: the simulated exchange as a server (v1 on ``/``, v2 on ``/v2``).

``demo``, ``stream`` and ``book`` speak Kraken's v2 API unless ``--api v1``;
trading and v1's private channels are v1-only for now (``--api v2``: exit 2).

Exit status: 0 done, 1 error (one line on stderr), 2 bad arguments, 130 on
Ctrl-C, 143 on SIGTERM (both after a clean shutdown and the summary). The
terminal view needs the ``cli`` extra (``rich``); the fake exchange, rich and
trio are imported only when a command needs them.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

import anyio

from ..errors import KrakyError
from ..taskgroup import task_group
from .args import PROG, parse
from .commands import COMMANDS
from .state import CommandError, UsageError

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["RICH_HINT", "main"]

RICH_HINT = f'{PROG}: this command needs rich: pip install "kraky-anyio[cli]"'
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each record: the live view
    redirects it to print above the frame."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _configure_logging(args: argparse.Namespace) -> Callable[[], None]:
    """Send the library's log records to stderr with time and level; returns
    the function that undoes it (``main`` may run inside a bigger program)."""
    if args.log_level:
        level = getattr(logging, args.log_level.upper())
    elif args.verbose:
        level = logging.INFO if args.verbose == 1 else logging.DEBUG
    else:
        # The live views show the connection's state themselves.
        level = logging.ERROR if args.command in ("demo", "book") else logging.WARNING
    logger = logging.getLogger("kraky_anyio")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(before)

    return undo


async def _run(args: argparse.Namespace) -> bool:
    """Run the command; returns True if SIGTERM ended it (cleanly: the
    command was cancelled, its cleanup and summary ran)."""
    terminated = False
    async with task_group() as tg:

        async def on_sigterm() -> None:
            nonlocal terminated
            with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _ in signals:
                    terminated = True
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(on_sigterm)
        await COMMANDS[args.command](args)
    return terminated


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null, so that the flush at
    exit does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parse(None if argv is None else list(argv))
    if args.command in ("demo", "book"):
        try:
            import rich  # noqa: F401
        except ImportError:
            print(RICH_HINT, file=sys.stderr)
            return 1
    undo_logging = _configure_logging(args)
    try:
        terminated = anyio.run(_run, args, backend=args.backend)
    except BaseException as exc:
        leaves = _leaves(exc)
        if any(isinstance(leaf, BrokenPipeError) for leaf in leaves):
            _silence_stdout()
        if all(isinstance(leaf, BrokenPipeError) for leaf in leaves):
            return 0
        if all(isinstance(leaf, KeyboardInterrupt | BrokenPipeError) for leaf in leaves):
            return EXIT_INTERRUPTED
        if isinstance(exc, LookupError) and args.backend == "trio":
            print(f"{PROG}: error: the trio backend needs trio: pip install trio", file=sys.stderr)
            return 1
        if all(isinstance(leaf, CommandError | KrakyError | OSError) for leaf in leaves):
            for leaf in leaves:
                print(f"{PROG}: error: {leaf}", file=sys.stderr)
            usage = all(isinstance(leaf, UsageError) for leaf in leaves)
            return 2 if usage else 1
        raise
    finally:
        undo_logging()
    return EXIT_TERMINATED if terminated else 0
