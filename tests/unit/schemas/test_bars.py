"""The roll-up rules of every longer bar, on a real Binance capture and on hand-made parts."""

from __future__ import annotations

import csv
import random
from decimal import Decimal

import msgspec
import numpy as np
import pytest

from flows.candles.engine import PartitionCandles
from flows.sources.files import read_trades
from schemas.bars import COLUMN_ROWS, BarBuilder, rollup, rollup_columns
from schemas.candles import KLINE_FIELDS, Candle
from schemas.trades import Trade
from tests.shared_data import SHARED_DATA

D = Decimal
S = 1_000
M = 60_000
DAY = SHARED_DATA / "binance-um-btcusdt-20240808"
CAPTURE = DAY / "hftbacktest_usdm_btcusdt_20240808.gz"
KLINES = DAY / "BTCUSDT-1m-2024-08_um_klines_2024-08-08T2350_2024-08-09T0010.csv"
M2355 = 1_723_161_300_000  # 2024-08-08 23:55 UTC

FIELDS = (*KLINE_FIELDS, "first_trade_id", "last_trade_id")


def part(
    t: int,
    close: str,
    *,
    count: int = 1,
    o: str | None = None,
    h: str | None = None,
    low: str | None = None,
    v: str = "1",
    ids: tuple[int, int] | None = None,
) -> Candle:
    """A 1s candle; count 0 makes it flat at `close` (no volume, no trade ids)."""
    flat = count == 0
    price = D(close)
    volume = D(0) if flat else D(v)
    first, last = (None, None) if flat else (ids or (t // S, t // S + count - 1))
    return Candle(
        "binance",
        "usdm",
        "BTCUSDT",
        "1s",
        t,
        t + S - 1,
        D(o or close),
        D(h or close),
        D(low or close),
        price,
        volume,
        volume * price,
        count,
        volume,
        volume * price,
        first,
        last,
        1,
    )


def fields(bar: object) -> tuple[object, ...]:
    return tuple(getattr(bar, name) for name in FIELDS)


def columns(parts: list[Candle]) -> np.ndarray:
    """Parts as float bar columns (`COLUMN_ROWS`), as the signal bars hold them."""
    return np.array(
        [
            [p.open_time, p.open, p.high, p.low, p.close, p.volume, p.count, p.version]
            for p in parts
        ],
        dtype=float,
    ).T


# --- a real capture: its seconds roll up to Binance's own minutes --------------------------


@pytest.fixture(scope="module")
def capture_trades() -> list[Trade]:
    if not (CAPTURE.exists() and KLINES.exists()):
        pytest.fail(f"shared market data missing under {DAY}")
    return [t for t in read_trades(CAPTURE, market="usdm") if isinstance(t, Trade)]


@pytest.fixture(scope="module")
def capture_seconds(capture_trades) -> list[Candle]:
    """The 1s candles the candle engine makes of the capture's trades."""
    return engine_seconds(capture_trades)


def engine_seconds(trades: list[Trade]) -> list[Candle]:
    """The 1s candles (flats included) the candle engine makes of trades."""
    engine = PartitionCandles()
    out: list[Candle] = []
    engine.fold([_Record(t) for t in trades], _as_trade, out, _no_reject)
    engine.flush(out)
    return [c for c in out if c.interval == "1s"]


class _Record:
    def __init__(self, trade: Trade) -> None:
        self._trade = trade

    def key(self) -> str:
        return "binance:usdm:BTCUSDT"

    def value(self) -> Trade:
        return self._trade


def _as_trade(value: object) -> Trade:
    assert isinstance(value, Trade)
    return value


def _no_reject(record: object, reason: str, detail: str) -> None:
    raise AssertionError(f"{reason}: {detail}")


def official_minutes() -> dict[int, dict[str, str]]:
    with KLINES.open(newline="") as f:
        return {int(row["open_time"]): row for row in csv.DictReader(f)}


def kline(row: dict[str, str]) -> Candle:
    """A row of Binance's kline file as a 1m candle (klines carry no trade ids)."""
    t = int(row["open_time"])
    identity = {"exchange": "binance", "market": "usdm", "symbol": "BTCUSDT", "interval": "1m"}
    values = {name: row[name] for name in KLINE_FIELDS}
    times = {"open_time": t, "close_time": t + M - 1}
    ids = {"first_trade_id": None, "last_trade_id": None, "version": 1}
    return msgspec.convert(identity | times | values | ids, Candle, strict=False)


def test_the_captures_seconds_roll_up_to_binances_minutes(capture_seconds):
    klines = official_minutes()
    for minute in range(M2355, M2355 + 5 * M, M):
        parts = [c for c in capture_seconds if minute <= c.open_time < minute + M]
        assert len(parts) == 60
        bar = rollup(minute, parts)
        assert bar is not None
        assert fields(bar)[:9] == fields(kline(klines[minute]))[:9], minute
        assert bar.first_trade_id == parts[0].first_trade_id
        assert bar.last_trade_id == parts[-1].last_trade_id


def test_quiet_seconds_of_the_capture_give_no_open_high_or_low(capture_trades):
    # The capture trades every second: silence its first 20 s of each minute and 5 more in
    # the middle, so each minute starts with flats carrying the previous minute's close.
    def quiet(t: Trade) -> bool:
        second = t.time_us // 1_000_000 % 60
        return second < 20 or 30 <= second < 35

    kept = [t for t in capture_trades if not quiet(t)]
    seconds = engine_seconds(kept)
    for minute in range(M2355, M2355 + 5 * M, M):
        parts = [c for c in seconds if minute <= c.open_time < minute + M]
        assert sum(1 for c in parts if c.count == 0) == 25
        trades = [t for t in kept if minute <= t.time_us // 1000 < minute + M]
        bar = rollup(minute, parts)
        assert bar is not None
        assert fields(bar) == (
            trades[0].price,
            max(t.price for t in trades),
            min(t.price for t in trades),
            trades[-1].price,
            sum((t.qty for t in trades), D(0)),
            sum((t.price * t.qty for t in trades), D(0)),
            len(trades),
            sum((t.qty for t in trades if not t.buyer_is_maker), D(0)),
            sum((t.price * t.qty for t in trades if not t.buyer_is_maker), D(0)),
            trades[0].trade_id,
            trades[-1].trade_id,
        ), minute
        assert parts[0].close != trades[0].price  # the flats' carried close was not the open


def test_parts_in_any_order_and_split_between_builders_make_the_same_bar(capture_seconds):
    minute = M2355 + 2 * M
    parts = [c for c in capture_seconds if minute <= c.open_time < minute + M]
    in_order = rollup(minute, parts)
    shuffled = parts[:]
    random.Random(7).shuffle(shuffled)
    one, other = BarBuilder(minute), BarBuilder(minute)
    for i, c in enumerate(shuffled):
        (one if i % 3 else other).add(c)
    one.merge(other)
    assert fields(one) == fields(in_order)
    assert one.last_close == in_order.close  # type: ignore[union-attr]


def test_float_columns_follow_the_same_rules_as_the_exact_bars(capture_seconds):
    minutes = range(M2355, M2355 + 5 * M, M)
    parts = [[c for c in capture_seconds if m <= c.open_time < m + M] for m in minutes]
    data = np.stack([columns(p) for p in parts], axis=1)  # rows x minutes x seconds
    got = rollup_columns(np.array(minutes), data)
    assert got.shape == (len(COLUMN_ROWS), 5)
    for i, minute in enumerate(minutes):
        exact = rollup(minute, parts[i])
        assert exact is not None
        assert got[:, i].tolist()[:5] == [
            minute,
            float(exact.open),
            float(exact.high),
            float(exact.low),
            float(exact.close),
        ]
        assert got[5, i] == pytest.approx(float(exact.volume), rel=1e-12)
        assert got[6, i] == exact.count


def test_binances_minutes_roll_up_to_five_minutes_as_binance_defines_them():
    rows = official_minutes()
    five = [kline(r) for t, r in rows.items() if M2355 <= t < M2355 + 5 * M]
    bar = rollup(M2355, reversed(five))
    assert bar is not None
    assert bar.open == five[0].open and bar.close == five[-1].close
    assert bar.high == max(c.high for c in five) and bar.low == min(c.low for c in five)
    assert bar.volume == sum((c.volume for c in five), D(0))
    assert bar.count == sum(c.count for c in five)
    assert bar.first_trade_id is None and bar.last_trade_id is None


# --- the rules, one by one ------------------------------------------------------------------


def test_flat_parts_set_no_open_high_or_low():
    # The quiet first and last seconds carry closes far outside the traded prices.
    parts = [
        part(0, "90", count=0),
        part(S, "100", o="101", h="105", low="99", ids=(10, 12), count=3),
        part(2 * S, "102", ids=(13, 13)),
        part(3 * S, "120", count=0),
    ]
    bar = rollup(0, parts)
    assert bar is not None
    assert fields(bar) == (
        D("101"),
        D("105"),
        D("99"),
        D("102"),
        D("2"),
        D("202"),
        4,
        D("2"),
        D("202"),
        10,
        13,
    )
    columns_bar = rollup_columns(np.array([0]), columns(parts)[:, None, :])[:, 0]
    assert columns_bar.tolist() == [0, 101, 105, 99, 102, 2, 4, 1]


def test_a_wholly_quiet_interval_is_flat_at_the_close_its_flats_carry():
    parts = [part(2 * S, "101", count=0), part(0, "100", count=0), part(S, "100", count=0)]
    assert rollup(0, parts) is None
    bar = BarBuilder(0)
    for p in parts:
        bar.add(p)
    assert (bar.open, bar.high, bar.low, bar.close) == (None, None, None, None)
    assert bar.last_close == D("101")  # the latest flat's, whatever the order
    assert (bar.volume, bar.count, bar.first_trade_id, bar.last_trade_id) == (D(0), 0, None, None)
    in_time_order = sorted(parts, key=lambda p: p.open_time)
    flat = rollup_columns(np.array([0]), columns(in_time_order)[:, None, :])[:, 0]
    assert flat.tolist() == [0, 101, 101, 101, 101, 0, 0, 1]


def test_sums_are_exact_decimals():
    parts = [part(i * S, "0.1", v="0.1") for i in range(3)]
    bar = rollup(0, parts)
    assert bar is not None
    assert bar.volume == D("0.3") and bar.quote_volume == D("0.03")
    assert 0.1 + 0.1 + 0.1 != 0.3  # what floats would have given


def test_open_and_close_follow_open_time_not_arrival():
    late_first = part(0, "100", ids=(1, 1))
    bar = BarBuilder(0)
    for p in (part(2 * S, "103", ids=(3, 3)), part(S, "101", ids=(2, 2)), late_first):
        bar.add(p)
    assert (bar.open, bar.close, bar.first_trade_id, bar.last_trade_id) == (
        D("100"),
        D("103"),
        1,
        3,
    )


def test_a_traded_part_outweighs_a_later_flat_in_a_merge():
    traded, flats = BarBuilder(0), BarBuilder(0)
    traded.add(part(0, "100"))
    flats.add(part(S, "100", count=0))
    flats.merge(traded)
    assert flats.last_close == D("100") and flats.open == D("100") and flats.count == 1
