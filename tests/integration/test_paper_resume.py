"""The paper engine's start reads back, from chDB, the last mark of each perpetual it holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from clickhouse_connect.driver.client import Client

from flows.trading.resume import load_last_marks
from schemas.perps import MarkPrice

COLUMNS = [
    "exchange", "market", "symbol", "time", "event_time", "mark_price", "index_price",
    "estimated_settle_price", "funding_rate", "next_funding_time",
]  # fmt: skip


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


def test_the_newest_stored_mark_of_each_held_perpetual_is_read_back(
    ch: Client, database: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    funding = now.replace(minute=0, second=0) + timedelta(hours=1)

    def row(symbol: str, ago_h: float, mark: str, rate: str) -> list[object]:
        at = now - timedelta(hours=ago_h)
        return ["binance", "usdm", symbol, at, at, D(mark), D(mark), D(mark), D(rate), funding]

    ch.insert(
        "marks_1s",
        [
            row("BTCUSDT", 3, "60000.1", "0.0001"),
            row("BTCUSDT", 1, "60100.2", "0.00025"),  # the newest: read back
            row("ETHUSDT", 1, "3000", "0.0001"),  # not held
            row("SOLUSDT", 10, "150", "0.0001"),  # held, but older than `since`
        ],
        column_names=COLUMNS,
        database=database,
    )
    held = [("binance", "BTCUSDT"), ("binance", "SOLUSDT"), ("binance", "BTCUSDT")]
    since = _us(now - timedelta(hours=9))
    at = _us(now - timedelta(hours=1))
    assert load_last_marks(ch, database, held, since) == [
        MarkPrice(
            exchange="binance", market="usdm", symbol="BTCUSDT", time_us=at,
            mark_price=D("60100.2"), index_price=D("60100.2"),
            estimated_settle_price=D("60100.2"), next_funding_time_us=_us(funding),
            received_us=at, funding_rate=D("0.00025"),
        )
    ]  # fmt: skip
    assert load_last_marks(ch, database, [], since) == []
