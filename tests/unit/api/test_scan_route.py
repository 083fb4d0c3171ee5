"""GET /api/v1/scan on the live board, with stand-in board and symbol directory."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.routes import scan
from schemas.ranks import RankRow
from schemas.symbols import SymbolInfo

T0 = 1_723_161_300_000
ROWS = [
    RankRow("binance", "spot", "BTCUSDT", T0, 60_000.0, change_pct_5m=1.5, rsi_14=55.0),
    RankRow("binance", "spot", "ETHBTC", T0, 0.05, change_pct_5m=4.0),
    RankRow("binance", "usdm", "SOLUSDT", T0, 150.0, change_pct_5m=6.0, new_high=True),
    RankRow("binance", "spot", "NEWUSDT", T0, 1.0, change_pct_5m=9.0),  # no metadata yet
]
SYMBOLS = {
    r.key: SymbolInfo(r.exchange, r.market, r.symbol, base, quote, "TRADING", kind)
    for r, base, quote, kind in zip(
        ROWS[:3],
        ("BTC", "ETH", "SOL"),
        ("USDT", "BTC", "USDT"),
        ("spot", "spot", "perpetual"),
        strict=True,
    )
}


def client(*, live: bool = True) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(scan.router)
    app.state.store = SimpleNamespace(database="unused")  # the live board never queries it
    if live:
        app.state.board = SimpleNamespace(rows={r.key: r for r in ROWS}, as_of_ms=T0 + 999)
        app.state.symbols = SYMBOLS
    return TestClient(app)


def test_live_board_is_filtered_sorted_and_carries_assets() -> None:
    response = client().get(
        "/api/v1/scan", params={"min_change_pct_5m": "1", "sort": "-change_pct_5m", "limit": "3"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["source"], body["as_of_ms"]) == ("live", T0 + 999)
    assert [r["symbol"] for r in body["rows"]] == ["NEWUSDT", "SOLUSDT", "ETHBTC"]
    new, sol, eth = body["rows"]
    assert (new["base_asset"], new["quote_asset"]) == (None, None)
    assert (sol["base_asset"], sol["quote_asset"], sol["new_high"]) == ("SOL", "USDT", True)
    assert (eth["quote_asset"], eth["price"], eth["rsi_14"]) == ("BTC", 0.05, None)
    assert set(new) == {*RankRow.__struct_fields__, "base_asset", "quote_asset"}
    assert body["filter"]["conditions"] == [
        {"metric": "change_pct", "window": "5m", "op": ">=", "value": 1.0, "value2": None}
    ]


def test_quote_and_market_toggles_and_a_json_filter() -> None:
    spot_usdt = client().get("/api/v1/scan?quote=usdt&market=spot").json()
    assert [r["symbol"] for r in spot_usdt["rows"]] == ["BTCUSDT"]
    as_json = json.dumps({"quotes": ["USDT"], "markets": ["spot"]})
    assert client().get("/api/v1/scan", params={"filter": as_json}).json() == spot_usdt


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("min_change_pct=3", "'min_change_pct': no such column"),
        ("sort=price;DROP%20TABLE%20x", "cannot sort by"),
        ("watch=BTC%27%20OR%201=1", "is not a symbol"),
        ("limit=100000", "less than or equal to 5000"),
        ("filter={not json", "Invalid JSON"),
        ("at=last%20tuesday", "is not a time"),
    ],
)
def test_a_bad_filter_is_a_422_that_says_why(query: str, message: str) -> None:
    response = client().get(f"/api/v1/scan?{query}")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert message in error["message"]


def test_no_live_board_is_a_503() -> None:
    response = client(live=False).get("/api/v1/scan")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"


def test_openapi_documents_the_filter_parameters_with_examples() -> None:
    operation = client().get("/openapi.json").json()["paths"]["/api/v1/scan"]["get"]
    assert "min_<column>" in operation["description"]
    assert "sort=-change_pct_5m" in operation["description"]
    assert [p["name"] for p in operation["parameters"]] == ["at"]
    schema = client().get("/openapi.json").json()["components"]["schemas"]["ScanFilter"]
    assert "change_pct_5m" in schema["properties"]["sort"]["enum"]


def test_columns_say_how_much_history_each_metric_needs() -> None:
    response = client(live=False).get("/api/v1/scan/columns")
    assert response.status_code == 200
    columns = {c["name"]: c["warmup"] for c in response.json()["columns"]}
    assert list(columns)[:2] == ["price", "change_pct_1m"]
    assert columns["price"] is None and columns["spread_bps"] is None
    assert columns["change_pct_5m"] == {"resolution": "1s", "history_ms": 301_000}
    assert columns["quote_volume_24h"] == {"resolution": "1m", "history_ms": 86_400_000}
    assert columns["trades_per_min"] == {"resolution": "1s", "history_ms": 60_000}
    assert "history_1s_from_ms" not in columns
