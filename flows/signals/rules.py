"""Signals as pluggable pure functions of closed bars, registered per timeframe.

A rule is a function `(bars, params) -> Fired | None` of a symbol's closed bars of one
timeframe (oldest first, the last one just closed); a `Registry` says which timeframes
each rule runs on. `flows.signals.bars` keeps each symbol's bars and runs the rules once
per bar, when it closes.

Built-in rules: `volume_spike`, `breakout`, `ema_cross`; `default_rules()` builds a fresh
registry of them for each flow that runs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import get_args

import numpy as np

from flows.signals.settings import SignalParams
from schemas.candles import ROLLUP_INTERVAL_MS
from schemas.signals import Direction, Timeframe

TIMEFRAMES: tuple[Timeframe, ...] = get_args(Timeframe)

TIMEFRAME_MS: dict[str, int] = {tf: ROLLUP_INTERVAL_MS[tf] for tf in get_args(Timeframe)}


@dataclass(frozen=True, slots=True)
class Bars:
    """Closed bars of one symbol and timeframe, oldest first; the last one just closed.

    Flat bars (no trade: open = high = low = close = the previous close) are included,
    as the exchange publishes them.
    """

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.close)


@dataclass(frozen=True, slots=True)
class Fired:
    """What a rule found on the bar that just closed."""

    direction: Direction
    value: float
    details: dict[str, float] = field(default_factory=dict)


Rule = Callable[[Bars, SignalParams], Fired | None]


class Registry:
    """Rules by name, each registered for the timeframes it runs on."""

    def __init__(self) -> None:
        self._rules: dict[str, tuple[Rule, tuple[Timeframe, ...]]] = {}

    def register(
        self, name: str, timeframes: Iterable[Timeframe] = TIMEFRAMES
    ) -> Callable[[Rule], Rule]:
        """Decorator: register a rule under `name` for `timeframes`.

        Raises:
            ValueError: If the name is taken or a timeframe is unknown.
        """
        chosen = tuple(timeframes)
        unknown = [tf for tf in chosen if tf not in TIMEFRAME_MS]
        if unknown:
            raise ValueError(f"unknown timeframes {unknown}")
        if name in self._rules:
            raise ValueError(f"a rule named {name!r} is already registered")

        def add(rule: Rule) -> Rule:
            self._rules[name] = (rule, chosen)
            return rule

        return add

    def rules_for(self, timeframe: str) -> list[tuple[str, Rule]]:
        """The rules registered for a timeframe, in registration order."""
        return [(name, rule) for name, (rule, tfs) in self._rules.items() if timeframe in tfs]

    def copy(self) -> Registry:
        """A registry with the same rules, to add more to without touching this one."""
        other = Registry()
        other._rules = dict(self._rules)
        return other


def volume_spike(bars: Bars, params: SignalParams) -> Fired | None:
    """The bar's volume is at least `volume_spike_factor` x the mean of the
    `volume_spike_bars` bars before it (never on a zero mean).

    Direction is the bar's body (up when close >= open); value is volume / mean.
    """
    n = params.volume_spike_bars
    if len(bars) <= n:
        return None
    mean = float(bars.volume[-n - 1 : -1].mean())
    volume = float(bars.volume[-1])
    if mean <= 0 or volume < params.volume_spike_factor * mean:
        return None
    direction: Direction = "up" if bars.close[-1] >= bars.open[-1] else "down"
    return Fired(direction, volume / mean, {"volume": volume, "mean_volume": mean})


def breakout(bars: Bars, params: SignalParams) -> Fired | None:
    """The bar closed above the highest high (up) or below the lowest low (down) of the
    `breakout_bars` bars before it; value is the distance beyond that level in percent."""
    n = params.breakout_bars
    if len(bars) <= n:
        return None
    close = float(bars.close[-1])
    top = float(bars.high[-n - 1 : -1].max())
    bottom = float(bars.low[-n - 1 : -1].min())
    if close > top > 0:
        return Fired("up", (close / top - 1) * 100, {"level": top})
    if 0 < close < bottom:
        return Fired("down", (close / bottom - 1) * 100, {"level": bottom})
    return None


def ema(values: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average, seeded with the mean of the first `period` values
    (TradingView's `ta.ema`); NaN before that."""
    n = len(values)
    if n < period:
        return np.full(n, np.nan)
    # A loop over Python floats: numpy's per-element access costs 5x as much.
    series = values.tolist()
    alpha = 2.0 / (period + 1)
    current = sum(series[:period]) / period
    out = [math.nan] * (period - 1)
    out.append(current)
    for x in series[period:]:
        current += alpha * (x - current)
        out.append(current)
    return np.array(out)


def ema_cross(bars: Bars, params: SignalParams) -> Fired | None:
    """The fast EMA crossed the slow one on this bar: up when fast > slow now and
    fast <= slow on the bar before (TradingView's `ta.crossover`), down the other way.

    Value is the gap (fast - slow) / slow in percent.
    """
    if len(bars) <= params.ema_slow:
        return None
    fast = ema(bars.close, params.ema_fast)
    slow = ema(bars.close, params.ema_slow)
    before = fast[-2] - slow[-2]
    now = fast[-1] - slow[-1]
    if before <= 0 < now:
        direction: Direction = "up"
    elif before >= 0 > now:
        direction = "down"
    else:
        return None
    details = {"ema_fast": float(fast[-1]), "ema_slow": float(slow[-1])}
    return Fired(direction, float(now / slow[-1] * 100), details)


def default_rules() -> Registry:
    """A registry of the built-in rules, each on every timeframe.

    Returns:
        A new registry each call, so a flow (or a test) may add rules to its own.
    """
    registry = Registry()
    registry.register("volume_spike")(volume_spike)
    registry.register("breakout")(breakout)
    registry.register("ema_cross")(ema_cross)
    return registry
