"""The trade statistics of one simulated pair (trades, ticker, spread,
candles), written in Kraken's v1 shapes (strings) and v2 shapes (``Decimal``
numbers at the pair's precision). :class:`MarketStats` sits between the book
(:class:`~kraky_anyio.testing.market_book.SimulatedBook`) and the dynamics
(:class:`~kraky_anyio.testing.market_dynamics.PairMarket`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .market_book import VOLUME_SCALE, SimulatedBook, timestamp, volume_text
from .market_v2 import iso_time
from .session import OHLC_INTERVALS

__all__ = ["INTERVALS", "TRADE_SNAPSHOT", "MarketStats", "Tally"]

INTERVALS = tuple(sorted(OHLC_INTERVALS))
#: How many recent trades a v2 ``trade`` snapshot carries (Kraken: 50).
TRADE_SNAPSHOT = 50
_SIDES = {"b": "buy", "s": "sell"}
_ORDER_TYPES = {"l": "limit", "m": "market"}
_PCT = Decimal("0.01")


@dataclass
class Tally:
    """Trade statistics since some start: volume, VWAP, count, open/high/low."""

    open: int
    high: int
    low: int
    volume: int = 0
    notional: int = 0
    count: int = 0

    def add(self, price: int, volume: int) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume += volume
        self.notional += price * volume
        self.count += 1

    def vwap(self, default: int) -> int:
        if not self.volume:
            return default
        return (2 * self.notional + self.volume) // (2 * self.volume)  # rounded half up


class MarketStats(SimulatedBook):
    """A pair's book with its trade statistics. ``day_before``, ``today``,
    ``last_trade`` and ``candles`` are set up by the market
    (:class:`~kraky_anyio.testing.market_dynamics.PairMarket`)."""

    day_before: Tally
    today: Tally
    last_trade: tuple[int, int]
    #: interval -> (begin, in seconds; its trades); the close is the last trade
    candles: dict[int, tuple[int, Tally]]

    def init_stats(self) -> None:
        self.trades: list[list[str]] = []  # v1 trades of the current event
        self.trades_v2: list[dict[str, Any]] = []  # v2 trades of the current event
        self.recent_v2: deque[dict[str, Any]] = deque(maxlen=TRADE_SNAPSHOT)
        self.trade_id = 0

    def record_trade(self, price: int, volume: int, ts: str, side: str, ordertype: str) -> None:
        self.trades.append([self.price(price), volume_text(volume), ts, side, ordertype, ""])
        self.trade_id += 1
        trade = {
            "symbol": self.symbol,
            "side": _SIDES[side],
            "price": self.v2_price(price),
            "qty": self.v2_qty(volume),
            "ord_type": _ORDER_TYPES[ordertype],
            "trade_id": self.trade_id,
            "timestamp": iso_time(int(ts.replace(".", ""))),
        }
        self.trades_v2.append(trade)
        self.recent_v2.append(trade)
        self.today.add(price, volume)
        self.last_trade = (price, volume)
        seconds = int(ts.partition(".")[0])
        for interval in INTERVALS:
            begin = seconds - seconds % (interval * 60)
            candle = self.candles.get(interval)
            if candle is None or candle[0] != begin:
                candle = self.candles[interval] = (begin, Tally(price, price, price))
            candle[1].add(price, volume)

    # -- v2 numbers ----------------------------------------------------------

    def v2_mean(self, units: int) -> Decimal:
        """An average price (any units), rounded half up to the precision."""
        return self.v2_price((2 * units + self.tick) // (2 * self.tick) * self.tick)

    @staticmethod
    def v2_qty(units: int) -> Decimal:
        return Decimal(units).scaleb(-8)

    # -- v1 shapes -----------------------------------------------------------

    def ohlc(self, us: int, interval: int) -> list[Any]:
        begin, tally = self.candles[interval]
        return [
            timestamp(us),
            f"{begin + interval * 60}.000000",
            self.price(tally.open),
            self.price(tally.high),
            self.price(tally.low),
            self.price(self.last_trade[0]),
            self.price(tally.vwap(tally.open)),
            volume_text(tally.volume),
            tally.count,
        ]

    def spread(self, ts: str) -> list[str]:
        ask, ask_volume, bid, bid_volume = self.top_of_book()
        assert ask is not None and bid is not None and ask_volume and bid_volume
        return [
            self.price(bid),
            self.price(ask),
            ts,
            volume_text(bid_volume),
            volume_text(ask_volume),
        ]

    def _day(self) -> Tally:
        today, before = self.today, self.day_before
        return Tally(
            open=before.open,
            high=max(before.high, today.high),
            low=min(before.low, today.low),
            volume=before.volume + today.volume,
            notional=before.notional + today.notional,
            count=before.count + today.count,
        )

    def ticker(self) -> dict[str, Any]:
        ask, ask_volume, bid, bid_volume = self.top_of_book()
        assert ask is not None and bid is not None and ask_volume and bid_volume
        today, day = self.today, self._day()
        last_price, last_volume = self.last_trade
        return {
            "a": [self.price(ask), ask_volume // VOLUME_SCALE, volume_text(ask_volume)],
            "b": [self.price(bid), bid_volume // VOLUME_SCALE, volume_text(bid_volume)],
            "c": [self.price(last_price), volume_text(last_volume)],
            "v": [volume_text(today.volume), volume_text(day.volume)],
            "p": [self.price(today.vwap(today.open)), self.price(day.vwap(day.open))],
            "t": [today.count, day.count],
            "l": [self.price(today.low), self.price(day.low)],
            "h": [self.price(today.high), self.price(day.high)],
            "o": [self.price(today.open), self.price(day.open)],
        }

    # -- v2 shapes -----------------------------------------------------------

    def ticker_v2(self, us: int) -> dict[str, Any]:
        """One v2 ``ticker`` entry: the touch and the last 24 hours."""
        ask, ask_volume, bid, bid_volume = self.top_of_book()
        assert ask is not None and bid is not None and ask_volume and bid_volume
        day = self._day()
        last = self.last_trade[0]
        change = self.v2_price(last) - self.v2_price(day.open)
        pct = (change * 100 / self.v2_price(day.open)).quantize(_PCT, ROUND_HALF_UP)
        return {
            "symbol": self.symbol,
            "bid": self.v2_price(bid),
            "bid_qty": self.v2_qty(bid_volume),
            "ask": self.v2_price(ask),
            "ask_qty": self.v2_qty(ask_volume),
            "last": self.v2_price(last),
            "volume": self.v2_qty(day.volume),
            "vwap": self.v2_mean(day.vwap(day.open)),
            "low": self.v2_price(day.low),
            "high": self.v2_price(day.high),
            "change": change,
            "change_pct": pct,
            "timestamp": iso_time(us),
        }

    def candle_v2(self, us: int, interval: int) -> dict[str, Any]:
        """One v2 ``ohlc`` entry: the current candle of ``interval`` minutes
        (before any trade in it: a flat candle at the last price)."""
        seconds = us // 1_000_000
        begin = seconds - seconds % (interval * 60)
        candle = self.candles.get(interval)
        if candle is None or candle[0] != begin:
            last = self.last_trade[0]
            candle = (begin, Tally(last, last, last))
        tally = candle[1]
        return {
            "symbol": self.symbol,
            "open": self.v2_price(tally.open),
            "high": self.v2_price(tally.high),
            "low": self.v2_price(tally.low),
            "close": self.v2_price(self.last_trade[0] if tally.count else tally.open),
            "vwap": self.v2_mean(tally.vwap(tally.open)),
            "volume": self.v2_qty(tally.volume),
            "trades": tally.count,
            "interval_begin": iso_time(candle[0] * 1_000_000),
            "interval": interval,
            "timestamp": iso_time(us),
        }
