"""Playback of a real Binance USDⓈ-M capture against Binance's own 1m klines."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from flows.sources.files import ReadStats, Rejected, read_trades
from schemas.trades import Trade
from tests.shared_data import SHARED_DATA

DATA = SHARED_DATA
DAY = DATA / "binance-um-btcusdt-20240808"
CAPTURE = DAY / "hftbacktest_usdm_btcusdt_20240808.gz"
KLINES = DAY / "BTCUSDT-1m-2024-08_um_klines_2024-08-08T2350_2024-08-09T0010.csv"


def _us(text: str) -> int:
    dt = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


@pytest.fixture(scope="module")
def playback() -> tuple[list[Trade], ReadStats]:
    stats = ReadStats()
    out = list(read_trades(CAPTURE, market="usdm", stats=stats))
    assert not [r for r in out if isinstance(r, Rejected)]
    return [t for t in out if isinstance(t, Trade)], stats


def test_capture_yields_every_trade_once_in_id_order(playback):
    trades, _ = playback
    assert len(trades) == 21_313
    assert [t.trade_id for t in trades] == list(range(5_266_583_935, 5_266_605_248))
    assert trades[0].time_us == _us("2024-08-08 23:54:16.322")
    assert trades[-1].time_us == _us("2024-08-08 23:59:59.643")
    assert {(t.exchange, t.market, t.symbol) for t in trades} == {("binance", "usdm", "BTCUSDT")}
    assert all(t.first_trade_id is None and t.count == 1 for t in trades)
    first = trades[0]
    assert (first.price, first.qty, first.buyer_is_maker) == (
        Decimal("61800.30"),
        Decimal("0.006"),
        False,
    )


def test_capture_accounts_for_every_line(playback):
    _, stats = playback
    assert stats.lines == 93_954
    assert stats.trades == 21_313
    assert stats.rejected == 0
    assert stats.skipped == {"bookTicker": 66_089, "depthUpdate": 6_551, "rest_snapshot": 1}
    assert stats.trades + stats.skipped_non_trade + stats.rejected == stats.lines


def test_capture_minutes_equal_binance_klines(playback):
    """Aggregate plainly per minute of trade time and compare with the official klines."""
    trades, _ = playback
    minutes: dict[int, list[Trade]] = defaultdict(list)
    for t in trades:
        minutes[t.time_us // 60_000_000 * 60_000].append(t)

    with KLINES.open(newline="") as f:
        klines = {int(row["open_time"]): row for row in csv.DictReader(f)}

    compared = 0
    for minute in ("23:55", "23:56", "23:57", "23:58", "23:59"):
        open_ms = _us(f"2024-08-08 {minute}:00") // 1000
        got = minutes[open_ms]
        want = klines[open_ms]
        taker_buys = [t for t in got if not t.buyer_is_maker]
        assert got[0].price == Decimal(want["open"]), minute
        assert max(t.price for t in got) == Decimal(want["high"]), minute
        assert min(t.price for t in got) == Decimal(want["low"]), minute
        assert got[-1].price == Decimal(want["close"]), minute
        assert sum(t.qty for t in got) == Decimal(want["volume"]), minute
        assert sum(t.price * t.qty for t in got) == Decimal(want["quote_volume"]), minute
        assert sum(t.count for t in got) == int(want["count"]), minute
        assert sum(t.qty for t in taker_buys) == Decimal(want["taker_buy_volume"]), minute
        assert sum(t.price * t.qty for t in taker_buys) == Decimal(
            want["taker_buy_quote_volume"]
        ), minute
        compared += 1
    assert compared == 5
