"""Account emails through the official SendGrid client, against a fake SendGrid API served
by uvicorn on a loopback port: the verification link it carries verifies the account."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.accounts.db import AccountsDb
from api.accounts.deps import Accounts
from api.accounts.tokens import TokenService
from api.errors import install_error_handlers
from api.routes import auth
from api.settings import AccountsSettings, EmailSettings
from tests.fakes.sendgrid import FakeSendGrid, content
from tests.fakes.sendgrid import link as email_link
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

API_KEY = "SG.test-key"
SITE = "https://scan.example.com"
SENDER = "tickscan <no-reply@scan.example.com>"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def sendgrid() -> Iterator[tuple[FakeSendGrid, str]]:
    fake = FakeSendGrid(API_KEY)
    url = fake.start()
    yield fake, url
    fake.stop()


@contextmanager
def site(
    tmp_path: Path, host: str, *, key: str = API_KEY, sandbox: bool = False
) -> Iterator[TestClient]:
    """The auth routes, with the `Mailer` that `Accounts` builds from these settings."""
    email = EmailSettings(
        sendgrid_api_key=SecretStr(key), sendgrid_host=host, sandbox=sandbox, sender=SENDER
    )
    settings = Settings(
        data_dir=tmp_path,
        accounts=AccountsSettings(
            public_url=SITE, argon2_time_cost=1, argon2_memory_kib=8, email=email
        ),
    )
    db = AccountsDb(settings.accounts_url())
    asyncio.run(db.migrate())
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(auth.router)
    app.state.accounts = Accounts(settings, db, TokenService(b"k" * 48, 900, 3600))
    try:
        with TestClient(app, base_url=SITE) as client:
            yield client
    finally:
        asyncio.run(db.aclose())


def signup(client: TestClient, email: str) -> int:
    return client.post(
        "/api/v1/auth/signup", json={"email": email, "password": PASSWORD}
    ).status_code


def test_the_verification_email_goes_through_sendgrid_and_its_link_verifies(
    sendgrid: tuple[FakeSendGrid, str], tmp_path: Path
) -> None:
    fake, host = sendgrid
    with site(tmp_path, host) as client:
        sent_before = len(fake.bodies)
        assert signup(client, "ada@example.com") == 202
        [body] = fake.bodies[sent_before:]
        assert body["from"] == {"name": "tickscan", "email": "no-reply@scan.example.com"}
        assert body["personalizations"][0]["to"] == [{"email": "ada@example.com"}]
        assert body["subject"] == "Confirm your email for tickscan"
        assert "mail_settings" not in body  # sandbox mode off: really delivered
        link = email_link(body, f"{SITE}/verify-email?token=")
        assert f'href="{link}"' in content(body, "text/html")

        login = {"email": "ada@example.com", "password": PASSWORD}
        assert client.post("/api/v1/auth/login", json=login).status_code == 403
        token = parse_qs(urlsplit(link).query)["token"][0]
        assert client.post("/api/v1/auth/verify", json={"token": token}).status_code == 200
        assert client.post("/api/v1/auth/login", json=login).status_code == 200


def test_sandbox_mode_is_asked_for_when_set(
    sendgrid: tuple[FakeSendGrid, str], tmp_path: Path
) -> None:
    fake, host = sendgrid
    with site(tmp_path, host, sandbox=True) as client:
        sent_before = len(fake.bodies)
        assert signup(client, "bob@example.com") == 202
        [body] = fake.bodies[sent_before:]
        assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}


def test_a_refused_send_fails_the_sign_up_and_is_logged(
    sendgrid: tuple[FakeSendGrid, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake, host = sendgrid
    caplog.set_level(logging.ERROR, logger="api.accounts.email")
    with site(tmp_path, host, key="SG.revoked") as client:
        sent_before = len(fake.bodies)
        response = client.post(
            "/api/v1/auth/signup", json={"email": "carol@example.com", "password": PASSWORD}
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
        assert len(fake.bodies) == sent_before
        assert any("401" in r.getMessage() for r in caplog.records)
    # Nothing was kept: with a working key, the same address signs up as new.
    with site(tmp_path, host) as client:
        sent_before = len(fake.bodies)
        assert signup(client, "carol@example.com") == 202
        assert [b["subject"] for b in fake.bodies[sent_before:]] == [
            "Confirm your email for tickscan"
        ]
