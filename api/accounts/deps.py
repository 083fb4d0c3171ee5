"""What account routes ask for: the accounts services, billing, the sign-in providers, and
the signed-in user.

The lifespan (`api.main.create_app`) opens the accounts services and billing and puts
them on `app.state`; the accessors here are the only readers of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from api.accounts.billing import Billing
from api.accounts.db import AccountsDb
from api.accounts.email import EmailSender, Mailer
from api.accounts.limiter import AuthLimiter
from api.accounts.models import User
from api.accounts.oidc import OidcProviders
from api.accounts.tokens import DISABLED, Access, TokenPair, TokenService, load_secret
from api.errors import Unauthorized
from api.settings import ApiAppSettings

ACCESS_COOKIE = "ts_access"
"""HttpOnly cookie with the access token: how a browser's fetch, EventSource and WebSocket
authenticate (EventSource and WebSocket cannot set an Authorization header)."""

REFRESH_COOKIE = "ts_refresh"
"""HttpOnly cookie with the refresh token, sent only to the auth routes."""

REFRESH_PATH = "/api/v1/auth"

SIGNED_IN_COOKIE = "ts_signed_in"
"""A cookie the page may read (not HttpOnly; it holds no secret, only "1"), living as long as
the refresh token: the UI asks who is signed in only when it is there, so an anonymous
visit does not cost two requests answered 401 (which browsers log as errors)."""


@dataclass(slots=True)
class Accounts:
    """The accounts services of one API process (`AccountsDep`)."""

    settings: ApiAppSettings
    db: AccountsDb
    tokens: TokenService
    mailer: EmailSender = None  # type: ignore[assignment]  # None: a Mailer of the settings
    limiter: AuthLimiter = field(default_factory=AuthLimiter)

    def __post_init__(self) -> None:
        if self.mailer is None:
            self.mailer = Mailer(self.settings)

    @property
    def cookie_secure(self) -> bool:
        """Whether cookies are `Secure`: set, or else whenever the site is https."""
        configured = self.settings.accounts.cookie_secure
        if configured is not None:
            return configured
        return self.settings.accounts.public_url.startswith("https://")

    def set_cookies(self, response: Response, pair: TokenPair) -> None:
        """Put a session's tokens in HttpOnly, SameSite=Lax cookies."""
        secure = self.cookie_secure
        response.set_cookie(
            ACCESS_COOKIE,
            pair.access_token,
            max_age=pair.expires_in,
            httponly=True,
            secure=secure,
            samesite="lax",
            path="/",
        )
        response.set_cookie(
            REFRESH_COOKIE,
            pair.refresh_token,
            max_age=self.tokens.refresh_ttl_s,
            httponly=True,
            secure=secure,
            samesite="lax",
            path=REFRESH_PATH,
        )
        response.set_cookie(
            SIGNED_IN_COOKIE,
            "1",
            max_age=self.tokens.refresh_ttl_s,
            httponly=False,
            secure=secure,
            samesite="lax",
            path="/",
        )

    def clear_cookies(self, response: Response) -> None:
        """Remove the session cookies (log out)."""
        response.delete_cookie(ACCESS_COOKIE, path="/")
        response.delete_cookie(REFRESH_COOKIE, path=REFRESH_PATH)
        response.delete_cookie(SIGNED_IN_COOKIE, path="/")


def get_accounts(connection: HTTPConnection) -> Accounts:
    """The process's accounts services."""
    accounts: Accounts = connection.app.state.accounts
    return accounts


def optional_accounts(connection: HTTPConnection) -> Accounts | None:
    """The process's accounts services, None in an app built without them (a partial app
    of one router: nobody signs in there)."""
    accounts: Accounts | None = getattr(connection.app.state, "accounts", None)
    return accounts


def get_app_billing(connection: HTTPConnection) -> Billing:
    """The process's billing, on or off (`Billing.enabled`)."""
    billing: Billing = connection.app.state.billing
    return billing


AccountsDep = Annotated[Accounts, Depends(get_accounts)]
OptionalAccountsDep = Annotated[Accounts | None, Depends(optional_accounts)]
AppBillingDep = Annotated[Billing, Depends(get_app_billing)]


def get_providers(connection: HTTPConnection, accounts: AccountsDep) -> OidcProviders:
    """The process's OIDC providers, made on first use (discovery waits for a login)."""
    state = connection.app.state
    providers: OidcProviders | None = getattr(state, "oidc", None)
    if providers is None:
        settings = accounts.settings
        providers = state.oidc = OidcProviders(settings.accounts.oidc, load_secret(settings))
    return providers


ProvidersDep = Annotated[OidcProviders, Depends(get_providers)]


async def db_session(accounts: AccountsDep) -> AsyncIterator[AsyncSession]:
    """A database session for one request, committed when the handler returns normally."""
    async with accounts.db.session() as session:
        yield session


DbDep = Annotated[AsyncSession, Depends(db_session, scope="function")]
"""The request's transaction. It ends (commits) when the handler returns, before the
response is sent: a client that has its answer finds what the request wrote (a verified
email, an ended session), and a failed commit is answered as an error, not lost."""


def bearer_token(connection: HTTPConnection) -> str | None:
    """The access token a request carries: `Authorization: Bearer ...`, else the cookie."""
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return connection.cookies.get(ACCESS_COOKIE)


async def authenticate(connection: HTTPConnection, accounts: Accounts) -> tuple[User, Access]:
    """The signed-in user of a request or WebSocket, and their token's session.

    Raises:
        Unauthorized: Without a valid token of a live session of an existing user.
    """
    token = bearer_token(connection)
    if token is None:
        raise Unauthorized("sign in first")
    return await authenticate_token(token, accounts)


async def authenticate_token(token: str, accounts: Accounts) -> tuple[User, Access]:
    """The user of an access token (e.g. sent in a WebSocket's `auth` message), and its
    session.

    Raises:
        Unauthorized: Unless it is a valid token of a live session of an existing user.
    """
    access = accounts.tokens.read_access(token)
    async with accounts.db.reading() as db:
        user = await db.get(User, access.user_id)
        if user is None:
            raise Unauthorized("sign in again: the account no longer exists")
        # Disabling ends the sessions too; this says why, and covers a refresh in flight.
        if user.disabled_at is not None:
            raise Unauthorized(DISABLED, code="account_disabled")
        await accounts.tokens.check_session(db, access)
    return user, access


async def current_access(request: Request, accounts: AccountsDep) -> tuple[User, Access]:
    """The signed-in user and session (401 otherwise)."""
    return await authenticate(request, accounts)


async def current_user(
    signed_in: Annotated[tuple[User, Access], Depends(current_access)],
) -> User:
    """The signed-in user (401 otherwise)."""
    return signed_in[0]


async def optional_user(request: Request, accounts: AccountsDep) -> User | None:
    """The signed-in user, or None for an anonymous request (a bad token is still a 401)."""
    if bearer_token(request) is None:
        return None
    user, _ = await authenticate(request, accounts)
    return user


CurrentAccess = Annotated[tuple[User, Access], Depends(current_access)]
CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]


def list_owner(connection: HTTPConnection) -> Callable[[], Awaitable[tuple[AccountsDb, int]]]:
    """Who owns the lists a scanner filter names (`watchlist=`, `ignored=mine`): signs the
    caller in only when asked, so a filter without them needs no accounts at all."""

    async def owner() -> tuple[AccountsDb, int]:
        accounts = get_accounts(connection)
        user, _ = await authenticate(connection, accounts)
        return accounts.db, user.id

    return owner


ListOwnerDep = Annotated[Callable[[], Awaitable[tuple[AccountsDb, int]]], Depends(list_owner)]
"""The `owner` of `api.services.board.board_filter`."""
