"""The SSE streams are signed in by the session cookie too, but a page of another site
cannot read them: only the configured CORS origins get `Access-Control-Allow-Origin`
(with credentials), and with none configured nobody does. (WebSockets have no such
guard: see tests/integration/test_web_guards.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from tickscan.settings import Settings

PARTNER = "https://partner.example.org"
EVIL = "https://evil.example.net"
STREAMS = [
    "/api/v1/stream/ranks",
    "/api/v1/stream/signals",
    "/api/v1/stream/candles",
    "/api/v1/stream/perps",
]


def site(tmp_path: Path, cors_origins: list[str]) -> TestClient:
    # No lifespan: the streams answer 503 without a hub, and CORS decides all the same.
    settings = Settings(data_dir=tmp_path, api=ApiSettings(cors_origins=cors_origins))
    return TestClient(create_app(settings))


@pytest.mark.parametrize("path", STREAMS)
def test_only_configured_origins_may_read_a_stream(tmp_path: Path, path: str) -> None:
    configured = site(tmp_path, [PARTNER])
    foreign = configured.get(path, headers={"Origin": EVIL, "Cookie": "ts_access=x"})
    assert "access-control-allow-origin" not in foreign.headers
    partner = configured.get(path, headers={"Origin": PARTNER})
    assert partner.headers["access-control-allow-origin"] == PARTNER
    assert partner.headers["access-control-allow-credentials"] == "true"
    alone = site(tmp_path, []).get(path, headers={"Origin": EVIL})
    assert "access-control-allow-origin" not in alone.headers
