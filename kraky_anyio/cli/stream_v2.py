"""``stream --api v2``: every typed v2 message as one compact JSON line.

A v2 message is written with Kraken's wire field names, the ``channel`` (or
``method``) first, every Decimal as a plain decimal string with its exact
digits (``"0.50000000"``, and ``"0.00000000"``, never ``str(d)``'s ``"0E-8"``),
a response's absent (None) fields left out; notices as v1's
``{"notice": name, ...}``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from decimal import Decimal
from typing import Any

import anyio
import msgspec

from ..errors import KrakenError
from ..notices import Notice
from ..taskgroup import task_group
from ..v1.codec import json_default
from ..v2.connection import KrakenV2Connection
from ..v2.messages import HeartbeatMessage, Response, StatusMessage
from .args import PROG
from .commands import connect_v2, endpoint, json_line, token_from_environment
from .state import CommandError, StateTracker, UsageError, enforce_limits

__all__ = ["channel_params", "is_data", "stream_v2", "v2_line"]


def v2_line(msg: Any) -> str:
    """One v2 message (or notice) as one compact JSON line."""
    if isinstance(msg, Notice):
        return json_line(msg)
    # Decimals kept as such, then rendered by json_default (format(d, "f")):
    # msgspec's own encoder writes str(d), i.e. "0E-8" for 0.00000000.
    plain = msgspec.to_builtins(msg, builtin_types=(Decimal,))
    if isinstance(msg, Response):
        plain = {key: value for key, value in plain.items() if value is not None}
    return json.dumps(plain, separators=(",", ":"), default=json_default)


def is_data(msg: Any) -> bool:
    """Channel data: not a response, notice, ``status`` or ``heartbeat``."""
    return not isinstance(msg, Notice | Response | StatusMessage | HeartbeatMessage)


def channel_params(args: argparse.Namespace) -> dict[str, Any]:
    """The subscription parameters the command line gives ``args.channel``
    (``--depth`` for books, ``--interval`` for ``ohlc``)."""
    if args.channel in ("book", "level3"):
        return {"depth": args.depth}
    if args.channel == "ohlc":
        return {"interval": args.interval}
    return {}


async def _subscribe(conn: KrakenV2Connection, args: argparse.Namespace) -> None:
    """Subscribe; name each refused symbol on stderr and go on with the rest
    (:class:`CommandError` if every symbol was refused; :class:`UsageError`
    for a parameter the library refuses before sending)."""
    symbols: list[str] = args.pairs
    try:
        await conn.subscribe(args.channel, symbols or None, **channel_params(args))
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    except KrakenError as exc:
        refused = [r for r in exc.replies if isinstance(r, Response) and r.success is False]
        if not symbols or len(refused) >= len(symbols):
            if len(refused) > 1:
                raise CommandError("; ".join(f"{r.symbol}: {r.error}" for r in refused)) from None
            raise
        for reply in refused:
            print(
                f"{PROG}: warning: {reply.symbol}: {reply.error} (streaming the other symbols)",
                file=sys.stderr,
                flush=True,
            )


async def stream_v2(args: argparse.Namespace) -> None:
    """The ``stream`` command on v2 (``level3`` reads the key and secret from
    the environment and connects to the ``level3`` endpoint by default)."""
    level3 = args.channel == "level3"
    token = token_from_environment() if level3 else None
    out, err = sys.stdout, sys.stderr
    data = 0
    async with (
        connect_v2(endpoint(args, False, "level3" if level3 else None), token=token) as conn,
        conn.messages() as messages,
        task_group() as tg,
    ):
        tg.start_soon(enforce_limits, StateTracker(conn), args.max_attempts, args.timeout)
        # Subscribing in its own task: lines flow while the responses come.
        tg.start_soon(_subscribe, conn, args)
        with anyio.move_on_after(math.inf if args.duration is None else args.duration):
            async for msg in messages:
                target = out
                if is_data(msg):
                    data += 1
                elif args.data_only:
                    if not isinstance(msg, Notice):
                        continue
                    target = err
                target.write(v2_line(msg) + "\n")
                target.flush()
                if args.count is not None and data >= args.count:
                    break
