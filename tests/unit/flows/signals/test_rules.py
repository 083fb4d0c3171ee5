"""Signal rules on hand-made bars, the registry, and bars that close per timeframe and fire
exactly once (`flows.signals.bars`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import pytest
from pydantic import ValidationError

from flows.signals.bars import SymbolBars
from flows.signals.rules import (
    Bars,
    Fired,
    Registry,
    breakout,
    default_rules,
    ema,
    ema_cross,
    volume_spike,
)
from flows.signals.settings import SignalParams
from schemas.candles import Candle
from schemas.signals import Signal

RULES = default_rules()

T0 = 1_723_161_600_000  # 2024-08-09 00:00 UTC
M = 60_000


def bars(
    close: Sequence[float],
    volume: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
    low: Sequence[float] | None = None,
    open_: Sequence[float] | None = None,
) -> Bars:
    n = len(close)
    return Bars(
        np.arange(n, dtype=float) * M + T0,
        np.array(open_ if open_ is not None else close, dtype=float),
        np.array(high if high is not None else close, dtype=float),
        np.array(low if low is not None else close, dtype=float),
        np.array(close, dtype=float),
        np.array(volume if volume is not None else [1.0] * n, dtype=float),
    )


SMALL = SignalParams(
    volume_spike_factor=2,
    volume_spike_bars=3,
    breakout_bars=3,
    ema_fast=2,
    ema_slow=3,
    history_bars=10,
)


def test_volume_spike_fires_at_k_times_the_mean_of_the_bars_before() -> None:
    # mean of 2, 4, 6 is 4: a spike needs 8
    at = volume_spike(bars([1, 1, 1, 1.5], [2, 4, 6, 8], open_=[1, 1, 1, 1]), SMALL)
    assert at == Fired("up", 2.0, {"volume": 8.0, "mean_volume": 4.0})
    assert volume_spike(bars([1, 1, 1, 1], [2, 4, 6, 7.99]), SMALL) is None
    down = volume_spike(bars([1, 1, 1, 0.5], [2, 4, 6, 12], open_=[1, 1, 1, 1]), SMALL)
    assert down is not None and down.direction == "down" and down.value == 3.0
    assert volume_spike(bars([1, 1, 1], [2, 4, 60]), SMALL) is None  # 2 bars before, not 3
    assert volume_spike(bars([1, 1, 1, 1], [0, 0, 0, 5]), SMALL) is None  # zero mean


def test_breakout_closes_beyond_the_range_of_the_bars_before() -> None:
    high = [10, 12, 11, 13]
    low = [8, 9, 7, 6]
    up = breakout(bars([9, 10, 10, 12.6], high=high, low=low), SMALL)
    assert up == Fired("up", pytest.approx((12.6 / 12 - 1) * 100), {"level": 12.0})
    down = breakout(bars([9, 10, 10, 6.3], high=high, low=low), SMALL)
    assert down == Fired("down", pytest.approx((6.3 / 7 - 1) * 100), {"level": 7.0})
    assert breakout(bars([9, 10, 10, 12], high=high, low=low), SMALL) is None  # at the level


def test_ema_is_seeded_with_the_mean_then_smoothed() -> None:
    out = ema(np.array([1.0, 2.0, 3.0, 10.0]), 3)
    assert np.isnan(out[0]) and np.isnan(out[1])
    assert out[2] == 2.0  # mean of 1, 2, 3
    assert out[3] == 2.0 + 0.5 * (10.0 - 2.0)  # alpha = 2 / (3 + 1)
    assert np.isnan(ema(np.array([1.0]), 3)).all()


def test_ema_cross_up_and_down() -> None:
    # fast EMA(2), slow EMA(3). closes 3, 2, 1 -> fast 1.5 then 1.5 + 2/3 * (1 - 1.5)
    closes = [3.0, 2.0, 1.0, 5.0]
    fast = ema(np.array(closes), 2)
    slow = ema(np.array(closes), 3)
    assert fast[2] < slow[2] and fast[3] > slow[3]  # the fixture really crosses
    up = ema_cross(bars(closes), SMALL)
    assert up is not None and up.direction == "up"
    assert up.value == pytest.approx((fast[3] - slow[3]) / slow[3] * 100)
    assert up.details == {"ema_fast": pytest.approx(fast[3]), "ema_slow": pytest.approx(slow[3])}
    down = ema_cross(bars([1.0, 2.0, 3.0, -5.0]), SMALL)
    assert down is not None and down.direction == "down"
    assert ema_cross(bars([1.0, 2.0, 3.0, 4.0]), SMALL) is None  # fast stays above
    assert ema_cross(bars([3.0, 2.0, 1.0]), SMALL) is None  # the bar before has no slow EMA


def test_params_are_validated() -> None:
    with pytest.raises(ValidationError, match="ema_fast"):
        SignalParams(ema_fast=21, ema_slow=9)
    with pytest.raises(ValidationError, match="history_bars"):
        SignalParams(history_bars=21)


def test_a_registry_runs_each_rule_on_its_timeframes() -> None:
    registry = RULES.copy()

    @registry.register("always", ["5m"])
    def always(b: Bars, params: SignalParams) -> Fired:
        return Fired("up", float(len(b)))

    assert [name for name, _ in registry.rules_for("5m")] == [
        "volume_spike",
        "breakout",
        "ema_cross",
        "always",
    ]
    assert "always" not in [name for name, _ in registry.rules_for("1m")]
    assert "always" not in [name for name, _ in RULES.rules_for("5m")]  # a copy
    with pytest.raises(ValueError, match="already registered"):
        registry.register("always")
    with pytest.raises(ValueError, match="unknown timeframes"):
        registry.register("other", ["2m"])  # type: ignore[list-item]


def one_minute(
    m: int,
    close: float,
    volume: float = 1,
    high: float | None = None,
    low: float | None = None,
    open_: float | None = None,
    count: int = 1,
    version: int = 1,
) -> Candle:
    d = Decimal
    return Candle(
        "sim",
        "spot",
        "AAA",
        "1m",
        T0 + m * M,
        T0 + (m + 1) * M - 1,
        d(str(open_ if open_ is not None else close)),
        d(str(high if high is not None else close)),
        d(str(low if low is not None else close)),
        d(str(close)),
        d(str(volume)),
        d(str(volume * close)),
        count,
        d(0),
        d(0),
        None,
        None,
        version,
    )


def spikes_only() -> Registry:
    registry = Registry()
    registry.register("volume_spike")(volume_spike)
    return registry


def capture_5m(registry: Registry) -> list[Bars]:
    """Register on `registry` a rule that keeps the 5m bars it is shown; the list it fills."""
    captured: list[Bars] = []
    registry.register("capture", ["5m"])(lambda b, p: captured.append(b))
    return captured


def run(symbol_bars: SymbolBars, candles: list[Candle], registry: Registry) -> list[Signal]:
    out = []
    for c in candles:
        out.extend(symbol_bars.add_minute(c, registry, SMALL))
    return out


def test_a_spike_fires_once_when_its_minute_closes_and_not_on_revision() -> None:
    registry = spikes_only()
    state = SymbolBars("sim", "spot", "AAA", SMALL)
    fired = run(state, [one_minute(m, 10, volume=v) for m, v in enumerate([1, 1, 1, 5])], registry)
    assert fired == [
        Signal(
            "sim",
            "spot",
            "AAA",
            "volume_spike",
            "1m",
            T0 + 4 * M,  # the close of minute 3
            "up",
            10.0,
            5.0,
            {"volume": 5.0, "mean_volume": 1.0},
        )
    ]
    # a late trade revises minute 3 (volume 6): nothing fires again, nor does a repeat
    again = run(
        state, [one_minute(3, 10, volume=6, version=2), one_minute(3, 10, volume=5)], registry
    )
    assert again == []
    # the revision counts for the bars after it: 6 is now in the mean of minute 4's bars
    more = run(state, [one_minute(4, 10, volume=16)], registry)
    assert [(s.time_ms, s.value) for s in more] == [(T0 + 5 * M, pytest.approx(16 / (8 / 3)))]


def test_a_rerun_fires_the_same_signals() -> None:
    candles = [one_minute(m, 10 + (m % 4), volume=1 + (m % 5) * 2) for m in range(40)]
    first = run(SymbolBars("sim", "spot", "AAA", SMALL), candles, RULES)
    second = run(SymbolBars("sim", "spot", "AAA", SMALL), candles, RULES)
    assert first and first == second
    assert {s.timeframe for s in first} >= {"1m", "5m"}


def test_five_minute_bars_roll_up_traded_minutes_only() -> None:
    registry = Registry()
    captured = capture_5m(registry)
    state = SymbolBars("sim", "spot", "AAA", SMALL)
    minutes = [
        one_minute(0, 10, count=0),  # flat: carries the previous close
        one_minute(1, 11, open_=12, high=13, low=10.5, volume=2),
        one_minute(2, 11, count=0),
        one_minute(3, 9, open_=11, high=11.5, low=8, volume=3),
        one_minute(4, 9, count=0),
    ]
    run(state, minutes[:4], registry)
    assert captured == []  # the 5m bar closes with minute 4
    run(state, minutes[4:], registry)
    (b,) = captured
    assert b.open_time.tolist() == [T0]
    assert (b.open[0], b.high[0], b.low[0], b.close[0], b.volume[0]) == (12, 13, 8, 9, 5)


def test_a_wholly_quiet_bar_is_flat_at_the_last_close() -> None:
    registry = Registry()
    captured = capture_5m(registry)
    state = SymbolBars("sim", "spot", "AAA", SMALL)
    run(state, [one_minute(m, 7, count=0) for m in range(5)], registry)
    (b,) = captured
    assert (b.open[0], b.high[0], b.low[0], b.close[0], b.volume[0]) == (7, 7, 7, 7, 0)


def test_a_gap_in_minutes_starts_the_bars_again() -> None:
    registry = spikes_only()
    state = SymbolBars("sim", "spot", "AAA", SMALL)
    # three quiet minutes, a gap (minute 3 missing), then a big one: no 3 bars before it
    candles = [one_minute(m, 10, volume=1) for m in range(3)] + [one_minute(4, 10, volume=9)]
    assert run(state, candles, registry) == []
    # a 5m bar missing a minute is not rolled up either
    captured = capture_5m(registry)
    run(state, [one_minute(m, 10) for m in range(5, 10)], registry)
    assert [int(b.open_time[-1]) for b in captured] == [T0 + 5 * M]


def test_a_revised_minute_rolls_up_into_its_closed_five_minute_bar() -> None:
    registry = Registry()
    captured = capture_5m(registry)
    state = SymbolBars("sim", "spot", "AAA", SMALL)
    run(state, [one_minute(m, 10, volume=1) for m in range(5)], registry)
    run(state, [one_minute(2, 10, volume=4, version=2)], registry)
    run(state, [one_minute(m, 10, volume=1) for m in range(5, 10)], registry)
    assert [b.volume.tolist() for b in captured] == [[5.0], [8.0, 5.0]]


def test_an_hour_bar_rolls_up_through_five_and_fifteen_minutes() -> None:
    captured: dict[str, list[Bars]] = {"15m": [], "1h": []}
    registry = Registry()
    registry.register("capture_15m", ["15m"])(lambda b, p: captured["15m"].append(b))
    registry.register("capture_1h", ["1h"])(lambda b, p: captured["1h"].append(b))
    params = SMALL.model_copy(update={"timeframes": ("15m", "1h")})
    state = SymbolBars("sim", "spot", "AAA", params)
    for m in range(60):
        state.add_minute(one_minute(m, 100 + m, volume=m + 1, high=200 + m), registry, params)
    assert [int(b.open_time[-1]) for b in captured["15m"]] == [T0 + q * 15 * M for q in range(4)]
    (hour,) = captured["1h"]
    assert hour.open_time.tolist() == [T0]
    assert (hour.open[0], hour.high[0], hour.low[0], hour.close[0]) == (100, 259, 100, 159)
    assert hour.volume[0] == sum(m + 1 for m in range(60))
