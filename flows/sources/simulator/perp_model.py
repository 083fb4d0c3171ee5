"""The simulated perpetuals' per-second model: index and mark prices, funding, open
interest and liquidations, vectorised over the perpetuals (`PerpModel`).

- **Index**: the twin's spot price smoothed over a few seconds.
- **Mark**: index plus a basis that decays towards the perpetual's last trade's premium
  over the index (a 30 s time scale), tick-rounded.
- **Premium** of the perpetual over spot: a little positive, leaning with the regime's
  move (up in a pump, down in a dump), with noise redrawn every 10 s.
- **Funding**: the estimate is Binance's formula on the time-weighted mean premium since
  the last funding time, ``P + clamp(0.01 % - P, ±0.05 %)``, capped; at each funding time
  (every 8 h of event time, 00/08/16 UTC, or every `funding_every_s` for demos) the
  estimate settles as a `FundingEvent`.
- **Open interest** moves with the perpetual's volume: a share of each step's volume
  opens positions in pumps, dumps and bursts, fades close them, noise either way, with a
  slow pull back to a base of a few hours' volume; liquidations close positions.
- **Liquidations**: only in pump and dump regimes: in a pump shorts are liquidated (a
  ``BUY`` order), in a dump longs (``SELL``), at most one per symbol per second, as
  Binance publishes them.

Every random draw is a hash of (seed, symbol, second)
(`flows.sources.simulator.regimes.uniform`), so the live perpetuals
(`flows.sources.simulator.perps`) and the history generator
(`flows.sources.simulator.perp_history`) step the same model and a seed fixes every record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from flows.sources.simulator.market import MEAN_SIZE
from flows.sources.simulator.regimes import DUMP, PUMP, SLOT_S, Regimes, RegimeState, uniform
from flows.sources.simulator.symbols import SymbolSpec
from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest
from schemas.trades import Market

Array = npt.NDArray[np.float64]

PRINT_P = 0.25
"""Chance that a twin's spot taker order also prints on the perpetual."""

FUNDING_INTERVAL_S = 8 * 3_600
"""Binance's funding interval: funding at 00:00, 08:00 and 16:00 UTC."""

MARKET: Market = "usdm"
"""The market of every perpetual's records."""

_INDEX_TAU_S = 3.0  # the index smooths the spot price over a few seconds
_BASIS_TAU_S = 30.0  # the basis decays towards the perp's premium over half a minute
_BASE_PREMIUM = 0.00005  # perps trade a little over spot: funding leans positive
_MOVE_PREMIUM = 0.02  # premium per unit of a slot's log move (a 10 % pump: +20 bps)
_NOISE_PREMIUM = 0.0004  # range of the premium's noise, redrawn every 10 s
_NOISE_EVERY_S = 10
_INTEREST = 0.0001  # Binance's interest rate per funding interval (0.01 %)
_CLAMP = 0.0005
_CAP = 0.003  # funding-rate cap of the majors on Binance (0.3 %)
_OI_BASE_HOURS = 6.0  # base open interest: this many hours of the perp's volume
_OI_TAU_S = 6 * 3_600.0
_OI_NOISE = 0.6
_OI_LEAN = np.array([0.0, 0.0, 0.05, 0.2, 0.2, -0.15])  # by regime: positions open or close
_LIQ_P = 0.1  # chance that a second of a pump or dump liquidates one position
_LIQ_SIZE = 6.0  # a liquidation's size in median trade sizes, before its heavy tail
_BANKRUPTCY = 0.004  # a liquidation order's price beyond the mark
_FUNDING_DECIMALS = 8

# Salts of the per-second hashes (the regimes use 1..9).
_SALT_NOISE, _SALT_OI, _SALT_LIQ, _SALT_LIQ_AT, _SALT_LIQ_SIZE = 101, 102, 103, 104, 105


def funding_times_between(t0_s: int, t1_s: int, every_s: int) -> list[int]:
    """Funding times `t` (seconds since the epoch) with ``t0_s < t <= t1_s``.

    Funding times are the multiples of `every_s` since the epoch: 00/08/16 UTC for 8 h.
    """
    first = (t0_s // every_s + 1) * every_s
    return list(range(first, t1_s + 1, every_s))


def _tick_decimal(ticks: int, decimals: int) -> Decimal:
    return Decimal(max(1, ticks)).scaleb(-decimals)


@dataclass(frozen=True, slots=True)
class PerpState:
    """Where one perpetual's model stands, e.g. read back from the store after a restart.

    Attributes:
        index: Index price.
        mark: Mark price.
        open_interest: Open interest, in the base asset (None: start at the base).
        funding_rate: The funding estimate the last mark showed (None: start afresh).
        time_s: When the last mark was (where the estimate's interval had got to).
    """

    index: Decimal
    mark: Decimal
    open_interest: Decimal | None = None
    funding_rate: Decimal | None = None
    time_s: int = 0


@dataclass(frozen=True, slots=True)
class Draws:
    """The per-second draws of every perpetual over a run of seconds (rows: perpetuals,
    columns: seconds from `start_s`), all pure functions of (seed, symbol, second).

    Attributes:
        start_s: The first second.
        kind: The regime (`flows.sources.simulator.regimes`).
        premium: The perpetual's premium over spot.
        oi_noise: Uniform noise of the open interest's move.
        hit: Whether the second liquidates a position (pumps and dumps only).
        buy: The liquidation's side: True for ``BUY`` (a short liquidated, in a pump).
        offset_us: The liquidation's time within the second.
        size: The liquidation's size in median trade sizes.
    """

    start_s: int
    kind: npt.NDArray[np.int64]
    premium: Array
    oi_noise: Array
    hit: npt.NDArray[np.bool_]
    buy: npt.NDArray[np.bool_]
    offset_us: npt.NDArray[np.int64]
    size: Array

    @property
    def seconds(self) -> int:
        """How many seconds the draws cover."""
        return int(self.kind.shape[1])


class PerpModel:
    """The per-second model of a set of perpetuals, vectorised over them.

    State is in floats of price units and base-asset steps; records are tick-rounded
    Decimals. `step` advances every perpetual by `dt` seconds; the caller turns the
    state into records (`Perpetuals` live, the history generator in bulk).

    Args:
        seed: The market's seed.
        specs: The perpetuals (the busiest spot symbols, in rank order).
        rate: The market's prints per second (sizes the base open interest).
        funding_every_s: Seconds between funding times.
    """

    def __init__(
        self,
        seed: int,
        specs: Sequence[SymbolSpec],
        rate: float,
        funding_every_s: int = FUNDING_INTERVAL_S,
    ) -> None:
        if funding_every_s < 1:
            raise ValueError(f"funding_every_s must be at least 1, got {funding_every_s}")
        self.seed = seed
        self.specs = tuple(specs)
        self.funding_every_s = funding_every_s
        k = len(self.specs)
        self.k = k
        self.regimes = Regimes(seed, k)
        self.index_no = np.arange(k, dtype=np.int64)[:, None]
        self.pdec = [spec.price_decimals for spec in self.specs]
        self.qdec = [spec.qty_decimals for spec in self.specs]
        self._price_scale = np.array([10.0**p for p in self.pdec])
        self.step_size = np.array([float(spec.step_size) for spec in self.specs])
        self.median_qty = np.array([spec.median_steps for spec in self.specs]) * self.step_size
        # Prints per second of the perp in the normal regime, times the mean size.
        hourly = (
            rate * np.array([spec.activity for spec in self.specs]) * PRINT_P * MEAN_SIZE * 3_600
        )
        self.oi_base = np.maximum(self.step_size, hourly * self.median_qty * _OI_BASE_HOURS)
        initial = np.array([float(spec.initial_price) for spec in self.specs])
        self.index = initial.copy()
        self.basis = np.zeros(k)
        self.mark = initial.copy()
        self.premium_sum = np.zeros(k)
        self.premium_time = np.zeros(k)
        self.open_interest = self.oi_base.copy()

    def restore(self, states: dict[int, PerpState]) -> None:
        """Continue perpetuals from stored values (by position in `specs`)."""
        for i, state in states.items():
            self.index[i] = float(state.index)
            self.mark[i] = float(state.mark)
            self.basis[i] = self.mark[i] / self.index[i] - 1.0
            if state.open_interest is not None:
                self.open_interest[i] = float(state.open_interest)
            if state.funding_rate is not None:
                # The estimate goes on from the stored one: a mean premium that gives it,
                # held over the part of the interval already gone.
                elapsed = state.time_s % self.funding_every_s
                self.premium_time[i] = elapsed
                self.premium_sum[i] = _premium_of(float(state.funding_rate)) * elapsed

    def draws(self, start_s: int, seconds: int) -> Draws:
        """The draws of `seconds` whole seconds from `start_s` (one regime lookup for all)."""
        t = np.arange(start_s, start_s + seconds, dtype=np.int64)[None, :]
        seed, index = self.seed, self.index_no
        state = self.regimes.at(t[0])
        kind = state.kind
        moving = (kind == PUMP) | (kind == DUMP)
        return Draws(
            start_s=start_s,
            kind=kind,
            premium=self._premium(state, t),
            oi_noise=uniform(seed, _SALT_OI, index, t),
            hit=moving & (uniform(seed, _SALT_LIQ, index, t) < _LIQ_P),
            buy=kind == PUMP,
            offset_us=(uniform(seed, _SALT_LIQ_AT, index, t) * 1_000_000).astype(np.int64),
            size=_LIQ_SIZE * (1.0 + 20.0 * uniform(seed, _SALT_LIQ_SIZE, index, t) ** 4),
        )

    def premium_at(self, time_s: npt.NDArray[np.int64]) -> Array:
        """Every perpetual's premium over spot at each of the seconds `time_s` (1-d), as
        `draws` has it: rows are perpetuals, columns the seconds."""
        t = np.asarray(time_s, dtype=np.int64)[None, :]
        return self._premium(self.regimes.at(t[0]), t)

    def _premium(self, state: RegimeState, t: npt.NDArray[np.int64]) -> Array:
        noise = uniform(self.seed, _SALT_NOISE, self.index_no, t // _NOISE_EVERY_S) - 0.5
        premium: Array = _BASE_PREMIUM + _MOVE_PREMIUM * state.drift * SLOT_S
        return premium + _NOISE_PREMIUM * noise

    def liquidated_qty(self, draws: Draws, columns: slice) -> Array:
        """The base quantity each drawn liquidation of `columns` closes (0 where none)."""
        step = self.step_size[:, None]
        steps = np.maximum(1.0, np.floor(draws.size[:, columns] * self.median_qty[:, None] / step))
        return np.where(draws.hit[:, columns], steps * step, 0.0)

    def step(
        self,
        draws: Draws,
        column: int,
        dt: float,
        spot: Array,
        perp_price: Array,
        volume: Array,
        liquidated: Array,
    ) -> None:
        """Advance every perpetual by `dt` seconds, to the end of a second of `draws`.

        Args:
            draws: The draws holding the step's last second.
            column: That second's column (its regime and noise).
            dt: Seconds the step spans.
            spot: Each twin's spot price at the end of the step.
            perp_price: Each perpetual's last trade price.
            volume: Each perpetual's traded base quantity over the step.
            liquidated: Base quantity liquidated over the step.
        """
        a = 1.0 - math.exp(-dt / _INDEX_TAU_S)
        self.index = self.index + a * (spot - self.index)
        d = math.exp(-dt / _BASIS_TAU_S)
        self.basis = self.basis * d + (1.0 - d) * (perp_price / self.index - 1.0)
        self.mark = self.index * (1.0 + self.basis)
        self.premium_sum += self.basis * dt
        self.premium_time += dt
        kind = draws.kind[:, column]
        opened = volume * (_OI_LEAN[kind] + _OI_NOISE * (draws.oi_noise[:, column] - 0.5))
        pull = (self.open_interest - self.oi_base) * (1.0 - math.exp(-dt / _OI_TAU_S))
        self.open_interest = np.maximum(
            0.2 * self.oi_base, self.open_interest + opened - pull - liquidated
        )

    def funding_rate(self) -> Array:
        """The current funding-rate estimate of every perpetual (a fraction per interval)."""
        mean = self.premium_sum / np.maximum(self.premium_time, 1e-9)
        rate = mean + np.clip(_INTEREST - mean, -_CLAMP, _CLAMP)
        return np.clip(rate, -_CAP, _CAP)

    def settle(self) -> None:
        """A funding time passed: the next estimate starts afresh."""
        self.premium_sum[:] = 0.0
        self.premium_time[:] = 0.0

    def next_funding_s(self, t_s: int) -> int:
        """The first funding time after second `t_s`."""
        return (t_s // self.funding_every_s + 1) * self.funding_every_s

    # ------------------------------------------------------------------ records

    def price(self, i: int, value: float) -> Decimal:
        """`value` on perpetual `i`'s tick (at least one tick)."""
        pdec = self.pdec[i]
        return _tick_decimal(round(value * self._price_scale[i]), pdec)

    def prices(self, values: Array) -> list[Decimal]:
        """Every perpetual's value in `values` on its tick (at least one tick)."""
        ticks = np.rint(values * self._price_scale).astype(np.int64).tolist()
        return [_tick_decimal(t, p) for t, p in zip(ticks, self.pdec, strict=True)]

    def qty(self, i: int, value: float) -> Decimal:
        """`value` on perpetual `i`'s step."""
        qdec = self.qdec[i]
        return Decimal(max(0, round(value * 10**qdec))).scaleb(-qdec)

    def marks(self, exchange: str, time_us: int, rates: Array) -> list[MarkPrice]:
        """Every perpetual's `MarkPrice` at `time_us` (index as the estimated settle price)."""
        next_us = self.next_funding_s(time_us // 1_000_000) * 1_000_000
        marks = self.prices(self.mark)
        indexes = self.prices(self.index)
        funding = _rates(rates)
        # Positional, in the fields' order: exchange, market, symbol, time, mark, index,
        # estimated settle price, next funding time, received, funding rate.
        return [
            MarkPrice(
                exchange,
                MARKET,
                spec.symbol,
                time_us,
                marks[i],
                indexes[i],
                indexes[i],
                next_us,
                time_us,
                funding[i],
            )
            for i, spec in enumerate(self.specs)
        ]

    def funding(self, exchange: str, funding_s: int, rates: Array) -> list[FundingEvent]:
        """Every perpetual's settled `FundingEvent` at `funding_s`."""
        marks = self.prices(self.mark)
        funding = _rates(rates)
        at_us = funding_s * 1_000_000
        return [
            FundingEvent(exchange, MARKET, spec.symbol, at_us, funding[i], "sim", marks[i])
            for i, spec in enumerate(self.specs)
        ]

    def open_interests(self, exchange: str, time_us: int) -> list[OpenInterest]:
        """Every perpetual's `OpenInterest` sample at `time_us`, valued at its mark."""
        out = []
        for i, spec in enumerate(self.specs):
            oi = self.qty(i, self.open_interest[i])
            out.append(
                OpenInterest(
                    exchange=exchange,
                    market=MARKET,
                    symbol=spec.symbol,
                    time_us=time_us,
                    open_interest=oi,
                    source="sim",
                    open_interest_value=oi * self.price(i, self.mark[i]),
                )
            )
        return out

    def liquidation(
        self, exchange: str, i: int, time_us: int, buy: bool, qty: float
    ) -> Liquidation:
        """Perpetual `i`'s liquidation order at `time_us`, filled at its mark."""
        mark = self.mark[i]
        amount = self.qty(i, qty)
        return Liquidation(
            exchange=exchange,
            market=MARKET,
            symbol=self.specs[i].symbol,
            time_us=time_us,
            side="BUY" if buy else "SELL",
            price=self.price(i, mark * (1.0 + _BANKRUPTCY if buy else 1.0 - _BANKRUPTCY)),
            avg_price=self.price(i, mark),
            qty=amount,
            filled_qty=amount,
            last_filled_qty=amount,
            status="FILLED",
            order_type="LIMIT",
            time_in_force="IOC",
            event_time_us=time_us,
            received_us=time_us,
        )


def _premium_of(rate: float) -> float:
    """A mean premium whose funding estimate is `rate` (the inverse of the clamp; the
    interest rate itself where any premium within the clamp gives it)."""
    if rate > _INTEREST:
        return rate + _CLAMP
    if rate < _INTEREST:
        return rate - _CLAMP
    return _INTEREST


def _rates(values: Array) -> list[Decimal]:
    """Funding rates as Decimals of Binance's 8 decimals."""
    units = np.rint(values * 10**_FUNDING_DECIMALS).astype(np.int64).tolist()
    return [Decimal(u).scaleb(-_FUNDING_DECIMALS) for u in units]


PerpRecord = MarkPrice | FundingEvent | OpenInterest | Liquidation
"""What the perpetuals publish besides their trades."""
