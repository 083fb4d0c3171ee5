"""History on chDB: rollups of hand-made and real 1m candles, candle paging, symbols, signals.

Everything is written to a database of this module's own, migrated from infra/clickhouse
like any other, and read back through the API's routes and services.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.routes import candles as candle_routes
from api.routes import signals as signal_routes
from api.routes import symbols as symbol_routes
from api.services.symbols import SymbolDirectory
from api.store import Store
from flows.sinks.clickhouse import CandleSource, CandleWriter
from flows.sinks.symbols import SymbolWriter
from flows.sources.binance.symbols import symbol_infos
from schemas.candles import Candle
from tests.fakes.binance import FakeBinance
from tests.integration.replays import replay_quietly, replay_settings
from tests.shared_data import SHARED_DATA

pytestmark = pytest.mark.integration

DATA = SHARED_DATA / "binance-um-btcusdt-20240808"
KLINES = DATA / "BTCUSDT-1m-2024-08_um_klines_2024-08-08T2350_2024-08-09T0010.csv"
CAPTURE = DATA / "hftbacktest_usdm_btcusdt_20240808.gz"

SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000
T0 = 1_709_251_200_000  # 2024-03-01T00:00:00Z
D = Decimal
ZERO = D(0)


@pytest.fixture(scope="module")
def store(ch: Client, database: str) -> Store:
    return Store(ch, database)


@pytest.fixture(scope="module")
def api(store: Store) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    for module in (candle_routes, symbol_routes, signal_routes):
        app.include_router(module.router)
    app.state.store = store
    app.state.symbols = SymbolDirectory()
    return TestClient(app)


def write(ch: Client, database: str, candles: list[Candle], source: CandleSource = "trades"):
    writer = CandleWriter(lambda: ch, database, source=source)
    writer.add(candles)
    writer.flush()


@dataclass
class Minute:
    """What a hand-made 1m candle needs; a flat one has only its carried price."""

    price: str  # open; for a flat minute, the carried previous close
    high: str | None = None
    low: str | None = None
    close: str | None = None
    volume: str = "0"
    count: int = 0
    ids: tuple[int, int] | None = None
    version: int = 1


def candle(
    symbol: str, open_time: int, m: Minute, exchange: str = "hand", interval: str = "1m"
) -> Candle:
    length = SECOND if interval == "1s" else MINUTE
    price = D(m.price)
    volume = D(m.volume)
    close = D(m.close or m.price)
    return Candle(
        exchange=exchange,
        market="spot",
        symbol=symbol,
        interval="1s" if interval == "1s" else "1m",
        open_time=open_time,
        close_time=open_time + length - 1,
        open=price,
        high=D(m.high or m.price),
        low=D(m.low or m.price),
        close=close,
        volume=volume,
        quote_volume=volume * close,
        count=m.count,
        taker_buy_volume=volume / 2,
        taker_buy_quote_volume=volume * close / 2,
        first_trade_id=m.ids[0] if m.ids else None,
        last_trade_id=m.ids[1] if m.ids else None,
        version=m.version,
    )


def view(
    ch: Client, database: str, table: str, symbol: str, exchange: str = "hand"
) -> list[dict[str, Any]]:
    result = ch.query(
        "SELECT toUnixTimestamp64Milli(open_time) AS t, toUnixTimestamp64Milli(close_time) AS ct,"
        " open, high, low, close, volume, quote_volume, count, taker_buy_volume,"
        " first_trade_id, last_trade_id, version, source"
        " FROM {db:Identifier}.{table:Identifier}"
        " WHERE exchange = {exchange:String} AND symbol = {symbol:String} ORDER BY t",
        parameters={"db": database, "table": table, "symbol": symbol, "exchange": exchange},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


# --- rollups of hand-made candles ---------------------------------------------------------

# Minutes 0-4: the first is quiet (carrying a previous close of 97, below every trade),
# minute 3 is revised by a late trade (version 2, a new high); 5-9: wholly quiet; 10-11:
# one built from trades and one backfilled from the exchange.
MINUTES = {
    0: Minute("97"),
    1: Minute("101", "105", "99", "102", "2", 3, (10, 12)),
    2: Minute("102"),
    3: Minute("102.5", "103", "98", "98.5", "1.5", 2, (13, 14)),
    4: Minute("98.5"),
    **{i: Minute("98.5") for i in range(5, 10)},
    10: Minute("99", "99.5", "98.75", "99.25", "0.00000001", 1, (16, 16)),
    11: Minute("99.25", "99.25", "99", "99", "3", 4, (17, 20)),
}
REVISED_3 = Minute("102.5", "106", "98", "98.5", "2.5", 3, (13, 15), version=2)


@pytest.fixture(scope="module")
def hand_made(ch: Client, database: str) -> str:
    minutes = [candle("ROLLUSDT", T0 + i * MINUTE, m) for i, m in MINUTES.items() if i != 11]
    write(ch, database, minutes)
    write(ch, database, [candle("ROLLUSDT", T0 + 11 * MINUTE, MINUTES[11])], "exchange")
    write(ch, database, [candle("ROLLUSDT", T0 + 3 * MINUTE, REVISED_3)])
    return "ROLLUSDT"


def test_a_5m_rollup_skips_flat_minutes_and_takes_the_latest_revision(
    ch: Client, database: str, hand_made: str
) -> None:
    first = view(ch, database, "candles_5m", hand_made)[0]
    # The quiet first minute's 97 is neither the open nor the low; the revision's 106 is
    # the high and its 2.5 replaces the 1.5 it revised.
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        D("101"),
        D("106"),
        D("98"),
        D("98.5"),
    )
    assert (first["volume"], first["quote_volume"], first["count"]) == (
        D("4.5"),
        D("2") * D("102") + D("2.5") * D("98.5"),
        6,
    )
    assert (first["first_trade_id"], first["last_trade_id"]) == (10, 15)
    assert first["version"] == 1 + 1 + 1 + 2 + 1  # rises with the revision
    assert (first["t"], first["ct"], first["source"]) == (T0, T0 + 5 * MINUTE - 1, "trades")


def test_a_wholly_quiet_interval_is_flat_at_the_close_its_minutes_carry(
    ch: Client, database: str, hand_made: str
) -> None:
    quiet = view(ch, database, "candles_5m", hand_made)[1]
    assert quiet["t"] == T0 + 5 * MINUTE
    assert {quiet[k] for k in ("open", "high", "low", "close")} == {D("98.5")}
    assert (quiet["volume"], quiet["count"], quiet["version"]) == (ZERO, 0, 5)
    assert (quiet["first_trade_id"], quiet["last_trade_id"]) == (None, None)


def test_sums_are_exact_and_mixed_sources_say_so(ch: Client, database: str, hand_made: str) -> None:
    mixed = view(ch, database, "candles_5m", hand_made)[2]
    assert mixed["volume"] == D("3.00000001")  # a float would have lost the 1e-8
    assert (mixed["open"], mixed["high"], mixed["low"], mixed["close"]) == (
        D("99"),
        D("99.5"),
        D("98.75"),
        D("99"),
    )
    assert (mixed["count"], mixed["first_trade_id"], mixed["last_trade_id"]) == (5, 16, 20)
    assert mixed["source"] == "mixed"


def test_longer_rollups_agree_with_the_same_minutes(
    ch: Client, database: str, hand_made: str
) -> None:
    for table in ("candles_15m", "candles_1h", "candles_4h", "candles_1d"):
        (whole,) = view(ch, database, table, hand_made)
        assert whole["t"] == T0, table
        assert (whole["open"], whole["high"], whole["low"], whole["close"]) == (
            D("101"),
            D("106"),
            D("98"),
            D("99"),
        ), table
        assert (whole["volume"], whole["count"], whole["version"]) == (
            D("7.50000001"),
            11,
            13,
        ), table
    assert view(ch, database, "candles_1d", hand_made)[0]["ct"] == T0 + DAY - 1


def test_4h_and_1d_buckets_are_aligned_to_utc_midnight(ch: Client, database: str) -> None:
    times = [T0 + 4 * HOUR - MINUTE, T0 + 4 * HOUR, T0 + DAY - MINUTE, T0 + DAY]
    write(ch, database, [candle("ALIGNUSDT", t, Minute("1", "1", "1", "1", "1", 1)) for t in times])
    assert [r["t"] for r in view(ch, database, "candles_4h", "ALIGNUSDT")] == [
        T0,
        T0 + 4 * HOUR,
        T0 + 20 * HOUR,
        T0 + DAY,
    ]
    assert [r["t"] for r in view(ch, database, "candles_1d", "ALIGNUSDT")] == [T0, T0 + DAY]


# --- rollups of the exchange's own klines -------------------------------------------------


def official_klines() -> list[dict[str, str]]:
    if not KLINES.exists():
        pytest.fail(f"shared data missing: {KLINES}")
    with KLINES.open() as f:
        return list(csv.DictReader(f))


def kline_candle(row: dict[str, str]) -> Candle:
    return Candle(
        exchange="binance",
        market="usdm",
        symbol="BTCUSDT",
        interval="1m",
        open_time=int(row["open_time"]),
        close_time=int(row["close_time"]),
        open=D(row["open"]),
        high=D(row["high"]),
        low=D(row["low"]),
        close=D(row["close"]),
        volume=D(row["volume"]),
        quote_volume=D(row["quote_volume"]),
        count=int(row["count"]),
        taker_buy_volume=D(row["taker_buy_volume"]),
        taker_buy_quote_volume=D(row["taker_buy_quote_volume"]),
        first_trade_id=None,
        last_trade_id=None,
        version=1,
    )


def binance_rollup(rows: list[dict[str, str]], step: int) -> dict[int, dict[str, Any]]:
    """Longer klines as Binance defines them from its 1m klines (none of these is flat)."""
    out: dict[int, dict[str, Any]] = {}
    for row in rows:
        t = int(row["open_time"]) // step * step
        k = out.setdefault(
            t, {"open": D(row["open"]), "high": D(row["high"]), "low": D(row["low"]), "n": 0}
        )
        k["high"], k["low"] = max(k["high"], D(row["high"])), min(k["low"], D(row["low"]))
        k["close"] = D(row["close"])
        for name in ("volume", "quote_volume", "taker_buy_volume"):
            k[name] = k.get(name, ZERO) + D(row[name])
        k["n"] += int(row["count"])
    return out


def test_the_official_1m_klines_roll_up_to_binance_5m_1h_and_1d(
    ch: Client, database: str, api: TestClient
) -> None:
    rows = official_klines()  # 23:50 .. 00:10 of 2024-08-08/09
    write(ch, database, [kline_candle(r) for r in rows], "exchange")
    for interval, table, step in (
        ("5m", "candles_5m", 5 * MINUTE),
        ("1h", "candles_1h", HOUR),
        ("1d", "candles_1d", DAY),
    ):
        want = binance_rollup(rows, step)
        got = view(ch, database, table, "BTCUSDT", "binance")
        assert [r["t"] for r in got] == sorted(want), table
        for r in got:
            k = want[r["t"]]
            assert (r["open"], r["high"], r["low"], r["close"]) == (
                k["open"],
                k["high"],
                k["low"],
                k["close"],
            ), (table, r["t"])
            assert (r["volume"], r["quote_volume"], r["taker_buy_volume"], r["count"]) == (
                k["volume"],
                k["quote_volume"],
                k["taker_buy_volume"],
                k["n"],
            ), (table, r["t"])
        # The API serves the same candles, with the same exact decimals as strings.
        body = api.get(
            "/api/v1/candles",
            params={"market": "usdm", "symbol": "BTCUSDT", "interval": interval, "start": "0"},
        ).json()
        assert [c["open_time"] for c in body["candles"]] == sorted(want)
        assert [D(c["quote_volume"]) for c in body["candles"]] == [
            want[t]["quote_volume"] for t in sorted(want)
        ]
    five = binance_rollup(rows, 5 * MINUTE)[1_723_161_300_000]  # 23:55 .. 23:59
    # Recomputed by hand from the file: 2005 + 1992 + 4717 + 7387 + 3461 trades.
    assert (five["open"], five["close"], five["n"]) == (D("61807.70"), D("61659.80"), 19_562)


def test_candles_built_from_the_real_capture_roll_up_to_binance_5m_kline(
    ch: Client,
    clickhouse_dsn: str,
    kafka_bootstrap: str,
    database: str,
    tmp_path: Path,
) -> None:
    if not CAPTURE.exists():
        pytest.fail(f"shared data missing: {CAPTURE}")
    settings = replay_settings(tmp_path, kafka_bootstrap, clickhouse_dsn, database)
    # Stamped "capture" so as not to mix with the exchange's klines written above.
    report = replay_quietly([CAPTURE], settings, kafka_bootstrap, exchange="capture")
    assert report.trades == 21_313
    official = binance_rollup(official_klines(), 5 * MINUTE)[1_723_161_300_000]  # 23:55
    (ours,) = [
        r
        for r in view(ch, database, "candles_5m", "BTCUSDT", "capture")
        if r["t"] == 1_723_161_300_000
    ]
    assert (ours["open"], ours["high"], ours["low"], ours["close"]) == (
        official["open"],
        official["high"],
        official["low"],
        official["close"],
    )
    assert (ours["volume"], ours["quote_volume"], ours["taker_buy_volume"], ours["count"]) == (
        official["volume"],
        official["quote_volume"],
        official["taker_buy_volume"],
        official["n"],
    )
    assert ours["source"] == "trades"


# --- paging -------------------------------------------------------------------------------

PAGED = [T0 + i * MINUTE for i in (*range(0, 40), *range(70, 100))]  # halted 40 .. 69


@pytest.fixture(scope="module")
def paged(ch: Client, database: str) -> str:
    minutes = [
        candle("PAGEUSDT", t, Minute("5", "6", "4", "5", "1", 1, (i, i)), exchange="pager")
        for i, t in enumerate(PAGED)
    ]
    second = Minute("5", "6", "4", "5", "1", 1)
    seconds = [candle("PAGEUSDT", T0 + i * SECOND, second, "pager", "1s") for i in range(30)]
    write(ch, database, minutes + seconds)
    return "PAGEUSDT"


def pages(api: TestClient, interval: str, limit: int, **params: Any) -> list[list[int]]:
    """Open times of every page from `start` on, following the cursors."""
    query = {"exchange": "pager", "symbol": "PAGEUSDT", "interval": interval, "limit": limit}
    out = []
    cursor = None
    while True:
        extra = {"cursor": cursor} if cursor is not None else {}
        response = api.get("/api/v1/candles", params={**query, **params, **extra})
        assert response.status_code == 200, response.text
        body = response.json()
        out.append([c["open_time"] for c in body["candles"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return out
        assert len(out) < 100, "paging does not end"


@pytest.mark.parametrize("limit", [1, 7, 40, 1000])
def test_pages_of_1m_candles_hold_every_candle_once(
    api: TestClient, paged: str, limit: int
) -> None:
    got = pages(api, "1m", limit, start=str(T0))
    assert [t for page in got for t in page] == PAGED
    assert all(len(page) <= limit for page in got)
    assert all(got[:-1]), "only the last page may be empty"


def test_pages_of_5m_rollups_within_a_range(api: TestClient, paged: str) -> None:
    iso = datetime.fromtimestamp((T0 + 12 * MINUTE) / 1000, UTC).isoformat()
    got = pages(api, "5m", 3, start=iso, end=str(T0 + 90 * MINUTE))
    # start rounds up to 00:15; 40 .. 69 were halted; the bucket at 90 is at the end.
    want = [T0 + m * MINUTE for m in (15, 20, 25, 30, 35, 70, 75, 80, 85)]
    assert [t for page in got for t in page] == want


def test_1s_candles_come_from_their_own_table(api: TestClient, paged: str) -> None:
    got = pages(api, "1s", 8, start=str(T0 + 5 * SECOND), end=str(T0 + 25 * SECOND))
    assert [t for page in got for t in page] == [T0 + i * SECOND for i in range(5, 25)]


def test_without_a_start_the_page_holds_the_latest_candles(api: TestClient, paged: str) -> None:
    body = api.get(
        "/api/v1/candles",
        params={"exchange": "pager", "symbol": "PAGEUSDT", "interval": "1m", "limit": 5},
    ).json()
    assert [c["open_time"] for c in body["candles"]] == PAGED[-5:]
    assert body["next_cursor"] is None
    earlier = api.get(
        "/api/v1/candles",
        params={
            "exchange": "pager",
            "symbol": "PAGEUSDT",
            "interval": "1m",
            "limit": 5,
            "end": str(body["candles"][0]["open_time"]),
        },
    ).json()
    assert [c["open_time"] for c in earlier["candles"]] == PAGED[-10:-5]


def test_a_candle_as_json_is_exact_text(api: TestClient, paged: str) -> None:
    body = api.get(
        "/api/v1/candles",
        params={"exchange": "pager", "symbol": "PAGEUSDT", "start": str(T0), "limit": 1},
    ).json()
    assert body["candles"] == [
        {
            "open_time": T0,
            "close_time": T0 + MINUTE - 1,
            "open": "5",
            "high": "6",
            "low": "4",
            "close": "5",
            "volume": "1",
            "quote_volume": "5",
            "count": 1,
            "taker_buy_volume": "0.5",
            "taker_buy_quote_volume": "2.5",
            "first_trade_id": 0,
            "last_trade_id": 0,
            "version": 1,
            "source": "trades",
        }
    ]
    assert (body["exchange"], body["market"], body["interval"], body["next_cursor"]) == (
        "pager",
        "spot",
        "1m",
        T0 + MINUTE,
    )


# --- bad requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"symbol": "NOPEUSDT"}, 404, "no symbol *:spot:NOPEUSDT"),
        (
            {"symbol": "NOPEUSDT", "exchange": "binance", "start": "0"},
            404,
            "no symbol binance:spot:NOPEUSDT",
        ),
        ({"symbol": "BTC' OR 1=1 --"}, 422, "is not a symbol"),
        ({"symbol": "PAGEUSDT", "exchange": "pager", "start": "9", "end": "9"}, 422, "before end"),
        ({"symbol": "PAGEUSDT", "start": "yesterday"}, 422, "start: 'yesterday' is not a time"),
        ({"symbol": "PAGEUSDT", "end": "99999999999999999"}, 422, "outside 1970 .. 2200"),
        ({"symbol": "PAGEUSDT", "market": "margin"}, 422, "market: 'margin' is not one of"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    api: TestClient, paged: str, params: dict[str, str], status: int, message: str
) -> None:
    response = api.get("/api/v1/candles", params=params)
    assert response.status_code == status
    assert message in response.json()["error"]["message"]


def test_a_listed_symbol_without_candles_is_an_empty_page_not_a_404(
    ch: Client, database: str, api: TestClient
) -> None:
    infos = symbol_infos("binance", "spot", FakeBinance("spot", 3)._exchange_info({}))
    SymbolWriter(lambda: ch, database).write(infos)
    response = api.get("/api/v1/candles", params={"symbol": "ETHUSDT", "start": "0"})
    assert response.status_code == 200
    assert response.json()["candles"] == []


# --- symbols ------------------------------------------------------------------------------


def test_symbols_written_by_ingest_are_listed_with_their_latest_status(
    ch: Client, database: str, store: Store, api: TestClient
) -> None:
    fake = FakeBinance("usdm", 4)
    writer = SymbolWriter(lambda: ch, database)
    info = fake._exchange_info({})
    assert writer.write(symbol_infos("binance", "usdm", info)) == 4
    fake.delist("BNBUSDT")
    later = {**fake._exchange_info({}), "serverTime": info["serverTime"] + 1}
    writer.write(symbol_infos("binance", "usdm", later))

    directory: SymbolDirectory = api.app.state.symbols  # type: ignore[attr-defined]
    assert anyio.run(directory.refresh, store) == len(directory) >= 4
    body = api.get("/api/v1/symbols", params={"market": "usdm"}).json()
    listed = {s["symbol"]: s for s in body["symbols"]}
    assert sorted(listed) == ["BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert (listed["BNBUSDT"]["status"], listed["BTCUSDT"]["status"]) == ("SETTLING", "TRADING")
    # What the API documents for BTCUSDT is what it serves (but the time of the answer
    # and the fake exchange's order filters, stored and read back exactly).
    assert listed["BTCUSDT"] == symbol_routes.EXAMPLE["symbols"][0] | {
        "updated_ms": later["serverTime"],
        "min_qty": "0.001",
        "max_qty": "1000000",
        "market_max_qty": "100000",
        "min_notional": "5",
    }
    trading = api.get("/api/v1/symbols", params={"status": "trading", "market": "usdm"}).json()
    assert [s["symbol"] for s in trading["symbols"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert "USDT" in body["quote_assets"]


# --- signals ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signal_rows(ch: Client, database: str) -> list[list[Any]]:
    def at(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, UTC)

    rows = [
        ["binance", "spot", "BTCUSDT", "volume_spike", "1m", at(T0 + MINUTE), "up", 100.0, 3.5,
         {"volume": 35.0, "mean_volume": 10.0}],
        ["binance", "spot", "BTCUSDT", "breakout", "5m", at(T0 + 5 * MINUTE), "down", 99.0, 1.2,
         {"level": 100.2}],
        ["binance", "usdm", "ETHUSDT", "ema_cross", "1m", at(T0 + 2 * MINUTE), "up", 3000.0, 0.4,
         {"ema_fast": 3001.0, "ema_slow": 2999.0}],
    ]  # fmt: skip
    # Columns in the order of infra/clickhouse/008_signals.sql.
    ch.insert("signals", rows, database=database)
    ch.insert("signals", rows[:1], database=database)  # a rerun
    return rows


def test_signal_history_is_newest_first_and_filtered(
    api: TestClient, signal_rows: list[list[Any]]
) -> None:
    every = api.get("/api/v1/signals").json()
    assert [(s["symbol"], s["name"], s["time_ms"]) for s in every["signals"]] == [
        ("BTCUSDT", "breakout", T0 + 5 * MINUTE),
        ("ETHUSDT", "ema_cross", T0 + 2 * MINUTE),
        ("BTCUSDT", "volume_spike", T0 + MINUTE),  # once, though written twice
    ]
    assert every["more"] is False
    spike = every["signals"][2]
    assert spike == {
        "key": "binance:spot:BTCUSDT",
        "exchange": "binance",
        "market": "spot",
        "symbol": "BTCUSDT",
        "name": "volume_spike",
        "timeframe": "1m",
        "time_ms": T0 + MINUTE,
        "direction": "up",
        "price": 100.0,
        "value": 3.5,
        "details": {"volume": 35.0, "mean_volume": 10.0},
    }
    btc = api.get("/api/v1/signals", params={"symbol": "BTCUSDT", "timeframe": "1m"}).json()
    assert [s["name"] for s in btc["signals"]] == ["volume_spike"]
    window = api.get(
        "/api/v1/signals", params={"start": str(T0 + 2 * MINUTE), "end": str(T0 + 5 * MINUTE)}
    ).json()
    assert [s["name"] for s in window["signals"]] == ["ema_cross"]
    one = api.get("/api/v1/signals", params={"limit": 1}).json()
    assert ([s["name"] for s in one["signals"]], one["more"]) == (["breakout"], True)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "x'; DROP TABLE signals"}, "is not a valid name"),
        ({"timeframe": "2m"}, "timeframe"),
        ({"start": "5", "end": "1"}, "before end"),
        ({"limit": "0"}, "greater than or equal to 1"),
    ],
)
def test_bad_signal_queries_are_422(
    api: TestClient, signal_rows: list[list[Any]], params: dict[str, str], message: str
) -> None:
    response = api.get("/api/v1/signals", params=params)
    assert response.status_code == 422
    assert message in response.text


# --- the forming candle, and the exchange left out -----------------------------------------

FORMING_T = T0 + 10 * DAY  # a 5m (and 1h) bucket start


@pytest.fixture(scope="module")
def forming(ch: Client, database: str) -> str:
    """Three closed minutes, then the first 10 s of a fourth that has no 1m candle yet."""
    closed = [
        candle("FORMUSDT", FORMING_T, Minute("10", "12", "9", "11", "1", 3, (1, 3)), "former"),
        candle("FORMUSDT", FORMING_T + MINUTE, Minute("11"), "former"),  # flat
        candle(
            "FORMUSDT",
            FORMING_T + 2 * MINUTE,
            Minute("11", "13", "11", "12", "2", 4, (4, 7), version=2),
            "former",
        ),
    ]
    forming_minute = FORMING_T + 3 * MINUTE
    seconds = [
        Minute("12", "15", "12", "14", "1", 2, (8, 9)),
        Minute("14"),  # flat
        Minute("14", "14", "8", "8.5", "0.5", 1, (10, 10)),
    ]
    seconds_1s = [
        candle("FORMUSDT", forming_minute + i * SECOND, m, "former", "1s")
        for i, m in enumerate(seconds)
    ]
    write(ch, database, closed + seconds_1s)
    return "FORMUSDT"


def latest(api: TestClient, interval: str, limit: int = 10, **params: Any) -> dict[str, Any]:
    query = {"exchange": "former", "symbol": "FORMUSDT", "interval": interval, "limit": limit}
    response = api.get("/api/v1/candles", params={**query, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_forming_1m_candle_is_the_last_one(api: TestClient, forming: str) -> None:
    candles = latest(api, "1m")["candles"]
    assert [c["open_time"] for c in candles] == [FORMING_T + m * MINUTE for m in range(4)]
    now = candles[-1]
    assert now == {
        "open_time": FORMING_T + 3 * MINUTE,
        "close_time": FORMING_T + 4 * MINUTE - 1,
        "open": "12",
        "high": "15",
        "low": "8",
        "close": "8.5",
        "volume": "1.5",
        "quote_volume": "18.25",
        "count": 3,
        "taker_buy_volume": "0.75",
        "taker_buy_quote_volume": "9.125",
        "first_trade_id": 8,
        "last_trade_id": 10,
        "version": 1,
        "source": "trades",
    }


def test_the_forming_5m_and_1h_candles_hold_the_closed_minutes_and_the_forming_one(
    api: TestClient, forming: str
) -> None:
    for interval in ("5m", "1h"):
        (bucket,) = latest(api, interval)["candles"]
        assert bucket["open_time"] == FORMING_T
        assert (bucket["open"], bucket["high"], bucket["low"], bucket["close"]) == (
            "10", "15", "8", "8.5",
        )  # fmt: skip
        assert (bucket["count"], bucket["volume"]) == (3 + 4 + 3, "4.5")
        assert (bucket["first_trade_id"], bucket["last_trade_id"]) == (1, 10)
        assert bucket["version"] == 1 + 1 + 2 + 1  # its minutes', the forming one as 1
        assert bucket["source"] == "trades"


def test_the_last_forward_page_ends_with_the_forming_candle(api: TestClient, forming: str) -> None:
    got, cursor = [], None
    while True:
        extra = {"cursor": cursor} if cursor is not None else {"start": str(FORMING_T)}
        body = latest(api, "1m", limit=2, **extra)
        got.append([c["open_time"] for c in body["candles"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert got == [
        [FORMING_T, FORMING_T + MINUTE],
        [FORMING_T + 2 * MINUTE, FORMING_T + 3 * MINUTE],
    ]
    full = latest(api, "1m", limit=3, start=str(FORMING_T))  # the forming one is next
    assert full["next_cursor"] == FORMING_T + 3 * MINUTE
    # A page that ends before it does not hold it.
    before = latest(api, "1m", end=str(FORMING_T + 3 * MINUTE))["candles"]
    assert before[-1]["open_time"] == FORMING_T + 2 * MINUTE


def test_without_an_exchange_the_one_that_has_the_symbol_is_used(
    ch: Client, database: str, api: TestClient
) -> None:
    bar = Minute("1", "1", "1", "1", "1", 1, (1, 1))
    write(ch, database, [candle("SIMONLYUSDT", T0, bar, "sim")])
    write(ch, database, [candle("SIMSECUSDT", T0, bar, "sim", "1s")])  # its first minute
    write(ch, database, [candle("BOTHUSDT", T0, bar, e) for e in ("binance", "sim")])
    for symbol in ("SIMONLYUSDT", "SIMSECUSDT"):
        response = api.get("/api/v1/candles", params={"symbol": symbol, "interval": "1m"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["exchange"] == "sim" and len(body["candles"]) == 1, body
    both = api.get("/api/v1/candles", params={"symbol": "BOTHUSDT"})
    assert both.status_code == 422
    assert both.json()["error"] == {
        "code": "ambiguous_symbol",
        "message": "spot BOTHUSDT is on binance, sim: say which with exchange=binance (or sim)",
    }
    named = api.get("/api/v1/candles", params={"symbol": "BOTHUSDT", "exchange": "sim"})
    assert named.status_code == 200 and named.json()["exchange"] == "sim"
    nowhere = api.get("/api/v1/candles", params={"symbol": "NOWHEREUSDT"})
    assert nowhere.status_code == 404
