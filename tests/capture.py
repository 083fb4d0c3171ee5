"""The real Binance capture the replay tests share: one USDⓈ-M BTCUSDT evening of trades
and the exchange's own 1m klines of the minutes it covers."""

from __future__ import annotations

import csv
from decimal import Decimal

from schemas.candles import KLINE_FIELDS
from tests.shared_data import SHARED_DATA

DATA = SHARED_DATA / "binance-um-btcusdt-20240808"
CAPTURE = DATA / "hftbacktest_usdm_btcusdt_20240808.gz"
KLINES = DATA / "BTCUSDT-1m-2024-08_um_klines_2024-08-08T2350_2024-08-09T0010.csv"
COVERED = [1723161300000 + i * 60_000 for i in range(5)]  # 23:55 .. 23:59
FIELDS = KLINE_FIELDS


def official_klines() -> dict[int, dict[str, Decimal]]:
    """The exchange's 1m klines by open time: each kline's values as exact decimals."""
    with KLINES.open() as f:
        return {
            int(row["open_time"]): {name: Decimal(row[name]) for name in FIELDS}
            for row in csv.DictReader(f)
        }
