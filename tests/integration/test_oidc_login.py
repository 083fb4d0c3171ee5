"""OIDC sign-in end to end against a real OpenID provider (oidc-provider-mock on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import oidc_provider_mock
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey
from pydantic import SecretStr
from sqlalchemy import select

from api.accounts.deps import CurrentUser
from api.accounts.models import OidcIdentity, User
from api.accounts.tokens import now
from api.errors import install_error_handlers
from api.main import open_accounts
from api.routes import auth_oidc
from api.settings import AccountsSettings, OidcProviderSettings
from tickscan.settings import Settings

pytestmark = [
    pytest.mark.integration,
    # The mock provider's own use of authlib's server side, not our code.
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
]

SECRET = "k" * 48
PUBLIC_URL = "http://testserver"


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """Base URL of a running OpenID provider."""
    with oidc_provider_mock.run_server_in_thread(require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


def make_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        async with open_accounts(settings) as accounts:
            app.state.accounts = accounts
            yield

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(auth_oidc.router)

    @app.get("/whoami")
    async def whoami(user: CurrentUser) -> dict[str, Any]:
        return {"id": user.id, "email": user.email, "email_verified": user.email_verified}

    return app


@pytest.fixture
def client(provider: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path,
        accounts=AccountsSettings(
            public_url=PUBLIC_URL,
            secret_key=SecretStr(SECRET),
            argon2_time_cost=1,
            argon2_memory_kib=8,
            oidc=[
                OidcProviderSettings(
                    name="mock",
                    label="Mock ID",
                    discovery_url=f"{provider}/.well-known/openid-configuration",
                    client_id="tickscan-test",
                    client_secret=SecretStr("client-secret"),
                )
            ],
        ),
    )
    with TestClient(make_app(settings), base_url=PUBLIC_URL, follow_redirects=False) as c:
        yield c


def set_claims(provider: str, sub: str, **claims: object) -> None:
    httpx.put(f"{provider}/users/{sub}", json=claims).raise_for_status()


def authorize(provider_url: str, sub: str) -> str:
    """What a person does at the provider: pick the subject, get sent back with a code."""
    answer = httpx.post(provider_url, data={"sub": sub})
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def sign_in(client: TestClient, sub: str, next_path: str | None = None) -> httpx.Response:
    params = {"next": next_path} if next_path is not None else {}
    start = client.get("/api/v1/auth/oidc/mock/login", params=params)
    assert start.status_code == 302
    return client.get(authorize(start.headers["location"], sub))


def test_providers_are_listed_by_name_and_label(client: TestClient) -> None:
    response = client.get("/api/v1/auth/oidc")
    assert response.status_code == 200
    assert response.json() == [{"name": "mock", "label": "Mock ID"}]


def test_login_redirects_with_pkce_nonce_and_state(client: TestClient, provider: str) -> None:
    response = client.get("/api/v1/auth/oidc/mock/login")
    assert response.status_code == 302
    target = urlsplit(response.headers["location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{provider}/oauth2/authorize"
    assert query["redirect_uri"] == f"{PUBLIC_URL}/api/v1/auth/oidc/mock/callback"
    assert query["code_challenge_method"] == "S256"
    assert {"openid", "email"} <= set(query["scope"].split())
    assert query["client_id"] == "tickscan-test"
    assert query["state"] and query["nonce"] and query["code_challenge"]
    cookie = response.headers["set-cookie"].lower()
    assert "ts_oidc=" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_sign_in_lands_on_next_signed_in(client: TestClient, provider: str) -> None:
    set_claims(provider, "alice-sub", email="Alice@Example.com", email_verified=True)

    done = sign_in(client, "alice-sub", next_path="/board?tab=2")

    assert done.status_code == 302
    assert done.headers["location"] == "/board?tab=2"
    assert "ts_oidc" not in {c.name for c in client.cookies.jar}  # the login state is spent
    me = client.get("/whoami")
    assert me.status_code == 200
    assert me.json()["email"] == "alice@example.com"
    assert me.json()["email_verified"] is True


def test_the_same_subject_signs_in_to_the_same_account(client: TestClient, provider: str) -> None:
    set_claims(provider, "bob-sub", email="bob@example.com", email_verified=True)
    sign_in(client, "bob-sub")
    first = client.get("/whoami").json()["id"]
    client.cookies.clear()
    assert client.get("/whoami").status_code == 401

    sign_in(client, "bob-sub")

    assert client.get("/whoami").json()["id"] == first


def test_an_off_site_next_lands_on_the_home_page(client: TestClient, provider: str) -> None:
    set_claims(provider, "carol-sub", email="carol@example.com", email_verified=True)
    done = sign_in(client, "carol-sub", next_path="https://evil.example/phish")
    assert done.headers["location"] == "/"


def test_a_tampered_state_is_refused(client: TestClient, provider: str) -> None:
    start = client.get("/api/v1/auth/oidc/mock/login")
    back = urlsplit(authorize(start.headers["location"], "dave-sub"))
    query = {k: v[0] for k, v in parse_qs(back.query).items()}

    refused = client.get(back.path, params={"code": query["code"], "state": "forged"})

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert client.get("/whoami").status_code == 401


def test_a_callback_in_another_browser_is_refused(client: TestClient, provider: str) -> None:
    start = client.get("/api/v1/auth/oidc/mock/login")
    back = authorize(start.headers["location"], "erin-sub")
    client.cookies.clear()  # the login state cookie stayed in the browser that started

    refused = client.get(back)

    assert refused.status_code == 401
    assert "started elsewhere" in refused.json()["error"]["message"]


def test_an_id_token_for_another_nonce_is_refused(client: TestClient, provider: str) -> None:
    start = client.get("/api/v1/auth/oidc/mock/login")
    back = authorize(start.headers["location"], "frank-sub")
    # A state cookie well signed but for another login: the ID token's nonce cannot match.
    key = OctKey.import_key(SECRET.encode())
    kept = next(c for c in client.cookies.jar if c.name == "ts_oidc")
    claims = jwt.decode(str(kept.value), key).claims
    forged = jwt.encode({"alg": "HS256"}, {**claims, "nonce": "another"}, key)
    client.cookies.set("ts_oidc", forged, domain=kept.domain, path=kept.path)

    refused = client.get(back)

    assert refused.status_code == 401
    assert "ID token" in refused.json()["error"]["message"]


def test_a_verified_email_links_to_the_existing_account(client: TestClient, provider: str) -> None:
    user_id = run(client, add_user, "gina@example.com", True)
    set_claims(provider, "gina-sub", email="gina@example.com", email_verified=True)

    sign_in(client, "gina-sub")

    assert client.get("/whoami").json()["id"] == user_id
    identities = run(client, identities_of, user_id)
    assert identities == [("mock", "gina-sub")]


def test_an_unverified_email_does_not_take_over_an_account(
    client: TestClient, provider: str
) -> None:
    user_id = run(client, add_user, "hank@example.com", True)
    set_claims(provider, "hank-sub", email="hank@example.com", email_verified=False)

    sign_in(client, "hank-sub")

    me = client.get("/whoami").json()
    assert me["id"] != user_id
    assert (me["email"], me["email_verified"]) == (None, False)
    assert run(client, identities_of, user_id) == []


def test_an_unknown_provider_is_not_found(client: TestClient) -> None:
    for path in ("/api/v1/auth/oidc/nope/login", "/api/v1/auth/oidc/nope/callback?code=c&state=s"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_a_denied_login_is_refused(client: TestClient) -> None:
    start = client.get("/api/v1/auth/oidc/mock/login")
    denied = httpx.post(start.headers["location"], data={"action": "deny"})
    assert denied.status_code == 302

    refused = client.get(denied.headers["location"])

    assert refused.status_code == 401
    assert "access_denied" in refused.json()["error"]["message"]


def run(client: TestClient, step: Any, *args: object) -> Any:
    """Run a database step on the app's own event loop (where its engine lives)."""
    accounts = client.app.state.accounts  # type: ignore[attr-defined]

    async def go() -> Any:
        async with accounts.db.session() as db:
            return await step(db, *args)

    assert client.portal is not None
    return client.portal.call(go)


async def add_user(db: Any, email: str, verified: bool) -> int:
    user = User(email=email, email_verified=verified, created_at=now())
    db.add(user)
    await db.flush()
    return int(user.id)


async def identities_of(db: Any, user_id: int) -> list[tuple[str, str]]:
    rows = await db.execute(
        select(OidcIdentity.provider, OidcIdentity.subject).where(OidcIdentity.user_id == user_id)
    )
    return [tuple(r) for r in rows]
