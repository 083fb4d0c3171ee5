"""Scanner metrics of one symbol: its `RankRow`, defined over its held candles. Pure.

`SymbolMetrics` keeps the symbol's candles in a `flows.signals.history.CandleHistory`
(about 200 KB per symbol, whatever its activity) and its newest book ticker, and
computes the row as of the end of its latest 1s candle. Every definition is in
`SymbolMetrics.row`. A value is None until the history holds every candle it needs,
never a value over part of its window: windows at 1 s resolution (1m .. 1h) need every
one of their seconds; windows at minute resolution (4h, 24h, relative volume, RSI,
volatility, the 24h high and low) their minutes.

A fresh install has no day of candles: until a symbol's own minutes cover the 24h
window, its 24h change and quote volume come from the exchange's 24h ticker
(`schemas.tickers.Ticker24h`), if one is at most `TICKER_MAX_AGE_MS` from the row's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from flows.signals.columns import MINUTE_MS, SECOND_MS, CandleColumns, ceil_to, floor_to
from flows.signals.history import (
    HIGH,
    LOW,
    MINUTES_KEPT,
    QUOTE,
    SECONDS_KEPT,
    TRADES,
    VOLUME,
    CandleHistory,
)
from flows.signals.perps import PerpState
from schemas.candles import Candle
from schemas.quotes import Quote
from schemas.ranks import PERP_METRICS, RVOL_WINDOWS, WINDOW_MS, WINDOWS, RankRow
from schemas.tickers import Ticker24h

HOUR_MS = 3_600_000
DAY_MS = 86_400_000

RSI_PERIOD = 14
RSI_LOOKBACK = 250
"""Closed minutes the RSI is smoothed over. Wilder's smoothing forgets its seed by
(13/14)^n: after 236 steps the seed's weight is below 3e-8, so the value equals
TradingView's (seeded at the start of its whole chart) to seven digits, and two runs
that started at different times agree once they have held 250 minutes."""

TICKER_MAX_AGE_MS = 30 * 60_000
"""A 24h ticker stands in for a row's own 24h figures only while its `close_time_ms` is
at most this far from the row's time (either way): its window then differs from the row's
by at most 30 min of 24 h. The exchange sends one at a fresh start, and its klines fill
the day well within that."""

VOLATILITY_RETURNS = 60
RVOL_BARS = 10

_INF = float("inf")


def pct_change(price: float, ref: float | None) -> float | None:
    """`(price / ref - 1) * 100`, or None without a positive reference."""
    if ref is None or ref <= 0:
        return None
    return (price / ref - 1.0) * 100.0


def wilder_rsi(closes: Sequence[float], period: int = RSI_PERIOD) -> float | None:
    """Wilder's RSI of a series of closes, as TradingView's `ta.rsi` computes it.

    The average gain and loss are seeded with the simple mean of the first `period`
    changes, then smoothed with `avg = (avg * (period - 1) + x) / period`.

    Args:
        closes: Closes, oldest first.
        period: RSI length.

    Returns:
        0..100 (100 when nothing fell, 0 when nothing rose but something fell), or None
        with fewer than `period + 1` closes.
    """
    if len(closes) <= period:
        return None
    gain = loss = 0.0
    for i in range(1, period + 1):
        change = closes[i] - closes[i - 1]
        if change > 0:
            gain += change
        else:
            loss -= change
    gain /= period
    loss /= period
    keep = period - 1
    for i in range(period + 1, len(closes)):
        change = closes[i] - closes[i - 1]
        gain = (gain * keep + (change if change > 0 else 0.0)) / period
        loss = (loss * keep + (-change if change < 0 else 0.0)) / period
    if loss == 0:
        return 100.0
    if gain == 0:
        return 0.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


def log_return_stdev_pct(closes: np.ndarray) -> float | None:
    """Sample standard deviation of the log returns of `closes`, in percent.

    Returns:
        The value, or None with fewer than 3 closes or a non-positive close.
    """
    if len(closes) < 3 or float(closes.min()) <= 0:
        return None
    returns = np.diff(np.log(closes))
    return float(returns.std(ddof=1)) * 100.0


class SymbolMetrics:
    """The rolling state of one symbol and the `RankRow` it yields.

    Feed it the symbol's 1s candles (`add_second`), 1m candles (`add_minute`) and book
    tickers (`set_quote`) in topic order; after `add_second` returns True, `row()` is
    the symbol's metrics as of that second.

    Args:
        exchange: Exchange of the symbol.
        market: Market of the symbol.
        symbol: The symbol.
        seconds_kept: Length of the seconds ring.
        minutes_kept: Length of the minutes ring.
    """

    perps: PerpState | None = None
    """A perpetual's mark, funding, open interest and liquidations, once it has any (a
    class default too, so a recovery snapshot from before perpetuals resumes)."""

    def __init__(
        self,
        exchange: str,
        market: str,
        symbol: str,
        seconds_kept: int = SECONDS_KEPT,
        minutes_kept: int = MINUTES_KEPT,
    ) -> None:
        self.exchange = exchange
        self.market = market
        self.symbol = symbol
        self.history = CandleHistory(seconds_kept, minutes_kept)
        self._update_id = -1
        self._bid: float | None = None
        self._ask: float | None = None
        self._ticker: Ticker24h | None = None
        self._closed_key: tuple[int, int | None, int] | None = None
        self._rsi: float | None = None
        self._volatility: float | None = None
        self.perps = None

    def add_second(self, candle: Candle) -> bool:
        """Fold in a 1s candle.

        Returns:
            True when it is a new latest second (a row is due); False for a revision,
            a repeat, or a candle too old to hold.
        """
        return self.history.add_second(candle)

    def add_minute(self, candle: Candle) -> None:
        """Fold in a 1m candle (it replaces the minute built from the seconds)."""
        self.history.add_minute(candle)

    def set_quote(self, quote: Quote) -> None:
        """Keep the newest book ticker (by the exchange's update id)."""
        if quote.update_id < self._update_id:
            return
        self._update_id = quote.update_id
        self._bid = float(quote.bid_price)
        self._ask = float(quote.ask_price)

    def set_ticker(self, ticker: Ticker24h) -> None:
        """Keep the newest 24h ticker (by its `close_time_ms`)."""
        if self._ticker is None or self._ticker.close_time_ms <= ticker.close_time_ms:
            self._ticker = ticker

    def load(self, seconds: CandleColumns | None, minutes: CandleColumns | None) -> None:
        """Fill the empty history from stored candles (see `CandleHistory.load`)."""
        self.history.load(seconds, minutes)

    def row(self) -> RankRow:
        """The symbol's metrics as of the end of its latest 1s candle.

        Definitions (all windows end at `time_ms`, the latest 1s candle's close + 1 ms):

        - ``price``: close of the latest 1s candle.
        - ``change_pct_w`` = (price / ref - 1) * 100. For w <= 1h, ref is the close of
          the 1s candle that closed at ``time_ms - w``; for 4h and 24h, the close of the
          1m candle that closed at the last whole minute <= ``time_ms - w`` (minute
          resolution).
        - ``quote_volume_w``: for w <= 1h the sum over the 1s candles in
          ``[time_ms - w, time_ms)``; for 4h and 24h over ``[A, time_ms)`` where A is the
          first whole minute >= ``time_ms - w``: the whole minutes inside the window plus
          the seconds of the forming minute (up to 59 s shorter than w).
        - ``rvol_i``: volume of the bar of interval i holding the latest second (bars
          aligned to multiples of i since the epoch), over the mean volume of the 10
          bars before it; None with fewer than 10 bars held or a zero mean.
        - ``volatility_1h``: sample stdev of the last 60 log returns of closed 1m closes,
          x 100. ``rsi_14``: Wilder's RSI(14) of the closed 1m closes (up to
          `RSI_LOOKBACK` of them), seeded with the mean of the first 14 changes. A
          minute is closed once its last second is in.
        - ``vwap_24h`` = quote volume / volume over the 24h window above;
          ``vwap_distance_pct`` = (price / vwap - 1) * 100.
        - ``high_24h`` / ``low_24h``: highest high / lowest low of the trades in the 24h
          window (flat candles skipped; None if nothing traded). ``from_high_pct`` and
          ``from_low_pct`` = (price / high or low - 1) * 100.
        - ``new_high`` / ``new_low``: the latest second traded above / below every trade
          of the window before it (24 h, or all the history held if shorter, but at
          least 1 h of it; otherwise False).
        - ``trades_per_min``: trades of the 1s candles in ``[time_ms - 60 s, time_ms)``.
        - ``bid`` / ``ask``: the newest book ticker; ``spread_bps`` = (ask - bid) / mid
          x 10,000.
        - The perpetuals metrics (``mark_price`` .. ``liq_short_24h``): from `perps`, as
          `flows.signals.perps.PerpState.values` defines them; None without it.
          ``premium_bps`` stays None (the API's board computes it).
        - While ``quote_volume_24h`` or ``change_pct_24h`` is None above (the minutes do
          not cover the day), the newest 24h ticker whose ``close_time_ms`` is within
          `TICKER_MAX_AGE_MS` of ``time_ms`` stands in: ``quote_volume_24h`` = its
          ``quote_volume``; ``change_pct_24h`` = (price / its ``open_price`` - 1) x 100.
        - ``history_1s_from_ms`` / ``history_1m_from_ms``: open time of the oldest 1s
          candle / minute held of the unbroken run through the latest one
          (`CandleHistory.seconds_from`, `minutes_from`): a metric of that resolution
          still None has a value once ``time_ms`` reaches it plus its
          `schemas.ranks.METRIC_WARMUP` span.

        Raises:
            ValueError: Before any 1s candle.
        """
        history = self.history
        time_ms = history.time_ms
        forming = history.forming_minute()
        if time_ms is None or forming is None:
            raise ValueError(f"{self.symbol}: no 1s candle yet")
        price = history.latest.close
        values: dict[str, Any] = {}
        for window in WINDOWS:
            span = WINDOW_MS[window]
            if span <= HOUR_MS:
                ref = history.second_close(time_ms - span - SECOND_MS)
                volume = history.sum_since(QUOTE, time_ms - span)
            else:
                ref = history.minute_close(floor_to(time_ms - span, MINUTE_MS) - MINUTE_MS)
                start = ceil_to(time_ms - span, MINUTE_MS)
                volume = history.minutes(QUOTE, start, forming, np.add)
            values[f"change_pct_{window}"] = pct_change(price, ref)
            values[f"quote_volume_{window}"] = volume
        for window in RVOL_WINDOWS:
            values[f"rvol_{window}"] = self._rvol(WINDOW_MS[window], forming)
        self._closed_minutes(floor_to(time_ms, MINUTE_MS))
        values["rsi_14"] = self._rsi
        values["volatility_1h"] = self._volatility
        self._day(values, price, time_ms, forming)
        values["trades_per_min"] = history.sum_since(TRADES, time_ms - MINUTE_MS)
        ticker = self._ticker
        if ticker is not None and abs(time_ms - ticker.close_time_ms) <= TICKER_MAX_AGE_MS:
            if values["quote_volume_24h"] is None:
                values["quote_volume_24h"] = float(ticker.quote_volume)
            if values["change_pct_24h"] is None:
                values["change_pct_24h"] = pct_change(price, float(ticker.open_price))
        bid, ask = self._bid, self._ask
        values["bid"], values["ask"] = bid, ask
        if bid is not None and ask is not None and bid > 0 and ask > 0:
            values["spread_bps"] = (ask - bid) / ((ask + bid) / 2.0) * 10_000.0
        if self.perps is not None:
            values.update(zip(PERP_METRICS, self.perps.values(time_ms), strict=True))
        return RankRow(
            self.exchange,
            self.market,  # type: ignore[arg-type]
            self.symbol,
            time_ms,
            price,
            **values,
            history_1s_from_ms=history.seconds_from(),
            history_1m_from_ms=history.minutes_from(),
        )

    def _rvol(self, interval: int, forming: int) -> float | None:
        bar = floor_to(forming, interval)
        before = self.history.minutes(VOLUME, bar - RVOL_BARS * interval, bar - MINUTE_MS, np.add)
        if before is None or before <= 0:
            return None
        now = self.history.minutes(VOLUME, bar, forming, np.add)
        assert now is not None, "the minutes after known ones are known"
        return now / (before / RVOL_BARS)

    def _closed_minutes(self, closed_end: int) -> None:
        """RSI and volatility of the minutes closed by `closed_end`: computed once per
        closed minute (and again when a 1m candle or a revision changes one)."""
        history = self.history
        first = history.minutes_from()
        key = (closed_end, first, history.revised)
        if key == self._closed_key:
            return
        self._closed_key = key
        self._rsi = self._volatility = None
        last = closed_end - MINUTE_MS
        if first is None or last < first:
            return
        closes = history.closes(max(first, last - (RSI_LOOKBACK - 1) * MINUTE_MS), last)
        self._rsi = wilder_rsi(closes.tolist())
        if len(closes) > VOLATILITY_RETURNS:
            self._volatility = log_return_stdev_pct(closes[-(VOLATILITY_RETURNS + 1) :])

    def _day(self, values: dict[str, Any], price: float, time_ms: int, forming: int) -> None:
        """The 24h window's VWAP, high and low, and whether this second made a new one."""
        history = self.history
        start = ceil_to(time_ms - DAY_MS, MINUTE_MS)
        volume = history.minutes(VOLUME, start, forming, np.add)
        quote = values["quote_volume_24h"]
        if volume and quote is not None:
            values["vwap_24h"] = quote / volume
            values["vwap_distance_pct"] = pct_change(price, quote / volume)
        high = history.minutes(HIGH, start, forming, np.maximum)
        low = history.minutes(LOW, start, forming, np.minimum)
        if high is not None and high > -_INF:
            values["high_24h"] = high
            values["from_high_pct"] = pct_change(price, high)
        if low is not None and low < _INF:
            values["low_24h"] = low
            values["from_low_pct"] = pct_change(price, low)
        first = history.minutes_from()
        latest = history.latest
        # The history before this second (which opened at time_ms - 1 s) must span an hour.
        if first is None or first > time_ms - SECOND_MS - HOUR_MS or latest.high == -_INF:
            return
        first = max(start, first)
        before_high, before_low = history.forming_high, history.forming_low
        if first < forming:
            earlier_high = history.minutes(HIGH, first, forming - MINUTE_MS, np.maximum)
            earlier_low = history.minutes(LOW, first, forming - MINUTE_MS, np.minimum)
            assert earlier_high is not None and earlier_low is not None
            before_high = max(before_high, earlier_high)
            before_low = min(before_low, earlier_low)
        values["new_high"] = -_INF < before_high < latest.high
        values["new_low"] = _INF > before_low > latest.low
