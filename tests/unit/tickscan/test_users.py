"""`tickscan users` on a self-hosted site without a mail service: the operator finishes a
sign-up, disables an account (its live session ends), and resets a password, from the
command line, on the same accounts store the API uses."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from typer.testing import CliRunner

from api.accounts.db import AccountsDb
from api.accounts.deps import Accounts
from api.accounts.tokens import TokenService
from api.errors import install_error_handlers
from api.routes import auth
from tickscan.cli import app as cli
from tickscan.settings import Settings

SITE = "http://127.0.0.1:8000"
ADA = "ada@example.com"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse entirely"
ENV = {
    "TICKSCAN_ACCOUNTS__PUBLIC_URL": SITE,
    "TICKSCAN_ACCOUNTS__ARGON2_TIME_COST": "1",
    "TICKSCAN_ACCOUNTS__ARGON2_MEMORY_KIB": "8",
}


@dataclass
class SelfHosted:
    client: TestClient
    data_dir: Path
    caplog: pytest.LogCaptureFixture

    def users(self, *args: str, input: str | None = None) -> tuple[int, str]:
        """Run `tickscan users ...` as the operator would, on this site's data dir."""
        done = CliRunner().invoke(cli, ["users", *args], input=input)
        return done.exit_code, done.output

    def post(self, path: str, body: dict[str, Any], **kw: Any) -> Response:
        return self.client.post(f"/api/v1/auth{path}", json=body, **kw)

    def login(self, password: str = PASSWORD) -> Response:
        return self.post("/login", {"email": ADA, "password": password})

    def logged_link(self, path: str) -> str:
        """The last link to `path` the log-only mailer wrote at INFO."""
        lines = [r.getMessage() for r in self.caplog.records if r.levelno == logging.INFO]
        links = [u for line in lines for u in re.findall(r"http\S+", line) if path in u]
        assert links, lines
        return links[-1]


@pytest.fixture
def site(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SelfHosted]:
    for name in [k for k in os.environ if k.startswith("TICKSCAN_")]:
        monkeypatch.delenv(name)
    for name, value in {"TICKSCAN_DATA_DIR": str(tmp_path), **ENV}.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.INFO, logger="api.accounts.email")
    settings = Settings()  # no SendGrid key: emails are logged, not sent
    db = AccountsDb(settings.accounts_url())
    asyncio.run(db.migrate())
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(auth.router)
    app.include_router(auth.me_router)
    app.state.accounts = Accounts(settings, db, TokenService(b"k" * 48, 900, 3600))
    try:
        with TestClient(app, base_url=SITE) as client:
            yield SelfHosted(client, tmp_path, caplog)
    finally:
        asyncio.run(db.aclose())


def code(response: Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_the_verification_link_is_in_the_log_and_the_operator_can_verify_instead(
    site: SelfHosted,
) -> None:
    assert site.post("/signup", {"email": ADA, "password": PASSWORD}).status_code == 202
    assert site.logged_link("/verify-email?token=").startswith(f"{SITE}/verify-email?token=")
    assert code(site.login()) == (403, "email_not_verified")

    status, out = site.users("list")
    assert status == 0, out
    assert re.search(rf"\b1\s+{re.escape(ADA)}\s+unverified\s+active", out), out

    status, out = site.users("verify", ADA)
    assert status == 0, out
    assert "verified" in out and "unverified" not in out
    assert site.login().status_code == 200


def test_a_disabled_account_loses_its_session_and_cannot_sign_in(site: SelfHosted) -> None:
    site.post("/signup", {"email": ADA, "password": PASSWORD})
    site.users("verify", "1")  # by id
    session = site.login().json()
    bearer = {"Authorization": f"Bearer {session['access_token']}"}
    assert site.client.get("/api/v1/me", headers=bearer).status_code == 200

    status, out = site.users("disable", ADA.upper())
    assert status == 0, out
    assert "disabled since" in out
    # The access token in hand stops working at once, and so does the refresh token.
    assert code(site.client.get("/api/v1/me", headers=bearer)) == (401, "account_disabled")
    assert site.post("/refresh", {}).status_code == 401
    assert code(site.login()) == (403, "account_disabled")
    # A wrong password still gets the answer that says nothing about the account.
    assert code(site.login("wrong password entirely")) == (401, "unauthorized")
    assert "disabled since" in site.users("list")[1]

    assert site.users("enable", ADA)[0] == 0
    assert site.login().status_code == 200


def test_reset_with_a_link_or_a_new_password(site: SelfHosted) -> None:
    site.post("/signup", {"email": ADA, "password": PASSWORD})
    site.users("verify", ADA)
    status, out = site.users("reset", ADA, "--link")
    assert status == 0, out
    link = out.split()[0]
    assert link.startswith(f"{SITE}/reset-password?token=")
    token = parse_qs(urlsplit(link).query)["token"][0]
    reset = site.post("/password/reset", {"token": token, "password": NEW_PASSWORD})
    assert reset.status_code == 200, reset.text
    assert site.login(NEW_PASSWORD).status_code == 200

    session = site.login(NEW_PASSWORD).json()
    bearer = {"Authorization": f"Bearer {session['access_token']}"}
    status, out = site.users("reset", ADA, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert status == 0, out
    assert "password set" in out and PASSWORD not in out  # never echoed
    assert site.login(PASSWORD).status_code == 200
    assert site.client.get("/api/v1/me", headers=bearer).status_code == 401  # sessions ended


def test_mistakes_are_said_plainly(site: SelfHosted) -> None:
    status, out = site.users("verify", "nobody@example.com")
    assert status == 1
    assert "no account 'nobody@example.com'" in out
    site.post("/signup", {"email": ADA, "password": PASSWORD})
    status, out = site.users("reset", ADA, input="short\nshort\n")
    assert status == 1
    assert "password" in out.lower()
    assert site.users("list")[0] == 0
