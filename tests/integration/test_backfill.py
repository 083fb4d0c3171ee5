"""Backfill and the Binance REST client against the fake Binance (real HTTP) and chDB."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from rich.console import Console

from flows.candles.backfill import BackfillError
from flows.sinks.clickhouse import CandleWriter
from flows.sources.binance.rest import (
    BinanceApiError,
    BinanceBanned,
    BinanceRest,
    IncompleteTradeRange,
)
from runtime.clickhouse import connect
from runtime.settings import ClickHouseSettings, KafkaSettings
from schemas.candles import Candle
from tests.fakes.binance import FakeBinance
from tests.integration.databases import migrated_database
from tickscan.backfill import backfill, summary
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

START = "2024-08-08T23:00Z"
END = "2024-08-09T00:30Z"  # 90 minutes over a UTC midnight: two chunks per symbol
START_MS = 1723158000000
MINUTES = 90
END_MS = START_MS + MINUTES * 60_000
FAKE_NOW_MS = END_MS + 60_000 + 55_000  # 00:31:55: a 429 at first waits ~5 s at most


def fake_exchange(market: str, symbols: list[str], seed: int = 7) -> FakeBinance:
    """A fake Binance with trades over the whole range, its clock 55 s into 00:31."""
    return FakeBinance(
        market,  # type: ignore[arg-type]
        symbols,
        rate=2.0,
        seed=seed,
        start_ms=FAKE_NOW_MS,
        history_s=(FAKE_NOW_MS - START_MS) / 1000 + 60,
    )


def raw_klines(fake: FakeBinance, symbol: str) -> list[list[Any]]:
    """The exchange's own kline rows of the range, fetched directly (ground truth)."""
    prefix = "/api/v3" if fake.market == "spot" else "/fapi/v1"
    url = (
        f"{fake.rest_url}{prefix}/klines?symbol={symbol}&interval=1m"
        f"&startTime={START_MS}&endTime={END_MS - 1}&limit=1000"
    )
    with urllib.request.urlopen(url) as resp:
        rows: list[list[Any]] = json.load(resp)
    return rows


def endpoints(fake: FakeBinance) -> list[str]:
    return [path.rsplit("/", 1)[-1] for path, _, _ in fake.rest_requests]


@pytest.fixture(scope="module")
def database(clickhouse_dsn: str) -> Iterator[str]:
    """A migrated database of this module's own (other modules write BTCUSDT candles too)."""
    with migrated_database(clickhouse_dsn, "tickscan_backfill") as name:
        yield name


@pytest.fixture
def settings(tmp_path: Path, clickhouse_dsn: str, database: str) -> Settings:
    return Settings(
        data_dir=tmp_path, clickhouse=ClickHouseSettings(dsn=clickhouse_dsn, database=database)
    )


@pytest.fixture
def db(clickhouse_dsn: str, database: str) -> Iterator[Client]:
    with closing(connect(clickhouse_dsn, database=database)) as client:
        yield client


QUIET = Console(quiet=True)

CANDLE_QUERY = (
    "SELECT symbol, toUnixTimestamp64Milli(open_time), open, high, low, close, volume,"
    " toUnixTimestamp64Milli(close_time), quote_volume, count, taker_buy_volume,"
    " taker_buy_quote_volume, first_trade_id, last_trade_id, version, source"
    " FROM candles_1m FINAL WHERE market = {market:String} AND symbol IN {symbols:Array(String)}"
    " ORDER BY symbol, open_time"
)


def candle_rows(db: Client, market: str, symbols: list[str]) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in db.query(
            CANDLE_QUERY, parameters={"market": market, "symbols": symbols}
        ).result_rows
    ]


def test_klines_backfill_writes_exact_exchange_rows_and_a_rerun_changes_nothing(
    settings: Settings, db: Client
) -> None:
    symbols = ["BTCUSDT", "ETHUSDT"]
    with fake_exchange("spot", [*symbols, "BNBUSDT"]) as fake:
        report = backfill(
            settings, market="spot", symbols="btcusdt,ETHUSDT", start=START, end=END,
            rest_url=fake.rest_url, console=QUIET,
        )  # fmt: skip
        truth = {s: raw_klines(fake, s) for s in symbols}
        trades = {s: [t for t in fake.trades(s) if START_MS <= t["T"] < END_MS] for s in symbols}
        first_requests = len(fake.rest_requests)

        assert (report.chunks, report.chunks_written, report.chunks_skipped) == (4, 4, 0)
        assert report.candles == 2 * MINUTES
        rows = candle_rows(db, "spot", symbols)
        assert len(rows) == 2 * MINUTES
        expected = [
            (s, k[0], *(Decimal(v) for v in k[1:6]), k[6], Decimal(k[7]), k[8],
             Decimal(k[9]), Decimal(k[10]), None, None, 0, "exchange")
            for s in symbols
            for k in truth[s]
        ]  # fmt: skip
        assert [r[1] for r in expected[:MINUTES]] == list(range(START_MS, END_MS, 60_000))
        assert rows == expected
        # ... and the klines hold every trade of the range (the fake's ground truth).
        for s in symbols:
            mine = [r for r in rows if r[0] == s]
            assert sum(r[9] for r in mine) == sum(t["l"] - t["f"] + 1 for t in trades[s]) > 0
            assert sum(r[6] for r in mine) == sum(Decimal(t["q"]) for t in trades[s])
        progress = db.query(
            "SELECT symbol, toString(day), rows FROM backfill_progress FINAL"
            " WHERE kind = 'klines' AND market = 'spot' ORDER BY symbol, day"
        ).result_rows
        assert [tuple(r) for r in progress] == [
            ("BTCUSDT", "2024-08-08", 60), ("BTCUSDT", "2024-08-09", 30),
            ("ETHUSDT", "2024-08-08", 60), ("ETHUSDT", "2024-08-09", 30),
        ]  # fmt: skip

        # A rerun finds every chunk done: one exchangeInfo request, no klines, same rows.
        again = backfill(
            settings, market="spot", symbols=symbols, start=START, end=END,
            rest_url=fake.rest_url, console=QUIET,
        )  # fmt: skip
        assert (again.chunks_written, again.chunks_skipped) == (0, 4)
        assert endpoints(fake)[first_requests:] == ["exchangeInfo"]
        assert candle_rows(db, "spot", symbols) == rows

        # Forced, it fetches and writes everything again, and the rows stay identical.
        forced = backfill(
            settings, market="spot", symbols=symbols, start=START, end=END,
            rest_url=fake.rest_url, console=QUIET, force=True,
        )  # fmt: skip
        assert forced.chunks_written == 4 and forced.candles == 2 * MINUTES
        assert candle_rows(db, "spot", symbols) == rows
        assert "4 written, 0 already done" in summary(forced)

    # A candle our flow builds from trades (version >= 1) wins over the exchange's.
    minute = START_MS + 10 * 60_000
    one = Decimal("1.5")
    ours = Candle(
        "binance", "spot", "BTCUSDT", "1m", minute, minute + 59_999, one, one, one, one, one,
        one * one, 1, one, one * one, 42, 42, 1,
    )  # fmt: skip
    writer = CandleWriter(lambda: db, settings.clickhouse.database)
    writer.add([ours])
    writer.flush()
    final = {r[1]: r for r in candle_rows(db, "spot", ["BTCUSDT"])}
    assert final[minute][-4:] == (42, 42, 1, "trades")
    assert len(final) == MINUTES


def test_a_429_with_retry_after_slows_the_client_and_the_backfill_completes(
    settings: Settings, db: Client
) -> None:
    with fake_exchange("usdm", ["SOLUSDT"]) as fake:
        fake.fail_rest(429, count=1, retry_after=1)
        started = time.monotonic()
        report = backfill(
            settings, market="usdm", symbols="SOLUSDT", start=START, end=END,
            rest_url=fake.rest_url, console=QUIET,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        statuses = [status for _, _, status in fake.rest_requests]
        assert statuses[0] == 429 and set(statuses[1:]) == {200}
        assert elapsed >= 1.0
        assert report.rate_limited == 1 and report.chunks_written == 2
        # 90 minutes at 499 klines per page: one page per chunk, weight 2 each.
        pages = [params for path, params, _ in fake.rest_requests if path.endswith("/klines")]
        assert [p["limit"] for p in pages] == ["499", "499"]
    assert len(candle_rows(db, "usdm", ["SOLUSDT"])) == MINUTES


def test_hitting_the_exchange_limit_waits_out_the_minute_instead_of_earning_a_418(
    settings: Settings, db: Client
) -> None:
    # The exchange allows less than the client believes (another client on the IP): its
    # third kline page is refused with 429 until the exchange's next minute, ~5 s away.
    # A request before then would be answered 418 and ban the IP.
    with fake_exchange("spot", ["LINKUSDT", "ADAUSDT"]) as fake:
        fake.weight_limit = 24  # exchangeInfo 20 + two kline pages of 2
        report = backfill(
            settings, market="spot", symbols="LINKUSDT,ADAUSDT", start=START, end=END,
            rest_url=fake.rest_url, console=QUIET, concurrency=1,
        )  # fmt: skip
        statuses = [status for _, _, status in fake.rest_requests]
    assert 429 in statuses and 418 not in statuses
    assert report.rate_limited == statuses.count(429) and report.chunks_written == 4
    assert len(candle_rows(db, "spot", ["LINKUSDT", "ADAUSDT"])) == 2 * MINUTES


def test_a_418_stops_the_backfill_at_once_with_the_time_the_ban_ends(settings: Settings) -> None:
    with fake_exchange("spot", ["XRPUSDT"]) as fake:
        fake.fail_rest(418, count=1, retry_after=300)
        before = datetime.now(UTC)
        with pytest.raises(BackfillError, match="banned this IP until") as caught:
            backfill(
                settings, market="spot", symbols="XRPUSDT", start=START, end=END,
                rest_url=fake.rest_url, console=QUIET,
            )  # fmt: skip
        assert len(fake.rest_requests) == 1  # no retry, no hammering
    until = caught.value.__cause__.until  # type: ignore[union-attr]
    assert 295 <= (until - before).total_seconds() <= 305
    assert f"{until:%Y-%m-%d %H:%M:%S} UTC" in str(caught.value)
    assert "Run it again after" in str(caught.value)


def test_an_unknown_symbol_is_refused_with_the_valid_ones(settings: Settings) -> None:
    with fake_exchange("spot", ["BTCUSDT", "ETHUSDT"]) as fake:
        with pytest.raises(BackfillError) as caught:
            backfill(
                settings, market="spot", symbols="BTCUSDT,BTCUSTD", start=START, end=END,
                rest_url=fake.rest_url, console=QUIET,
            )  # fmt: skip
        assert endpoints(fake) == ["exchangeInfo"]
    message = str(caught.value)
    assert "unknown Binance spot symbol(s): BTCUSTD (did you mean BTCUSDT?)" in message
    assert "Valid symbols (2): BTCUSDT, ETHUSDT" in message


def test_a_corrupt_archive_is_refused_and_nothing_is_written(
    settings: Settings, db: Client, tmp_path: Path
) -> None:
    path = write_archive(tmp_path, "DOGEUSDT-trades-2024-08-08.zip", trades_csv(10))
    (tmp_path / f"{path.name}.CHECKSUM").write_text(f"{'ab' * 32}  {path.name}\n")
    with pytest.raises(BackfillError, match=f"{path.name}: SHA-256 .* does not match"):
        backfill(settings, market="spot", start=START, end=END, archives=[tmp_path], console=QUIET)
    assert candle_rows(db, "spot", ["DOGEUSDT"]) == []


def trades_csv(n: int) -> bytes:
    """Spot archive rows: id,price,qty,quote_qty,time,is_buyer_maker,is_best_match."""
    lines = []
    for i in range(n):
        price, qty = Decimal("0.1") + Decimal(i) / 1000, Decimal("100")
        t = START_MS + i * 20_000  # three trades a minute
        lines.append(f"{1000 + i},{price},{qty},{price * qty},{t},{i % 2 == 0},True")
    return ("\n".join(lines) + "\n").encode()


def write_archive(directory: Path, name: str, csv_bytes: bytes) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(name.replace(".zip", ".csv"), csv_bytes)
    path = directory / name
    path.write_bytes(buffer.getvalue())
    return path


def test_archives_are_replayed_through_the_flow_once(
    settings: Settings, db: Client, tmp_path: Path, kafka_bootstrap: str
) -> None:
    settings = settings.model_copy(
        update={"kafka": KafkaSettings(bootstrap=kafka_bootstrap, partitions=3)}
    )
    archives = tmp_path / "archives"
    archives.mkdir()
    path = write_archive(archives, "DOTUSDT-trades-2024-08-08.zip", trades_csv(30))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (archives / f"{path.name}.CHECKSUM").write_text(f"{digest}  {path.name}\n")

    report = backfill(
        settings, market="spot", start=START, end=END, archives=[archives], console=QUIET
    )
    assert (report.archives_replayed, report.archives_skipped, report.archive_trades) == (1, 0, 30)
    rows = candle_rows(db, "spot", ["DOTUSDT"])
    assert len(rows) == 10  # 30 trades, three a minute
    assert {r[-1] for r in rows} == {"trades"} and {r[-2] for r in rows} == {1}
    assert [r[9] for r in rows] == [3] * 10  # count
    recorded = db.query(
        "SELECT symbol, toString(day), sha256, rows FROM backfill_progress FINAL"
        " WHERE kind = 'archive'"
    ).result_rows
    assert [tuple(r) for r in recorded] == [("DOTUSDT", "2024-08-08", digest, 30)]

    again = backfill(settings, market="spot", start=START, end=END, archives=[path], console=QUIET)
    assert (again.archives_replayed, again.archives_skipped, again.replay) == (0, 1, None)
    assert candle_rows(db, "spot", ["DOTUSDT"]) == rows


def test_an_archive_cut_short_is_not_recorded_as_done(
    settings: Settings, db: Client, tmp_path: Path, kafka_bootstrap: str
) -> None:
    settings = settings.model_copy(
        update={"kafka": KafkaSettings(bootstrap=kafka_bootstrap, partitions=3)}
    )
    good = write_archive(tmp_path, "AVAXUSDT-trades-2024-08-08.zip", trades_csv(30))
    cut = write_archive(tmp_path, "TRXUSDT-trades-2024-08-08.zip", trades_csv(30))
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    with pytest.raises(BackfillError, match=f"not recorded as done: {cut}: not a readable zip"):
        backfill(settings, market="spot", start=START, end=END, archives=[tmp_path], console=QUIET)
    recorded = db.query(
        "SELECT symbol FROM backfill_progress FINAL WHERE kind = 'archive'"
        " AND symbol IN ('AVAXUSDT', 'TRXUSDT')"
    ).result_rows
    assert recorded == [("AVAXUSDT",)]
    assert len(candle_rows(db, "spot", ["AVAXUSDT"])) == 10
    assert good.exists()


def test_the_client_pages_a_trade_range_and_retries_server_errors() -> None:
    with fake_exchange("spot", ["BTCUSDT"]) as fake:
        raw = {t["id"]: t for t in fake.raw_trades("BTCUSDT")}
        first = min(raw) + 100
        last = first + 2_499
        beyond = max(raw) + 100_000
        fake.fail_rest(503, count=2)

        async def run() -> tuple[Any, ...]:
            async with BinanceRest("spot", fake.rest_url, backoff_s=0.05) as rest:
                trades = await rest.fetch_trade_range("BTCUSDT", first, last, kind="trade")
                with pytest.raises(IncompleteTradeRange) as incomplete:
                    await rest.fetch_trade_range("BTCUSDT", beyond, beyond + 9)
                with pytest.raises(BinanceApiError) as refused:
                    await rest.klines("NOPEUSDT", "1m", START_MS, START_MS + 60_000)
                return trades, incomplete.value, refused.value, rest.stats

        trades, incomplete, refused, stats = asyncio.run(run())
        pages = [p for path, p, status in fake.rest_requests if status == 200]
    assert [t.trade_id for t in trades] == list(range(first, last + 1))
    for t in trades:
        row = raw[t.trade_id]
        assert (t.price, t.qty) == (Decimal(row["price"]), Decimal(row["qty"]))
        assert (t.time_us, t.buyer_is_maker) == (row["time"] * 1000, row["isBuyerMaker"])
    assert [p["fromId"] for p in pages[:3]] == [str(first), str(first + 1000), str(first + 2000)]
    assert incomplete.missing == list(range(beyond, beyond + 10)) and incomplete.trades == []
    assert (refused.status, refused.code, refused.msg) == (400, -1121, "Invalid symbol.")
    assert stats.server_errors == 2


def test_usdm_gap_repair_pages_aggregate_ids() -> None:
    with fake_exchange("usdm", ["ETHUSDT"]) as fake:
        aggs = {t["a"]: t for t in fake.trades("ETHUSDT")}
        first = min(aggs) + 10
        last = first + 1_499

        async def run() -> list[Any]:
            async with BinanceRest("usdm", fake.rest_url) as rest:
                return await rest.fetch_trade_range("ETHUSDT", first, last, kind="aggTrade")

        trades = asyncio.run(run())
    assert [t.trade_id for t in trades] == list(range(first, last + 1))
    for t in trades:
        row = aggs[t.trade_id]
        assert (t.first_trade_id, t.last_trade_id) == (row["f"], row["l"])
        assert (t.price, t.qty, t.buyer_is_maker) == (
            Decimal(row["p"]),
            Decimal(row["q"]),
            row["m"],
        )
    assert sum(t.count for t in trades) > len(trades)  # USDⓈ-M aggregates 1-3 raw trades


def test_after_a_418_the_client_refuses_to_send_until_the_ban_ends() -> None:
    with fake_exchange("usdm", ["BTCUSDT"]) as fake:
        fake.fail_rest(418, retry_after=60)

        async def run() -> tuple[BinanceBanned, BinanceBanned, BinanceRest]:
            async with BinanceRest("usdm", fake.rest_url) as rest:
                with pytest.raises(BinanceBanned) as first:
                    await rest.klines("BTCUSDT", "1m", START_MS, START_MS + 60_000)
                with pytest.raises(BinanceBanned) as second:
                    await rest.exchange_info()
                return first.value, second.value, rest

        first, second, rest = asyncio.run(run())
        assert len(fake.rest_requests) == 1
    assert second.until == first.until and rest.banned_until == first.until
