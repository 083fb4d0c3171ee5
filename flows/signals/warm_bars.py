"""Warm start of the signal bars: a symbol's `SymbolBars` filled from its stored 1m candles.

The warm start (`flows.signals.warm_start`) reads each symbol's last `MINUTES_KEPT` minutes from
`candles_1m` FINAL for its rings; the same columns (and the minutes' opens) fill its bars
here, to what an uninterrupted run that had read the same minutes in order would hold:
the 1m bars of the last unbroken run of minutes, and each longer timeframe's bars rolled
up (`schemas.bars.rollup_columns`, the live roll-up) from the shorter ones whose whole span
lies in that run, each timeframe clipped to the bars it keeps. Nothing is evaluated: those
bars closed before the start and their signals are in the `signals` table already. The
first bar that closes after the start is evaluated as in the uninterrupted run, and a
stored minute the topic delivers again is a repeat (or, with a higher version, a revision
that fires nothing).

What a day of minutes gives, with the default 100 bars kept: 1m and 5m bars in full;
15m 96 of 100 (the EMAs' seeds weigh 8e-4 instead of 8e-5 in their last values); 1h 24,
enough for every built-in rule's lookback (20 bars, EMA 21), so volume spikes and
breakouts are those of a run up for days, but the 1h EMAs are seeded 24 bars back: the
seed weighs 0.75 in the first value after the restart and 0.91 less each hour after (under
1 % after two days), so a 1h `ema_cross` may fire differently from a run up for days until
then (it equals that of a run that started on the same day of minutes). 4h (at most 6 bars)
and 1d (at most 1) need more than a day, so their rules stay silent after a restart as
after a first start, until 21 bars have closed (3.5 days for 4h, 3 weeks for 1d).

Floats: the stored prices and volumes are Decimal(38, 8) read as Float64, which equals
Python's float of the Decimal while the unscaled value is below 2^53 (prices and per-minute
volumes under 90 million); above that the last bit may differ.
"""

from __future__ import annotations

import numpy as np

from flows.signals.bars import ROLLED_FROM, SymbolBars
from flows.signals.columns import MINUTE_MS, CandleColumns, ceil_to, floor_to
from flows.signals.rules import TIMEFRAME_MS
from schemas.bars import rollup_columns
from schemas.signals import Timeframe


def minute_bars(minutes: CandleColumns, opens: np.ndarray) -> np.ndarray:
    """Stored 1m candles as bar columns (rows x minutes, the layout of `candle_bar`)."""
    return np.stack(
        (
            minutes.open_time.astype(float),
            opens,
            minutes.high,
            minutes.low,
            minutes.close,
            minutes.volume,
            minutes.trades,
            minutes.version.astype(float),
        )
    )


def fill_bars(bars: SymbolBars, minutes: CandleColumns, opens: np.ndarray) -> None:
    """Fill a symbol's empty bars from its stored 1m candles, evaluating nothing.

    Args:
        bars: The symbol's bars, empty.
        minutes: Its 1m candles, oldest first, one per open time (each at its highest
            version, as read with FINAL).
        opens: The candles' opens (the rings read no open, so they come apart).

    Raises:
        ValueError: The bars already hold minutes.
    """
    held = bars.history("1m")
    assert held is not None
    if len(held):
        raise ValueError("bars are filled only when empty")
    t = minutes.open_time
    if not len(t):
        return
    # A gap starts the bars again, as it does live: only the last unbroken run counts.
    breaks = np.flatnonzero(np.diff(t) != MINUTE_MS)
    first = int(breaks[-1]) + 1 if len(breaks) else 0
    start, end = int(t[first]), int(t[-1]) + MINUTE_MS
    series: dict[Timeframe, np.ndarray] = {"1m": minute_bars(minutes, opens)[:, first:]}
    for tf, source in ROLLED_FROM.items():
        if bars.history(tf) is None:
            continue
        step, part = TIMEFRAME_MS[tf], TIMEFRAME_MS[source]
        # The bars of this timeframe wholly inside the run; the shorter series starts at
        # its own first whole bar inside the run.
        lo = ceil_to(start, step)
        count = max(0, (floor_to(end, step) - lo) // step)
        width = step // part
        at = (lo - ceil_to(start, part)) // part
        parts = series[source][:, at : at + count * width].reshape(8, count, width)
        series[tf] = rollup_columns(lo + np.arange(count) * step, parts)
    for tf, data in series.items():
        history = bars.history(tf)
        assert history is not None
        history.extend(data)
