"""A candle's figures as the signal rings take them: floats in row order, stored candles as
columns (a warm start's input), and the second and minute steps of their open times."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from schemas.candles import Candle

SECOND_MS = 1_000
MINUTE_MS = 60_000

_INF = math.inf


class CandleColumns(NamedTuple):
    """One symbol's candles of one interval as columns, oldest first, one per open time
    (as read from ClickHouse for a warm start). Flat candles have count 0."""

    open_time: np.ndarray
    """int64 ms."""
    close: np.ndarray
    high: np.ndarray
    low: np.ndarray
    volume: np.ndarray
    quote: np.ndarray
    trades: np.ndarray
    """float64, like the other figures."""
    version: np.ndarray
    """int64."""

    def tail(self, since: int) -> CandleColumns:
        """The candles opening at or after `since`."""
        i = int(np.searchsorted(self.open_time, since))
        return CandleColumns(*(column[i:] for column in self))


class Values(NamedTuple):
    """A candle's figures as floats, in the minutes ring's row order."""

    close: float
    high: float
    """-inf for a flat candle: it carries a close, not a trade."""
    low: float
    """+inf for a flat candle."""
    volume: float
    quote: float
    trades: float


def candle_values(candle: Candle) -> Values:
    """A candle's figures as floats (a flat candle's high and low are -inf and +inf)."""
    flat = candle.count == 0
    return Values(
        float(candle.close),
        -_INF if flat else float(candle.high),
        _INF if flat else float(candle.low),
        float(candle.volume),
        float(candle.quote_volume),
        float(candle.count),
    )


def floor_to(t: int, step: int) -> int:
    """The largest multiple of `step` at or before `t`."""
    return t - t % step


def ceil_to(t: int, step: int) -> int:
    """The smallest multiple of `step` at or after `t`."""
    return -(-t // step) * step
