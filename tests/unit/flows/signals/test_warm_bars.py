"""Signal bars filled from stored minutes hold what bars fed the same minutes live hold, fire
nothing for them, and fire the next closing bars as the live ones do."""

from __future__ import annotations

import random

import numpy as np
import pytest

from flows.signals.bars import SymbolBars
from flows.signals.history import CandleColumns
from flows.signals.rules import TIMEFRAMES, Bars, Registry, default_rules
from flows.signals.settings import SignalParams
from flows.signals.warm_bars import fill_bars
from schemas.candles import Candle
from schemas.signals import Signal
from tests.unit.flows.signals.test_rules import SMALL, T0, M, one_minute

RULES = default_rules()


PARAMS = SMALL.model_copy(update={"timeframes": ("1m", "5m", "15m", "1h")})


def market(minutes: int, seed: int = 7) -> list[Candle]:
    """A symbol's 1m candles in topic order: a random walk with volume bursts and flat
    minutes, a gap at minute 23, and revisions (a higher version) of some minutes a few
    minutes after them."""
    rng = random.Random(seed)
    out: list[Candle] = []
    close = 100.0
    for m in range(minutes):
        if m == 23:
            continue
        if rng.random() < 0.15:
            out.append(one_minute(m, close, volume=0, count=0))
        else:
            open_ = close
            close = round(close * (1 + rng.gauss(0, 0.004)), 2)
            volume = round(rng.uniform(1, 3) * (6 if rng.random() < 0.1 else 1), 3)
            high = round(max(open_, close) * (1 + rng.uniform(0, 0.002)), 2)
            low = round(min(open_, close) * (1 - rng.uniform(0, 0.002)), 2)
            out.append(one_minute(m, close, volume, high, low, open_, count=5))
        if m % 13 == 4 and m > 3:
            # a late trade revises the minute three before this one
            old = next(c for c in out if c.open_time == T0 + (m - 3) * M)
            out.append(
                one_minute(m - 3, float(old.close), float(old.volume) + 2, float(old.high),
                           float(old.low), float(old.open), count=old.count + 1, version=2)
            )  # fmt: skip
    return out


def stored(candles: list[Candle]) -> tuple[CandleColumns, np.ndarray]:
    """What `candles_1m` FINAL holds of them: each minute at its highest version, as the
    warm start reads it (columns, then the opens)."""
    final: dict[int, Candle] = {}
    for c in candles:
        if c.open_time not in final or final[c.open_time].version < c.version:
            final[c.open_time] = c
    rows = [final[t] for t in sorted(final)]

    def column(values: list[float]) -> np.ndarray:
        return np.array(values, dtype=float)

    columns = CandleColumns(
        np.array([c.open_time for c in rows], dtype=np.int64),
        column([float(c.close) for c in rows]),
        column([float(c.high) for c in rows]),
        column([float(c.low) for c in rows]),
        column([float(c.volume) for c in rows]),
        column([float(c.quote_volume) for c in rows]),
        column([float(c.count) for c in rows]),
        np.array([c.version for c in rows], dtype=np.int64),
    )
    return columns, column([float(c.open) for c in rows])


def feed(bars: SymbolBars, candles: list[Candle], registry: Registry = RULES) -> list[Signal]:
    out = []
    for c in candles:
        out.extend(bars.add_minute(c, registry, PARAMS))
    return out


def fresh(params: SignalParams = PARAMS) -> SymbolBars:
    return SymbolBars("sim", "spot", "AAA", params)


def cut_at(candles: list[Candle], minute: int) -> int:
    """Index of the first candle of `minute` (what a restart there leaves on each side)."""
    return next(i for i, c in enumerate(candles) if c.open_time >= T0 + minute * M)


@pytest.mark.parametrize("restart", [61, 107, 120, 135, 150, 179, 241])
def test_bars_filled_from_the_store_fire_the_next_bars_as_live_ones(restart: int) -> None:
    candles = market(480)
    cut = cut_at(candles, restart)
    live = fresh()
    before = feed(live, candles[:cut])
    after = feed(live, candles[cut:])

    warm = fresh()
    fill_bars(warm, *stored(candles[:cut]))
    # the restarted topic repeats the last stored minutes (and a revision of one of them,
    # as the live run would also have seen it) before the new ones
    assert feed(warm, candles[cut - 4 :]) == after
    assert before and after  # both sides fire: the test compares something
    fired = {(s.name, s.timeframe) for s in after}
    assert {("volume_spike", "1m"), ("breakout", "5m"), ("ema_cross", "15m")} <= fired
    assert any(s.timeframe == "1h" for s in after)
    for tf in TIMEFRAMES:
        a, b = live.history(tf), warm.history(tf)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            np.testing.assert_array_equal(a.ordered(), b.ordered(), err_msg=tf)


def test_the_filled_bars_equal_the_live_ones_to_the_last_bit() -> None:
    candles = market(300, seed=11)
    live = fresh()
    feed(live, candles)
    warm = fresh()
    fill_bars(warm, *stored(candles))
    for tf in ("1m", "5m", "15m", "1h"):
        a, b = live.history(tf), warm.history(tf)
        assert a is not None and b is not None and len(a) == len(b) > 0
        assert a.ordered().tobytes() == b.ordered().tobytes(), tf


def test_a_revision_of_a_stored_minute_after_the_start_fires_nothing_and_counts_later() -> None:
    candles = market(120, seed=3)
    cut = cut_at(candles, 100)
    last = candles[cut - 1]
    revision = one_minute(
        (last.open_time - T0) // M, float(last.close), float(last.volume) * 40,
        float(last.high), float(last.low), float(last.open), count=last.count + 1, version=5,
    )  # fmt: skip
    later = [revision, *candles[cut:]]
    live, warm = fresh(), fresh()
    feed(live, candles[:cut])
    fill_bars(warm, *stored(candles[:cut]))
    assert feed(warm, [revision]) == feed(live, [revision]) == []
    assert feed(warm, later[1:]) == feed(live, later[1:])
    one_live, one_warm = live.history("1m"), warm.history("1m")
    assert one_live is not None and one_warm is not None
    np.testing.assert_array_equal(one_live.ordered(), one_warm.ordered())


def test_no_rule_runs_on_the_stored_bars() -> None:
    calls: list[tuple[str, int]] = []
    registry = Registry()

    def spy(timeframe: str) -> None:
        @registry.register(f"spy_{timeframe}", [timeframe])  # type: ignore[list-item]
        def _(b: Bars, p: SignalParams) -> None:
            calls.append((timeframe, int(b.open_time[-1])))

    for tf in PARAMS.timeframes:
        spy(tf)
    candles = market(180)
    warm = fresh()
    fill_bars(warm, *stored(candles))
    assert calls == []
    # the stored minutes again (the topic may still hold them): repeats, evaluated never
    feed(warm, candles, registry)
    assert calls == []
    # the next minute closes 1m, 5m, 15m and 1h bars: each is evaluated once
    feed(warm, [one_minute(180 + m, 101) for m in range(60)], registry)
    assert calls[-4:] == [
        ("1m", T0 + 239 * M), ("5m", T0 + 235 * M), ("15m", T0 + 225 * M), ("1h", T0 + 180 * M)
    ]  # fmt: skip
    assert len(calls) == 60 + 12 + 4 + 1


def test_a_gap_leaves_only_the_run_after_it() -> None:
    # minutes 0..40, then 43..70: the live bars start again at 43, and so do the filled
    candles = [one_minute(m, 10 + m % 3, volume=1 + m % 4) for m in range(41)]
    candles += [one_minute(m, 10 + m % 5, volume=1 + m % 2) for m in range(43, 71)]
    live, warm = fresh(), fresh()
    feed(live, candles)
    fill_bars(warm, *stored(candles))
    for tf in ("1m", "5m", "15m", "1h"):
        a, b = live.history(tf), warm.history(tf)
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.ordered(), b.ordered())
    five = warm.history("5m")
    assert five is not None and five.ordered()[0].tolist() == [
        T0 + m * M for m in (45, 50, 55, 60, 65)
    ]
    hour = warm.history("1h")
    assert hour is not None and len(hour) == 0


def test_only_empty_bars_are_filled() -> None:
    bars = fresh()
    feed(bars, [one_minute(0, 10)])
    with pytest.raises(ValueError, match="empty"):
        fill_bars(bars, *stored([one_minute(1, 10)]))
