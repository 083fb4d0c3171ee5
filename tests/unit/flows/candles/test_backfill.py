"""Backfill planning and checks that need no exchange: ranges, chunks, archive checksums."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from flows.candles.backfill import (
    BackfillError,
    Chunk,
    parse_time,
    plan_backfill,
    plan_chunks,
    verify_checksum,
)
from flows.candles.kline_backfill import kline_count
from flows.sinks.clickhouse import CANDLE_COLUMNS, tsv_rows
from flows.sources.binance.klines import candle_from_kline
from flows.sources.binance.rest import Kline
from runtime.settings import ClickHouseSettings
from tickscan.backfill import backfill
from tickscan.settings import Settings

H = 3_600_000


def settings(tmp_path: Path) -> Settings:
    # Every test here fails before ClickHouse is opened; the DSN must never be used.
    return Settings(data_dir=tmp_path, clickhouse=ClickHouseSettings(dsn="http://unused.invalid:1"))


def test_range_bounds_are_aware_utc_whatever_the_input() -> None:
    assert parse_time("2024-08-08") == datetime(2024, 8, 8, tzinfo=UTC)
    assert parse_time("2024-08-08T12:30Z") == datetime(2024, 8, 8, 12, 30, tzinfo=UTC)
    assert parse_time("2024-08-08T14:30+02:00") == datetime(2024, 8, 8, 12, 30, tzinfo=UTC)
    with pytest.raises(BackfillError, match="not an ISO date"):
        parse_time("yesterday")


def test_chunks_are_one_per_symbol_and_utc_day_clipped_to_the_range() -> None:
    start = int(datetime(2024, 8, 8, 23, 0, tzinfo=UTC).timestamp() * 1000)
    chunks = plan_chunks(["A", "B"], start, start + 26 * H)
    midnight = start + H
    assert chunks == [
        Chunk("A", date(2024, 8, 8), start, midnight),
        Chunk("A", date(2024, 8, 9), midnight, midnight + 24 * H),
        Chunk("A", date(2024, 8, 10), midnight + 24 * H, start + 26 * H),
        Chunk("B", date(2024, 8, 8), start, midnight),
        Chunk("B", date(2024, 8, 9), midnight, midnight + 24 * H),
        Chunk("B", date(2024, 8, 10), midnight + 24 * H, start + 26 * H),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2024-08-09", "end": "2024-08-08"}, "is not before --to"),
        ({"start": "2024-08-08", "end": "2024-08-08"}, "is not before --to"),
        ({"interval": "1s", "market": "usdm"}, "no 1s klines"),
        ({"interval": "5m"}, "interval must be one of"),
        ({"symbols": ""}, "nothing to backfill"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_opened(tmp_path, kwargs, message) -> None:
    args = {"market": "spot", "symbols": "BTCUSDT", "start": "2024-08-08", "end": "2024-08-09"}
    args.update(kwargs)
    with pytest.raises(BackfillError, match=message):
        backfill(settings(tmp_path), **args)


def write_archive(directory: Path, content: bytes = b"1,2,3\n") -> Path:
    path = directory / "BTCUSDT-trades-2024-08-08.zip"
    path.write_bytes(content)
    return path


def test_an_archive_matching_its_checksum_passes(tmp_path) -> None:
    path = write_archive(tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / f"{path.name}.CHECKSUM").write_text(f"{digest}  {path.name}\n")
    assert verify_checksum(path) is None


def test_an_archive_without_checksum_is_a_warning(tmp_path) -> None:
    warning = verify_checksum(write_archive(tmp_path))
    assert warning is not None and "no BTCUSDT-trades-2024-08-08.zip.CHECKSUM" in warning


def test_an_archive_not_matching_its_checksum_is_refused_by_name(tmp_path) -> None:
    path = write_archive(tmp_path)
    (tmp_path / f"{path.name}.CHECKSUM").write_text(f"{'0' * 64}  {path.name}\n")
    with pytest.raises(BackfillError, match=r"BTCUSDT-trades-2024-08-08\.zip: SHA-256 .* match"):
        verify_checksum(path)
    # ... and the whole backfill stops before opening ClickHouse or reading a trade.
    with pytest.raises(BackfillError, match="does not match"):
        backfill(
            settings(tmp_path), market="spot", start="2024-08-08", end="2024-08-09",
            archives=[tmp_path],
        )  # fmt: skip


def test_an_exchange_kline_becomes_a_version_0_row_with_source_exchange() -> None:
    kline = Kline(
        1634943780000, Decimal("60685.22000000"), Decimal("60729.84000000"),
        Decimal("60670.90000000"), Decimal("60719.27000000"), Decimal("21.63272000"),
        1634943839999, Decimal("1313200.01340410"), 617, Decimal("12.28492000"),
        Decimal("745719.41022840"),
    )  # fmt: skip
    candle = candle_from_kline(kline, "spot", "BTCUSDT", "1m")
    assert candle.version == 0 and candle.first_trade_id is None
    row = tsv_rows([candle], source="exchange").decode().rstrip("\n").split("\t")
    assert dict(zip(CANDLE_COLUMNS, row, strict=True)) == {
        "exchange": "binance", "market": "spot", "symbol": "BTCUSDT",
        "open_time": "1634943780000", "open": "60685.22000000", "high": "60729.84000000",
        "low": "60670.90000000", "close": "60719.27000000", "volume": "21.63272000",
        "close_time": "1634943839999", "quote_volume": "1313200.01340410", "count": "617",
        "taker_buy_volume": "12.28492000", "taker_buy_quote_volume": "745719.41022840",
        "first_trade_id": "\\N", "last_trade_id": "\\N", "version": "0", "source": "exchange",
    }  # fmt: skip


def test_a_plan_names_each_symbol_once_upper_case_and_the_archives_without_checksums(
    tmp_path,
) -> None:
    archive = write_archive(tmp_path)
    (tmp_path / f"{archive.name}.CHECKSUM").write_text(f"{'0' * 64}  {archive.name}\n")
    report = plan_backfill(
        market="spot", symbols=["btcusdt, ETHUSDT", "BTCUSDT"], start="2024-08-08",
        end="2024-08-08T01:00", interval="1m", archives=[tmp_path], clickhouse="chdb:///x",
        database="db",
    )  # fmt: skip
    assert report.symbols == ["BTCUSDT", "ETHUSDT"]
    assert report.archives == [archive.resolve()]
    assert (report.start, report.end) == (
        datetime(2024, 8, 8, tzinfo=UTC),
        datetime(2024, 8, 8, 1, tzinfo=UTC),
    )
    with pytest.raises(BackfillError, match="no such file or directory"):
        plan_backfill(
            market="spot", symbols="", start="2024-08-08", end="2024-08-09", interval="1m",
            archives=[tmp_path / "missing"], clickhouse="chdb:///x", database="db",
        )  # fmt: skip


def test_a_range_holds_every_kline_opening_in_it_a_partial_one_too() -> None:
    assert kline_count(0, 90 * 60_000, "1m") == 90
    assert kline_count(0, 90 * 60_000 + 1, "1m") == 91
    assert kline_count(1_000, 3_000, "1s") == 2
