"""The history routes over stand-in stores: status codes, error bodies, the signal query's
bound values, and their place in the app's OpenAPI document."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.exceptions import DatabaseError
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.main import create_app
from api.routes import candles, signals, symbols
from api.services.symbols import SymbolDirectory
from schemas.symbols import SymbolInfo
from tickscan.settings import Settings

T0 = 1_723_161_300_000


class FakeStore:
    """Answers every query with `rows` (or raises `error`), recording SQL and parameters."""

    database = "tickscan"

    def __init__(self, rows: list[tuple[Any, ...]] | None = None, error: Exception | None = None):
        self.rows = rows or []
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        self.calls.append((sql, dict(parameters or {})))
        if self.error is not None:
            raise self.error
        return [], self.rows


def client(store: FakeStore, directory: SymbolDirectory | None = None) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    for module in (candles, symbols, signals):
        app.include_router(module.router)
    app.state.store = store
    if directory is not None:
        app.state.symbols = directory
    return TestClient(app)


def test_an_unknown_symbol_is_a_404_with_the_error_body() -> None:
    response = client(FakeStore()).get("/api/v1/candles", params={"symbol": "NOPEUSDT"})
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "no symbol *:spot:NOPEUSDT: no metadata, no candles",
        }
    }
    named = {"symbol": "NOPEUSDT", "exchange": "binance"}
    response = client(FakeStore()).get("/api/v1/candles", params=named)
    assert response.json()["error"]["message"] == (
        "no symbol binance:spot:NOPEUSDT: no metadata, no candles"
    )


def test_bad_candle_parameters_are_422s() -> None:
    api = client(FakeStore())
    bad_time = api.get("/api/v1/candles", params={"symbol": "BTCUSDT", "end": "noon"})
    assert bad_time.status_code == 422
    assert bad_time.json()["error"]["code"] == "invalid_request"
    assert "end: 'noon' is not a time" in bad_time.json()["error"]["message"]
    for params in ({"interval": "2m"}, {"limit": "1001"}, {"cursor": "-1"}, {}):
        response = api.get(
            "/api/v1/candles", params={"symbol": "BTCUSDT", **params} if params else {}
        )
        assert response.status_code == 422, params


def test_clickhouse_failing_is_a_503_not_a_500() -> None:
    store = FakeStore(error=DatabaseError("Code: 241. Memory limit exceeded"))
    api = client(store)
    response = api.get("/api/v1/candles", params={"symbol": "BTCUSDT"})
    assert (response.status_code, response.json()["error"]["code"]) == (503, "unavailable")
    assert "Memory limit" not in response.text  # the engine's words stay in the log
    assert api.get("/api/v1/signals").status_code == 503


def test_symbols_are_filtered_and_need_a_directory() -> None:
    directory = SymbolDirectory(
        [
            SymbolInfo("binance", "spot", "ETHBTC", "ETH", "BTC", "TRADING", "spot"),
            SymbolInfo("binance", "usdm", "BTCUSDT", "BTC", "USDT", "TRADING", "perpetual"),
            SymbolInfo("binance", "spot", "BTCUSDT", "BTC", "USDT", "BREAK", "spot"),
        ]
    )
    api = client(FakeStore(), directory)
    body = api.get("/api/v1/symbols", params={"quote": "usdt"}).json()
    assert [s["key"] for s in body["symbols"]] == ["binance:spot:BTCUSDT", "binance:usdm:BTCUSDT"]
    assert body["quote_assets"] == ["BTC", "USDT"]
    trading = api.get("/api/v1/symbols", params={"status": "TRADING", "market": "spot"}).json()
    assert [s["symbol"] for s in trading["symbols"]] == ["ETHBTC"]
    assert api.get("/api/v1/symbols", params={"market": "margin"}).status_code == 422
    missing = client(FakeStore()).get("/api/v1/symbols")
    assert (missing.status_code, missing.json()["error"]["code"]) == (503, "unavailable")


def test_signal_criteria_reach_clickhouse_only_as_bound_values() -> None:
    at = datetime.fromtimestamp(T0 / 1000, UTC)
    store = FakeStore(
        [("binance", "spot", "ÆUSDT", "breakout", "5m", T0, "up", 1.5, 2.0, {"level": 1.47})]
    )
    response = client(store).get(
        "/api/v1/signals",
        params={"symbol": "ÆUSDT", "name": "breakout", "start": at.isoformat(), "limit": "1"},
    )
    assert response.status_code == 200
    assert response.json()["signals"][0]["key"] == "binance:spot:ÆUSDT"
    ((sql, params),) = store.calls
    assert "ÆUSDT" not in sql and "breakout" not in sql
    assert params == {
        "symbol": "ÆUSDT",
        "name": "breakout",
        "start": T0,
        "database": "tickscan",
        "limit": 2,  # one more than asked: says whether there are more
    }
    hostile = client(store).get("/api/v1/signals", params={"name": "x' OR '1'='1"})
    assert hostile.status_code == 422
    assert "is not a valid name" in hostile.json()["error"]["message"]


def test_the_app_documents_the_history_routes() -> None:
    paths = create_app(Settings()).openapi()["paths"]
    for path in ("/api/v1/candles", "/api/v1/symbols", "/api/v1/signals"):
        operation = paths[path]["get"]
        assert operation["summary"], path
        assert operation["responses"]["200"]["content"]["application/json"]["example"], path
    page = paths["/api/v1/candles"]["get"]["responses"]["200"]["content"]["application/json"]
    candle = page["schema"]["properties"]["candles"]["items"]
    assert candle["properties"]["quote_volume"]["type"] == "string"  # exact, not a float
    assert set(candle["required"]) == set(page["example"]["candles"][0])
    candle_errors = paths["/api/v1/candles"]["get"]["responses"]
    assert {"404", "422", "503"} <= set(candle_errors)
    interval = next(
        p for p in paths["/api/v1/candles"]["get"]["parameters"] if p["name"] == "interval"
    )
    assert interval["schema"]["enum"] == ["1s", "1m", "5m", "15m", "1h", "4h", "1d"]
