"""The scanner filter on chDB: a past board equals the live selection over the same rows.

Rank snapshots and symbols are written to a database of this module's own (other tests
write snapshots too), migrated from infra/clickhouse like any other.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import pytest
from clickhouse_connect.driver.client import Client
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.live.board import Board
from api.routes import scan
from api.services.filter_eval import compile_filter
from api.services.filter_query import parse_query
from api.services.filter_sql import SNAPSHOT_MAX_AGE_MS, history_rows, history_sql
from api.services.filters import ScanFilter
from api.store import Store
from schemas.ranks import DERIVED_FIELDS, HISTORY_FIELDS, RankRow
from schemas.symbols import SymbolInfo
from tests.unit.api.test_filters import info, numbers_only, random_filter, random_rows

pytestmark = pytest.mark.integration

MINUTE = 60_000
# A whole minute of the last hour: rank_snapshots keeps rows 90 days (TTL on `time`), so
# a fixed date would one day be expired by a merge in the middle of the test.
AT = (time.time_ns() // 1_000_000 // MINUTE - 60) * MINUTE
AT_ISO = datetime.fromtimestamp(AT / 1000, UTC).isoformat().replace("+00:00", "Z")
# After exchange, market, symbol and time_ms; the history fields describe a live row's
# history and are no columns of rank_snapshots (a past row has them None), nor is the
# perpetuals' premium over spot, which the board derives from the spot pair's row.
METRIC_FIELDS = tuple(
    f for f in RankRow.__struct_fields__[4:] if f not in (*HISTORY_FIELDS, *DERIVED_FIELDS)
)


def snapshot_history(rng: random.Random) -> list[RankRow]:
    """Several whole-minute snapshots per symbol around AT: some too old to count, some
    after AT, one exactly at each edge of the window."""
    history = []
    for base in random_rows(rng, 240):
        minutes = sorted(rng.sample(range(-6, 3), rng.randint(1, 4)))
        for m in minutes:
            fresh = random_rows(rng, 3)[0]  # other metrics for each minute
            values = msgspec.structs.asdict(fresh) | {
                "exchange": base.exchange,
                "market": base.market,
                "symbol": base.symbol,
                "time_ms": AT + m * MINUTE,
                "premium_bps": None,  # derived, never stored
            }
            history.append(RankRow(**values))
    return history


def board_at(history: list[RankRow], at_ms: int) -> dict[str, RankRow]:
    """The board as the scanner issue defines it: each symbol's last snapshot at or
    before `at_ms`, not older than two minutes; a perpetual's premium over its spot pair
    set as the live board sets it."""
    board: dict[str, RankRow] = {}
    for row in sorted(history, key=lambda r: r.time_ms):
        if at_ms - SNAPSHOT_MAX_AGE_MS <= row.time_ms <= at_ms:
            board[row.key] = row
    live = Board()
    live.apply(board.values())
    assert any(r.premium_bps is not None for r in live.rows.values())
    return live.rows


@pytest.fixture(scope="module")
def written(ch: Client, database: str) -> tuple[list[RankRow], dict[str, SymbolInfo]]:
    """Snapshot history and symbol metadata, written to ClickHouse."""
    rng = random.Random(8080)
    history = snapshot_history(rng)
    latest = {r.key: r for r in history}
    symbols = {
        key: info(r, next(q for q in ("USDT", "USDC", "BTC") if r.symbol.endswith(q)))
        for key, r in latest.items()
        if rng.random() < 0.9  # the others have no metadata yet
    }
    columns = ["exchange", "market", "symbol", "time", *METRIC_FIELDS]
    ch.insert(
        "rank_snapshots",
        [
            [r.exchange, r.market, r.symbol, datetime.fromtimestamp(r.time_ms / 1000, UTC)]
            + [getattr(r, name) for name in METRIC_FIELDS]
            for r in history
        ],
        column_names=columns,
        database=database,
    )
    ch.insert(
        "symbols",
        [
            [s.exchange, s.market, s.symbol, s.base_asset, s.quote_asset, s.status, s.kind]
            for s in symbols.values()
        ],
        column_names=SymbolInfo.__struct_fields__[:7],
        database=database,
    )
    return history, symbols


def historical(client: Client, database: str, f: ScanFilter, at_ms: int = AT) -> list[Any]:
    sql, params = history_sql(f, at_ms, database)
    result = client.query(sql, parameters=params)
    return history_rows(result.column_names, [tuple(r) for r in result.result_rows])


def same(rows: list[RankRow]) -> list[str]:
    # repr: NaN equals NaN here, and floats compare exactly
    return [repr(r) for r in rows]


def test_the_past_board_equals_the_live_selection_for_any_filter(
    ch: Client, database: str, written: tuple[list[RankRow], dict[str, SymbolInfo]]
) -> None:
    history, symbols = written
    board = board_at(history, AT)
    assert AT in {r.time_ms for r in board.values()}
    assert AT - SNAPSHOT_MAX_AGE_MS in {r.time_ms for r in board.values()}
    assert len(board) < len({r.key for r in history})  # some symbols were stale at AT
    rng = random.Random(2024)

    def select(f: ScanFilter) -> list[RankRow]:
        return compile_filter(f).select(board.values(), symbols)

    nonempty = grouped = compared = 0
    for _ in range(160):
        f = random_filter(rng, list(board.values()))
        live = select(f)
        past = historical(ch, database, f)
        assert same([row for row, _, _ in past]) == same(live), f.model_dump_json()
        for row, base, quote in past:
            meta = symbols.get(row.key)
            assert (base, quote) == ((meta.base_asset, meta.quote_asset) if meta else (None, None))
        nonempty += bool(live)
        # OR groups and comparisons with another metric decide rows on both sides
        grouped += bool(live) and live != select(f.model_copy(update={"groups": ()}))
        compared += bool(live) and live != select(numbers_only(f))
    assert nonempty > 60
    assert grouped > 15
    assert compared > 30


def test_a_metric_compared_with_another_in_or_groups_on_both_sides(
    ch: Client, database: str, written: tuple[list[RankRow], dict[str, SymbolInfo]]
) -> None:
    """Factors that round (1/12, 1/3) and NULLs on either side, at the ties the values
    make: the live and the past board keep the same rows."""
    history, symbols = written
    board = board_at(history, AT)
    wheres = [
        ["price>vwap_24h"],
        ["price>=vwap_24h", "rsi_14<high_24h|rvol_5m>=rvol_1h*0.5"],
        ["change_pct_5m>change_pct_1h/12"],
        ["change_pct_5m>=change_pct_1h/3-1|change_pct_1m<=-1*change_pct_15m"],
        ["price between low_24h*0.5 and high_24h+1.5", "spread_bps<bid|ask>=bid"],
    ]
    for where in wheres:
        f = parse_query([("where", clause) for clause in where] + [("limit", "5000")])
        live = compile_filter(f).select(board.values(), symbols)
        assert live, where
        assert len(live) < len(board), where
        assert same([row for row, _, _ in historical(ch, database, f)]) == same(live), where


def test_the_whole_board_at_a_moment_is_each_symbols_latest_fresh_snapshot(
    ch: Client, database: str, written: tuple[list[RankRow], dict[str, SymbolInfo]]
) -> None:
    history, _ = written
    everything = ScanFilter(sort="symbol", order="asc", limit=5000)
    for at_ms in (AT - 4 * MINUTE, AT - 30_000, AT, AT + 2 * MINUTE):
        expected = sorted(board_at(history, at_ms).values(), key=lambda r: (r.symbol, r.key))
        assert same([row for row, _, _ in historical(ch, database, everything, at_ms)]) == (
            same(expected)
        )
    assert historical(ch, database, everything, AT - 60 * MINUTE) == []


@pytest.fixture
def api(ch: Client, database: str) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(scan.router)
    app.state.store = Store(ch, database)
    return TestClient(app)


def test_get_scan_at_a_moment_serves_the_historical_board(
    api: TestClient, written: tuple[list[RankRow], dict[str, SymbolInfo]]
) -> None:
    history, symbols = written
    query = "quote=USDT&min_change_pct_5m=0.5&sort=-change_pct_5m&limit=10"
    response = api.get(f"/api/v1/scan?at={AT_ISO}&{query}")
    assert response.status_code == 200
    body = response.json()
    assert (body["source"], body["as_of_ms"]) == ("history", AT)
    f = parse_query(parse_qsl(query))
    expected = compile_filter(f).select(board_at(history, AT).values(), symbols)
    assert expected
    assert [(r["exchange"], r["market"], r["symbol"]) for r in body["rows"]] == [
        (r.exchange, r.market, r.symbol) for r in expected
    ]
    assert [r["change_pct_5m"] for r in body["rows"]] == [r.change_pct_5m for r in expected]
    assert {r["quote_asset"] for r in body["rows"]} == {"USDT"}


def test_get_scan_takes_where_clauses_live_board_equal(
    api: TestClient, written: tuple[list[RankRow], dict[str, SymbolInfo]]
) -> None:
    history, symbols = written
    # as `curl -g` sends it: > and | bare in the query string
    query = "where=price>vwap_24h&where=rvol_5m>=1|change_pct_5m>change_pct_1h/12&sort=symbol"
    response = api.get(f"/api/v1/scan?at={AT}&{query}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filter"]["conditions"][0]["value"] == {
        "metric": "vwap_24h",
        "window": None,
        "factor": 1.0,
        "offset": 0.0,
    }
    assert len(body["filter"]["groups"][0]["any"]) == 2
    f = parse_query(parse_qsl(query))
    expected = compile_filter(f).select(board_at(history, AT).values(), symbols)
    assert expected
    assert [(r["exchange"], r["market"], r["symbol"]) for r in body["rows"]] == [
        (r.exchange, r.market, r.symbol) for r in expected
    ]
    assert all(r["price"] > r["vwap_24h"] for r in body["rows"])


HOSTILE = [
    "sort=price%3B%20DROP%20TABLE%20rank_snapshots",
    "where=price%3Evwap_24h)%20OR%20(1%3D1",
    "where=price%3Evwap_24h%3B%20DROP%20TABLE%20rank_snapshots",
    "where=price%3Esymbol",
    "where=price%3Evwap_24h%7Cprice%3E(SELECT%201)",
    'filter={"conditions":[{"metric":"price","op":">","value":{"metric":"vwap_24h) OR (1"}}]}',
    'filter={"groups":[{"any":[{"metric":"price","op":">","value":{"metric":"exchange"}}]}]}',
    'filter={"groups":[{"any":[{"metric":"price","op":">","value":{"metric":"vwap_24h",'
    '"factor":"1) OR (1"}}]}]}',
    'filter={"groups":[{"any":[{"metric":"price; DROP TABLE symbols","op":">","value":0}]}]}',
    "watch=BTCUSDT%27)%20OR%201%3D1%20--",
    "ignore=x%22%3B%20TRUNCATE%20TABLE%20symbols",
    "min_price%20OR%201%3D1=0",
    'filter={"conditions":[{"metric":"price) OR (1","op":">","value":0}]}',
    'filter={"sort":"symbol","order":"desc; DROP TABLE symbols"}',
    "quote=USDT%27%20UNION%20ALL%20SELECT%201",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_a_hostile_filter_is_a_422_and_touches_nothing(
    api: TestClient,
    ch: Client,
    database: str,
    written: tuple[list[RankRow], dict[str, SymbolInfo]],
    query: str,
) -> None:
    history, symbols = written
    response = api.get(f"/api/v1/scan?at={AT}&{query}")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    counts = ch.query(
        "SELECT (SELECT count() FROM {db:Identifier}.rank_snapshots),"
        " (SELECT count() FROM {db:Identifier}.symbols)",
        parameters={"db": database},
    ).result_rows[0]
    assert counts == (len(history), len(symbols))


def test_a_board_of_the_future_is_a_422_not_an_empty_board(api: TestClient) -> None:
    tomorrow = time.time_ns() // 1_000_000 + 86_400_000
    response = api.get(f"/api/v1/scan?at={tomorrow}")
    assert response.status_code == 422
    assert "is in the future" in response.json()["error"]["message"]
