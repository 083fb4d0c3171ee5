"""A symbol's candle history: filled from stored candles (warm start) it equals the history
fed the same candles; candles seen again, older candles and exchange klines count once."""

from __future__ import annotations

import random
from collections.abc import Iterable

import numpy as np
import pytest

from flows.signals.history import QUOTE, CandleColumns, CandleHistory, candle_values
from flows.signals.metrics import SymbolMetrics
from schemas.candles import Candle
from schemas.ranks import RankRow
from tests.unit.flows.signals.test_metrics import T0, M, S, candle, feed, minute, sec


def columns(candles: Iterable[Candle]) -> CandleColumns:
    """Candles as the warm start reads them from ClickHouse (flat ones keep their prices)."""
    rows = [
        (
            c.open_time,
            float(c.close),
            float(c.high),
            float(c.low),
            float(c.volume),
            float(c.quote_volume),
            float(c.count),
            c.version,
        )
        for c in candles
    ]
    cols = list(zip(*rows, strict=True)) if rows else [()] * 8
    return CandleColumns(
        np.array(cols[0], dtype=np.int64),
        *(np.array(col, dtype=np.float64) for col in cols[1:7]),
        np.array(cols[7], dtype=np.int64),
    )


def market(seconds: range, minutes_before: int = 0, seed: int = 3) -> list[Candle]:
    """Candle-flow order: 1m candles of the `minutes_before` minutes before the first second,
    then each second, each minute's 1m candle after its last second; random prices, some
    flat seconds."""
    rng = random.Random(seed)
    first = seconds.start
    out = [
        minute((first * S - (minutes_before - m) * M - T0 * 0) // M, 100 + rng.random(), volume=3)
        for m in range(minutes_before)
    ]
    price = 100.0
    held: list[Candle] = []
    for s in seconds:
        price = round(price * (1 + (rng.random() - 0.5) / 100), 4)
        flat = rng.random() < 0.2
        c = sec(s, price, count=0 if flat else 2, volume=round(rng.random() * 3, 3),
                high=price + 0.01, low=price - 0.01)  # fmt: skip
        out.append(c)
        held.append(c)
        if (s + 1) % 60 == 0:
            traded = [h for h in held if h.count]
            out.append(
                minute(
                    s // 60,
                    price,
                    volume=sum(float(h.volume) for h in traded) or 0,
                    count=sum(h.count for h in traded),
                    high=max((float(h.high) for h in traded), default=price),
                    low=min((float(h.low) for h in traded), default=price),
                )
            )
            held = []
    return out


def loaded(candles: list[Candle]) -> SymbolMetrics:
    metrics = SymbolMetrics("sim", "spot", "AAA")
    metrics.load(
        columns(c for c in candles if c.interval == "1s"),
        columns(c for c in candles if c.interval == "1m"),
    )
    return metrics


def fed(candles: list[Candle]) -> SymbolMetrics:
    metrics = SymbolMetrics("sim", "spot", "AAA")
    feed(metrics, candles)
    return metrics


def same(a: RankRow, b: RankRow) -> None:
    for name in RankRow.__struct_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, float) and isinstance(y, float):
            assert x == pytest.approx(y, rel=1e-12), name
        else:
            assert x == y, name


def without(candles: list[Candle], seconds: range) -> list[Candle]:
    """The candles less the 1s candles of `seconds` (a restart's gap; the 1m candle of its
    minute, built from what was stored, still comes)."""
    return [c for c in candles if c.interval == "1m" or (c.open_time - T0) // S not in seconds]


@pytest.mark.parametrize(
    ("seconds", "minutes_before", "gaps"),
    [
        (range(0, 70 * 60 + 17), 24 * 60, ()),  # the rings full, the forming minute partial
        (range(30, 125), 0, ()),  # began inside a minute; ends on a minute's last second
        (range(0, 61), 20, ()),  # the forming minute's first second is the latest
        (range(0, 400), 30, (range(100, 110),)),  # a gap, bridged by its minute's candle
        (range(0, 400), 30, (range(100, 110), range(300, 304))),  # and one still open
    ],
)
def test_a_loaded_history_gives_the_rows_a_fed_one_gives(
    seconds: range, minutes_before: int, gaps: tuple[range, ...]
) -> None:
    candles = market(seconds, minutes_before)
    for gap in gaps:
        candles = without(candles, gap)
    cut = len(candles) - 95
    head, tail = candles[:cut], candles[cut:]
    before, warm = fed(head), loaded(head)
    same(warm.row(), before.row())
    # then the same live candles: every row equal, whatever the seam cut through
    assert feed(warm, tail).keys() == feed(before, tail).keys()
    for row_warm, row_fed in zip(feed(loaded(head), tail).values(), feed(fed(head), tail).values(),
                                 strict=True):  # fmt: skip
        same(row_warm, row_fed)


def test_candles_loaded_and_read_again_from_the_topic_count_once() -> None:
    candles = market(range(0, 300), 30)
    warm = loaded(candles[:250])
    # a real Kafka still holds them: the whole topic again, then new candles
    rows = feed(warm, candles)
    reference = feed(fed(candles[:250]), candles[250:])
    assert rows.keys() == reference.keys()
    for t, row in rows.items():
        same(row, reference[t])


def test_a_higher_version_revises_a_loaded_candle_by_difference() -> None:
    candles = market(range(0, 200), 0)
    warm, before = loaded(candles), fed(candles)
    late = sec(150, 101.5, volume=9, version=2)
    for metrics in (warm, before):
        assert not metrics.add_second(late)
        metrics.add_minute(minute(2, 101.0, volume=50, version=2))
    same(warm.row(), before.row())
    assert warm.row().quote_volume_1m == pytest.approx(before.row().quote_volume_1m)


def test_loading_into_a_history_in_use_is_refused() -> None:
    history = CandleHistory()
    history.add_second(sec(0, 10))
    with pytest.raises(ValueError, match="only when empty"):
        history.load(columns([sec(1, 10)]), None)


def test_minutes_alone_wait_for_the_first_live_second() -> None:
    metrics = SymbolMetrics("sim", "spot", "AAA")
    metrics.load(None, columns(minute(m, 100, volume=2) for m in range(-1441, 0)))
    with pytest.raises(ValueError, match="no 1s candle"):
        metrics.row()
    row = feed(metrics, [sec(0, 101, volume=1)])[0]
    # from the first whole minute after T0 + 1 s - 24 h, and against the close before it
    assert row.quote_volume_24h == pytest.approx(1439 * 200 + 101)
    assert row.change_pct_24h == pytest.approx(1.0)
    assert (row.history_1s_from_ms, row.history_1m_from_ms) == (T0, T0 - 1441 * M)


# ------------------------------------------------- older candles arriving live


def live(seconds: range) -> list[Candle]:
    return [sec(s, 100, volume=1) for s in seconds]


def test_older_exchange_klines_fill_the_day_behind_the_live_edge() -> None:
    """A fresh install: live seconds from T0, then the exchange's 1m klines of the day
    before (version 0, no trade ids), newest page first, arrive on the topic."""
    metrics = SymbolMetrics("sim", "spot", "AAA")
    feed(metrics, live(range(0, 90)))
    assert metrics.row().quote_volume_24h is None
    assert metrics.row().history_1m_from_ms == T0
    klines = [candle("1m", T0 + m * M, "50", volume=2, version=0) for m in range(-1440, 0)]
    for page in (klines[720:], klines[:720]):  # pages out of order, each oldest first
        for kline in page:
            metrics.add_minute(kline)
    rows = feed(metrics, live(range(90, 92)))
    row = rows[91]
    assert row.history_1m_from_ms == T0 - 1440 * M
    # [T0 - 24h + 1 min + 32 s .. ]: minute-resolution window from the first whole minute
    # after time - 24h = T0 - 24h + 92 s, i.e. klines -1438 .. -1, then the 92 live seconds
    assert row.quote_volume_24h == pytest.approx(1438 * 100 + 92 * 100)
    assert row.change_pct_24h == pytest.approx(100.0)  # 100 against the kline closing at 50
    assert row.rsi_14 is not None and row.rvol_1h is not None


def test_an_exchange_kline_yields_to_the_candle_built_from_trades() -> None:
    metrics = SymbolMetrics("sim", "spot", "AAA")
    feed(metrics, live(range(0, 180)))
    metrics.add_minute(candle("1m", T0, "100", volume=60))  # ours, version 1
    metrics.add_minute(candle("1m", T0, "100", volume=999, version=0))  # the exchange's
    metrics.add_minute(candle("1m", T0 + 2 * M, "100", volume=999, version=0))  # forming
    feed(metrics, live(range(180, 181)))
    history = metrics.history
    # minutes 0, 1 (from seconds) and 2 (its seconds, not the forming minute's kline)
    assert history.minutes(QUOTE, T0, T0 + 2 * M, np.add) == pytest.approx(180 * 100)
    # and a kline first, ours after it: ours wins
    metrics.add_minute(candle("1m", T0 - M, "100", volume=7, version=0))
    metrics.add_minute(candle("1m", T0 - M, "100", volume=5, version=1))
    metrics.add_minute(candle("1m", T0 - M, "100", volume=7, version=0))
    assert history.minutes(QUOTE, T0 - M, T0 - M, np.add) == pytest.approx(500)


def test_a_kline_older_than_the_day_ring_is_ignored() -> None:
    history = CandleHistory()
    for c in live(range(0, 2)):
        history.add_second(c)
    history.add_minute(candle("1m", T0 - 1445 * M, "1", version=0))
    assert history.minutes_since() == T0
    assert history.minute_close(T0 - 1445 * M) is None


def test_values_of_a_flat_candle_carry_no_high_or_low() -> None:
    flat = candle_values(sec(0, 10, count=0))
    assert (flat.high, flat.low) == (-np.inf, np.inf)


def test_a_restart_gap_is_bridged_once_its_minute_is_known() -> None:
    """Seconds 1000..1009 are missing (the process was down); the candle flow still closes
    minute 16 (960..1019) from what it stored. From then on the 5m and 1h windows have
    values again, except while they need one of the missing seconds."""
    candles = without(market(range(0, 1400), 60), range(1000, 1010))
    minute_16 = next(c for c in candles if c.interval == "1m" and c.open_time == T0 + 16 * M)
    before_it = candles[: candles.index(minute_16)]
    metrics = SymbolMetrics("sim", "spot", "AAA")
    rows = feed(metrics, before_it)
    assert rows[1011].change_pct_5m is None and rows[1011].quote_volume_5m is None
    assert rows[1011].history_1s_from_ms == T0 + 1010 * S
    rows = feed(metrics, candles[candles.index(minute_16) :])
    assert rows[1100].history_1s_from_ms == T0
    seconds = {(c.open_time - T0) // S: c for c in candles if c.interval == "1s"}
    close = {s: float(c.close) for s, c in seconds.items()}
    # as of 1101 s: against the close at 800 s, and the quote volume of [801 s, 1101 s)
    assert rows[1100].change_pct_5m == pytest.approx((close[1100] / close[800] - 1) * 100)
    # (seconds up to the first whole minute, then the minutes' own candles: 14..17, then
    # the forming minute's seconds)
    minutes = {(c.open_time - T0) // M: c for c in candles if c.interval == "1m"}
    expected = sum(float(seconds[s].quote_volume) for s in range(801, 840))
    expected += sum(float(minutes[m].quote_volume) for m in range(14, 18))
    expected += sum(float(seconds[s].quote_volume) for s in range(1080, 1101))
    assert rows[1100].quote_volume_5m == pytest.approx(expected)
    # the 5m change needs the close of a missing second: None while it does
    assert rows[1305].change_pct_5m is None  # against 1005 s
    assert rows[1310].change_pct_5m is not None  # against 1010 s
    # the 1m volume of rows as of 1030 .. 1069 s reaches into the gap (the window starts
    # at 970 .. 1009 s); as of 1070 s it starts at 1010 s
    assert all(rows[s].quote_volume_1m is None for s in range(1029, 1069))
    assert rows[1069].quote_volume_1m is not None
