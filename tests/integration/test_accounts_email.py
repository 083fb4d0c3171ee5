"""Account emails through the official SendGrid client, against a fake SendGrid API served
by uvicorn on a loopback port: the verification link it carries verifies the account."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.accounts.db import AccountsDb
from api.accounts.deps import Accounts
from api.accounts.tokens import TokenService
from api.errors import install_error_handlers
from api.routes import auth
from runtime.settings import AccountsSettings, EmailSettings, Settings

pytestmark = pytest.mark.integration

API_KEY = "SG.test-key"
SITE = "https://scan.example.com"
SENDER = "tickscan <no-reply@scan.example.com>"
PASSWORD = "correct horse battery"


class FakeSendGrid:
    """SendGrid's `POST /v3/mail/send`: checks the Bearer key, keeps each request's body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        app = Starlette(routes=[Route("/v3/mail/send", self.send, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def send(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            message = "The provided authorization grant is invalid, expired, or revoked"
            return JSONResponse({"errors": [{"message": message}]}, status_code=401)
        self.bodies.append(await request.json())
        return Response(status_code=202)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the fake SendGrid did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def sendgrid() -> Iterator[tuple[FakeSendGrid, str]]:
    fake = FakeSendGrid()
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


def content(body: dict[str, Any], kind: str) -> str:
    return next(c["value"] for c in body["content"] if c["type"] == kind)


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
        text = content(body, "text/plain")
        link = next(w for w in text.split() if w.startswith(f"{SITE}/verify-email?token="))
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
