"""The market of one simulated pair: its dynamics (a fair price walking about
1 % a day, stale quotes taken at the touch, random orders and cancels, market
makers bringing the spread back within a few ticks) and its trade statistics
(trades, ticker, spread, candles). :class:`~kraky_anyio.testing.market.MarketSimulator`
drives one per pair; the book it changes is a
:class:`~kraky_anyio.testing.market_book.SimulatedBook`."""

from __future__ import annotations

import math
import random
import zlib
from decimal import Decimal
from typing import Any

from .market_book import VOLUME_SCALE, BookSide, Publication, timestamp, volume_text
from .market_stats import INTERVALS, MarketStats, Tally
from .market_v2 import V2Publication

__all__ = ["MAX_SPREAD_TICKS", "PairMarket"]

#: The widest spread, in ticks, the market makers leave after a step.
MAX_SPREAD_TICKS = 8
#: The fair price's volatility, a fraction of the price per day.
_DAILY_VOLATILITY = 0.01
#: Random events (orders, cancels, market orders) per second of market time,
#: and at most per step whatever its length, so that long steps stay cheap.
_EVENTS_PER_SECOND = 10.0
_MAX_EVENTS_PER_STEP = 6
#: The spread target reverts to its mean with this time constant (seconds).
_SPREAD_MEAN_TICKS = 2.0
_SPREAD_REVERSION_SECONDS = 30.0
#: How many ticks behind a fresh touch the makers fill in.
_LADDER_TICKS = 6


#: Start prices (quote currency) of Kraken's v1 pairs; other pairs get one
#: derived from their name.
_START_PRICES = {
    "XBT/USD": "27000",
    "XBT/EUR": "25000",
    "XBT/USDT": "27000",
    "ETH/USD": "1650",
    "ETH/EUR": "1550",
    "ETH/XBT": "0.061",
    "SOL/USD": "20",
    "XRP/USD": "0.5",
    "ADA/USD": "0.25",
    "DOT/USD": "4.2",
    "LTC/USD": "65",
    "XDG/USD": "0.07",
    "USDT/USD": "1",
}


def _ticker(entry: dict[str, Any], trigger: str) -> V2Publication:
    return V2Publication("ticker", entry["symbol"], [entry], {"event_trigger": trigger})


class PairMarket(MarketStats):
    """The market of one pair: its random walk, full book, views and statistics."""

    def __init__(
        self, name: str, seed: int, depths: tuple[int, ...], book_levels: int, now_us: int
    ) -> None:
        self.rng = rng = random.Random(f"kraky-anyio market {seed} {name}")
        start = _START_PRICES.get(name) or str(1 + zlib.crc32(name.encode()) % 1000)
        decimals = 5 if Decimal(start) >= Decimal("0.1") else 7
        super().__init__(name, seed, decimals, depths, book_levels)
        start_units = int(Decimal(start) * self.scale)
        # About 1e-5 of the price, a power of ten; v2 prices have its decimals.
        self.tick = 10 ** max(0, len(str(start_units)) - 6)
        self.price_precision = decimals - (len(str(self.tick)) - 1)
        self.init_stats()
        self.fair = start_units - start_units % self.tick
        # The fair price's walk, in ticks (a float: its steps are fractions);
        # the spread the makers aim for, in ticks.
        self.walk = float(self.fair // self.tick)
        self.sigma = self.walk * _DAILY_VOLATILITY / math.sqrt(86_400)
        self.spread_target = _SPREAD_MEAN_TICKS
        # Orders are worth about 2000 units of the quote currency on average.
        self.mean_volume = max(1, 2000 * VOLUME_SCALE * self.scale // start_units)

        # Yesterday's statistics, so the 24 h ticker fields look lived in.
        drift = self.tick * rng.randint(-300, 300)
        self.day_before = Tally(
            open=self.fair + drift,
            high=self.fair + abs(drift) + self.tick * rng.randint(50, 500),
            low=max(self.tick, self.fair - abs(drift) - self.tick * rng.randint(50, 500)),
        )
        for _ in range(50):
            price = self.day_before.low + self.tick * rng.randint(
                0, (self.day_before.high - self.day_before.low) // self.tick
            )
            self.day_before.add(price, self._volume() * rng.randint(10, 100))
        self.day_before.count = rng.randint(5_000, 20_000)
        self.today = Tally(self.fair, self.fair, self.fair)
        self.last_trade = (self.fair, self._volume())
        # interval -> (begin, in seconds; its trades); the close is the last trade
        self.candles: dict[int, tuple[int, Tally]] = {}
        self.last_top: tuple[int | None, ...] | None = None

        # The initial book: levels spread out from the fair price, placed
        # during the last minute; not published (there is no subscriber yet).
        for side in (self.asks, self.bids):
            price = self.fair
            for rank in range(book_levels):
                # Dense near the touch (a spread of 2 ticks), sparser deeper.
                gap = 1 if rank == 0 else rng.randint(1, 2 if rank < 20 else 4)
                price += side.sign * self.tick * gap
                if price <= 0:
                    break
                placed_us = now_us - rng.randint(1, 60_000_000)
                volume = self._volume()
                side.keys.append(price * side.sign)
                placed = timestamp(placed_us)
                side.levels[price] = (volume, [self.price(price), volume_text(volume), placed])
                side.l3.seed_level(price, volume, placed)
            for view in side.views:
                view.have = {p: side.levels[p][0] for p in map(side.price_at, range(view.depth))}
            side.l3.seed_views(side)

    def end_event(
        self, ts: str, us: int, out: list[Publication], out_v2: list[V2Publication] | None
    ) -> None:
        """Close one engine event: refill the book's tail, then publish."""
        for side in (self.asks, self.bids):
            while len(side) < self.book_levels:
                worst = side.price_at(-1) if len(side) else self.fair
                price = worst + side.sign * self.tick * self.rng.randint(1, 3)
                if price <= 0:
                    break
                self.set_level(side, price, self._volume(), ts)
        self.publish_event(out, out_v2, us)

    # -- the market --------------------------------------------------------

    def _volume(self) -> int:
        return 1 + int(self.mean_volume * self.rng.expovariate(1.0))

    def step(
        self, start_us: int, dt_us: int, v2: bool
    ) -> tuple[list[Publication], list[V2Publication]]:
        """One step: the v1 and (if ``v2``) the v2 messages it produced."""
        rng = self.rng
        out: list[Publication] = []
        out_v2: list[V2Publication] = []
        want_v2 = out_v2 if v2 else None
        dt = dt_us / 1_000_000
        self.walk = max(10.0, self.walk + rng.gauss(0.0, self.sigma * math.sqrt(dt)))
        self.fair = round(self.walk) * self.tick
        # An Ornstein-Uhlenbeck spread target, clipped to [1, MAX_SPREAD_TICKS].
        keep = math.exp(-dt / _SPREAD_REVERSION_SECONDS)
        self.spread_target = min(
            float(MAX_SPREAD_TICKS),
            max(
                1.0,
                _SPREAD_MEAN_TICKS
                + (self.spread_target - _SPREAD_MEAN_TICKS) * keep
                + rng.gauss(0.0, 1.2 * math.sqrt(1 - keep * keep)),
            ),
        )
        count = min(_MAX_EVENTS_PER_STEP, self._poisson(min(_EVENTS_PER_SECOND * dt, 4.0)))
        times = sorted(start_us + rng.randint(1, dt_us) for _ in range(count))
        end_us = start_us + dt_us
        traded = False
        # First the quotes the fair price moved through, then the random
        # events, then the makers: one engine event each.
        events = [(start_us + 1, self._take_stale), *((us, self._random_event) for us in times)]
        events.append((end_us, self._requote))
        for us, event in events:
            ts = timestamp(us)
            self.trades = []
            self.trades_v2 = []
            event(ts)
            self.end_event(ts, us, out, want_v2)
            if self.trades:
                traded = True
                out.append(Publication("trade", self.name, (self.trades,)))
                if v2:
                    out_v2.append(V2Publication("trade", self.symbol, self.trades_v2))
                for interval in INTERVALS:
                    out.append(
                        Publication(f"ohlc-{interval}", self.name, (self.ohlc(us, interval),))
                    )
                    if v2:
                        out_v2.append(
                            V2Publication(
                                "ohlc",
                                self.symbol,
                                [self.candle_v2(us, interval)],
                                {"interval": interval},
                            )
                        )
        ts = timestamp(end_us)
        top = self.top_of_book()
        if top != self.last_top:
            self.last_top = top
            out.append(Publication("spread", self.name, (self.spread(ts),)))
            out.append(Publication("ticker", self.name, (self.ticker(),)))
            if v2:
                out_v2.append(_ticker(self.ticker_v2(end_us), "bbo"))
        elif traded:
            out.append(Publication("ticker", self.name, (self.ticker(),)))
        if traded and v2:
            out_v2.append(_ticker(self.ticker_v2(end_us), "trades"))
        return out, out_v2

    def _poisson(self, mean: float) -> int:
        """A Poisson draw (Knuth's method: ``mean`` is small here)."""
        limit, count, product = math.exp(-mean), 0, self.rng.random()
        while product > limit:
            count += 1
            product *= self.rng.random()
        return count

    def _take_stale(self, ts: str) -> None:
        """Takers pick off the quotes the fair price moved through, best first:
        trades at the touch, as deep as the move and no deeper."""
        ask, bid = self.asks.best(), self.bids.best()
        if ask is not None and ask <= self.fair:
            self._take(True, 2**62, self.fair, "l", ts)
        elif bid is not None and bid >= self.fair:
            self._take(False, 2**62, self.fair, "l", ts)

    def _random_event(self, ts: str) -> None:
        rng = self.rng
        kind = rng.random()
        buy = rng.random() < 0.5
        if kind < 0.35:
            self._join(buy, ts)
        elif kind < 0.65:
            self._amend(self.bids if buy else self.asks, ts)
        elif kind < 0.85:
            # A market order at the touch: mostly within its volume.
            self._take(buy, self._volume() * rng.randint(1, 3) // 2 + 1, None, "m", ts)
        else:
            self._refill(self.bids if buy else self.asks, ts)

    def _join(self, buy: bool, ts: str) -> None:
        """A limit order at the touch, behind it, or (now and then) inside the
        spread; never crossing."""
        side, other = (self.bids, self.asks) if buy else (self.asks, self.bids)
        touch, far = side.best(), other.best()
        if touch is None or far is None:
            return
        roll = self.rng.random()
        if roll < 0.2 and abs(far - touch) > self.tick:
            price = touch - side.sign * self.tick  # one tick better
        else:
            price = touch + side.sign * self.tick * int(self.rng.expovariate(0.5))
        resting = side.levels[price][0] if price in side.levels else 0
        self.set_level(side, price, resting + self._volume(), ts)

    def _refill(self, side: BookSide, ts: str) -> None:
        """Depth coming back: a level somewhere in the first ticks behind the touch."""
        touch = side.best()
        if touch is None:
            return
        price = touch + side.sign * self.tick * self.rng.randint(1, 4 * _LADDER_TICKS)
        if price > 0 and price not in side.levels:
            self.set_level(side, price, self._volume(), ts)

    def _requote(self, ts: str) -> None:
        """Market makers bring the spread back within its target around the
        fair price, with a ladder of levels behind each new touch."""
        target = round(self.spread_target)
        want_ask = self.fair + self.tick * ((target + 1) // 2)
        want_bid = want_ask - self.tick * target
        ask, bid = self.asks.best(), self.bids.best()
        if bid is not None:
            want_ask = max(want_ask, bid + self.tick)
        if ask is not None:
            want_bid = min(want_bid, ask - self.tick)
        for side, want in ((self.asks, want_ask), (self.bids, want_bid)):
            best = side.best()
            if want <= 0 or (best is not None and best * side.sign <= want * side.sign):
                continue  # this side's touch is already as good
            self.set_level(side, want, self._volume(), ts)
            for behind in range(1, _LADDER_TICKS + 1):
                price = want + side.sign * self.tick * behind
                if price > 0 and price not in side.levels and self.rng.random() < 0.6:
                    self.set_level(side, price, self._volume(), ts)

    def _take(self, buy: bool, volume: int, limit: int | None, ordertype: str, ts: str) -> int:
        """Match a taker against the other side; returns what is left of
        ``volume``. A market order (no ``limit``) sweeps at most 5 levels and
        drops the rest; a limit order goes as deep as its price."""
        side = self.asks if buy else self.bids
        swept = 0
        while volume:
            best = side.best()
            if best is None:
                break
            if limit is None:
                if swept == 5:
                    break
                swept += 1
            elif best > limit if buy else best < limit:
                break
            available = side.levels[best][0]
            filled = min(volume, available)
            volume -= filled
            # A level is several resting orders: one change and one trade each.
            for _ in range(self.rng.choice((1, 1, 2, 3)) - 1):
                part = self.rng.randint(0, filled // 2)
                if part:
                    filled -= part
                    available -= part
                    self.set_level(side, best, available, ts, fill=True)
                    self.record_trade(best, part, ts, "b" if buy else "s", ordertype)
            self.set_level(side, best, available - filled, ts, fill=True)
            self.record_trade(best, filled, ts, "b" if buy else "s", ordertype)
        return volume if limit is not None else 0

    def _amend(self, side: BookSide, ts: str) -> None:
        """Cancel (mostly near the top), reduce or add to one level."""
        rng = self.rng
        rank = int(rng.expovariate(1 / 6))
        price = side.price_at(min(rank, len(side) - 1))
        volume = side.levels[price][0]
        roll = rng.random()
        if roll < 0.45:
            volume = 0
        elif roll < 0.75:
            volume = volume * rng.randint(1, 9) // 10
        else:
            volume += self._volume()
        self.set_level(side, price, volume, ts)
