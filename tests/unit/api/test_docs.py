"""The API's own pages: /docs and /redoc load nothing from outside, and /favicon.ico is
a real icon."""

from __future__ import annotations

import re
import struct

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tickscan.settings import Settings


@pytest.fixture(scope="module")
def api() -> TestClient:
    # No lifespan: these pages need neither ClickHouse nor Kafka.
    return TestClient(create_app(Settings()))


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", ["/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"]),
        ("/redoc", ["/docs/assets/redoc.standalone.js"]),
    ],
)
def test_docs_pages_load_their_scripts_and_styles_from_this_server(
    api: TestClient, page: str, assets: list[str]
) -> None:
    response = api.get(page)
    assert response.status_code == 200
    html = response.text
    # Every script, style sheet and icon the page names is on this server.
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced, html
    assert [url for url in referenced if "//" in url] == [], html
    assert "/openapi.json" in html
    # And the browser is told to fetch nothing from anywhere else.
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for asset in assets:
        assert asset in referenced
        served = api.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 100_000  # the real bundle, not a stand-in
        kind = "css" if asset.endswith(".css") else "javascript"
        assert kind in served.headers["content-type"]


def test_the_favicon_is_a_real_icon(api: TestClient) -> None:
    response = api.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/x-icon"
    reserved, kind, count = struct.unpack("<HHH", response.content[:6])
    assert (reserved, kind) == (0, 1) and count >= 2
    sizes = {response.content[6 + 16 * i] for i in range(count)}
    assert {16, 32} <= sizes


def test_the_docs_are_not_in_the_openapi_document(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc", "/favicon"))]


def test_swagger_ui_does_not_send_the_document_to_a_public_validator(api: TestClient) -> None:
    assert '"validatorUrl": null' in api.get("/docs").text
