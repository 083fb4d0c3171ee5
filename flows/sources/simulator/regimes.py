"""The simulated market's regimes: quiet, normal, volume bursts, pumps, dumps and trends.

A regime is a pure function of (seed, symbol, time): each symbol's time is cut into
5-minute slots (and 1-hour trend blocks), each starting at a per-symbol phase, and a hash
of (seed, symbol, slot) picks the slot's regime. So the trade-level simulator and the
candle-level history generator see the same regimes without sharing any state, a
restart continues the same schedule, and a seed alone fixes every regime.

Most slots are quiet or normal; a few are volume bursts, pumps or dumps of several
percent; the slot after a pump or dump fades part of the move. An hour block may carry a
trend of a few percent per hour. Prices follow a log random walk with the regime's drift
and volatility, pulled back towards the symbol's starting price over about half a day so
that long runs stay plausible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SLOT_S = 300
"""Length of a regime slot, in seconds."""

TREND_BLOCK_S = 3_600
"""Length of a trend block, in seconds."""

REVERSION_PER_S = 1.0 / (12 * 3_600)
"""Pull of the log price back to its anchor, per second (a half-day time scale)."""

QUIET, NORMAL, BURST, PUMP, DUMP, FADE = range(6)
NAMES = ("quiet", "normal", "burst", "pump", "dump", "fade")

# Cumulative probabilities of a slot's regime (unless it follows a pump or dump).
_QUIET_P = 0.56
_NORMAL_P = _QUIET_P + 0.27
_BURST_P = _NORMAL_P + 0.09
_PUMP_P = _BURST_P + 0.04  # the rest dumps
_MOVE_MIN, _MOVE_MAX = 0.03, 0.12  # log move of a pump or dump over its slot
_FADE_MIN, _FADE_MAX = 0.3, 0.6  # share of the move the next slot gives back
_TREND_P = 0.3
_TREND_MIN, _TREND_MAX = 0.01, 0.04  # log move per hour of a trend block

# Per regime: trade activity, volatility, trade size, spread multipliers, and the chance
# that a taker buys (pumps are bought, dumps sold).
_ACTIVITY = np.array([0.3, 1.0, 8.0, 10.0, 10.0, 3.0])
_VOLATILITY = np.array([0.5, 1.0, 2.0, 3.0, 3.0, 2.0])
_SIZE = np.array([0.7, 1.0, 2.0, 2.0, 2.0, 1.3])
_SPREAD = np.array([1.0, 1.0, 1.5, 3.0, 3.0, 2.0])
_BUY_P = np.array([0.5, 0.5, 0.5, 0.66, 0.34, 0.5])

_DAILY_VOL_MIN, _DAILY_VOL_MAX = 0.02, 0.06
_DAY_S = 86_400.0

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser: a well-spread 64-bit hash, vectorised (wraps on overflow)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    return z ^ (z >> np.uint64(31))


def uniform(seed: int, *keys: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """A deterministic uniform in [0, 1) per element of the broadcast `keys`.

    Args:
        seed: The market's seed.
        keys: Integers (arrays broadcast together), e.g. salt, symbol index, slot.

    Returns:
        An array of the keys' broadcast shape.
    """
    with np.errstate(over="ignore"):
        h = _mix(np.atleast_1d(np.asarray(seed & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)))
        for key in keys:
            h = _mix(h ^ np.asarray(key, dtype=np.int64).astype(np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass(frozen=True, slots=True)
class RegimeState:
    """What the regimes say of each symbol (one row each) at each time asked (one column).

    Attributes:
        kind: The regime (`QUIET` .. `FADE`).
        activity: Multiplier of the symbol's share of the market's trades.
        drift: Drift of the log price, per second.
        vol: Volatility of the log price, per square root of a second.
        size: Multiplier of trade sizes.
        spread: Multiplier of the symbol's quoted spread.
        buy_p: Chance that a taker order is a buy.
    """

    kind: npt.NDArray[np.int64]
    activity: npt.NDArray[np.float64]
    drift: npt.NDArray[np.float64]
    vol: npt.NDArray[np.float64]
    size: npt.NDArray[np.float64]
    spread: npt.NDArray[np.float64]
    buy_p: npt.NDArray[np.float64]


class Regimes:
    """The regime schedule of a market of `symbols` symbols under `seed`.

    Args:
        seed: The market's seed.
        symbols: How many symbols (indices 0 .. symbols - 1, busiest first).
    """

    def __init__(self, seed: int, symbols: int) -> None:
        self.seed = seed
        index = np.arange(symbols, dtype=np.int64)
        self._index = index[:, None]
        self._slot_phase = (uniform(seed, 1, index) * SLOT_S).astype(np.int64)[:, None]
        self._trend_phase = (uniform(seed, 2, index) * TREND_BLOCK_S).astype(np.int64)[:, None]
        daily = _DAILY_VOL_MIN + (_DAILY_VOL_MAX - _DAILY_VOL_MIN) * uniform(seed, 3, index)
        self.base_vol = daily / np.sqrt(_DAY_S)
        """Each symbol's volatility of the log price in the normal regime, per sqrt(s)."""

    def _slot_kind(self, slot: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
        """The regime drawn for `slot` (ignoring fades) and its pump/dump move."""
        u = uniform(self.seed, 4, self._index, slot)
        kind = np.select(
            [u < _QUIET_P, u < _NORMAL_P, u < _BURST_P, u < _PUMP_P],
            [QUIET, NORMAL, BURST, PUMP],
            DUMP,
        )
        size = _MOVE_MIN + (_MOVE_MAX - _MOVE_MIN) * uniform(self.seed, 5, self._index, slot)
        move = np.where(kind == PUMP, size, np.where(kind == DUMP, -size, 0.0))
        return kind, move

    def at(self, time_s: npt.ArrayLike) -> RegimeState:
        """The regimes of every symbol at the given times.

        Args:
            time_s: Seconds since the epoch: a number, or a 1-d array of times.

        Returns:
            Arrays of shape (symbols, times).
        """
        t = np.floor(np.atleast_1d(np.asarray(time_s, dtype=np.float64))).astype(np.int64)[None, :]
        slot = (t - self._slot_phase) // SLOT_S
        kind, move = self._slot_kind(slot)
        before, before_move = self._slot_kind(slot - 1)
        fading = (before == PUMP) | (before == DUMP)
        give_back = _FADE_MIN + (_FADE_MAX - _FADE_MIN) * uniform(self.seed, 6, self._index, slot)
        kind = np.where(fading, FADE, kind)
        move = np.where(fading, -before_move * give_back, move)

        block = (t - self._trend_phase) // TREND_BLOCK_S
        trending = uniform(self.seed, 7, self._index, block) < _TREND_P
        trend_size = _TREND_MIN + (_TREND_MAX - _TREND_MIN) * uniform(
            self.seed, 8, self._index, block
        )
        sign = np.where(uniform(self.seed, 9, self._index, block) < 0.5, -1.0, 1.0)
        trend = np.where(trending, sign * trend_size / TREND_BLOCK_S, 0.0)

        buy_p = _BUY_P[kind]
        # A fade leans against the move it gives back; a trend leans a little its way.
        buy_p = np.where(kind == FADE, np.where(move > 0, 0.58, 0.42), buy_p)
        buy_p = np.clip(buy_p + np.sign(trend) * 0.04, 0.05, 0.95)
        return RegimeState(
            kind=kind,
            activity=_ACTIVITY[kind],
            drift=move / SLOT_S + trend,
            vol=self.base_vol[:, None] * _VOLATILITY[kind],
            size=_SIZE[kind],
            spread=_SPREAD[kind],
            buy_p=buy_p,
        )
