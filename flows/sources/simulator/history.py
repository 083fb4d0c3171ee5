"""The simulated market's past, generated as candles in seconds instead of lived in real time.

A demo board needs a day of history (24h change and volume, RSI, relative volume), and a
restart of the simulator must continue its prices and trade ids.
`flows.sources.simulator.stored.read_stored` finds where each simulated symbol's stored
candles end; `HistoryGenerator` writes the missing
part of the last 24 h straight to `candles_1m` (and `candles_1s` for the last hour),
then says where each symbol resumes (`SymbolResume`) so the live market continues from
the last generated close and trade id.

The candles follow the flow's rules: 1m candles of the last hour are the roll-up of their
1s candles; an interval without trades after a symbol's first trade is a flat candle at
the previous close; every value is an exact decimal (integer ticks and steps scaled by
the symbol's decimals); each candle's `first_trade_id`..`last_trade_id` spans exactly its
`count` ids, consecutive across candles; `source = 'trades'` and `version = 1`, as the
candle flow writes them. Generation works on aggregates per interval (trade count,
open/high/low/close, volumes) drawn from the same regimes and volatility as the live
market (`flows.sources.simulator.regimes`), vectorised over symbols, so 200 symbols take seconds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa

from flows.sources.simulator.buckets import (
    I64,
    MINUTE_MS,
    Array,
    Buckets,
    Prices,
    decimal_array,
    minutes_of,
    settle,
    taker_sides,
)
from flows.sources.simulator.market import (
    MEAN_FILLS,
    MEAN_SIZE,
    SIZE_SIGMA,
    SymbolResume,
    SyntheticMarket,
)
from flows.sources.simulator.perp_candles import PerpCandles
from flows.sources.simulator.perp_model import MARKET
from flows.sources.simulator.perps import Perpetuals
from flows.sources.simulator.regimes import REVERSION_PER_S
from flows.sources.simulator.stored import StoredSymbol

logger = logging.getLogger(__name__)

SECOND_MS = 1_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

# Buckets generated at once: about this many (symbol, bucket) cells, so that memory stays
# bounded (some forty arrays of them) whatever the number of symbols.
_CELLS_PER_CHUNK = 240_000
_SAFE_UNITS = 2.0**62 / 4  # headroom below int64 for a minute's sums


@dataclass
class HistoryReport:
    """What the generator wrote.

    Attributes:
        symbols: Symbols that got history.
        candles_1m: 1m candles written.
        candles_1s: 1s candles written.
        seconds: Wall-clock seconds taken, inserts included.
        perp_candles_1m: The perpetuals' 1m candles written.
        perp_candles_1s: The perpetuals' 1s candles written.
    """

    symbols: int = 0
    candles_1m: int = 0
    candles_1s: int = 0
    seconds: float = 0.0
    perp_candles_1m: int = 0
    perp_candles_1s: int = 0


Write = Callable[[str, pa.Table], None]
"""Receives `(interval, candle rows as an Arrow table with the candle tables' columns)`,
e.g. `flows.sinks.clickhouse.candle_table_writer`."""


class HistoryGenerator:
    """Generates the candles a simulated market would have printed before `end_ms`.

    Args:
        market: The live market to continue: its symbols, rate, seed and regimes. Its
            seeded start (initial prices, first trade ids) is where a symbol without
            stored history starts.
        span_ms: How much history the board wants (24 h).
        seconds_ms: The most recent part also written as 1s candles (1 h).
        perps: The market's perpetuals, to write their candles too, derived from their
            twins' (`flows.sources.simulator.perp_candles`) on market ``usdm``.
    """

    def __init__(
        self,
        market: SyntheticMarket,
        span_ms: int = DAY_MS,
        seconds_ms: int = HOUR_MS,
        perps: Perpetuals | None = None,
    ) -> None:
        if span_ms % MINUTE_MS or seconds_ms % MINUTE_MS or not 0 <= seconds_ms <= span_ms:
            raise ValueError("span and seconds must be whole minutes, seconds within span")
        self.market = market
        self.span_ms = span_ms
        self.seconds_ms = seconds_ms
        specs = market.symbols
        self._names = [spec.symbol for spec in specs]
        self._pdec = np.array([spec.price_decimals for spec in specs], dtype=I64)
        self._qdec = np.array([spec.qty_decimals for spec in specs], dtype=I64)
        self._weight = np.array([spec.activity for spec in specs])
        self._median = np.array([spec.median_steps for spec in specs])
        self._spread = np.array([spec.spread for spec in specs])
        initial = [int(spec.initial_price.scaleb(spec.price_decimals)) for spec in specs]
        self._anchor = np.log(np.array(initial, dtype=np.float64))
        self._initial_ticks = np.array(initial, dtype=I64)
        self._seed_ids = np.array(list(market.next_trade_ids().values()), dtype=I64)
        self.perps = PerpCandles(perps, market.seed) if perps is not None else None

    def generate(
        self,
        end_ms: int,
        stored: Mapping[str, StoredSymbol],
        write: Write,
        stored_perps: Mapping[str, StoredSymbol] | None = None,
    ) -> tuple[dict[str, SymbolResume], HistoryReport]:
        """Write the history each symbol lacks before `end_ms`; say where each resumes.

        A symbol with nothing stored gets the whole span, starting at its seeded price
        and ids. One whose stored candles end before `end_ms` continues them from the
        next whole minute (at most a span back) at their last close and id. One stored
        up to `end_ms` or later gets nothing and resumes where it ends. The perpetuals'
        candles (with `perps`) go on the same way from theirs, over the twins' buckets.

        Args:
            end_ms: End of the history, a whole minute (the live market starts there).
            stored: Where each symbol's stored candles end (`read_stored`).
            write: Receives the rows, in time order per interval and market.
            stored_perps: Where each perpetual's stored candles end (with `perps`).

        Returns:
            Where every symbol resumes, and what was written.

        Raises:
            ValueError: If `end_ms` is not a whole minute.
        """
        if end_ms % MINUTE_MS:
            raise ValueError(f"end_ms must be a whole minute, got {end_ms}")
        started = time.monotonic()
        n = len(self._names)
        first_ms = end_ms - self.span_ms
        seconds_from = end_ms - self.seconds_ms
        start = np.full(n, first_ms, dtype=I64)
        log_ticks = self._anchor.copy()
        close = np.full(n, -1, dtype=I64)  # last close in ticks, -1: no trade yet
        next_id = self._seed_ids.copy()
        resume: dict[str, SymbolResume] = {}
        for i, name in enumerate(self._names):
            known = stored.get(name)
            if known is None:
                continue
            ticks = max(1, int(known.close.scaleb(int(self._pdec[i])).to_integral_value()))
            if known.last_trade_id is not None:
                next_id[i] = known.last_trade_id + 1
            resume[name] = SymbolResume(
                Decimal(ticks).scaleb(-int(self._pdec[i])), int(next_id[i]), known.end_ms * 1000
            )
            close[i] = ticks
            log_ticks[i] = math.log(ticks)
            start[i] = max(first_ms, -(-known.end_ms // MINUTE_MS) * MINUTE_MS)
        report = HistoryReport(symbols=int((start < end_ms).sum()))
        perps = self.perps
        if perps is not None:
            perps.begin(first_ms, end_ms, stored_perps or {})
            start = np.concatenate([start, perps.start])
        if not (start < end_ms).any():
            report.seconds = time.monotonic() - started
            return resume, report
        self._rng = np.random.default_rng([self.market.seed & 0xFFFFFFFF, end_ms // MINUTE_MS])
        state = _State(log_ticks, close, next_id, start[:n], fresh=close < 0)
        begin = int(start.min())
        logger.info(
            "generating simulated history for %d symbols: %s to %s (1s candles from %s)",
            report.symbols, _iso(begin), _iso(end_ms), _iso(max(begin, seconds_from)),
        )  # fmt: skip
        minutes_per_chunk = max(1, _CELLS_PER_CHUNK // n)
        seconds_per_chunk = 60 * max(1, _CELLS_PER_CHUNK // (60 * n))
        t = begin
        last_log = time.monotonic()
        while t < end_ms:
            if t < seconds_from:
                stop = min(seconds_from, t + minutes_per_chunk * MINUTE_MS)
                buckets = self._buckets(state, t, stop, MINUTE_MS)
                report.candles_1m += self._emit(buckets, "1m", write)
                if perps is not None:
                    report.perp_candles_1m += self._emit(perps.derive(buckets), "1m", write, MARKET)
            else:
                stop = min(end_ms, t + seconds_per_chunk * SECOND_MS)
                buckets = self._buckets(state, t, stop, SECOND_MS)
                report.candles_1s += self._emit(buckets, "1s", write)
                report.candles_1m += self._emit(minutes_of(buckets), "1m", write)
                if perps is not None:
                    twins = perps.derive(buckets)
                    report.perp_candles_1s += self._emit(twins, "1s", write, MARKET)
                    minutes = minutes_of(twins)
                    report.perp_candles_1m += self._emit(minutes, "1m", write, MARKET)
            t = stop
            if time.monotonic() - last_log >= 2.0:
                last_log = time.monotonic()
                logger.info(
                    "simulated history: %s of %s done (%d 1m and %d 1s candles)",
                    _duration(t - begin), _duration(end_ms - begin),
                    report.candles_1m, report.candles_1s,
                )  # fmt: skip
        for i, name in enumerate(self._names):
            if start[i] >= end_ms:
                continue
            resume[name] = SymbolResume(
                Decimal(int(state.close[i])).scaleb(-int(self._pdec[i])),
                int(state.next_id[i]),
                end_ms * 1000,
            )
        report.seconds = time.monotonic() - started
        logger.info(
            "simulated history written: %d symbols, %d 1m and %d 1s candles "
            "(perpetuals: %d 1m and %d 1s) in %.1f s",
            report.symbols, report.candles_1m, report.candles_1s,
            report.perp_candles_1m, report.perp_candles_1s, report.seconds,
        )  # fmt: skip
        return resume, report

    # ------------------------------------------------------------------ generation

    def _buckets(self, state: _State, t0: int, t1: int, step_ms: int) -> Buckets:
        """Draw the buckets `[t0, t1)` of `step_ms` for every symbol, advancing `state`."""
        rng = self._rng
        times = np.arange(t0, t1, step_ms, dtype=I64)
        n, b = len(self._names), len(times)
        dt = step_ms / 1000
        regimes = self.market.regimes.at((times + step_ms // 2) / 1000)
        weight = self._weight[:, None] * regimes.activity
        prints_per_s = self.market.rate * weight / weight.sum(axis=0)
        count = rng.poisson(prints_per_s * dt)
        active = times[None, :] >= state.start[:, None]
        first = state.fresh[:, None] & (times[None, :] == state.start[:, None])
        # A symbol's history opens with a trade: before it there is no candle at all.
        count = np.where(first & (count == 0), 1, count)
        count = np.where(active, count, 0)

        # The fair price: a log walk with the regimes' drift and volatility, started at
        # each symbol's stored close (or seeded price) when its history starts.
        z = rng.standard_normal((n, b))
        pull = REVERSION_PER_S * (state.log_ticks - self._anchor)[:, None]
        step = (regimes.drift - pull) * dt + regimes.vol * math.sqrt(dt) * z
        step = np.where(active, step, 0.0)
        y_end = state.log_ticks[:, None] + np.cumsum(step, axis=1)
        y_start = y_end - step
        f_start, f_end = np.exp(y_start), np.exp(y_end)
        spread = np.maximum(1, np.rint(self._spread[:, None] * regimes.spread * f_end)).astype(I64)
        bid_start = np.maximum(1, np.floor(f_start - spread / 2)).astype(I64)
        bid_end = np.maximum(1, np.floor(f_end - spread / 2)).astype(I64)
        buy_open = rng.random((n, b)) < regimes.buy_p
        buy_close = rng.random((n, b)) < regimes.buy_p
        open_ = np.where(buy_open, bid_start + spread, bid_start)
        close = np.where(buy_close, bid_end + spread, bid_end)
        one = count == 1
        open_ = np.where(one, close, open_)
        buy_open = np.where(one, buy_close, buy_open)
        # Prices reached between the first and last trade: beyond them by a share of
        # the interval's move, for three trades or more.
        reach = regimes.vol * math.sqrt(dt) * f_end
        many = count >= 3
        up = np.where(many, np.rint(np.abs(rng.standard_normal((n, b))) * reach), 0).astype(I64)
        down = np.where(many, np.rint(np.abs(rng.standard_normal((n, b))) * reach), 0).astype(I64)
        high = np.maximum(open_, close) + up
        low = np.maximum(1, np.minimum(open_, close) - down)

        # Volumes in steps: each trade at least one step.
        safe = np.maximum(count, 1)
        mean_steps = self._median[:, None] * regimes.size * MEAN_SIZE
        noise = SIZE_SIGMA * np.sqrt(MEAN_FILLS / safe)
        volume = np.rint(
            count * mean_steps * np.exp(noise * rng.standard_normal((n, b)) - noise**2 / 2)
        )
        volume = np.maximum(volume.astype(I64), count)
        # Two trades: one at the open, one at the close, each of its own side.
        split = np.clip(np.rint(volume * rng.random((n, b))).astype(I64), 1, volume - 1)
        # Three or more: taker buys at the ask side of the interval, sells at the bid.
        share = np.clip(regimes.buy_p + rng.standard_normal((n, b)) * 0.5 / np.sqrt(safe), 0, 1)
        mid = (f_start + f_end) / 2
        sides = taker_sides(
            count,
            volume,
            share,
            Prices(open_, high, low, close),
            (mid + spread / 2, mid - spread / 2),
            (buy_open, buy_close, split),
        )
        # Sums are exact int64 arithmetic: refuse a market whose minutes could overflow.
        biggest = float((volume.astype(np.float64) * high).max()) * (MINUTE_MS / step_ms)
        if biggest > _SAFE_UNITS:
            raise OverflowError(
                f"a minute's quote volume of this market ({biggest:.3g} units) is too "
                "large to generate exactly: lower the rate"
            )
        state.log_ticks = np.where(active[:, -1], y_end[:, -1], state.log_ticks)
        prices = Prices(open_, high, low, close)
        buckets = settle(
            times, step_ms, active, count, prices, volume, sides, state.close, state.next_id
        )
        state.close = buckets.close[:, -1]
        state.next_id = buckets.last_id[:, -1] + 1
        return buckets

    def _emit(self, buckets: Buckets, interval: str, write: Write, market: str = "") -> int:
        """Hand the emitted buckets to `write` as one Arrow table of candle rows, on
        `market` (default: the market's own; the rows are its first symbols).

        Arrow, not text: the values are integers of ticks and steps already, and an
        Arrow decimal is such an integer with a scale, so no number is formatted or
        parsed on the way into ClickHouse (2.4x less CPU than TabSeparated, measured).
        """
        rows, cols = np.nonzero(buckets.emit)
        if not len(rows):
            return 0
        pdec, qdec = self._pdec[rows], self._qdec[rows]
        real = buckets.count[rows, cols] > 0
        times = buckets.times[cols]
        n = len(rows)

        def price(a: Array) -> pa.Array:
            return decimal_array(a[rows, cols], 8 - pdec, 8)

        def volume(a: Array) -> pa.Array:
            return decimal_array(a[rows, cols], 8 - qdec, 8)

        def quote(a: Array) -> pa.Array:
            return decimal_array(a[rows, cols], 16 - pdec - qdec, 16)

        names = pa.array(self._names, type=pa.string())
        table = pa.table(
            {
                "exchange": pa.array(np.full(n, self.market.exchange)),
                "market": pa.array(np.full(n, market or self.market.market)),
                "symbol": pa.DictionaryArray.from_arrays(rows.astype(np.int32), names).cast(
                    pa.string()
                ),
                "open_time": pa.array(times, type=_TIME),
                "close_time": pa.array(times + buckets.step_ms - 1, type=_TIME),
                "open": price(buckets.open),
                "high": price(buckets.high),
                "low": price(buckets.low),
                "close": price(buckets.close),
                "volume": volume(buckets.volume),
                "quote_volume": quote(buckets.quote),
                "count": pa.array(buckets.count[rows, cols], type=pa.uint64()),
                "taker_buy_volume": volume(buckets.buy_volume),
                "taker_buy_quote_volume": quote(buckets.buy_quote),
                "first_trade_id": pa.array(buckets.first_id[rows, cols], mask=~real),
                "last_trade_id": pa.array(buckets.last_id[rows, cols], mask=~real),
                "version": pa.array(np.ones(n, dtype=np.uint32)),
                "source": pa.array(np.full(n, "trades")),
            }
        )
        write(interval, table)
        return n


_TIME = pa.timestamp("ms", tz="UTC")


@dataclass
class _State:
    """Each symbol's walk between chunks of buckets."""

    log_ticks: Array
    close: Array
    next_id: Array
    start: Array
    fresh: Array


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) + "Z"


def _duration(ms: int) -> str:
    minutes = ms // MINUTE_MS
    return f"{minutes // 60}h{minutes % 60:02d}m"
