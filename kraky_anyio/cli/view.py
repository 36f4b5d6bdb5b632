"""The live terminal view of one pair (``demo``, ``book``): the
checksum-verified book (asks above, bids below), the ticker, the last trades
and the connection's state; data not currently verified is marked stale.
Needs ``rich`` (the ``cli`` extra)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio

from ..connection import KrakenConnection
from ..taskgroup import task_group
from ..v2.messages import TickerMessage, TradeMessage
from .state import AnyConnection, StateTracker, describe, enforce_limits, wall_clock

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..live_book import LiveBook

#: Frames per second of the terminal view.
FPS = 10


class TickerLine(NamedTuple):
    """What the view shows of a ticker, from v1 or v2 alike."""

    last: Decimal
    change_pct: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal


class TradeRow(NamedTuple):
    """One trade as the view shows it, from v1 or v2 alike."""

    price: Decimal
    volume: str
    clock: str
    buy: bool


def _v1_ticker(t: dict[str, Any]) -> TickerLine:
    last, open_24h = Decimal(t["c"][0]), Decimal(t["o"][1])
    change = (last - open_24h) / open_24h * 100 if open_24h else Decimal(0)
    return TickerLine(last, change, Decimal(t["h"][1]), Decimal(t["l"][1]), Decimal(t["v"][1]))


class View:
    """Ticker and trades of one pair, gathered from a message stream, and the
    frame that shows them with the live book and the connection's state."""

    def __init__(
        self, conn: AnyConnection, pair: str, depth: int, title: str, *, simulated: bool = False
    ) -> None:
        self.conn = conn
        self.pair = pair
        self.depth = depth
        #: The live book, once subscribed (None while it is being subscribed).
        self.book: LiveBook | None = None
        self.title = title
        self.simulated = simulated
        self.tracker = StateTracker(conn)
        self.ticker: TickerLine | None = None
        self.trades: deque[TradeRow] = deque(maxlen=12)
        #: anyio time the book was last seen verified (None: never yet).
        self.verified_at: float | None = None

    async def collect(self, messages: Any) -> None:
        """Keep the latest ticker and the last trades from ``messages`` (v1
        lists or v2 typed messages); returns when the stream ends."""
        async for msg in messages:
            if isinstance(msg, TickerMessage):
                t = msg.data[-1]
                self.ticker = TickerLine(t.last, t.change_pct, t.high, t.low, t.volume)
            elif isinstance(msg, TradeMessage):
                self.trades.extend(
                    # ISO time "2026-12-01T17:20:21.123456Z": the clock is [11:19].
                    TradeRow(tr.price, format(tr.qty, "f"), tr.timestamp[11:19], tr.side == "buy")
                    for tr in msg.data
                )
            elif not isinstance(msg, list):
                continue
            elif msg[-2] == "ticker":
                self.ticker = _v1_ticker(msg[1])
            elif msg[-2] == "trade":
                self.trades.extend(
                    TradeRow(Decimal(price), volume, _clock(when), side == "b")
                    for price, volume, when, side, *_ in msg[1]
                )

    def counts(self) -> tuple[int, int, int, int]:
        """Verified updates, checksum mismatches, resyncs, reconnects."""
        book = self.book
        reconnects = max(0, self.conn.stats.connections - 1)
        if book is None:
            return 0, 0, 0, reconnects
        return book.book.updates, book.checksum_mismatches, book.resyncs, reconnects

    def summary(self) -> str:
        updates, mismatches, resyncs, reconnects = self.counts()
        return (
            f"{self.pair} book-{self.depth}: {updates} verified updates, "
            f"{mismatches} checksum mismatches, {resyncs} resyncs, {reconnects} reconnects"
        )

    def render(self, rows: int) -> RenderableType:
        from rich import box
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        book = self.book
        state = self.tracker.read()
        fresh = book is not None and book.valid and state.state == "connected"
        if fresh:
            self.verified_at = anyio.current_time()
        asks = book.asks[:rows] if book is not None else ()
        bids = book.bids[:rows] if book is not None else ()
        spread = book.spread if book is not None else None
        prices = _aligned([lv.price for lv in (*asks, *bids)] + [spread or Decimal(0)])
        ask_style, bid_style = ("red", "green") if fresh else ("dim", "dim")

        def levels_table(title: str) -> Table:
            table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
            for name in ("price", "volume", "total"):
                table.add_column(name, justify="right")
            return table

        ask_table = levels_table("asks" if fresh else "asks (stale)")
        ask_rows = zip(asks, prices, accumulate(lv.volume for lv in asks), strict=False)
        for level, price, total in reversed(list(ask_rows)):
            ask_table.add_row(price, str(level.volume), str(total), style=ask_style)
        bid_table = levels_table("bids" if fresh else "bids (stale)")
        bid_prices = prices[len(asks) : -1]
        for level, price, total in zip(
            bids, bid_prices, accumulate(lv.volume for lv in bids), strict=True
        ):
            bid_table.add_row(price, str(level.volume), str(total), style=bid_style)
        spread_line = Text(f"spread {prices[-1]}" if spread is not None else "", style="dim")

        trades = Table(title="trades", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        clock = "time (simulated)" if self.simulated else "time (UTC)"
        for name in (clock, "side", "price", "volume"):
            trades.add_column(name, justify="right" if name in ("price", "volume") else "left")
        recent = list(reversed(self.trades))
        trade_prices = _aligned([trade.price for trade in recent])
        for trade, price in zip(recent, trade_prices, strict=True):
            style = ("green" if trade.buy else "red") if fresh else "dim"
            side = "buy" if trade.buy else "sell"
            trades.add_row(trade.clock, side, price, trade.volume, style=style)

        grid = Table.grid(padding=(0, 4))
        grid.add_row(Group(ask_table, spread_line, bid_table), trades)
        connection = Text.assemble(
            ("● " if state.state == "connected" else "◌ ", "green" if fresh else "yellow"),
            describe(state),
            style="bold" if state.state != "connected" else "",
        )
        if fresh:
            verdict = ("✓ verified", "bold green")
        elif self.verified_at is None:
            verdict = ("… waiting for the book", "bold yellow")
        else:
            verdict = (f"⚠ stale since {wall_clock(self.verified_at)}", "bold yellow")
        updates, mismatches, resyncs, reconnects = self.counts()
        footer = Text.assemble(
            verdict,
            f" · {updates} updates · {mismatches} mismatches"
            f" · {resyncs} resyncs · {reconnects} reconnects",
        )
        return Panel(
            Group(connection, self._ticker_line(), grid, footer),
            title=self.title,
            subtitle="Ctrl-C to quit",
            expand=False,
        )

    def _ticker_line(self) -> Any:
        from rich.text import Text

        t = self.ticker
        if t is None:
            return Text(f"{self.pair}  waiting for the ticker…", style="dim")
        change = t.change_pct
        last_s, high, low = _aligned([t.last, t.high, t.low])
        return Text.assemble(
            (self.pair, "bold"),
            "  last ",
            (last_s, "bold"),
            (f" {change:+.2f}%", "green" if change >= 0 else "red"),
            ("   24h high ", "dim"),
            high,
            (" low ", "dim"),
            low,
            (" vol ", "dim"),
            f"{t.volume:.2f}",
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
    return time.strftime("%H:%M:%S", time.gmtime(int(when.partition(".")[0])))


async def watch(
    conn: AnyConnection,
    pair: str,
    depth: int,
    title: str,
    *,
    duration: float | None = None,
    simulated: bool = False,
    max_attempts: int | None = None,
    down_for: float | None = None,
) -> None:
    """The live view of ``pair`` on ``conn`` for ``duration`` seconds (None:
    until cancelled). Raises :class:`~.state.CommandError` when a
    connection limit is reached. Prints the summary line on the way out, however it ends."""
    from rich.console import Console
    from rich.live import Live

    console = Console()
    if isinstance(conn, KrakenConnection):
        channels = conn.messages(channel=["ticker", "trade"], pair=pair)
    else:
        channels = conn.messages(channel=["ticker", "trade"], symbol=pair)
    view = View(conn, pair, depth, title, simulated=simulated)

    async def keep_book() -> None:
        # In a task: the view draws the connection's state while it connects.
        async with conn.book(pair, depth) as book:
            view.book = book
            if isinstance(conn, KrakenConnection):
                await conn.subscribe({"name": "ticker"}, [pair])
                await conn.subscribe({"name": "trade"}, [pair])
            else:
                await conn.subscribe("ticker", [pair])
                await conn.subscribe("trade", [pair])
            await anyio.sleep_forever()

    async with channels, task_group() as tg:
        tg.start_soon(view.collect, channels)
        tg.start_soon(keep_book)
        # As many rows as the terminal has room for (all of them into a file).
        rows = min(depth, max(3, (console.height - 14) // 2)) if console.is_terminal else depth
        # The deadline covers the view only: the book's task outlives it, to
        # unsubscribe on the way out.
        try:
            with (
                anyio.move_on_after(math.inf if duration is None else duration),
                Live(view.render(rows), console=console, auto_refresh=False) as live,
            ):
                try:
                    async with task_group() as limits:
                        limits.start_soon(enforce_limits, view.tracker, max_attempts, down_for)
                        while True:
                            await anyio.sleep(1 / FPS)
                            live.update(view.render(rows), refresh=True)
                finally:
                    # The last frame shows the state it ended in (why it gave up).
                    live.update(view.render(rows), refresh=True)
        finally:
            if not console.is_terminal:
                console.line()  # Live ends its last frame without one
            console.print(view.summary(), highlight=False, soft_wrap=True)
