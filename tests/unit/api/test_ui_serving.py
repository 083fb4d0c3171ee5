"""The built UI served at `/`: cached assets, the app's routes on a full page load, a clear
503 before it is built, and never in the way of the API's own paths."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.main import create_app
from api.ui import mount_ui
from tickscan.settings import Settings

INDEX = '<!doctype html><div id="root"></div><script src="/assets/index-Ab12.js"></script>'


def build(dist: Path) -> None:
    """What `npm run build` leaves: index.html, hashed assets, an unhashed public file."""
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-Ab12.js").write_text("console.log('tickscan')")
    (dist / "favicon.svg").write_text("<svg/>")


@pytest.fixture
def site(tmp_path: Path) -> TestClient:
    """An app with an API route of each kind the UI must not shadow, then the UI."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/v1/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/api/v1/auth/login")
    def login() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/metrics")
    def metrics() -> str:
        return "up 1"

    mount_ui(app, tmp_path / "dist")
    return TestClient(app)


def test_before_the_build_pages_say_how_to_build_it(site: TestClient, tmp_path: Path) -> None:
    for path in ("/", "/login"):
        response = site.get(path)
        assert response.status_code == 503
        assert "make ui" in response.text and response.headers["content-type"].startswith(
            "text/html"
        )
    # Built while the API runs: the next load serves it, no restart.
    build(tmp_path / "dist")
    assert site.get("/").text == INDEX


def test_the_apps_routes_load_index_html_uncached(site: TestClient, tmp_path: Path) -> None:
    build(tmp_path / "dist")
    for path in ("/", "/login", "/verify-email?token=abc.def", "/reset-password?token=x", "/a/b"):
        response = site.get(path)
        assert response.status_code == 200, path
        assert response.text == INDEX
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["content-type"].startswith("text/html")


def test_hashed_assets_are_cached_for_good_and_other_files_revalidated(
    site: TestClient, tmp_path: Path
) -> None:
    build(tmp_path / "dist")
    asset = site.get("/assets/index-Ab12.js")
    assert asset.status_code == 200 and asset.text == "console.log('tickscan')"
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in asset.headers["content-type"]
    public = site.get("/favicon.svg")
    assert public.status_code == 200 and public.headers["cache-control"] == "no-cache"
    # A missing file is a 404, not the app's HTML under a script's name.
    assert site.get("/assets/index-Old9.js").status_code == 404
    assert site.get("/robots.txt").status_code == 404


def test_nothing_outside_dist_is_served(site: TestClient, tmp_path: Path) -> None:
    build(tmp_path / "dist")
    (tmp_path / "secret.txt").write_text("do not serve")
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
        response = site.get(path)
        assert "do not serve" not in response.text, path


def test_the_api_keeps_its_own_answers(site: TestClient, tmp_path: Path) -> None:
    build(tmp_path / "dist")
    assert site.get("/api/v1/health").json() == {"ok": True}
    assert site.get("/metrics").json() == "up 1"
    unknown = site.get("/api/v1/nope")
    assert unknown.status_code == 404 and "html" not in unknown.headers["content-type"]
    assert site.get("/api").status_code == 404
    # A GET of a POST-only route is the API's 405, not the app's page.
    assert site.get("/api/v1/auth/login").status_code == 405
    assert site.get("/metrics/extra").status_code == 404


def test_create_app_serves_the_ui_after_the_api(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    client = TestClient(app)  # no lifespan: nothing the checked routes need
    assert client.get("/openapi.json").json()["info"]["title"] == "tickscan"
    assert "swagger" in client.get("/docs").text.lower()
    assert client.get("/api/v1/nope").status_code == 404
    assert client.get("/api/v1/auth/login").status_code == 405
    assert client.get("/login").headers["content-type"].startswith("text/html")
    assert not any("{path" in p for p in client.get("/openapi.json").json()["paths"])


def test_source_maps_are_not_served(site: TestClient, tmp_path: Path) -> None:
    build(tmp_path / "dist")
    # A dist built with maps (`vite build --sourcemap`): the UI's whole source.
    (tmp_path / "dist" / "assets" / "index-Ab12.js.map").write_text('{"version":3}')
    response = site.get("/assets/index-Ab12.js.map")
    assert response.status_code == 404 and "version" not in response.text


@pytest.mark.parametrize("path", ["/assets/%00.js", "/%00", "/assets/index-Ab12.js%00.map"])
def test_a_nul_in_a_path_is_a_plain_404(
    site: TestClient, tmp_path: Path, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    build(tmp_path / "dist")
    response = site.get(path)
    assert response.status_code == 404, response.text
    assert "Traceback" not in response.text and "null byte" not in response.text
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
