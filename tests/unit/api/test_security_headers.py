"""Every answer of the site (the UI, the API, /docs) tells the browser what its pages may
do: a content security policy of this server only, no framing, no MIME sniffing, no
Referer to other sites, and HSTS when (and only when) the site is https."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import AccountsSettings
from tickscan.settings import Settings

PAGES = {
    "the UI": "/",
    "a UI route": "/login",
    "an API answer": "/api/v1/nope",
    "the OpenAPI document": "/openapi.json",
    "Swagger UI": "/docs",
    "ReDoc": "/redoc",
    "Swagger UI's OAuth2 redirect": "/docs/oauth2-redirect",
    "a docs asset": "/docs/assets/swagger-ui.css",
    "the favicon": "/favicon.ico",
}


def site(tmp_path: Path, public_url: str = "http://127.0.0.1:8000") -> TestClient:
    # No lifespan: none of these answers needs ClickHouse or Kafka.
    settings = Settings(data_dir=tmp_path, accounts=AccountsSettings(public_url=public_url))
    return TestClient(create_app(settings))


def directives(policy: str) -> dict[str, list[str]]:
    parsed = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parsed}


@pytest.mark.parametrize("path", PAGES.values(), ids=PAGES.keys())
def test_every_answer_carries_the_headers(tmp_path: Path, path: str) -> None:
    headers = site(tmp_path).get(path).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    policy = directives(headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    # Scripts from this server; inline ones only by their hash, never any inline script.
    script = policy["script-src"]
    assert script[0] == "'self'" and all(s.startswith("'sha256-") for s in script[1:])
    assert "strict-transport-security" not in headers  # the site is http here


def test_the_docs_allow_exactly_their_own_inline_script(tmp_path: Path) -> None:
    page = site(tmp_path).get("/docs")
    (script,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = directives(page.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]


def test_hsts_only_when_the_site_is_https(tmp_path: Path) -> None:
    secure = site(tmp_path, "https://scan.example.com")
    for path in PAGES.values():
        assert secure.get(path).headers["strict-transport-security"] == "max-age=31536000"
    plain = site(tmp_path, "http://scan.example.com")
    assert "strict-transport-security" not in plain.get("/").headers
