"""The simulated market's regimes: a scannable market, mostly calm, deterministic from the seed."""

from __future__ import annotations

import collections
import math
import statistics
from decimal import Decimal

import numpy as np
import pytest

from flows.sources.simulator import SyntheticMarket
from flows.sources.simulator.regimes import BURST, DUMP, FADE, NORMAL, PUMP, QUIET, SLOT_S, Regimes
from schemas.trades import Trade

START_S = 1_796_000_000
HOUR_US = 3_600_000_000


def test_same_seed_same_regimes_other_seed_other_regimes() -> None:
    times = np.arange(START_S, START_S + 86_400, 60)
    first = Regimes(5, 50).at(times)
    assert np.array_equal(first.kind, Regimes(5, 50).at(times).kind)
    assert np.array_equal(first.drift, Regimes(5, 50).at(times).drift)
    assert not np.array_equal(first.kind, Regimes(6, 50).at(times).kind)


def test_a_day_is_mostly_calm_with_every_kind_of_excitement() -> None:
    regimes = Regimes(1, 200).at(np.arange(START_S, START_S + 86_400, 60))
    kinds = regimes.kind
    calm = (kinds == QUIET) | (kinds == NORMAL)
    # Every symbol is calm most of the day, and quiet more than anything else.
    assert (calm.mean(axis=1) > 0.6).all()
    assert (kinds == QUIET).mean() > 0.4
    for kind in (BURST, PUMP, DUMP, FADE):
        assert 0.01 < (kinds == kind).mean() < 0.15, kind
    # A pump rises several percent over its slot and a dump falls; bursts trade more.
    pump_move = regimes.drift[kinds == PUMP] * SLOT_S
    dump_move = regimes.drift[kinds == DUMP] * SLOT_S
    assert np.median(pump_move) > 0.03 and np.median(dump_move) < -0.03
    assert regimes.activity[kinds == BURST].min() > 4 * regimes.activity[kinds == NORMAL].max()
    # Regimes last a slot: minute to minute, a symbol mostly stays where it was.
    changes = (kinds[:, 1:] != kinds[:, :-1]).mean()
    assert changes < 2 * 60 / SLOT_S


def test_a_pump_is_followed_by_a_fade_against_it() -> None:
    regimes = Regimes(3, 100)
    times = np.arange(START_S, START_S + 86_400, SLOT_S // 2)
    state = regimes.at(times)
    seen = 0
    for i, j in zip(*np.nonzero(state.kind == PUMP), strict=True):
        later = regimes.at([times[j] + SLOT_S])
        assert later.kind[i, 0] == FADE
        assert later.drift[i, 0] < state.drift[i, j]
        seen += 1
    assert seen > 10


@pytest.fixture(scope="module")
def half_hour() -> tuple[SyntheticMarket, list[Trade]]:
    """Half an hour of a 100-symbol market at 200 trades/s."""
    market = SyntheticMarket(100, 200.0, seed=3, start_us=START_S * 1_000_000)
    trades = []
    for trade in market.stream():
        if trade.time_us >= (START_S + 1_800) * 1_000_000:
            break
        trades.append(trade)
    return market, trades


def _five_minute_moves(trades: list[Trade]) -> dict[str, list[float]]:
    """Per symbol, the change of its last price over each 5 minutes, sampled every 10 s."""
    last: dict[str, Decimal] = {}
    samples: dict[str, list[Decimal | None]] = collections.defaultdict(list)
    tick = (trades[0].time_us // 10_000_000 + 1) * 10_000_000
    symbols = {t.symbol for t in trades}
    for trade in trades:
        while trade.time_us >= tick:
            for symbol in symbols:
                samples[symbol].append(last.get(symbol))
            tick += 10_000_000
        last[trade.symbol] = trade.price
    moves: dict[str, list[float]] = {}
    for symbol, prices in samples.items():
        moves[symbol] = [
            float(b / a - 1)
            for a, b in zip(prices, prices[30:], strict=False)
            if a is not None and b is not None
        ]
    return moves


def test_over_half_an_hour_some_five_minute_moves_are_several_percent(
    half_hour: tuple[SyntheticMarket, list[Trade]],
) -> None:
    _, trades = half_hour
    moves = _five_minute_moves(trades)
    largest = {symbol: max(abs(m) for m in ms) for symbol, ms in moves.items() if ms}
    # Some symbols pump or dump several percent within 5 minutes...
    assert sum(move > 0.03 for move in largest.values()) >= 3
    assert max(largest.values()) > 0.05
    # ...while most 5-minute windows of most symbols move less than 1 %.
    every = [abs(m) for ms in moves.values() for m in ms]
    assert sum(m < 0.01 for m in every) > 0.75 * len(every)


def test_volume_bursts_stand_out_from_a_symbol_s_usual_minutes(
    half_hour: tuple[SyntheticMarket, list[Trade]],
) -> None:
    market, trades = half_hour
    per_minute: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for trade in trades:
        per_minute[trade.symbol][trade.time_us // 60_000_000] += 1
    bursting = 0
    for spec in market.symbols[:40]:
        counts = [per_minute[spec.symbol][m] for m in range(START_S // 60, START_S // 60 + 30)]
        usual = statistics.median(counts)
        if usual > 0 and max(counts) > 5 * usual:
            bursting += 1
    assert bursting >= 3


def test_prices_stay_plausible_over_a_day() -> None:
    regimes = Regimes(2, 50)
    # The walk's volatility over a day is a few percent, not tens.
    daily = regimes.base_vol * math.sqrt(86_400)
    assert (daily > 0.01).all() and (daily < 0.1).all()
