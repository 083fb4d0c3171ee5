"""`/api/v1/auth` and `/api/v1/me` through FastAPI's TestClient, with a recording mailer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update

from api.accounts.db import AccountsDb
from api.accounts.deps import ACCESS_COOKIE, REFRESH_COOKIE, SIGNED_IN_COOKIE, Accounts
from api.accounts.email import Mailer, RenderedEmail
from api.accounts.models import EmailToken, User
from api.accounts.passwords import Passwords
from api.accounts.tokens import TokenService
from api.errors import install_error_handlers
from api.routes import auth
from api.settings import AccountsSettings
from tickscan.settings import Settings

SITE = "https://scan.example.com"
PASSWORD = "correct horse battery"
ADA = "ada@example.com"


@dataclass(frozen=True, slots=True)
class Sent:
    to: str
    template: str
    email: RenderedEmail

    def token(self) -> str:
        """The token of the first link into the site in the email's text."""
        url = next(w for w in self.email.text.split() if w.startswith(SITE) and "token=" in w)
        return parse_qs(urlsplit(url).query)["token"][0]


class RecordingMailer:
    """Renders each email from the real templates (so a missing variable fails the test)
    and keeps it instead of sending it."""

    def __init__(self, settings: Settings) -> None:
        self._renderer = Mailer(settings)
        self.sent: list[Sent] = []

    async def send(self, to: str, template: str, **context: Any) -> None:
        self.sent.append(Sent(to, template, self._renderer.render(template, **context)))

    def to(self, address: str) -> list[str]:
        return [s.template for s in self.sent if s.to == address]

    def last(self, template: str) -> Sent:
        return next(s for s in reversed(self.sent) if s.template == template)


@dataclass
class Site:
    client: TestClient
    mailer: RecordingMailer
    db: AccountsDb

    def post(self, path: str, body: dict[str, Any] | None = None, **kw: Any) -> Response:
        return self.client.post(f"/api/v1/auth{path}", json=body, **kw)

    def login(self, email: str = ADA, password: str = PASSWORD) -> Response:
        return self.post("/login", {"email": email, "password": password})

    def me(self, access_token: str) -> Response:
        return self.client.get("/api/v1/me", headers={"Authorization": f"Bearer {access_token}"})

    def signed_up(self, email: str = ADA) -> None:
        """An account with a verified email."""
        assert self.post("/signup", {"email": email, "password": PASSWORD}).status_code == 202
        token = self.mailer.last("verify").token()
        assert self.post("/verify", {"token": token}).status_code == 200

    def user(self, email: str = ADA) -> User:
        async def read() -> User:
            async with self.db.session() as session:
                found = await session.scalar(select(User).where(User.email == email))
                assert found is not None
                return found

        return asyncio.run(read())

    def change(self, statement: Any) -> None:
        async def run() -> None:
            async with self.db.session() as session:
                await session.execute(statement)

        asyncio.run(run())


def make_site(accounts_db: AccountsDb, tmp_path: Path, **settings: Any) -> Iterator[Site]:
    config = Settings(
        data_dir=tmp_path,
        accounts=AccountsSettings(
            public_url=SITE, argon2_time_cost=1, argon2_memory_kib=8, **settings
        ),
    )
    mailer = RecordingMailer(config)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(auth.router)
    app.include_router(auth.me_router)
    tokens = TokenService(b"k" * 48, 900, 3600)
    app.state.accounts = Accounts(config, accounts_db, tokens, mailer=mailer)
    with TestClient(app, base_url=SITE) as client:
        yield Site(client, mailer, accounts_db)


@pytest.fixture
def site(accounts_db: AccountsDb, tmp_path: Path) -> Iterator[Site]:
    yield from make_site(accounts_db, tmp_path)


def error(response: Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


def test_sign_up_verify_log_in_refresh_and_log_out_everywhere(site: Site) -> None:
    signup = site.post("/signup", {"email": "Ada@Example.com", "password": PASSWORD})
    assert (signup.status_code, signup.json()) == (202, {"status": "check your email"})
    assert site.mailer.to(ADA) == ["verify"]
    verify_link = site.mailer.last("verify")
    assert f"{SITE}/verify-email?token=" in verify_link.email.text

    refused = site.login()
    assert error(refused)[:2] == (403, "email_not_verified")
    assert site.post("/verify", {"token": verify_link.token()}).json() == {
        "status": "email verified"
    }

    first = site.login()
    assert first.status_code == 200
    session = first.json()
    assert (session["token_type"], session["expires_in"]) == ("bearer", 900)
    assert session["user"] == {"id": session["user"]["id"], "email": ADA, "email_verified": True}
    assert site.client.cookies.get(ACCESS_COOKIE) == session["access_token"]
    old_refresh = site.client.cookies.get(REFRESH_COOKIE)
    assert old_refresh
    me = site.me(session["access_token"]).json()
    assert (me["email"], me["email_verified"], me["wallet_address"]) == (ADA, True, None)

    refreshed = site.post("/refresh")  # the refresh token rides in its cookie
    assert refreshed.status_code == 200
    assert refreshed.json()["user"]["email"] == ADA
    assert site.client.cookies.get(REFRESH_COOKIE) not in (None, old_refresh)
    newest = refreshed.json()["access_token"]
    assert site.me(newest).status_code == 200

    other_device = site.login().json()["access_token"]
    assert site.post("/logout-all", headers={"Authorization": f"Bearer {newest}"}).status_code == (
        204
    )
    assert site.client.cookies.get(ACCESS_COOKIE) is None
    for token in (newest, other_device, session["access_token"]):
        assert site.me(token).status_code == 401
    assert error(site.post("/refresh", {"refresh_token": old_refresh}))[0] == 401


def test_logout_ends_only_this_session(site: Site) -> None:
    site.signed_up()
    here, there = site.login().json(), site.login().json()
    response = site.post("/logout", headers={"Authorization": f"Bearer {here['access_token']}"})
    assert response.status_code == 204
    assert site.me(here["access_token"]).status_code == 401
    assert site.me(there["access_token"]).status_code == 200
    assert site.post("/logout").status_code == 401  # the cookies went with the session


def test_refresh_without_a_token_or_with_a_wrong_one_is_refused(site: Site) -> None:
    assert error(site.post("/refresh")) == (401, "unauthorized", "sign in first")
    assert error(site.post("/refresh", {"refresh_token": "forged"}))[0] == 401


def test_me_requires_a_sign_in(site: Site) -> None:
    assert error(site.client.get("/api/v1/me"))[:2] == (401, "unauthorized")


def test_answers_are_the_same_for_known_and_unknown_emails(site: Site) -> None:
    site.signed_up()
    for path, body, unknown_email in [
        ("/signup", {"password": "another password"}, "bob@example.com"),
        ("/password/forgot", {}, "carol@example.com"),
        ("/verify/resend", {}, "carol@example.com"),
    ]:
        known = site.post(path, {"email": ADA, **body})
        unknown = site.post(path, {"email": unknown_email, **body})
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
        assert known.status_code == 202
    # Ada hears that someone tried her address, and gets the reset link she asked for;
    # her account is verified, so no new verification. Bob's new account gets its link.
    assert site.mailer.to(ADA) == ["verify", "signup_exists", "reset"]
    assert site.mailer.to("bob@example.com") == ["verify"]
    assert site.mailer.to("carol@example.com") == []
    exists = site.mailer.last("signup_exists").email.text
    assert f"{SITE}/login" in exists and f"{SITE}/reset-password" in exists
    assert site.login(ADA, "another password").status_code == 401  # the old password stays

    wrong_password = site.login(ADA, "not the password")
    nobody = site.login("nobody@example.com", PASSWORD)
    assert (
        error(wrong_password)
        == error(nobody)
        == (
            401,
            "unauthorized",
            "wrong email or password",
        )
    )


def test_a_resent_verification_link_verifies(site: Site) -> None:
    site.post("/signup", {"email": ADA, "password": PASSWORD})
    site.post("/verify/resend", {"email": ADA})
    assert site.mailer.to(ADA) == ["verify", "verify"]
    assert site.post("/verify", {"token": site.mailer.last("verify").token()}).status_code == 200
    assert site.login().status_code == 200


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "10 to 256 characters"), ("ada@example.com", "cannot be the email")],
)
def test_a_weak_password_is_refused_at_sign_up(site: Site, password: str, message: str) -> None:
    status, code, text = error(site.post("/signup", {"email": ADA, "password": password}))
    assert (status, code) == (422, "weak_password") and message in text
    assert site.mailer.sent == []


def test_password_reset_with_expired_and_reused_links(site: Site) -> None:
    site.signed_up()
    old_session = site.login().json()["access_token"]
    invalid = (422, "invalid_link", "this link is invalid or has expired")

    site.post("/password/forgot", {"email": ADA})
    expired = site.mailer.last("reset")
    assert f"{SITE}/reset-password?token=" in expired.email.text
    site.change(update(EmailToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    new_password = "a brand new passphrase"
    reset = {"token": expired.token(), "password": new_password}
    assert error(site.post("/password/reset", reset)) == invalid

    site.post("/password/forgot", {"email": ADA})
    link = site.mailer.last("reset").token()
    weak = site.post("/password/reset", {"token": link, "password": "short"})
    assert error(weak)[:2] == (422, "weak_password")  # and the link still works:
    done = site.post("/password/reset", {"token": link, "password": new_password})
    assert done.status_code == 200
    assert site.me(old_session).status_code == 401  # every session ended
    assert site.login().status_code == 401
    assert site.login(ADA, new_password).status_code == 200

    again = site.post("/password/reset", {"token": link, "password": "yet another one!"})
    assert error(again) == invalid
    assert site.login(ADA, new_password).status_code == 200


def test_verify_refuses_a_reset_link(site: Site) -> None:
    site.post("/signup", {"email": ADA, "password": PASSWORD})
    site.post("/password/forgot", {"email": ADA})
    reset = site.mailer.last("reset").token()
    assert error(site.post("/verify", {"token": reset}))[:2] == (422, "invalid_link")
    assert site.user().email_verified is False


@pytest.fixture
def strict_site(accounts_db: AccountsDb, tmp_path: Path) -> Iterator[Site]:
    yield from make_site(accounts_db, tmp_path, login_attempts=3, lockout_s=900)


def test_the_account_locks_after_failed_logins_and_says_so_only_by_email(
    strict_site: Site,
) -> None:
    site = strict_site
    site.signed_up()
    wrong = [error(site.login(ADA, "guess number one")) for _ in range(3)]
    assert wrong == [(401, "unauthorized", "wrong email or password")] * 3
    locked_out = site.login()  # the right password, while locked
    assert error(locked_out) == wrong[0]
    assert site.mailer.to(ADA) == ["verify", "locked"]
    locked = site.mailer.last("locked").email.text
    assert "3 failed attempts" in locked and "15 minutes" in locked

    site.change(update(User).values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))
    assert site.login().status_code == 200
    assert site.user().failed_logins == 0


def test_a_password_reset_lifts_the_lock(strict_site: Site) -> None:
    site = strict_site
    site.signed_up()
    for _ in range(3):
        site.login(ADA, "guess number one")
    site.post("/password/forgot", {"email": ADA})
    reset = {"token": site.mailer.last("reset").token(), "password": "a brand new passphrase"}
    assert site.post("/password/reset", reset).status_code == 200
    assert site.login(ADA, "a brand new passphrase").status_code == 200


def test_a_login_upgrades_a_hash_of_older_parameters(site: Site) -> None:
    site.signed_up()
    older = Passwords(AccountsSettings(argon2_time_cost=2, argon2_memory_kib=16))
    site.change(update(User).values(password_hash=older.hash(PASSWORD)))
    assert site.login().status_code == 200
    assert site.user().password_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")  # type: ignore[union-attr]
    assert site.login().status_code == 200


@pytest.fixture
def limited_site(accounts_db: AccountsDb, tmp_path: Path) -> Iterator[Site]:
    yield from make_site(accounts_db, tmp_path, auth_rate_limit="3/minute")


def test_too_many_requests_are_answered_429_with_retry_after(limited_site: Site) -> None:
    site = limited_site
    for _ in range(3):
        assert site.login().status_code == 401
    refused = site.login()
    assert error(refused)[:2] == (429, "too_many_requests")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Each endpoint counts on its own: asking for a reset still works.
    assert site.post("/password/forgot", {"email": ADA}).status_code == 202


def test_a_readable_marker_cookie_says_a_session_exists_and_goes_at_log_out(site: Site) -> None:
    site.signed_up()
    assert site.login().status_code == 200
    marker = next(c for c in site.client.cookies.jar if c.name == SIGNED_IN_COOKIE)
    # The page reads it (no HttpOnly) to decide whether to ask /me; it holds no secret.
    assert (marker.value, marker.path, marker.has_nonstandard_attr("HttpOnly")) == ("1", "/", False)
    assert site.post("/logout").status_code == 204
    assert SIGNED_IN_COOKIE not in {c.name for c in site.client.cookies.jar}
