"""``kraky-anyio``: the command line (also ``python -m kraky_anyio``).

* ``demo``: the fake exchange and its simulated market in-process, and a live
  checksum-verified book of XBT/USD drawn in the terminal.
* ``stream CHANNEL PAIR...``: every message as one JSON line.
* ``book PAIR``: the live book view against any endpoint.
* ``serve``: the simulated exchange as a server, for other programs.

Ctrl-C ends any of them with exit status 0. The terminal view needs the
``cli`` extra (``rich``); this module imports it, the fake exchange and trio
only when a command needs them.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from ._taskgroup import task_group
from .book import DEPTHS
from .connection import KrakenConnection, open_kraken
from .errors import KrakyError
from .notices import Notice
from .protocol import ENVIRONMENTS, _json_default, resolve_url

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from rich.console import RenderableType

    from .live_book import LiveBook
    from .testing.market import MarketSimulator
    from .testing.server import FakeKrakenServer

__all__ = ["main"]

PROG = "kraky-anyio"
RICH_HINT = f'{PROG}: this command needs rich: pip install "kraky-anyio[cli]"'
DEMO_PAIR = "XBT/USD"
#: Frames per second of the terminal view.
FPS = 10


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _url(text: str) -> str:
    if not text.startswith(("ws://", "wss://")):
        raise argparse.ArgumentTypeError(f"not a ws:// or wss:// URL: {text!r}")
    return text


def _pair(text: str) -> str:
    base, _, quote = text.partition("/")
    if not base or not quote or "/" in quote:
        raise argparse.ArgumentTypeError(f"a pair is spelled BASE/QUOTE, e.g. XBT/USD: {text!r}")
    return text


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535: {text!r}")
    return port


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Kraken Spot WebSocket v1 client on anyio: watch, stream, or simulate.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> _Parser:
        sub: _Parser = commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "--backend",
            choices=("asyncio", "trio"),
            default="asyncio",
            help="the event loop to run on (default: asyncio)",
        )
        return sub

    def endpoint(sub: _Parser) -> None:
        where = sub.add_mutually_exclusive_group()
        where.add_argument(
            "--env",
            choices=tuple(ENVIRONMENTS),
            default="production",
            help="Kraken environment (default: production)",
        )
        where.add_argument("--url", type=_url, help="a ws:// or wss:// URL instead")

    demo = add("demo", "a live, checksum-verified book on a simulated exchange, in-process")
    demo.add_argument("--seed", type=int, default=0, help="market seed (default: 0)")
    demo.add_argument("--duration", type=_positive, help="stop after SECONDS (default: Ctrl-C)")
    demo.add_argument(
        "--faults",
        type=_positive,
        metavar="SECONDS",
        help="every SECONDS, alternately corrupt a checksum and drop the connection",
    )

    stream = add("stream", "print every message of a subscription as one JSON line")
    stream.add_argument("channel", choices=("ticker", "trade", "spread", "book", "ohlc"))
    stream.add_argument("pairs", nargs="+", type=_pair, metavar="PAIR", help="e.g. XBT/USD")
    endpoint(stream)
    stream.add_argument("--depth", type=int, choices=DEPTHS, default=10, help="book depth")
    stream.add_argument("--interval", type=int, default=1, help="ohlc interval in minutes")

    book = add("book", "a live, checksum-verified book of PAIR")
    book.add_argument("pair", type=_pair, metavar="PAIR", help="e.g. XBT/USD")
    book.add_argument("--depth", type=int, choices=DEPTHS, default=10, help="book depth")
    endpoint(book)

    serve = add("serve", "run the simulated exchange as a server until Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_port, default=0, help="TCP port (default: a free one)")
    serve.add_argument("--seed", type=int, default=0, help="market seed (default: 0)")
    serve.add_argument(
        "--pairs",
        nargs="+",
        type=_pair,
        default=["XBT/USD", "ETH/USD"],
        metavar="PAIR",
        help="the pairs to simulate (default: XBT/USD ETH/USD)",
    )
    serve.add_argument(
        "--step", type=_positive, default=0.1, metavar="SECONDS", help="market step period"
    )
    return parser


# -- output helpers -----------------------------------------------------------


def _json_line(msg: Any) -> str:
    if isinstance(msg, Notice):
        fields = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
        msg = {"notice": type(msg).__name__, **fields}
    return json.dumps(msg, separators=(",", ":"), default=_json_default)


def _endpoint(args: argparse.Namespace) -> str:
    return resolve_url(args.url or args.env)


# -- stream -----------------------------------------------------------------


async def _stream(args: argparse.Namespace) -> None:
    subscription: dict[str, Any] = {"name": args.channel}
    if args.channel == "book":
        subscription["depth"] = args.depth
    elif args.channel == "ohlc":
        subscription["interval"] = args.interval
    out = sys.stdout
    async with (
        open_kraken(_endpoint(args)) as conn,
        conn.messages() as messages,
        task_group() as tg,
    ):
        # Subscribing in its own task: lines flow while the replies come.
        tg.start_soon(conn.subscribe, subscription, args.pairs)
        async for msg in messages:
            out.write(_json_line(msg) + "\n")
            out.flush()


# -- the terminal book view ---------------------------------------------------


class _View:
    """Ticker and trades of one pair, gathered from a message stream, and the
    frame that shows them with the live book."""

    def __init__(self, conn: KrakenConnection, book: LiveBook, title: str) -> None:
        self.conn = conn
        self.book = book
        self.title = title
        self.ticker: dict[str, Any] | None = None
        self.trades: deque[list[Any]] = deque(maxlen=12)

    async def collect(self, messages: Any) -> None:
        async for msg in messages:
            if not isinstance(msg, list):
                continue
            if msg[-2] == "ticker":
                self.ticker = msg[1]
            elif msg[-2] == "trade":
                self.trades.extend(msg[1])

    def summary(self) -> str:
        book, conn = self.book, self.conn
        return (
            f"{book.pair} book-{book.depth}: {book.book.updates} verified updates, "
            f"{book.checksum_mismatches} checksum mismatches, {book.resyncs} resyncs, "
            f"{max(0, conn.stats.connections - 1)} reconnects"
        )

    def render(self, rows: int) -> RenderableType:
        from rich import box
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        book, conn = self.book, self.conn
        asks, bids = book.asks[:rows], book.bids[:rows]
        spread = book.spread
        prices = _aligned([lv.price for lv in (*asks, *bids)] + [spread or Decimal(0)])
        levels = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        levels.add_column("price", justify="right")
        levels.add_column("volume", justify="right")
        levels.add_column("total", justify="right")
        ask_rows = zip(asks, prices, accumulate(lv.volume for lv in asks), strict=False)
        for level, price, total in reversed(list(ask_rows)):
            levels.add_row(price, str(level.volume), str(total), style="red")
        if spread is not None:
            levels.add_row(prices[-1], "spread", "", style="dim")
        bid_prices = prices[len(asks) : -1]
        for level, price, total in zip(
            bids, bid_prices, accumulate(lv.volume for lv in bids), strict=True
        ):
            levels.add_row(price, str(level.volume), str(total), style="green")

        trades = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for name in ("time", "side", "price", "volume"):
            trades.add_column(name, justify="left" if name in ("time", "side") else "right")
        recent = list(reversed(self.trades))
        trade_prices = _aligned([Decimal(trade[0]) for trade in recent])
        for (_, volume, when, side, _type, _misc), price in zip(recent, trade_prices, strict=True):
            buy = side == "b"
            style = "green" if buy else "red"
            trades.add_row(_clock(when), "buy" if buy else "sell", price, volume, style=style)

        grid = Table.grid(padding=(0, 4))
        grid.add_row(levels, trades)
        footer = Text.assemble(
            ("✓ verified", "bold green") if book.valid else ("… resyncing", "bold yellow"),
            f" · {book.book.updates} updates · {book.checksum_mismatches} mismatches"
            f" · {book.resyncs} resyncs · {max(0, conn.stats.connections - 1)} reconnects",
        )
        return Panel(
            Group(self._ticker_line(), grid, footer),
            title=self.title,
            subtitle="Ctrl-C to quit",
            expand=False,
        )

    def _ticker_line(self) -> Any:
        from rich.text import Text

        t = self.ticker
        if t is None:
            return Text(f"{self.book.pair}  waiting for the ticker…", style="dim")
        last, open_24h = Decimal(t["c"][0]), Decimal(t["o"][1])
        change = (last - open_24h) / open_24h * 100 if open_24h else Decimal(0)
        last_s, high, low = _aligned([last, Decimal(t["h"][1]), Decimal(t["l"][1])])
        return Text.assemble(
            (self.book.pair, "bold"),
            "  ",
            (last_s, "bold"),
            (f" {change:+.2f}%", "green" if change >= 0 else "red"),
            ("   24h high ", "dim"),
            high,
            (" low ", "dim"),
            low,
            (" vol ", "dim"),
            f"{Decimal(t['v'][1]):.2f}",
        )


def _aligned(values: Sequence[Decimal]) -> list[str]:
    """``values`` with as many decimals as the most precise of them needs:
    ``27001.10000, 27000.00000`` -> ``27001.1, 27000.0``."""
    places = 0
    for value in values:
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int):
            places = max(places, -exponent)
    return [f"{value:.{places}f}" for value in values]


def _clock(when: str) -> str:
    """``"1700000000.123456"`` -> ``"22:13:20"`` (UTC)."""
    s = int(when.partition(".")[0]) % 86400
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


async def _watch(
    url: str, pair: str, depth: int, title: str, duration: float | None = None
) -> None:
    """The live view of ``pair`` on ``url`` for ``duration`` seconds (None:
    until cancelled)."""
    from rich.console import Console
    from rich.live import Live

    console = Console()
    async with open_kraken(url) as conn:
        channels = conn.messages(channel=["ticker", "trade"], pair=pair)
        async with channels, conn.book(pair, depth) as book, task_group() as tg:
            view = _View(conn, book, title)
            tg.start_soon(view.collect, channels)
            await conn.subscribe({"name": "ticker"}, [pair])
            await conn.subscribe({"name": "trade"}, [pair])
            # As many rows as the terminal has room for (all of them into a file).
            rows = min(depth, max(3, (console.height - 8) // 2)) if console.is_terminal else depth
            # The deadline covers the view only: the connection's tasks must
            # outlive it to unsubscribe on the way out.
            try:
                with (
                    anyio.move_on_after(math.inf if duration is None else duration),
                    Live(view.render(rows), console=console, auto_refresh=False) as live,
                ):
                    while True:
                        await anyio.sleep(1 / FPS)
                        live.update(view.render(rows), refresh=True)
            finally:
                if not console.is_terminal:
                    console.line()  # Live ends its last frame without one
                console.print(view.summary(), highlight=False, soft_wrap=True)


async def _book(args: argparse.Namespace) -> None:
    url = _endpoint(args)
    await _watch(url, args.pair, args.depth, f"kraky-anyio · {url}")


# -- the simulated exchange ---------------------------------------------------


async def _faults(server: FakeKrakenServer, sim: MarketSimulator, every: float) -> None:
    while True:
        await anyio.sleep(every)
        sim.corrupt_next_checksum(DEMO_PAIR)
        await anyio.sleep(every)
        await server.drop()


async def _demo(args: argparse.Namespace) -> None:
    from .testing.market import MarketSimulator, run_market
    from .testing.server import open_fake_kraken

    sim = MarketSimulator(seed=args.seed)
    async with (
        open_fake_kraken(pairs=sim.pairs, snapshot_provider=sim.snapshot) as server,
        task_group() as tg,
    ):
        tg.start_soon(run_market, server, sim)
        if args.faults:
            tg.start_soon(_faults, server, sim, args.faults)
        title = f"kraky-anyio demo · simulated exchange · seed {args.seed}"
        await _watch(server.url, DEMO_PAIR, 10, title, args.duration)


async def _serve(args: argparse.Namespace) -> None:
    from .testing.market import MarketSimulator, run_market
    from .testing.server import open_fake_kraken

    sim = MarketSimulator(dict.fromkeys(args.pairs), seed=args.seed)
    async with (
        open_fake_kraken(
            args.host, args.port, pairs=sim.pairs, snapshot_provider=sim.snapshot
        ) as server,
        task_group() as tg,
    ):
        tg.start_soon(functools.partial(run_market, server, sim, interval=args.step))
        print(server.url, flush=True)
        print(
            f"{PROG}: simulated exchange with {', '.join(sim.pairs)} (seed {args.seed}) "
            "on the URL above; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        await anyio.sleep_forever()


_COMMANDS = {"demo": _demo, "stream": _stream, "book": _book, "serve": _serve}


# -- entry point --------------------------------------------------------------


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
    args = _parser().parse_args(argv)
    if args.command in ("demo", "book"):
        try:
            import rich  # noqa: F401
        except ImportError:
            print(RICH_HINT, file=sys.stderr)
            return 1
    try:
        anyio.run(_COMMANDS[args.command], args, backend=args.backend)
    except BaseException as exc:
        leaves = _leaves(exc)
        if any(isinstance(leaf, BrokenPipeError) for leaf in leaves):
            _silence_stdout()
        if all(isinstance(leaf, KeyboardInterrupt | BrokenPipeError) for leaf in leaves):
            return 0
        if isinstance(exc, LookupError) and args.backend == "trio":
            print(f"{PROG}: error: the trio backend needs trio: pip install trio", file=sys.stderr)
            return 1
        errors = (KrakyError, OSError)
        if all(isinstance(leaf, errors) for leaf in leaves):
            for leaf in leaves:
                print(f"{PROG}: error: {leaf}", file=sys.stderr)
            return 1
        raise
    return 0
