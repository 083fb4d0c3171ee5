"""Rolling scanner metrics, table-tested against numbers worked out by hand in each test."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from decimal import Decimal

import numpy as np
import pytest

from flows.signals.metrics import TICKER_MAX_AGE_MS, SymbolMetrics, log_return_stdev_pct, wilder_rsi
from schemas.candles import Candle
from schemas.quotes import Quote
from schemas.ranks import RankRow
from schemas.tickers import Ticker24h

T0 = 1_723_161_600_000  # 2024-08-09 00:00:00 UTC: a whole minute, hour and day
S = 1_000
M = 60_000


def candle(
    interval: str,
    t: int,
    close: float | str,
    volume: float | str = 1,
    count: int = 1,
    high: float | None = None,
    low: float | None = None,
    version: int = 1,
    symbol: str = "AAA",
) -> Candle:
    """A candle of `symbol` at `t` ms; quote volume = volume x close; count 0 makes it
    flat."""
    step = S if interval == "1s" else M
    price = Decimal(str(close))
    qty = Decimal(0) if count == 0 else Decimal(str(volume))
    return Candle(
        "sim",
        "spot",
        symbol,
        interval,  # type: ignore[arg-type]
        t,
        t + step - 1,
        price,
        Decimal(str(high if high is not None else close)),
        Decimal(str(low if low is not None else close)),
        price,
        qty,
        qty * price,
        count,
        Decimal(0),
        Decimal(0),
        None,
        None,
        version,
    )


def sec(s: int, close: float, **kw: float) -> Candle:
    """The 1s candle of second `s` after T0."""
    return candle("1s", T0 + s * S, close, **kw)  # type: ignore[arg-type]


def minute(m: int, close: float, **kw: float) -> Candle:
    """The 1m candle of minute `m` after T0."""
    return candle("1m", T0 + m * M, close, **kw)  # type: ignore[arg-type]


def feed(metrics: SymbolMetrics, candles: Iterable[Candle]) -> dict[int, RankRow]:
    """Rows by the second (after T0) whose candle made them."""
    rows = {}
    for c in candles:
        if c.interval == "1m":
            metrics.add_minute(c)
        elif metrics.add_second(c):
            rows[(c.open_time - T0) // S] = metrics.row()
    return rows


def new() -> SymbolMetrics:
    return SymbolMetrics("sim", "spot", "AAA")


def rising(seconds: range, count: int = 2) -> list[Candle]:
    """Second s closes at 100 + s with volume 1 (so quote volume 100 + s)."""
    return [sec(s, 100 + s, count=count) for s in seconds]


def test_a_row_is_as_of_the_close_of_its_second() -> None:
    rows = feed(new(), rising(range(3)))
    assert rows[2].time_ms == T0 + 3 * S
    assert rows[2].price == 102
    assert (rows[2].exchange, rows[2].market, rows[2].symbol) == ("sim", "spot", "AAA")


def test_change_over_a_minute_takes_the_close_a_minute_earlier() -> None:
    rows = feed(new(), rising(range(70)))
    # second 59's row is as of T0+60s: the close at T0 (second -1's) was never seen
    assert rows[59].change_pct_1m is None
    # second 60's row: price 160 against the close of second 0 (100)
    assert rows[60].change_pct_1m == pytest.approx(60.0)
    assert rows[69].change_pct_1m == pytest.approx((169 / 109 - 1) * 100)
    assert rows[69].change_pct_5m is None and rows[69].change_pct_24h is None


def test_quote_volume_sums_exactly_the_window_across_minute_boundaries() -> None:
    rows = feed(new(), rising(range(120)))
    assert rows[58].quote_volume_1m is None  # the window would start a second before T0
    assert rows[59].quote_volume_1m == pytest.approx(sum(100 + s for s in range(60)))
    # [T0+31s, T0+91s): 29 seconds of minute 0 and 31 of the forming minute 1
    assert rows[90].quote_volume_1m == pytest.approx(sum(100 + s for s in range(31, 91)))
    assert rows[119].quote_volume_1m == pytest.approx(sum(100 + s for s in range(60, 120)))
    assert rows[90].trades_per_min == 120  # 60 seconds x 2 trades
    assert rows[119].quote_volume_5m is None


def test_flat_seconds_add_no_volume_and_carry_the_price() -> None:
    candles = rising(range(60)) + [sec(s, 159, count=0) for s in range(60, 120)]
    rows = feed(new(), candles)
    assert rows[119].price == 159
    assert rows[119].quote_volume_1m == 0.0  # known, and nothing traded
    assert rows[119].trades_per_min == 0.0
    assert rows[119].change_pct_1m == pytest.approx((159 / 159 - 1) * 100)
    assert not rows[119].new_high and not rows[119].new_low


def test_a_revision_replaces_the_second_and_never_counts_twice() -> None:
    metrics = new()
    feed(metrics, rising(range(62)))
    # second 30 revised: a late trade made its volume 3 (quote 3 x 130)
    assert not metrics.add_second(sec(30, 130, volume=3, version=2))
    # a repeat of the old version (a rerun of the candle flow) changes nothing
    assert not metrics.add_second(sec(30, 130, volume=1, version=1))
    row = feed(metrics, [sec(62, 162)])[62]
    expected = sum(100 + s for s in range(3, 63)) + 2 * 130  # [T0+3s, T0+63s)
    assert row.quote_volume_1m == pytest.approx(expected)


def test_a_revision_of_the_latest_second_moves_the_price() -> None:
    metrics = new()
    feed(metrics, rising(range(5)))
    assert not metrics.add_second(sec(4, 99, version=2))
    assert metrics.row().price == 99
    assert metrics.row().time_ms == T0 + 5 * S  # no new second: the same row time


def test_a_gap_restarts_the_history() -> None:
    candles = rising(range(70)) + rising(range(75, 140))
    rows = feed(new(), candles)
    # second 15's close is held, but seconds 70..74 are missing: history starts at 75
    assert rows[75].change_pct_1m is None
    assert rows[133].quote_volume_1m is None
    assert rows[134].quote_volume_1m == pytest.approx(sum(100 + s for s in range(75, 135)))
    assert rows[135].change_pct_1m == pytest.approx((235 / 175 - 1) * 100)


def day_of_minutes(volume: float = 2) -> list[Candle]:
    """Minutes -1 .. 1439: close 100 + m % 7, high close + 1, low close - 1; minute 700
    has the day's high (500) and minute 900 its low (10)."""
    out = []
    for m in range(-1, 1440):
        close = 100 + m % 7
        high = 500 if m == 700 else close + 1
        low = 10 if m == 900 else close - 1
        out.append(minute(m, close, volume=volume, high=high, low=low))
    return out


def test_day_windows_have_minute_resolution() -> None:
    metrics = new()
    feed(metrics, day_of_minutes())
    row = feed(metrics, [sec(1440 * 60, 105, volume=4, high=106, low=104)])[1440 * 60]
    # as of T0 + 24h + 1s: the 24h reference is the minute closing at T0 (minute -1)
    assert row.change_pct_24h == pytest.approx((105 / (100 + (-1) % 7) - 1) * 100)
    # 4h: the minute closing at T0 + 1200 min (minute 1199)
    assert row.change_pct_4h == pytest.approx((105 / (100 + 1199 % 7) - 1) * 100)
    # the window starts at the first whole minute inside it (minute 1), plus this second
    quote_24h = sum(2 * (100 + m % 7) for m in range(1, 1440)) + 4 * 105
    volume_24h = 2 * 1439 + 4
    assert row.quote_volume_24h == pytest.approx(quote_24h)
    assert row.quote_volume_4h == pytest.approx(
        sum(2 * (100 + m % 7) for m in range(1201, 1440)) + 4 * 105
    )
    assert row.vwap_24h == pytest.approx(quote_24h / volume_24h)
    assert row.vwap_distance_pct == pytest.approx((105 / (quote_24h / volume_24h) - 1) * 100)
    assert (row.high_24h, row.low_24h) == (500, 10)
    assert row.from_high_pct == pytest.approx((105 / 500 - 1) * 100)
    assert row.from_low_pct == pytest.approx((105 / 10 - 1) * 100)
    assert not row.new_high and not row.new_low


def test_a_second_above_the_day_is_a_new_high() -> None:
    metrics = new()
    feed(metrics, day_of_minutes())
    base = 1440 * 60
    rows = feed(metrics, [sec(base, 105), sec(base + 1, 600, high=601, low=104), sec(base + 2, 9)])
    assert rows[base + 1].new_high and rows[base + 1].high_24h == 601
    assert rows[base + 1].from_high_pct == pytest.approx((600 / 601 - 1) * 100)
    assert not rows[base + 1].new_low
    assert rows[base + 2].new_low and rows[base + 2].low_24h == 9
    assert not rows[base + 2].new_high  # 9 is not above 601, set a second ago


def test_a_new_high_needs_an_hour_of_history() -> None:
    rows = feed(new(), [*rising(range(3599)), sec(3599, 5_000)])
    assert not rows[3599].new_high  # 59 min 59 s of history is not enough
    rows = feed(new(), [*rising(range(3600)), sec(3600, 5_000)])
    assert rows[3600].new_high  # the window before it starts at T0, an hour back
    assert rows[3600].high_24h is None  # the 24h high itself needs the whole day


def test_relative_volume_is_the_forming_bar_over_the_ten_before() -> None:
    metrics = new()
    feed(metrics, [minute(m, 100, volume=m + 1) for m in range(10)])  # volumes 1..10
    rows = feed(metrics, [sec(600, 100, volume=5), sec(601, 100, volume=6)])
    assert rows[600].rvol_1m == pytest.approx(5 / 5.5)
    assert rows[601].rvol_1m == pytest.approx(11 / 5.5)
    assert rows[601].rvol_5m is None  # ten 5m bars need 50 minutes before 00:10


def test_relative_volume_of_five_minute_bars() -> None:
    metrics = new()
    # minutes 0..49 make ten 5m bars of volume 5 x (bar + 1); minutes 50.. form the 11th
    feed(metrics, [minute(m, 100, volume=m // 5 + 1) for m in range(52)])
    row = feed(metrics, [sec(52 * 60, 100, volume=3)])[52 * 60]
    mean = sum(5 * (b + 1) for b in range(10)) / 10  # 27.5
    forming = 11 + 11 + 3  # minutes 50 and 51 (volume 11 each), then this second
    assert row.rvol_5m == pytest.approx(forming / mean)


def test_relative_volume_is_none_without_volume_before() -> None:
    metrics = new()
    feed(metrics, [minute(m, 100, count=0) for m in range(10)])
    assert feed(metrics, [sec(600, 100, volume=5)])[600].rvol_1m is None


def test_a_minute_candle_replaces_the_minute_built_from_seconds() -> None:
    metrics = new()
    feed(metrics, rising(range(600)))  # minutes 0..9 built from seconds: volume 60 each
    feed(metrics, [minute(m, 100 + 60 * m + 59, volume=60) for m in range(10)])
    metrics.add_minute(minute(3, 339, volume=120, version=2))  # a revised minute
    row = feed(metrics, [sec(600, 700, volume=66)])[600]
    assert row.rvol_1m == pytest.approx(66 / ((9 * 60 + 120) / 10))


def test_the_last_minute_counts_before_its_candle_arrives() -> None:
    """The candle flow writes a minute's last second before the 1m candle: a row at the
    next second must not wait for it."""
    metrics = new()
    feed(metrics, [minute(m, 100, volume=1) for m in range(9)])
    rows = feed(metrics, [*rising(range(540, 600), count=1), sec(600, 100, volume=9)])
    # minute 9 exists only as its seconds (volume 60) so far
    assert rows[600].rvol_1m == pytest.approx(9 / ((9 * 1 + 60) / 10))


def test_volatility_is_the_stdev_of_sixty_minute_log_returns() -> None:
    closes = [100 * (1.01 if m % 3 else 0.995) ** (m % 5) for m in range(61)]
    metrics = new()
    feed(metrics, [minute(m, c) for m, c in enumerate(closes)])
    row = feed(metrics, [sec(61 * 60, 100)])[61 * 60]  # minutes 0..60 are closed
    returns = [math.log(closes[i] / closes[i - 1]) for i in range(1, 61)]
    assert row.volatility_1h == pytest.approx(statistics.stdev(returns) * 100)
    metrics = new()
    feed(metrics, [minute(m, c) for m, c in enumerate(closes[:60])])
    assert feed(metrics, [sec(60 * 60, 100)])[60 * 60].volatility_1h is None


def test_rsi_seeds_with_the_mean_of_fourteen_changes_then_smooths() -> None:
    # changes: +1 x 10, -1 x 4 (the seed), then +2
    closes = [100.0]
    for change in [1] * 10 + [-1] * 4 + [2]:
        closes.append(closes[-1] + change)
    gain = (10 / 14 * 13 + 2) / 14
    loss = (4 / 14 * 13 + 0) / 14
    expected = 100 - 100 / (1 + gain / loss)
    assert wilder_rsi(closes) == pytest.approx(expected)
    assert wilder_rsi(closes[:15]) == pytest.approx(100 - 100 / (1 + 10 / 4))
    assert wilder_rsi(closes[:14]) is None
    assert wilder_rsi([1.0 + i for i in range(20)]) == 100.0
    assert wilder_rsi([100.0 - i for i in range(20)]) == 0.0
    metrics = new()
    feed(metrics, [minute(m, c) for m, c in enumerate(closes)])
    assert feed(metrics, [sec(16 * 60, 1)])[16 * 60].rsi_14 == pytest.approx(expected)


def test_volatility_needs_positive_closes() -> None:
    assert log_return_stdev_pct(np.array([1.0, 0.0, 2.0])) is None


def test_the_newest_quote_gives_bid_ask_and_spread() -> None:
    metrics = new()
    feed(metrics, rising(range(1)))

    def quote(update_id: int, bid: str, ask: str) -> Quote:
        return Quote(
            "sim",
            "spot",
            "AAA",
            update_id,
            Decimal(bid),
            Decimal(1),
            Decimal(ask),
            Decimal(1),
            received_us=0,
        )

    metrics.set_quote(quote(5, "99", "101"))
    metrics.set_quote(quote(4, "1", "2"))  # older: ignored
    row = metrics.row()
    assert (row.bid, row.ask) == (99, 101)
    assert row.spread_bps == pytest.approx(2 / 100 * 10_000)


def test_no_row_before_a_second() -> None:
    metrics = new()
    metrics.add_minute(minute(0, 100))
    with pytest.raises(ValueError, match="no 1s candle"):
        metrics.row()


def ticker(close_time: int, open_price: str, quote_volume: str, symbol: str = "AAA") -> Ticker24h:
    """The exchange's 24h figures of `symbol` as of `close_time`."""
    return Ticker24h(
        "sim",
        "spot",
        symbol,
        close_time - 86_400_000,
        close_time,
        Decimal(open_price),
        Decimal("1"),
        Decimal("1"),
        Decimal("1"),
        Decimal("1"),
        Decimal(quote_volume),
        100,
    )


def test_a_ticker_stands_in_for_the_24h_figures_until_the_minutes_cover_the_day() -> None:
    metrics = new()
    metrics.set_ticker(ticker(T0, "80", "1234.5"))
    metrics.set_ticker(ticker(T0 - 5 * M, "1", "1"))  # older: ignored
    rows = feed(metrics, rising(range(3)))
    assert rows[2].quote_volume_24h == 1234.5  # the exchange's, as of T0
    assert rows[2].change_pct_24h == pytest.approx((102 / 80 - 1) * 100)
    assert rows[2].quote_volume_4h is None and rows[2].vwap_24h is None  # no stand-in
    # own minutes covering the day win, as soon as they do
    metrics = new()
    feed(metrics, day_of_minutes())
    metrics.set_ticker(ticker(1440 * M + T0, "80", "1234.5"))
    row = feed(metrics, [sec(1440 * 60, 105, volume=4)])[1440 * 60]
    assert row.quote_volume_24h == pytest.approx(
        sum(2 * (100 + m % 7) for m in range(1, 1440)) + 420
    )
    assert row.change_pct_24h == pytest.approx((105 / (100 + (-1) % 7) - 1) * 100)


def test_a_ticker_far_from_the_row_is_not_used() -> None:
    metrics = new()
    metrics.set_ticker(ticker(T0 + S - TICKER_MAX_AGE_MS - 1, "80", "5"))
    rows = feed(metrics, rising(range(1)))
    assert rows[0].quote_volume_24h is None and rows[0].change_pct_24h is None
    metrics = new()
    metrics.set_ticker(ticker(T0 + S - TICKER_MAX_AGE_MS, "80", "5"))  # at the bound
    assert feed(metrics, rising(range(1)))[0].quote_volume_24h == 5
    metrics = new()
    metrics.set_ticker(ticker(T0 + S + TICKER_MAX_AGE_MS + 1, "80", "5"))  # from the future
    assert feed(metrics, rising(range(1)))[0].change_pct_24h is None
