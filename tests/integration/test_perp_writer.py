"""Perpetuals records reach their ClickHouse tables exactly, and a rerun leaves the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client

from flows.sinks.perps import PerpWriter
from schemas.perps import FundingEvent, Liquidation, MarkKline, MarkPrice, OpenInterest

pytestmark = pytest.mark.integration

# Yesterday's midnight (UTC), in microseconds: marks_1s drops rows past its TTL (30 days).
DAY0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
T0 = int(DAY0.timestamp()) * 1_000_000


def _mark(offset_ms: int, mark: str) -> MarkPrice:
    return MarkPrice(
        "binance", "usdm", "BTCUSDT", T0 + offset_ms * 1000, Decimal(mark),
        Decimal("60990.1"), Decimal("60989.5"), T0 + 8 * 3600 * 1_000_000,
        T0 + offset_ms * 1000 + 3000, Decimal("0.00010000"),
    )  # fmt: skip


RECORDS = [
    _mark(200, "61000.10000000"),
    _mark(900, "61000.20000000"),  # the same second, later: this one is the second's row
    _mark(1100, "61001.00000000"),
    FundingEvent("binance", "usdm", "BTCUSDT", T0, Decimal("0.00009000"), "stream"),
    FundingEvent(
        "binance", "usdm", "BTCUSDT", T0, Decimal("0.00010000"), "exchange", Decimal("60999")
    ),
    OpenInterest("binance", "usdm", "BTCUSDT", T0 + 5000, Decimal("81234.567"), "poll"),
    OpenInterest(
        "binance",
        "usdm",
        "BTCUSDT",
        T0 + 300_000_000,
        Decimal("81300"),
        "history",
        Decimal("4959300000.1234567890123456"),
    ),
    Liquidation(
        "binance",
        "usdm",
        "BTCUSDT",
        T0 + 2_000_000,
        "SELL",
        Decimal("60900"),
        Decimal("60950.5"),
        Decimal("0.014"),
        Decimal("0.014"),
        Decimal("0.014"),
        "FILLED",
        "LIMIT",
        "IOC",
        T0 + 2_000_100,
        T0 + 2_001_000,
    ),
    MarkKline(
        "binance",
        "usdm",
        "BTCUSDT",
        T0 // 1000,
        Decimal("61000"),
        Decimal("61010"),
        Decimal("60990"),
        Decimal("61005"),
        T0 // 1000 + 59_999,
    ),
]


def _tables(ch: Client, database: str) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: ch.query(
            f"SELECT * EXCEPT ingested_at FROM {{db:Identifier}}.{table} FINAL ORDER BY ALL",
            parameters={"db": database},
        ).result_rows
        for table in ("marks_1s", "funding", "open_interest", "liquidations", "mark_klines_1m")
    }


def test_records_land_in_their_tables_and_a_rerun_changes_nothing(
    ch: Client, database: str
) -> None:
    writer = PerpWriter(lambda: ch, database)
    writer.add(RECORDS)
    writer.flush()
    first = _tables(ch, database)

    marks = first["marks_1s"]
    assert [(row[3], row[5]) for row in marks] == [
        (DAY0, Decimal("61000.2")),
        (DAY0 + timedelta(seconds=1), Decimal("61001")),
    ]
    assert marks[0][8] == Decimal("0.0001")
    assert marks[0][9] == DAY0 + timedelta(hours=8)
    # The exchange's own rate replaces the live estimate of the same funding time.
    assert [(row[4], row[5], row[6]) for row in first["funding"]] == [
        (Decimal("0.0001"), Decimal("60999"), "exchange")
    ]
    assert [(row[4], row[5], row[6]) for row in first["open_interest"]] == [
        (Decimal("81234.567"), None, "poll"),
        (Decimal("81300"), Decimal("4959300000.1234567890123456"), "history"),
    ]
    (liquidation,) = first["liquidations"]
    assert liquidation[4] == "SELL" and liquidation[10] == Decimal("853.307")
    assert first["mark_klines_1m"][0][7] == Decimal("61005")

    writer.add(RECORDS)
    writer.flush()
    assert _tables(ch, database) == first
    assert writer.written["MarkPrice"] == 6
