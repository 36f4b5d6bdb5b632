"""The commands: ``stream``, ``book``, ``trade`` against any endpoint;
``demo`` and ``serve`` on the simulated exchange (imported only when run)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from ..connection import KrakenConnection, open_kraken
from ..errors import KrakenError
from ..notices import Notice
from ..options import TokenProvider
from ..taskgroup import task_group
from ..v1.codec import json_default
from ..v2.connection import KrakenV2Connection
from ..v2.connection import open_kraken as open_kraken_v2
from .args import PRIVATE_CHANNELS, PROG
from .state import CommandError, StateTracker, UsageError, enforce_limits
from .view import watch

if TYPE_CHECKING:
    from ..testing.market import MarketSimulator
    from ..testing.server import FakeKrakenServer

DEMO_PAIR = "XBT/USD"
DEMO_SYMBOL = "BTC/USD"  # the same pair, v2 spelling
#: The environment variables the private commands read (and never print).
KEY_VARIABLE, SECRET_VARIABLE = "KRAKEN_API_KEY", "KRAKEN_API_SECRET"
#: Optional: another REST server for the token (tests point it at a fake one).
API_URL_VARIABLE = "KRAKEN_API_URL"


def json_line(msg: Any) -> str:
    """One message as one compact JSON line; a notice as ``{"notice": name, ...}``."""
    if isinstance(msg, Notice):
        fields = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
        msg = {"notice": type(msg).__name__, **fields}
    return json.dumps(msg, separators=(",", ":"), default=json_default)


def endpoint(args: argparse.Namespace, private: bool, default: str | None = None) -> str:
    env: str = args.url or args.env or default or ("production-auth" if private else "production")
    return env


def token_from_environment() -> TokenProvider:
    """A token provider for the key and secret in the environment; they are
    never taken from arguments (which other users can read) nor printed."""
    from ..auth import DEFAULT_BASE_URL, KrakenTokenProvider

    key, secret = os.environ.get(KEY_VARIABLE), os.environ.get(SECRET_VARIABLE)
    if not key or not secret:
        raise UsageError(
            f"private channels and trading need {KEY_VARIABLE} and {SECRET_VARIABLE} "
            "in the environment"
        )
    base_url = os.environ.get(API_URL_VARIABLE) or DEFAULT_BASE_URL
    try:
        return KrakenTokenProvider(key, secret, base_url=base_url)
    except (TypeError, ValueError) as exc:  # its messages never hold the secret
        raise UsageError(f"{SECRET_VARIABLE}: {exc}") from None


@asynccontextmanager
async def connect(connection_env: str, **options: Any) -> AsyncIterator[KrakenConnection]:
    """``open_kraken``, with a bad URL or option refused at entry turned into
    :class:`UsageError` (exit 2); errors from inside the block pass through."""
    async with AsyncExitStack() as stack:
        try:
            conn = await stack.enter_async_context(open_kraken(connection_env, **options))
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from None
        yield conn


@asynccontextmanager
async def connect_v2(connection_env: str, **options: Any) -> AsyncIterator[KrakenV2Connection]:
    """:func:`connect` for ``v2.open_kraken``."""
    async with AsyncExitStack() as stack:
        try:
            conn = await stack.enter_async_context(open_kraken_v2(connection_env, **options))
        except (ValueError, TypeError) as exc:
            raise UsageError(str(exc)) from None
        yield conn


# -- stream -----------------------------------------------------------------


async def _subscribe(
    conn: KrakenConnection, subscription: dict[str, Any], pairs: list[str]
) -> None:
    """Subscribe; name each refused pair on stderr and go on with the rest
    (:class:`CommandError` if every pair was refused)."""
    try:
        await conn.subscribe(subscription, pairs or None)
    except KrakenError as exc:
        refused = [r for r in exc.replies if r.get("status") == "error"]
        if not pairs or len(refused) >= len(pairs):
            if len(refused) > 1:
                raise CommandError(
                    "; ".join(f"{r.get('pair')}: {r.get('errorMessage')}" for r in refused)
                ) from None
            raise
        for reply in refused:
            print(
                f"{PROG}: warning: {reply.get('pair')}: {reply.get('errorMessage')} "
                "(streaming the other pairs)",
                file=sys.stderr,
                flush=True,
            )


async def stream(args: argparse.Namespace) -> None:
    if args.api == "v2":
        from .stream_v2 import stream_v2

        await stream_v2(args)
        return
    private = args.channel in PRIVATE_CHANNELS
    subscription: dict[str, Any] = {"name": args.channel}
    if args.channel == "book":
        subscription["depth"] = args.depth
    elif args.channel == "ohlc":
        subscription["interval"] = args.interval
    token = token_from_environment() if private else None
    out, err = sys.stdout, sys.stderr
    data = 0
    async with (
        connect(endpoint(args, private), token=token) as conn,
        conn.messages() as messages,
        task_group() as tg,
    ):
        tg.start_soon(enforce_limits, StateTracker(conn), args.max_attempts, args.timeout)
        # Subscribing in its own task: lines flow while the replies come.
        tg.start_soon(_subscribe, conn, subscription, args.pairs)
        with anyio.move_on_after(math.inf if args.duration is None else args.duration):
            async for msg in messages:
                target = out
                if isinstance(msg, list):
                    data += 1
                elif args.data_only:
                    if not isinstance(msg, Notice):
                        continue
                    target = err
                target.write(json_line(msg) + "\n")
                target.flush()
                if args.count is not None and data >= args.count:
                    break


# -- book, demo, serve --------------------------------------------------------


async def book(args: argparse.Namespace) -> None:
    if args.api == "v2":
        async with connect_v2(endpoint(args, False)) as conn_v2:
            await watch(
                conn_v2,
                args.pair,
                args.depth,
                f"{PROG} · {conn_v2.url}",
                duration=args.duration,
                max_attempts=args.max_attempts,
                down_for=args.timeout,
            )
        return
    async with connect(endpoint(args, False)) as conn:
        await watch(
            conn,
            args.pair,
            args.depth,
            f"{PROG} · {conn.url}",
            duration=args.duration,
            max_attempts=args.max_attempts,
            down_for=args.timeout,
        )


async def _faults(server: FakeKrakenServer, sim: MarketSimulator, every: float, api: str) -> None:
    while True:
        await anyio.sleep(every)
        if api == "v2":
            sim.corrupt_next_v2_checksum(DEMO_SYMBOL)
        else:
            sim.corrupt_next_checksum(DEMO_PAIR)
        await anyio.sleep(every)
        await server.drop()


async def demo(args: argparse.Namespace) -> None:
    from ..testing.market import MarketSimulator, run_market
    from ..testing.server import open_fake_kraken

    # The simulated clock starts at the wall clock's time, so that trade
    # times read like today's; it then moves by the market's steps.
    sim = MarketSimulator(seed=args.seed, start_time=int(time.time()))
    async with (
        open_fake_kraken(
            pairs=sim.pairs, snapshot_provider=sim.snapshot, v2_snapshot_provider=sim.v2_snapshot
        ) as server,
        task_group() as tg,
    ):
        tg.start_soon(run_market, server, sim)
        if args.faults:
            tg.start_soon(_faults, server, sim, args.faults, args.api)
        title = f"{PROG} demo · {args.api} · simulated exchange and clock · seed {args.seed}"
        if args.api == "v2":
            async with connect_v2(server.v2_url) as conn_v2:
                await watch(conn_v2, DEMO_SYMBOL, 10, title, duration=args.duration, simulated=True)
        else:
            async with connect(server.url) as conn:
                await watch(conn, DEMO_PAIR, 10, title, duration=args.duration, simulated=True)


async def serve(args: argparse.Namespace) -> None:
    if args.replay is not None:
        from .serve_replay import serve_replay

        return await serve_replay(args)
    from ..testing.engine import FakeMatchingEngine
    from ..testing.market import MarketSimulator, run_market
    from ..testing.server import open_fake_kraken

    sim = MarketSimulator(dict.fromkeys(args.pairs), seed=args.seed)
    # Orders fill at the simulated market's opening best ask (a fixed price).
    reference = {p: sim.snapshot("book-10", p)[0]["as"][0][0] for p in sim.pairs}
    engine = FakeMatchingEngine(seed=args.seed, reference_prices=reference)
    extra: dict[str, Any] = {}
    if args.trading:
        from .serve_trading import instructions, trading_setup

        engine, extra = trading_setup(args, sim, reference)
    async with (
        open_fake_kraken(
            args.host,
            args.port,
            pairs=sim.pairs,
            snapshot_provider=sim.snapshot,
            v2_snapshot_provider=sim.v2_snapshot,
            order_handler=engine,
            **extra,
        ) as server,
        task_group() as tg,
    ):
        tg.start_soon(functools.partial(run_market, server, sim, interval=args.step))
        # Both APIs are served; --api only orders the two URL lines (v1's
        # first by default: scripts written before v2 read the first line).
        urls = {"v1": server.url, "v2": server.v2_url}
        first = args.api or "v1"
        order = (first, "v2" if first == "v1" else "v1")
        for api in order:
            print(urls[api], flush=True)
        print(
            f"{PROG}: simulated exchange with {', '.join(sim.pairs)} "
            f"(v2: {', '.join(sim.symbols)}; seed {args.seed}): {order[0]} on "
            f"{urls[order[0]]}, {order[1]} on {urls[order[1]]}; orders (v1 and v2) "
            f"accepted with {'the test token' if args.trading else 'any token'}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        if args.trading:
            print(args.token, flush=True)  # the third stdout line
            print(f"{PROG}: {instructions(args, server.v2_url)}", file=sys.stderr, flush=True)
        await anyio.sleep_forever()


# -- trade ----------------------------------------------------------------------


async def trade(args: argparse.Namespace) -> None:
    token = token_from_environment()
    async with connect(endpoint(args, True), token=token) as conn, task_group() as tg:
        tg.start_soon(enforce_limits, StateTracker(conn), args.max_attempts, args.timeout)
        reply: Any
        if args.action == "add":
            reply = await conn.add_order(
                pair=args.pair,
                type=args.type,
                ordertype=args.ordertype,
                volume=args.volume,
                price=args.price,
                validate=True if args.validate else None,
            )
        elif args.action == "cancel":
            reply = await conn.cancel_order(txid=args.txids)
        else:
            reply = await conn.cancel_all()
        print(json_line(reply), flush=True)


async def record(args: argparse.Namespace) -> None:
    from .record import record_session

    await record_session(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "demo": demo,
    "stream": stream,
    "book": book,
    "serve": serve,
    "trade": trade,
    "record": record,
}
