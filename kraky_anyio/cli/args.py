"""The command line's arguments: every check that needs no network happens
here, so that bad input is one line on stderr and exit status 2, before
anything connects."""

from __future__ import annotations

import argparse
import math
from typing import NoReturn
from urllib.parse import urlsplit

from .. import __version__
from ..book import DEPTHS
from ..protocol import ENVIRONMENTS
from ..v2.connection import ENVIRONMENTS as V2_ENVIRONMENTS

PROG = "kraky-anyio"
PUBLIC_CHANNELS = ("ticker", "trade", "spread", "book", "ohlc")
PRIVATE_CHANNELS = ("ownTrades", "openOrders")
#: Kraken's v2 channel names the CLI streams (``instrument`` takes no symbols;
#: ``level3`` needs a token, read from the environment as for private data).
V2_CHANNELS = ("ticker", "trade", "book", "ohlc", "instrument", "level3")
V2_SYMBOLLESS = ("instrument",)
APIS = ("v1", "v2")
#: The one-line refusal of trading and private channels on v2 (a later issue).
V2_TRADING = "v2 trading is not in the CLI yet; use --api v1"
LOG_LEVELS = ("debug", "info", "warning", "error")
#: The commands that subscribe to CHANNEL [PAIR...] (the same checks).
SUBSCRIBING = ("stream", "record")


class Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def replay_speed(text: str) -> float:
    """``serve --speed``: a positive number or ``max`` (``math.inf``)."""
    return math.inf if text == "max" else positive(text)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def ws_url(text: str) -> str:
    """A ``ws://`` or ``wss://`` URL with a host and, if any, a valid port."""
    if not text.startswith(("ws://", "wss://")):
        raise argparse.ArgumentTypeError(f"not a ws:// or wss:// URL: {text!r}")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad URL {text!r}: {exc}") from None
    if not parts.hostname:
        raise argparse.ArgumentTypeError(f"no host in URL: {text!r}")
    return text


def pair(text: str) -> str:
    base, _, quote = text.partition("/")
    if not base or not quote or "/" in quote:
        raise argparse.ArgumentTypeError(f"a pair is spelled BASE/QUOTE, e.g. XBT/USD: {text!r}")
    return text


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535: {text!r}")
    return value


def _common(sub: Parser) -> None:
    sub.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="the event loop to run on (default: asyncio)",
    )
    sub.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output (-v: info, -vv: debug)",
    )
    sub.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="log level (default: warning; error in the live views, which show the state)",
    )


def _api(sub: Parser, default: str | None, help: str) -> None:
    sub.add_argument("--api", choices=APIS, default=default, help=help)


def _endpoint(sub: Parser) -> None:
    where = sub.add_mutually_exclusive_group()
    where.add_argument(
        "--env",
        choices=tuple(dict.fromkeys((*ENVIRONMENTS, *V2_ENVIRONMENTS))),
        help="Kraken environment (default: production, production-auth for private data; "
        "v2 only: beta-auth, level3)",
    )
    where.add_argument("--url", type=ws_url, help="a ws:// or wss:// URL instead")
    sub.add_argument(
        "--max-attempts",
        type=positive_int,
        metavar="N",
        help="give up (exit 1) after N connection attempts in a row failed",
    )
    sub.add_argument(
        "--timeout",
        type=positive,
        metavar="SECONDS",
        help="give up (exit 1) after SECONDS without a connection",
    )


def parser() -> Parser:
    root = Parser(
        prog=PROG,
        description="Kraken Spot WebSocket client (v2 and v1) on anyio: watch, stream, trade "
        "or simulate.",
        epilog="Exit status: 0 done, 1 error, 2 bad arguments, 130 Ctrl-C, 143 SIGTERM.",
    )
    root.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> Parser:
        sub: Parser = commands.add_parser(name, help=help, description=help)
        _common(sub)
        return sub

    demo = add("demo", "a live, checksum-verified book on a simulated exchange, in-process")
    _api(demo, "v2", "Kraken API version to speak (default: v2)")
    demo.add_argument("--seed", type=int, default=0, help="market seed (default: 0)")
    demo.add_argument("--duration", type=positive, help="stop after SECONDS (default: Ctrl-C)")
    demo.add_argument(
        "--faults",
        type=positive,
        metavar="SECONDS",
        help="every SECONDS, alternately corrupt a checksum and drop the connection",
    )

    stream = add("stream", "print every message of a subscription as one JSON line")
    stream.add_argument(
        "channel",
        choices=tuple(dict.fromkeys(V2_CHANNELS + PUBLIC_CHANNELS + PRIVATE_CHANNELS)),
        help="v2: ticker, trade, book, ohlc (need symbols), instrument (none), level3 "
        "(needs KRAKEN_API_KEY and KRAKEN_API_SECRET); v1: ticker, trade, spread, book, "
        "ohlc (need pairs), ownTrades, openOrders (private: no pairs, the key and secret)",
    )
    stream.add_argument(
        "pairs", nargs="*", type=pair, metavar="PAIR", help="e.g. BTC/USD (v1: XBT/USD)"
    )
    _api(stream, "v2", "Kraken API version to speak (default: v2)")
    _endpoint(stream)
    stream.add_argument("--depth", type=int, choices=DEPTHS, default=10, help="book depth")
    stream.add_argument("--interval", type=int, default=1, help="ohlc interval in minutes")
    stream.add_argument(
        "--count", type=positive_int, metavar="N", help="stop after N data messages"
    )
    stream.add_argument("--duration", type=positive, help="stop after SECONDS")
    stream.add_argument(
        "--data-only",
        action="store_true",
        help="only channel data on stdout; notices to stderr, Kraken's events dropped",
    )

    _record_parser(add("record", "record a live session, every frame received and sent, to FILE"))

    book = add("book", "a live, checksum-verified book of PAIR")
    book.add_argument("pair", type=pair, metavar="PAIR", help="e.g. BTC/USD (v1: XBT/USD)")
    _api(book, "v2", "Kraken API version to speak (default: v2)")
    book.add_argument("--depth", type=int, choices=DEPTHS, default=10, help="book depth")
    book.add_argument("--duration", type=positive, help="stop after SECONDS (default: Ctrl-C)")
    _endpoint(book)

    trade = add(
        "trade",
        "place or cancel orders (KRAKEN_API_KEY and KRAKEN_API_SECRET from the environment)",
    )
    _api(trade, "v1", "Kraken API version (only v1 for now)")
    _endpoint(trade)
    actions = trade.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_order: Parser = actions.add_parser("add", help="place one order; prints the reply")
    add_order.add_argument("--pair", type=pair, required=True)
    add_order.add_argument("--type", choices=("buy", "sell"), required=True)
    add_order.add_argument("--ordertype", choices=("limit", "market"), default="limit")
    add_order.add_argument("--volume", required=True, help="a decimal string, e.g. 0.01")
    add_order.add_argument("--price", help="limit price, a decimal string")
    add_order.add_argument(
        "--validate", action="store_true", help="Kraken checks the order and does not place it"
    )
    cancel: Parser = actions.add_parser("cancel", help="cancel orders by txid")
    cancel.add_argument("txids", nargs="+", metavar="TXID")
    actions.add_parser("cancel-all", help="cancel every open order")

    serve = add("serve", "run the simulated exchange as a server until Ctrl-C")
    _api(
        serve,
        None,
        "both are served (v1 on /, v2 on /v2); the URL of this one is printed first "
        "(default: v1's)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=port, default=0, help="TCP port (default: a free one)")
    serve.add_argument("--seed", type=int, default=0, help="market seed (default: 0)")
    serve.add_argument(
        "--pairs",
        nargs="+",
        type=pair,
        default=["XBT/USD", "ETH/USD"],
        metavar="PAIR",
        help="the pairs to simulate (default: XBT/USD ETH/USD)",
    )
    serve.add_argument(
        "--step", type=positive, default=0.1, metavar="SECONDS", help="market step period"
    )
    serve.add_argument("--replay", metavar="FILE", help="serve this recording, not the market")
    serve.add_argument("--speed", type=replay_speed, default=1.0, help="replay pace: 1, 10, max")
    serve.add_argument("--loop", action="store_true", help="replay again from the start at its end")
    serve.add_argument(
        "--trading",
        action="store_true",
        help="open v1 and v2 trading: one test token (--token), Kraken's rate counter (--tier)",
    )
    serve.add_argument("--token", default="kraky-test-token", help="the test token (--trading)")
    serve.add_argument(
        "--tier",
        choices=("starter", "intermediate", "pro"),
        default="starter",
        help="the rate counter's tier (--trading; default: starter)",
    )
    return root


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; exits 2 with one line for anything argparse alone cannot check."""
    root = parser()
    args = root.parse_args(argv)
    api = getattr(args, "api", None)
    if args.command == "trade" and api == "v2":
        root.exit(2, f"{PROG}: error: {V2_TRADING}\n")
    if args.command in SUBSCRIBING and api == "v2":
        _check_v2_stream(root, args)
    elif args.command in SUBSCRIBING:
        private = args.channel in PRIVATE_CHANNELS
        if args.channel not in PUBLIC_CHANNELS + PRIVATE_CHANNELS:
            root.error(f"{args.channel} is a v2 channel: use --api v2")
        if private and args.pairs:
            root.error(f"{args.channel} is private and takes no pairs")
        if not private and not args.pairs:
            root.error(f"{args.channel} needs at least one PAIR")
    if args.command in SUBSCRIBING and len(set(args.pairs)) != len(args.pairs):
        root.error("a pair is given twice")
    if args.command == "record":
        _check_recording(root, args)
    if args.command == "book" and api == "v2":
        _check_v2_symbols(root, [args.pair])
    if args.command in (*SUBSCRIBING, "book") and args.env is not None:
        names = V2_ENVIRONMENTS if api == "v2" else ENVIRONMENTS
        if args.env not in names:
            root.error(f"--env {args.env} is {'v1' if api == 'v2' else 'v2'} only")
    limit = args.command == "trade" and args.action == "add" and args.ordertype == "limit"
    if limit and args.price is None:
        root.error("a limit order needs --price")
    return args


def _record_parser(sub: Parser) -> None:
    """``record``: ``stream``'s channel and pairs, the file and its options."""
    sub.add_argument(
        "channel",
        choices=tuple(dict.fromkeys(V2_CHANNELS + PUBLIC_CHANNELS + PRIVATE_CHANNELS)),
        help="as for stream (private ones read KRAKEN_API_KEY and KRAKEN_API_SECRET; "
        "the token is never recorded)",
    )
    sub.add_argument(
        "pairs", nargs="*", type=pair, metavar="SYMBOL", help="e.g. BTC/USD (v1: XBT/USD)"
    )
    _api(sub, "v2", "Kraken API version to speak (default: v2)")
    _endpoint(sub)
    sub.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="the recording: FILE.jsonl.gz, FILE.jsonl.zst (the record extra) or FILE.jsonl",
    )
    sub.add_argument("--depth", type=int, choices=DEPTHS, default=10, help="book depth")
    sub.add_argument("--interval", type=int, default=1, help="ohlc interval in minutes")
    sub.add_argument("--duration", type=positive, help="stop after SECONDS (default: Ctrl-C)")
    sub.add_argument(
        "--rotate-bytes",
        type=positive_int,
        metavar="N",
        help="start a new file (FILE.1, FILE.2, ...) past N uncompressed bytes",
    )
    sub.add_argument(
        "--rotate-seconds", type=positive, metavar="S", help="start a new file every S seconds"
    )
    sub.add_argument(
        "--overflow",
        choices=("block", "drop"),
        default="block",
        help="when the disk cannot keep up: block (default: read no faster than the disk "
        "writes) or drop (count the lost frames, mark a gap)",
    )
    sub.add_argument("--force", action="store_true", help="replace an existing recording")


def _check_recording(root: Parser, args: argparse.Namespace) -> None:
    from ..recording import RecordingError, RecordOptions

    try:
        RecordOptions(args.output)
    except (TypeError, ValueError, RecordingError) as exc:
        root.error(str(exc))


def _check_v2_stream(root: Parser, args: argparse.Namespace) -> None:
    if args.channel in PRIVATE_CHANNELS:
        root.exit(2, f"{PROG}: error: {V2_TRADING}\n")
    if args.channel not in V2_CHANNELS:
        v2_names = ", ".join(V2_CHANNELS)
        root.error(f"{args.channel} is a v1 channel: use --api v1 (v2 has {v2_names})")
    if args.channel in V2_SYMBOLLESS and args.pairs:
        root.error(f"{args.channel} takes no symbols")
    if args.channel not in V2_SYMBOLLESS and not args.pairs:
        root.error(f"{args.channel} needs at least one symbol, e.g. BTC/USD")
    _check_v2_symbols(root, args.pairs)


def _check_v2_symbols(root: Parser, symbols: list[str]) -> None:
    """v2 spells bitcoin ``BTC``: an ``XBT`` symbol is refused with the fix."""
    for symbol in symbols:
        if "XBT" in symbol.split("/"):
            fixed = "/".join("BTC" if part == "XBT" else part for part in symbol.split("/"))
            root.exit(
                2,
                f"{PROG}: error: v2 spells bitcoin BTC: {fixed}, not {symbol} (or use --api v1)\n",
            )
