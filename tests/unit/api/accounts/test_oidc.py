"""OIDC login checks against an in-process provider: PKCE, ID token validation, accounts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from pydantic import SecretStr
from sqlalchemy import select

from api.accounts.db import AccountsDb
from api.accounts.models import OidcIdentity, User
from api.accounts.oidc import Identity, OidcProviders, safe_next, sign_in
from api.accounts.tokens import now
from api.errors import NotFound, Unauthorized, Unavailable
from api.settings import OidcProviderSettings

ISSUER = "https://id.example"
CLIENT_ID = "tickscan"
CALLBACK = "https://scan.example/api/v1/auth/oidc/acme/callback"
SECRET = b"s" * 48


@pytest.fixture(scope="module")
def keys() -> tuple[RSAKey, RSAKey]:
    return (
        RSAKey.generate_key(2048, parameters={"kid": "k1"}),
        RSAKey.generate_key(2048, parameters={"kid": "k2"}),
    )


@dataclass
class FakeProvider:
    """An OpenID provider in one function: httpx's MockTransport calls it."""

    key: RSAKey
    claims: dict[str, Any] = field(default_factory=dict)
    """Claims to put in (or, with None, leave out of) the next ID token."""
    signer: RSAKey | None = None
    """Signs ID tokens instead of `key` (which the JWKS publishes)."""
    userinfo: dict[str, Any] = field(default_factory=dict)
    down: bool = False
    hits: Counter[str] = field(default_factory=Counter)
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def authorize(self, url: str) -> tuple[str, str]:
        """What the user does at the provider: the code and state it redirects back with."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        code = f"code-{len(self._codes)}"
        self._codes[code] = query
        return code, query["state"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        self.hits[path] += 1
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.metadata())
        if path == "/jwks":
            return httpx.Response(200, json=KeySet([self.key]).as_dict())
        if path == "/token":
            return self.token(dict(parse_qs(request.content.decode())))
        if path == "/userinfo":
            return httpx.Response(200, json={"sub": "u-1", **self.userinfo})
        return httpx.Response(404)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token",
            "userinfo_endpoint": f"{ISSUER}/userinfo",
            "jwks_uri": f"{ISSUER}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def token(self, form: dict[str, list[str]]) -> httpx.Response:
        asked = self._codes.pop(form["code"][0], None)
        verifier = form.get("code_verifier", [""])[0].encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if asked is None or challenge.decode() != asked["code_challenge"]:
            return httpx.Response(400, json={"error": "invalid_grant"})
        issued = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "u-1",
            "aud": CLIENT_ID,
            "iat": issued,
            "exp": issued + 300,
            "nonce": asked["nonce"],
            "email": "Ada@Example.com",
            "email_verified": True,
            **self.claims,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        signer = self.signer or self.key
        id_token = jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)
        return httpx.Response(
            200, json={"access_token": "at", "token_type": "Bearer", "id_token": id_token}
        )


@pytest.fixture
def fake(keys: tuple[RSAKey, RSAKey]) -> FakeProvider:
    return FakeProvider(keys[0])


@pytest.fixture
def providers(fake: FakeProvider) -> OidcProviders:
    acme = OidcProviderSettings(
        name="acme",
        discovery_url=f"{ISSUER}/.well-known/openid-configuration",
        client_id=CLIENT_ID,
        client_secret=SecretStr("shh"),
    )
    other = OidcProviderSettings(
        name="other",
        label="Other ID",
        discovery_url=f"{ISSUER}/.well-known/openid-configuration",
        client_id=CLIENT_ID,
        client_secret=SecretStr("shh"),
    )
    return OidcProviders([acme, other], SECRET, transport=httpx.MockTransport(fake))


async def login(
    providers: OidcProviders,
    fake: FakeProvider,
    next_path: str = "/",
    *,
    cookie: Callable[[str], str | None] = lambda kept: kept,
    name: str = "acme",
) -> Identity:
    """A whole login; `cookie` stands for what the browser sends back as login state."""
    start = await providers.begin("acme", CALLBACK, next_path)
    code, state = fake.authorize(start.url)
    return await providers.finish(name, code, state, cookie(start.state_cookie), CALLBACK)


def reissued(cookie: str, key: bytes, **changes: object) -> str:
    """The login state cookie with some claims changed, signed with `key`."""
    claims = jwt.decode(cookie, OctKey.import_key(SECRET)).claims
    return jwt.encode({"alg": "HS256"}, {**claims, **changes}, OctKey.import_key(key))


def refused(providers: OidcProviders, fake: FakeProvider, says: str) -> None:
    with pytest.raises(Unauthorized, match=says):
        asyncio.run(login(providers, fake))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/board?tab=2#top", "/board?tab=2#top"),
        (None, "/"),
        ("", "/"),
        ("board", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\tx", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_is_kept_only_when_it_stays_on_the_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_providers_are_listed_with_labels(providers: OidcProviders) -> None:
    assert [(p.name, p.label) for p in providers.listed()] == [
        ("acme", "acme"),
        ("other", "Other ID"),
    ]
    with pytest.raises(NotFound):
        providers.get("nope")


def test_a_valid_login_names_the_subject_and_email(
    providers: OidcProviders, fake: FakeProvider
) -> None:
    identity = asyncio.run(login(providers, fake, "/charts"))
    assert identity == Identity("acme", "u-1", "ada@example.com", True, "/charts")


def test_discovery_and_keys_are_fetched_once(providers: OidcProviders, fake: FakeProvider) -> None:
    async def twice() -> None:
        await asyncio.gather(login(providers, fake), login(providers, fake))

    asyncio.run(twice())
    assert fake.hits["/.well-known/openid-configuration"] == 1
    assert fake.hits["/jwks"] == 1
    assert fake.hits["/token"] == 2


def test_rotated_provider_keys_are_fetched_again(
    providers: OidcProviders, fake: FakeProvider, keys: tuple[RSAKey, RSAKey]
) -> None:
    asyncio.run(login(providers, fake))
    fake.key = keys[1]  # the provider now signs with, and publishes, a new key
    assert asyncio.run(login(providers, fake)).subject == "u-1"
    assert fake.hits["/jwks"] == 2


def test_an_id_token_signed_by_another_key_is_refused(
    providers: OidcProviders, fake: FakeProvider
) -> None:
    fake.signer = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # the published kid
    refused(providers, fake, "ID token is not valid")


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "someone-else", "azp": CLIENT_ID},  # azp alone must not make it ours
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 3600},
        {"nonce": "another-login"},
        {"nonce": None},
        {"sub": None},
    ],
    ids=["audience", "issuer", "expired", "nonce", "no-nonce", "no-subject"],
)
def test_an_id_token_with_a_wrong_claim_is_refused(
    providers: OidcProviders, fake: FakeProvider, claims: dict[str, Any]
) -> None:
    fake.claims = claims
    refused(providers, fake, "ID token is not valid")


def test_a_code_finished_with_another_login_state_is_refused(
    providers: OidcProviders, fake: FakeProvider
) -> None:
    # An attacker's own login state cannot finish a code issued to another browser.
    theirs = asyncio.run(providers.begin("acme", CALLBACK, "/")).state_cookie
    with pytest.raises(Unauthorized, match="login state does not match"):
        asyncio.run(login(providers, fake, cookie=lambda _: theirs))


def test_the_state_cookie_must_be_ours_and_fresh(
    providers: OidcProviders, fake: FakeProvider
) -> None:
    forged: list[Callable[[str], str | None]] = [
        lambda c: None,  # no cookie: the login started in another browser
        lambda c: reissued(c, b"x" * 48),  # signed by someone else
        lambda c: reissued(c, SECRET, exp=int(time.time()) - 1),  # the login took too long
    ]
    for cookie in forged:
        with pytest.raises(Unauthorized, match="expired or was started elsewhere"):
            asyncio.run(login(providers, fake, cookie=cookie))
    with pytest.raises(Unauthorized, match="does not match"):
        asyncio.run(login(providers, fake, name="other"))


def test_a_code_redeemed_without_its_pkce_verifier_is_refused(
    providers: OidcProviders, fake: FakeProvider
) -> None:
    def other_verifier(kept: str) -> str:
        return reissued(kept, SECRET, cv="a-verifier-of-another-login")

    with pytest.raises(Unauthorized, match="provider refused"):
        asyncio.run(login(providers, fake, cookie=other_verifier))


def test_a_refused_code_is_unauthorized(providers: OidcProviders, fake: FakeProvider) -> None:
    async def reused() -> Identity:
        start = await providers.begin("acme", CALLBACK, "/")
        code, state = fake.authorize(start.url)
        await providers.finish("acme", code, state, start.state_cookie, CALLBACK)
        return await providers.finish("acme", code, state, start.state_cookie, CALLBACK)

    with pytest.raises(Unauthorized, match="provider refused"):
        asyncio.run(reused())


def test_an_unreachable_provider_is_unavailable(
    providers: OidcProviders, fake: FakeProvider
) -> None:
    fake.down = True
    with pytest.raises(Unavailable, match="try again later"):
        asyncio.run(providers.begin("acme", CALLBACK, "/"))


def test_the_email_comes_from_userinfo_when_the_id_token_lacks_it(
    providers: OidcProviders, fake: FakeProvider
) -> None:
    fake.claims = {"email": None, "email_verified": None}
    fake.userinfo = {"email": "grace@example.com", "email_verified": "true"}
    identity = asyncio.run(login(providers, fake))
    assert (identity.email, identity.email_verified) == ("grace@example.com", True)


def in_db(db: AccountsDb, step: Callable[..., Any]) -> Any:
    async def go() -> Any:
        async with db.session() as session:
            return await step(session)

    return asyncio.run(go())


def identity(subject: str, email: str | None, verified: bool) -> Identity:
    return Identity("acme", subject, email, verified, "/")


def test_sign_in_creates_then_finds_the_account(accounts_db: AccountsDb) -> None:
    first = in_db(accounts_db, lambda db: sign_in(db, identity("s1", "ada@example.com", True)))
    again = in_db(accounts_db, lambda db: sign_in(db, identity("s1", "new@example.com", True)))
    assert again.id == first.id
    assert (first.email, first.email_verified) == ("ada@example.com", True)


def test_linking_a_verified_email_drops_an_unproven_password(accounts_db: AccountsDb) -> None:
    async def squatter(db: Any) -> int:
        user = User(email="ada@example.com", password_hash="$argon2id$squatter", created_at=now())
        db.add(user)
        await db.flush()
        return int(user.id)

    async def stored(db: Any) -> tuple[User | None, list[str]]:
        subjects = await db.scalars(select(OidcIdentity.subject))
        return await db.get(User, user_id), list(subjects)

    user_id = in_db(accounts_db, squatter)
    linked = in_db(accounts_db, lambda db: sign_in(db, identity("s1", "ada@example.com", True)))
    user, subjects = in_db(accounts_db, stored)

    assert linked.id == user_id
    assert user is not None
    assert (user.password_hash, user.email_verified) == (None, True)
    assert subjects == ["s1"]


def test_an_unverified_email_of_another_account_is_not_taken(accounts_db: AccountsDb) -> None:
    async def owner(db: Any) -> int:
        user = User(email="ada@example.com", email_verified=True, created_at=now())
        db.add(user)
        await db.flush()
        return int(user.id)

    owner_id = in_db(accounts_db, owner)
    made = in_db(accounts_db, lambda db: sign_in(db, identity("s1", "ada@example.com", False)))
    assert made.id != owner_id
    assert (made.email, made.email_verified) == (None, False)


def test_userinfo_about_another_subject_is_ignored(
    providers: OidcProviders, fake: FakeProvider
) -> None:
    fake.claims = {"email": None, "email_verified": None}
    fake.userinfo = {"sub": "someone-else", "email": "mallory@example.com", "email_verified": True}
    identity = asyncio.run(login(providers, fake))
    assert (identity.subject, identity.email, identity.email_verified) == ("u-1", None, False)
