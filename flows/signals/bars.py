"""A symbol's closed bars per timeframe, and the signals they fire as each bar closes.

1m bars come from the candle topic; each longer timeframe is rolled up from the next
shorter one by the roll-up rules of every longer bar (`schemas.bars.rollup_columns`:
flat bars skipped, as a flat candle carries the previous close and is not a trade).
`SymbolBars` runs a `flows.signals.rules.Registry`'s rules once per bar, when it closes:
a revision of a bar already evaluated updates the bar (and the longer bars holding it)
but fires nothing, and a rerun over the same candles fires the same signals with the same
values. A warm start fills the bars from stored minutes without evaluating
them (`flows.signals.warm_bars`).

Memory: 8 float64 per bar, `SignalParams.history_bars` (100) bars per timeframe kept,
for each timeframe up to the longest evaluated: 25 KB per symbol for 1m .. 1h.
"""

from __future__ import annotations

import numpy as np

from flows.signals.rules import TIMEFRAME_MS, TIMEFRAMES, Bars, Registry
from flows.signals.settings import SignalParams
from schemas.bars import CLOSE, HIGH, LOW, OPEN, OPEN_TIME, VERSION, VOLUME, rollup_columns
from schemas.candles import Candle
from schemas.signals import Signal, Timeframe

MINUTE_MS = 60_000

ROLLED_FROM: dict[Timeframe, Timeframe] = {
    "5m": "1m",
    "15m": "5m",
    "1h": "15m",
    "4h": "1h",
    "1d": "4h",
}
"""Each longer timeframe is rolled up from the next shorter one (bars aligned to UTC
epoch multiples, so every 1d bar is six 4h bars)."""


class BarHistory:
    """The last closed bars of one timeframe, consecutive, in a ring (bounded memory).

    Args:
        capacity: Bars kept.
        step_ms: The timeframe's length; bars are `step_ms` apart.
    """

    def __init__(self, capacity: int, step_ms: int) -> None:
        self._data = np.zeros((8, capacity))
        self._capacity = capacity
        self._step = step_ms
        self._size = 0
        self._next = 0

    def __len__(self) -> int:
        return self._size

    @property
    def last_open(self) -> int | None:
        """Open time of the newest bar, or None when empty."""
        if not self._size:
            return None
        return int(self._data[OPEN_TIME, (self._next - 1) % self._capacity])

    def clear(self) -> None:
        """Forget every bar (the series broke: the rules need consecutive bars)."""
        self._size = 0

    def append(self, bar: np.ndarray) -> None:
        """Add the newest bar (a column of 8 values: see `candle_bar`)."""
        self._data[:, self._next] = bar
        self._next = (self._next + 1) % self._capacity
        self._size = min(self._size + 1, self._capacity)

    def extend(self, bars: np.ndarray) -> None:
        """Add bars (rows x bars, consecutive, oldest first) after the newest, as many
        `append`s would (only the last `capacity` are kept)."""
        bars = bars[:, -self._capacity :]
        n = bars.shape[1]
        slots = (self._next + np.arange(n)) % self._capacity
        self._data[:, slots] = bars
        self._next = (self._next + n) % self._capacity
        self._size = min(self._size + n, self._capacity)

    def index_of(self, open_time: int) -> int | None:
        """Ring index of the bar opening at `open_time`, if held."""
        last = self.last_open
        if last is None or (last - open_time) % self._step:
            return None
        back = (last - open_time) // self._step
        if not 0 <= back < self._size:
            return None
        return (self._next - 1 - back) % self._capacity

    def bar(self, index: int) -> np.ndarray:
        """The bar at a ring index (a view: assigning to it revises the bar)."""
        return self._data[:, index]

    def span(self, open_time: int, count: int) -> np.ndarray | None:
        """The `count` bars from the one opening at `open_time` (rows x bars), if held."""
        first = self.index_of(open_time)
        if first is None or self.index_of(open_time + (count - 1) * self._step) is None:
            return None
        return np.take(self._data, range(first, first + count), axis=1, mode="wrap")

    def ordered(self) -> np.ndarray:
        """Every bar held, oldest first (rows x bars)."""
        start = (self._next - self._size) % self._capacity
        return np.take(self._data, range(start, start + self._size), axis=1, mode="wrap")


def candle_bar(candle: Candle) -> np.ndarray:
    """A 1m candle as a bar column."""
    return np.array(
        (
            candle.open_time,
            float(candle.open),
            float(candle.high),
            float(candle.low),
            float(candle.close),
            float(candle.volume),
            candle.count,
            candle.version,
        ),
        dtype=float,
    )


def _rollup_one(open_time: int, parts: np.ndarray) -> np.ndarray:
    """One longer bar from its consecutive shorter bars (rows x bars, oldest first)."""
    return rollup_columns(np.array([open_time]), parts[:, None, :])[:, 0]


class SymbolBars:
    """A symbol's closed bars per timeframe, and the signals they fire as they close.

    Args:
        exchange: Exchange of the symbol.
        market: Market of the symbol.
        symbol: The symbol.
        params: Rule parameters, timeframes evaluated and bars kept.
    """

    def __init__(self, exchange: str, market: str, symbol: str, params: SignalParams) -> None:
        self.exchange = exchange
        self.market = market
        self.symbol = symbol
        wanted = set(params.timeframes)
        # A timeframe is kept when it, or one rolled up from it, is evaluated.
        kept = [
            tf
            for tf in TIMEFRAMES
            if any(TIMEFRAME_MS[w] >= TIMEFRAME_MS[tf] for w in wanted) or tf == "1m"
        ]
        self._histories: dict[str, BarHistory] = {
            tf: BarHistory(params.history_bars, TIMEFRAME_MS[tf]) for tf in kept
        }

    def history(self, timeframe: Timeframe) -> BarHistory | None:
        """The bars kept of a timeframe (None when neither it nor a longer one is
        evaluated)."""
        return self._histories.get(timeframe)

    def add_minute(self, candle: Candle, registry: Registry, params: SignalParams) -> list[Signal]:
        """Fold in a 1m candle; evaluate every bar it closes.

        Returns:
            The signals fired, shortest timeframe first.
        """
        history = self._histories["1m"]
        last = history.last_open
        minute = candle.open_time
        if last is not None and minute <= last:
            self._revise(candle)
            return []
        if last is not None and minute != last + MINUTE_MS:
            # A longer bar missing a minute is never rolled up, and its timeframe starts
            # again at its next bar (below), so only the minutes start again here.
            history.clear()
        history.append(candle_bar(candle))
        fired = self._evaluate("1m", registry, params)
        end = minute + MINUTE_MS
        for tf, source in ROLLED_FROM.items():
            if tf not in self._histories or end % TIMEFRAME_MS[tf]:
                continue
            open_time = end - TIMEFRAME_MS[tf]
            parts = self._histories[source].span(
                open_time, TIMEFRAME_MS[tf] // TIMEFRAME_MS[source]
            )
            if parts is None:
                continue
            longer = self._histories[tf]
            previous = longer.last_open
            if previous is not None and open_time != previous + TIMEFRAME_MS[tf]:
                longer.clear()
            longer.append(_rollup_one(open_time, parts))
            fired.extend(self._evaluate(tf, registry, params))
        return fired

    def _revise(self, candle: Candle) -> None:
        """A newer version of a held 1m bar replaces it, and the longer bars holding it
        are rolled up again. Nothing fires: those bars were evaluated when they closed."""
        history = self._histories["1m"]
        index = history.index_of(candle.open_time)
        if index is None or candle.version <= history.bar(index)[VERSION]:
            return
        history.bar(index)[:] = candle_bar(candle)
        for tf, source in ROLLED_FROM.items():
            if tf not in self._histories:
                continue
            span = TIMEFRAME_MS[tf]
            open_time = candle.open_time - candle.open_time % span
            longer = self._histories[tf]
            at = longer.index_of(open_time)
            parts = self._histories[source].span(open_time, span // TIMEFRAME_MS[source])
            if at is not None and parts is not None:
                longer.bar(at)[:] = _rollup_one(open_time, parts)

    def _evaluate(
        self, timeframe: Timeframe, registry: Registry, params: SignalParams
    ) -> list[Signal]:
        if timeframe not in params.timeframes:
            return []
        rules = registry.rules_for(timeframe)
        if not rules:
            return []
        data = self._histories[timeframe].ordered()
        bars = Bars(data[OPEN_TIME], data[OPEN], data[HIGH], data[LOW], data[CLOSE], data[VOLUME])
        time_ms = int(data[OPEN_TIME, -1]) + TIMEFRAME_MS[timeframe]
        price = float(data[CLOSE, -1])
        signals = []
        for name, rule in rules:
            fired = rule(bars, params)
            if fired is not None:
                signals.append(
                    Signal(
                        self.exchange,
                        self.market,  # type: ignore[arg-type]
                        self.symbol,
                        name,
                        timeframe,
                        time_ms,
                        fired.direction,
                        price,
                        fired.value,
                        fired.details,
                    )
                )
        return signals
