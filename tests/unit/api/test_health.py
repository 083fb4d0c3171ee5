"""`GET /api/v1/health`: what the API depends on, and what feeds the board."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.deps import SourceKind
from api.errors import install_error_handlers
from api.routes import health


class PingStore:
    def __init__(self, answers: bool) -> None:
        self.answers = answers

    async def ping(self) -> bool:
        return self.answers


def client(
    source: SourceKind | None, *, board_keys: tuple[str, ...] = (), up: bool = True
) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(health.router)
    app.state.store = PingStore(up)
    app.state.feed = SimpleNamespace(running=up)
    app.state.board = SimpleNamespace(rows=dict.fromkeys(board_keys))
    app.state.source = source
    return TestClient(app)


def get(api: TestClient) -> tuple[int, dict[str, Any]]:
    response = api.get("/api/v1/health")
    return response.status_code, response.json()


def test_a_simulated_market_says_so() -> None:
    status, body = get(client("sim"))
    assert status == 200
    assert body == {
        "status": "ok",
        "clickhouse": True,
        "live": True,
        "warming": None,
        "source": "sim",
        "simulated": True,
    }


def test_live_binance_and_a_replay_are_not_simulated() -> None:
    for source in ("binance", "replay"):
        _, body = get(client(source, board_keys=("binance:spot:BTCUSDT",)))
        assert (body["source"], body["simulated"]) == (source, False)


def test_an_api_serving_another_process_s_feed_tells_from_the_board() -> None:
    _, body = get(client(None, board_keys=("sim:spot:SIM001USDT", "sim:spot:SIM002USDT")))
    assert (body["source"], body["simulated"]) == (None, True)
    _, body = get(client(None, board_keys=("binance:usdm:BTCUSDT",)))
    assert (body["source"], body["simulated"]) == (None, False)


def test_degraded_is_a_503_and_still_names_the_source() -> None:
    status, body = get(client("sim", up=False))
    assert status == 503
    assert body["status"] == "degraded" and body["source"] == "sim"


def test_create_app_keeps_the_source_it_is_given() -> None:
    from api.main import create_app
    from tickscan.settings import Settings

    assert create_app(Settings(), source="replay").state.source == "replay"
    assert create_app(Settings()).state.source is None
