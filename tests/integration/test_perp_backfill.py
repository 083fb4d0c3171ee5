"""A perpetual's history backfilled from the fake USDⓈ-M Binance (real HTTP) into chDB.

`tickscan backfill --data funding,open-interest,mark-klines` must write exactly the
exchange's values into ``funding``, ``open_interest`` and ``mark_klines_1m``, rerun to
identical rows, and leave out (saying so) open interest older than Binance keeps.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from rich.console import Console

from flows.sources.binance.rest import BinanceApiError, BinanceRest
from runtime.clickhouse import connect
from runtime.settings import ClickHouseSettings
from tests.fakes.binance import FakeBinance
from tests.integration.databases import migrated_database
from tickscan.backfill import backfill, summary
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
QUIET = Console(quiet=True)
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
ALL = "funding,open-interest,mark-klines"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, clickhouse_dsn: str) -> Iterator[Settings]:
    """Settings writing to a migrated database of this module's own."""
    with migrated_database(clickhouse_dsn, "tickscan_perp_backfill") as name:
        store = ClickHouseSettings(dsn=clickhouse_dsn, database=name)
        yield Settings(data_dir=tmp_path_factory.mktemp("perp-backfill"), clickhouse=store)


@pytest.fixture
def db(settings: Settings) -> Iterator[Client]:
    with closing(
        connect(settings.clickhouse_dsn(), database=settings.clickhouse.database)
    ) as client:
        yield client


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBinance]:
    """A USDⓈ-M fake on the wall clock (the 30 days count from now), no trades needed."""
    with FakeBinance("usdm", [*SYMBOLS, "BNBUSDT"], rate=0.0, seed=11) as exchange:
        yield exchange


def _rows(db: Client, query: str, symbols: list[str]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.query(query, parameters={"symbols": symbols}).result_rows]


FUNDING = (
    "SELECT symbol, toUnixTimestamp64Milli(funding_time), funding_rate, mark_price, source,"
    " version FROM funding FINAL WHERE symbol IN {symbols:Array(String)}"
    " ORDER BY symbol, funding_time"
)
OPEN_INTEREST = (
    "SELECT symbol, toUnixTimestamp64Milli(time), open_interest, open_interest_value, source"
    " FROM open_interest FINAL WHERE symbol IN {symbols:Array(String)} ORDER BY symbol, time"
)
MARK_KLINES = (
    "SELECT symbol, toUnixTimestamp64Milli(open_time), open, high, low, close,"
    " toUnixTimestamp64Milli(close_time) FROM mark_klines_1m FINAL"
    " WHERE symbol IN {symbols:Array(String)} ORDER BY symbol, open_time"
)


def _expected_funding(fake: FakeBinance, start: int, end: int) -> list[tuple[Any, ...]]:
    return [
        (s, r["fundingTime"], Decimal(r["fundingRate"]), Decimal(r["markPrice"]), "exchange", 2)
        for s in SYMBOLS
        for r in fake.funding_history(s, start, end)
    ]


def _expected_open_interest(
    fake: FakeBinance, symbols: list[str], start: int, end: int
) -> list[tuple[Any, ...]]:
    return [
        (s, r["timestamp"], Decimal(r["sumOpenInterest"]), Decimal(r["sumOpenInterestValue"]),
         "history")
        for s in symbols
        for r in fake.open_interest_history(s, start, end)
    ]  # fmt: skip


def _expected_mark_klines(fake: FakeBinance, start: int, end: int) -> list[tuple[Any, ...]]:
    return [
        (s, k[0], *(Decimal(v) for v in k[1:5]), k[6])
        for s in SYMBOLS
        for k in fake.mark_klines(s, start, end)
    ]


def test_a_backfill_fills_the_three_tables_with_the_exchange_values_and_reruns_identically(
    fake: FakeBinance, settings: Settings, db: Client
) -> None:
    midnight = int(time.time() * 1000) // DAY_MS * DAY_MS
    start, end = midnight - 3 * DAY_MS + 20 * 3_600_000, midnight - DAY_MS + 4 * 3_600_000
    before = len(fake.rest_requests)

    report = backfill(
        settings, market="usdm", symbols=",".join(SYMBOLS).lower(), start=_iso(start),
        end=_iso(end), rest_url=fake.rest_url, console=QUIET, data=ALL,
    )  # fmt: skip

    funding = _expected_funding(fake, start, end)
    open_interest = _expected_open_interest(fake, SYMBOLS, start, end)
    mark_klines = _expected_mark_klines(fake, start, end)
    assert len(funding) == 3 * 4  # 00:00, 08:00, 16:00 of the middle day, 00:00 of the last
    assert len(open_interest) == 3 * 32 * 12
    assert len(mark_klines) == 3 * 32 * 60
    assert _rows(db, FUNDING, SYMBOLS) == funding
    assert _rows(db, OPEN_INTEREST, SYMBOLS) == open_interest
    assert _rows(db, MARK_KLINES, SYMBOLS) == mark_klines
    # Three days touched per symbol, for each kind; nothing clipped, nothing left open.
    for name, rows in (("funding", 12), ("open-interest", 1152), ("mark-klines", 5760)):
        counts = report.history[name]
        assert (counts.chunks, counts.written, counts.skipped, counts.open) == (9, 9, 0, 0)
        assert (counts.clipped, counts.rows) == (0, rows)
    assert report.candles == 0 and report.chunks == 0  # candles were not asked for
    assert report.warnings == []
    # Funding runs whole ranges in one request; klines page by 499 (weight 2 each).
    asked = [p.rsplit("/", 1)[-1] for p, _, _ in fake.rest_requests[before:]]
    assert asked.count("fundingRate") == 3
    assert asked.count("openInterestHist") == 3 * 3
    assert asked.count("markPriceKlines") == 3 * (1 + 3 + 1)  # 240, 1440, 240 minutes
    assert all(status == 200 for _, _, status in fake.rest_requests[before:])
    text = summary(report)
    assert "funding: 9 chunk(s): 9 written, 0 already done; 12 funding events" in text
    assert "mark-klines: 9 chunk(s): 9 written" in text
    assert f"SELECT * FROM {settings.clickhouse.database}.mark_klines_1m FINAL" in text
    assert "candles_1m" not in text

    # A rerun fetches nothing: every chunk is recorded.
    again_from = len(fake.rest_requests)
    again = backfill(
        settings, market="usdm", symbols=SYMBOLS, start=_iso(start), end=_iso(end),
        rest_url=fake.rest_url, console=QUIET, data=ALL,
    )  # fmt: skip
    assert [p.rsplit("/", 1)[-1] for p, _, _ in fake.rest_requests[again_from:]] == ["exchangeInfo"]
    assert all(c.skipped == 9 and c.written == 0 for c in again.history.values())

    # A forced rerun writes every row again, and they merge into the same rows.
    forced = backfill(
        settings, market="usdm", symbols=SYMBOLS, start=_iso(start), end=_iso(end),
        rest_url=fake.rest_url, console=QUIET, data=ALL, force=True,
    )  # fmt: skip
    assert forced.history["mark-klines"].rows == len(mark_klines)
    assert _rows(db, FUNDING, SYMBOLS) == funding
    assert _rows(db, OPEN_INTEREST, SYMBOLS) == open_interest
    assert _rows(db, MARK_KLINES, SYMBOLS) == mark_klines


def test_open_interest_older_than_30_days_is_left_out_with_a_warning(
    fake: FakeBinance, settings: Settings, db: Client
) -> None:
    now = fake.now_ms()
    start, end = now // DAY_MS * DAY_MS - 32 * DAY_MS, now - 29 * DAY_MS
    before = len(fake.rest_requests)

    report = backfill(
        settings, market="usdm", symbols="BNBUSDT", start=_iso(start), end=_iso(end),
        rest_url=fake.rest_url, console=QUIET, data="open-interest,funding",
    )  # fmt: skip

    # Never asked for what Binance refuses: every request answered.
    assert all(status == 200 for _, _, status in fake.rest_requests[before:])
    rows = _rows(db, OPEN_INTEREST, ["BNBUSDT"])
    first = rows[0][1]
    assert now - 30 * DAY_MS <= first <= now - 30 * DAY_MS + 25 * 60_000
    assert rows == _expected_open_interest(fake, ["BNBUSDT"], first, end)
    counts = report.history["open-interest"]
    assert counts.clipped >= 2 and counts.written >= 1
    assert len(report.warnings) == 1
    assert "Binance keeps only the last 30 days" in report.warnings[0]
    assert "warning: open-interest history: Binance keeps only the last 30 days" in summary(report)
    assert "wholly or partly older than Binance keeps" in summary(report)
    # Funding history is not limited to 30 days: the whole range is there.
    funding = _rows(db, FUNDING, ["BNBUSDT"])
    assert [r[1] for r in funding] == [
        r["fundingTime"] for r in fake.funding_history("BNBUSDT", start, end)
    ]
    assert funding[0][1] < now - 31 * DAY_MS


def test_the_fake_refuses_old_open_interest_and_too_many_funding_requests(
    fake: FakeBinance,
) -> None:
    now = fake.now_ms()

    async def ask_too_old() -> None:
        async with BinanceRest("usdm", fake.rest_url) as rest:
            await rest.open_interest_hist("BTCUSDT", "5m", now - 31 * DAY_MS, now)

    with pytest.raises(BinanceApiError) as refused:
        asyncio.run(ask_too_old())
    assert (refused.value.status, refused.value.code) == (400, -1130)

    fake.funding_request_limit = len(fake.perp_history_requests.get("fundingRate", ())) + 1
    try:
        url = f"{fake.rest_url}/fapi/v1/fundingRate?symbol=BTCUSDT&limit=1"
        with urllib.request.urlopen(url) as resp:
            assert resp.headers["X-MBX-USED-WEIGHT-1M"].isdigit()
            assert len(json.load(resp)) == 1
        with pytest.raises(urllib.error.HTTPError) as limited:
            urllib.request.urlopen(url)
        assert limited.value.code == 429
        assert int(limited.value.headers["Retry-After"]) > 0
        assert json.loads(limited.value.read())["code"] == -1003
    finally:
        fake.funding_request_limit = 500
