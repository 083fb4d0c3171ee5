"""OpenID Connect sign-in: authorization code flow with PKCE against any provider by discovery."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, OctKey
from joserfc.jws import JWSRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.models import OidcIdentity, User
from api.accounts.tokens import now
from api.errors import NotFound, Unauthorized, Unavailable
from api.settings import OidcProviderSettings

with warnings.catch_warnings():
    # Authlib 1.9 warns on this import that its httpx integration moves to "httpx2", on
    # every start of every process: nothing a user of tickscan can act on.
    warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

logger = logging.getLogger(__name__)

SCOPE = "openid email profile"
LOGIN_TTL_S = 600
"""How long a user may take at the provider between the login redirect and the callback."""

_STATE_TYP = "oidc-login"
_STATE_ALG = "HS256"
_LEEWAY_S = 60
"""Clock skew tolerated between us and the provider on ID token times."""


@dataclass(frozen=True, slots=True)
class Provider:
    """A configured provider as the sign-in page lists it."""

    name: str
    label: str


@dataclass(frozen=True, slots=True)
class LoginStart:
    """Where to send the browser, and the sealed login state to keep in its cookie."""

    url: str
    state_cookie: str


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in (from a verified ID token)."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    next: str
    """Where the browser goes after signing in (a same-site path)."""


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else "/" (no open redirect to another site).

    Args:
        target: The `next` the login was started with, e.g. `/board?tab=2`.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    # Browsers read "\" as "/" and drop tabs and newlines, so "/\evil" leaves the site.
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


class OidcProviders:
    """The configured OIDC providers, their discovery documents and keys (fetched once).

    The login state (`state`, `nonce`, the PKCE verifier and `next`) travels in a signed,
    short-lived JWT kept in an HttpOnly cookie, so no server-side session is needed and
    any API process can finish a login another one started.

    Args:
        providers: `accounts.oidc` from the settings.
        secret: The key that signs the login state (`load_secret(settings)`).
        timeout_s: Timeout of each request to a provider.
        transport: The HTTP transport to providers (tests pass an in-process one).
    """

    def __init__(
        self,
        providers: list[OidcProviderSettings],
        secret: bytes,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = {p.name: p for p in providers}
        self._key = OctKey.import_key(secret)
        self._timeout_s = timeout_s
        self._transport = transport
        self._metadata: dict[str, dict[str, Any]] = {}
        self._jwks: dict[str, KeySet] = {}
        self._locks = {name: asyncio.Lock() for name in self._settings}

    def listed(self) -> list[Provider]:
        """The providers to offer, in configured order."""
        return [self.get(name) for name in self._settings]

    def get(self, name: str) -> Provider:
        """The provider of that name.

        Raises:
            NotFound: If none is configured.
        """
        settings = self._provider(name)
        return Provider(settings.name, settings.label or settings.name)

    async def begin(self, name: str, redirect_uri: str, next_path: str | None) -> LoginStart:
        """Start a login: the provider's authorization URL and the state cookie's value.

        Raises:
            NotFound: If no provider has that name.
            Unavailable: If the provider's discovery document cannot be fetched.
        """
        settings = self._provider(name)
        metadata = await self._discover(name)
        nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        async with self._client(settings, redirect_uri) as client:
            url, state = client.create_authorization_url(
                metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
            )
        issued = int(time.time())
        claims = {
            "typ": _STATE_TYP,
            "prv": name,
            "state": state,
            "nonce": nonce,
            "cv": verifier,
            "next": safe_next(next_path),
            "iat": issued,
            "exp": issued + LOGIN_TTL_S,
        }
        return LoginStart(url, jwt.encode({"alg": _STATE_ALG}, claims, self._key))

    async def finish(
        self, name: str, code: str, state: str, state_cookie: str | None, redirect_uri: str
    ) -> Identity:
        """Finish a login: check the state, exchange the code, verify the ID token.

        Raises:
            NotFound: If no provider has that name.
            Unauthorized: If the state does not match the browser's cookie, the code is
                refused, or the ID token is not valid (signature, issuer, audience,
                expiry, nonce).
            Unavailable: If the provider cannot be reached.
        """
        settings = self._provider(name)
        login = self._read_state(state_cookie)
        if login.get("prv") != name or not secrets.compare_digest(str(login["state"]), state):
            raise Unauthorized("sign-in failed: the login state does not match, start again")
        metadata = await self._discover(name)
        async with self._client(settings, redirect_uri) as client:
            try:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=login["cv"],
                )
            except AuthlibBaseError as exc:
                logger.info("OIDC %s refused the code: %s", name, exc)
                raise Unauthorized("sign-in failed: the provider refused the login") from None
            except httpx.HTTPError as exc:
                raise _unreachable(name, exc) from None
            if "id_token" not in token:
                raise Unauthorized("sign-in failed: the provider sent no ID token")
            claims = await self._verify_id_token(name, token, str(login["nonce"]))
            if "email" not in claims and metadata.get("userinfo_endpoint"):
                info = await self._userinfo(client, name, metadata)
                if info.get("sub") == claims["sub"]:  # OIDC Core 5.3.4: else it is not theirs
                    claims = {
                        **{k: info[k] for k in ("email", "email_verified") if k in info},
                        **claims,
                    }
        email = claims.get("email")
        return Identity(
            provider=name,
            subject=str(claims["sub"]),
            email=email.strip().lower() if isinstance(email, str) and email.strip() else None,
            email_verified=claims.get("email_verified") in (True, "true"),
            next=str(login["next"]),
        )

    def _provider(self, name: str) -> OidcProviderSettings:
        settings = self._settings.get(name)
        if settings is None:
            raise NotFound(f"no sign-in provider named {name!r}")
        return settings

    def _client(self, settings: OidcProviderSettings, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            scope=SCOPE,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self._timeout_s,
            transport=self._transport,
        )

    def _read_state(self, cookie: str | None) -> dict[str, Any]:
        if not cookie:
            raise Unauthorized("sign-in failed: the login expired or was started elsewhere")
        try:
            decoded = jwt.decode(cookie, self._key, algorithms=[_STATE_ALG])
            jwt.JWTClaimsRegistry(
                typ={"essential": True, "value": _STATE_TYP},
                exp={"essential": True},
                prv={"essential": True},
                state={"essential": True},
                nonce={"essential": True},
                cv={"essential": True},
                next={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError):
            raise Unauthorized(
                "sign-in failed: the login expired or was started elsewhere"
            ) from None
        return decoded.claims

    async def _discover(self, name: str) -> dict[str, Any]:
        # One fetch per provider for the life of the process, even when logins race.
        async with self._locks[name]:
            if name not in self._metadata:
                url = self._settings[name].discovery_url
                metadata = await self._get_json(name, url)
                missing = {"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"}
                missing -= metadata.keys()
                if missing:
                    logger.error("OIDC %s discovery lacks %s", name, sorted(missing))
                    raise Unavailable(f"sign-in with {name} is misconfigured")
                self._metadata[name] = metadata
            return self._metadata[name]

    async def _keys(self, name: str, *, force: bool = False) -> KeySet:
        async with self._locks[name]:
            if force or name not in self._jwks:
                jwks = await self._get_json(name, self._metadata[name]["jwks_uri"])
                self._jwks[name] = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
            return self._jwks[name]

    async def _verify_id_token(
        self, name: str, token: dict[str, Any], nonce: str
    ) -> dict[str, Any]:
        metadata = self._metadata[name]
        registry = JWSRegistry(
            algorithms=metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        )
        try:
            try:
                decoded = jwt.decode(token["id_token"], await self._keys(name), registry=registry)
            except InvalidKeyIdError:  # the provider rotated its keys since we fetched them
                keys = await self._keys(name, force=True)
                decoded = jwt.decode(token["id_token"], keys, registry=registry)
            client_id = self._settings[name].client_id
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": metadata["issuer"]},
                    "aud": {"essential": True, "value": client_id},
                    "exp": {"essential": True},
                    "sub": {"essential": True},
                },
                {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
            )
            claims.validate(leeway=_LEEWAY_S)
        except (JoseError, ValueError) as exc:
            logger.info("OIDC %s sent an invalid ID token: %s", name, exc)
            raise Unauthorized("sign-in failed: the provider's ID token is not valid") from None
        return dict(claims)

    async def _userinfo(
        self, client: AsyncOAuth2Client, name: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            response = await client.get(metadata["userinfo_endpoint"])
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise _unreachable(name, exc) from None
        info: dict[str, Any] = response.json()
        return info

    async def _get_json(self, name: str, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout_s, transport=self._transport
            ) as client:
                response = await client.get(url)
                response.raise_for_status()
                body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _unreachable(name, exc) from None
        return body


def _unreachable(name: str, exc: Exception) -> Unavailable:
    logger.warning("OIDC %s unreachable: %s", name, exc)
    return Unavailable(f"sign-in with {name} is unavailable: try again later")


async def sign_in(db: AsyncSession, identity: Identity) -> User:
    """The account of a verified OIDC identity: found, linked, or created.

    An identity seen before signs in to its account. A new one is linked to the account
    with the same email only when the provider vouches for the email (`email_verified`);
    else a new account is made.

    Args:
        db: The request's session.
        identity: What `OidcProviders.finish` verified.
    """
    user = await db.scalar(
        select(User)
        .join(OidcIdentity, OidcIdentity.user_id == User.id)
        .where(OidcIdentity.provider == identity.provider, OidcIdentity.subject == identity.subject)
    )
    if user is not None:
        return user
    moment = now()
    owner = None
    if identity.email is not None:
        owner = await db.scalar(select(User).where(User.email == identity.email))
    if owner is not None and identity.email_verified:
        user = owner
        if not user.email_verified:
            # Whoever set this password never proved the address was theirs: a squatter
            # must not keep a way into the account its real owner now uses.
            user.password_hash = None
            user.email_verified = True
        logger.info("OIDC %s identity linked to user %s by email", identity.provider, user.id)
    else:
        # An address another account holds, unverified here, stays with that account.
        email = identity.email if owner is None else None
        verified = identity.email_verified and email is not None
        user = User(email=email, email_verified=verified, created_at=moment)
        db.add(user)
        await db.flush()
        logger.info("OIDC %s sign-in created user %s", identity.provider, user.id)
    db.add(
        OidcIdentity(
            user_id=user.id,
            provider=identity.provider,
            subject=identity.subject,
            created_at=moment,
        )
    )
    await db.flush()
    return user
