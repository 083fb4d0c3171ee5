"""What account routes ask for: the accounts services, and the signed-in user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from api.accounts.db import AccountsDb
from api.accounts.email import EmailSender, Mailer
from api.accounts.models import User
from api.accounts.ratelimit import AuthLimiter
from api.accounts.tokens import DISABLED, Access, TokenPair, TokenService
from api.errors import Unauthorized
from runtime.settings import Settings

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
    """The accounts services of one API process (`app.state.accounts`)."""

    settings: Settings
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


AccountsDep = Annotated[Accounts, Depends(get_accounts)]


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
