"""`/api/v1/auth`: email + password accounts (sign-up, verification, sessions, password
reset), and `/api/v1/me`.

Answers never tell whether an email has an account: sign-up, resending a verification
and asking for a reset answer the same whatever the address, and a wrong password, an
unknown email and a locked account get the same 401. The owner of the address learns what
happened by email.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts import email_tokens
from api.accounts.deps import (
    REFRESH_COOKIE,
    Accounts,
    AccountsDep,
    CurrentAccess,
    CurrentUser,
    DbDep,
)
from api.accounts.email import EmailSender, link
from api.accounts.email_tokens import RESET_PATH
from api.accounts.models import User
from api.accounts.passwords import MAX_LENGTH, MIN_LENGTH, Passwords, check_rules
from api.accounts.ratelimit import admit, count_failure, rate_limited, record_success
from api.accounts.tokens import DISABLED, TokenPair, check_enabled, now
from api.errors import Forbidden, Unauthorized, Unavailable, error_body

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
me_router = APIRouter(prefix="/api/v1/me", tags=["auth"])

WRONG_CREDENTIALS = "wrong email or password"
LOGIN_PATH = "/login"
"""The web front end's sign-in page."""


NewPassword = Annotated[
    str,
    Field(
        description=f"{MIN_LENGTH} to {MAX_LENGTH} characters, and not the email address "
        "(else a 422 `weak_password`).",
        # Documented here, checked by `check_rules`: its refusal says `weak_password`.
        json_schema_extra={"minLength": MIN_LENGTH, "maxLength": MAX_LENGTH},
    ),
]
"""A password a user chooses."""


class SignupIn(BaseModel):
    email: EmailStr
    password: NewPassword


class LoginIn(BaseModel):
    email: EmailStr
    password: str = Field(max_length=MAX_LENGTH)


class EmailIn(BaseModel):
    email: EmailStr


class TokenIn(BaseModel):
    token: str = Field(min_length=1, max_length=256)


class ResetIn(TokenIn):
    password: NewPassword


class RefreshIn(BaseModel):
    refresh_token: str | None = None
    """A client that keeps no cookies sends the refresh token here."""


class StatusOut(BaseModel):
    status: str


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str | None
    email_verified: bool


class MeOut(UserOut):
    wallet_address: str | None
    created_at: datetime


class SessionOut(BaseModel):
    """A signed-in session: the access token (also set as a cookie, with the refresh token)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: UserOut


def _passwords(accounts: Accounts) -> Passwords:
    return Passwords(accounts.settings.accounts)


def _link_minutes(accounts: Accounts) -> int:
    return max(1, accounts.settings.accounts.email_token_ttl_s // 60)


async def _user_by_email(db: AsyncSession, email: str) -> User | None:
    found: User | None = await db.scalar(select(User).where(User.email == email.lower()))
    return found


async def _send_quietly(mailer: EmailSender, to: str, template: str, **context: Any) -> None:
    """Send after the response: its timing and outcome must not depend on the account."""
    with contextlib.suppress(Unavailable):  # the mailer logged it; no one awaits an answer
        await mailer.send(to, template, **context)


async def _link_email(
    accounts: Accounts, db: AsyncSession, user: User, purpose: email_tokens.Purpose
) -> dict[str, Any]:
    """Issue a token and return the email's template name and context for it."""
    assert user.email is not None
    ttl_s = accounts.settings.accounts.email_token_ttl_s
    token = await email_tokens.issue(db, user.id, purpose, ttl_s)
    return {
        "to": user.email,
        "template": purpose,
        "link": email_tokens.page_link(accounts.settings.accounts.public_url, purpose, token),
        "minutes": _link_minutes(accounts),
    }


def _session(accounts: Accounts, response: Response, pair: TokenPair, user: User) -> SessionOut:
    accounts.set_cookies(response, pair)
    return SessionOut(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        user=UserOut.model_validate(user),
    )


def _refused(background: BackgroundTasks) -> JSONResponse:
    # Returned rather than raised, so the failure count is committed with the request and
    # a lock-out email goes out after the answer, like every other failed login's.
    return JSONResponse(
        error_body(Unauthorized.code, WRONG_CREDENTIALS),
        status_code=Unauthorized.status,
        headers={"WWW-Authenticate": "Bearer"},
        background=background,
    )


@router.post(
    "/signup",
    status_code=202,
    dependencies=[Depends(rate_limited("signup"))],
    responses={422: {"description": "Not an email, or a password breaking the rules"}},
)
async def signup(body: SignupIn, accounts: AccountsDep, db: DbDep) -> StatusOut:
    """Create an account and email a verification link; the same answer for an address
    that already has an account (whose owner is emailed instead)."""
    email = body.email.lower()
    check_rules(body.password, email)
    password_hash = await _passwords(accounts).hash_async(body.password)
    site = accounts.settings.accounts.public_url
    user = None
    if await _user_by_email(db, email) is None:
        user = User(email=email, password_hash=password_hash, created_at=now())
        try:
            async with db.begin_nested():
                db.add(user)
                await db.flush()
        except IntegrityError:
            # Another sign-up of the address got in between (PostgreSQL lets both read
            # before either writes): its unique email refused this one, which is then the
            # second sign-up of an address that has an account.
            user = None
    if user is None:
        await accounts.mailer.send(
            email,
            "signup_exists",
            login_link=link(site, LOGIN_PATH),
            reset_link=link(site, RESET_PATH),
        )
    else:
        await accounts.mailer.send(**await _link_email(accounts, db, user, email_tokens.VERIFY))
    return StatusOut(status="check your email")


@router.post("/verify", dependencies=[Depends(rate_limited("verify"))])
async def verify(body: TokenIn, db: DbDep) -> StatusOut:
    """Confirm an email address with the token of its verification link."""
    user = await db.get(User, await email_tokens.consume(db, body.token, email_tokens.VERIFY))
    assert user is not None  # the token's row goes with its user
    user.email_verified = True
    return StatusOut(status="email verified")


@router.post("/verify/resend", status_code=202, dependencies=[Depends(rate_limited("resend"))])
async def resend_verification(
    body: EmailIn, accounts: AccountsDep, db: DbDep, background: BackgroundTasks
) -> StatusOut:
    """Email a new verification link, if the address has an unverified account."""
    user = await _user_by_email(db, body.email)
    if user is not None and not user.email_verified:
        background.add_task(
            _send_quietly,
            accounts.mailer,
            **await _link_email(accounts, db, user, email_tokens.VERIFY),
        )
    return StatusOut(status="check your email")


@router.post(
    "/login",
    response_model=SessionOut,
    dependencies=[Depends(rate_limited("login"))],
    responses={
        401: {"description": "Wrong email or password (or the account is locked)"},
        403: {"description": "Right password, but the email is not verified yet"},
    },
)
async def login(
    body: LoginIn,
    accounts: AccountsDep,
    db: DbDep,
    response: Response,
    background: BackgroundTasks,
) -> SessionOut | JSONResponse:
    """Sign in with email and password; the tokens come in the body and as cookies."""
    settings = accounts.settings.accounts
    passwords = _passwords(accounts)
    # The hash is read and checked (slowly, on purpose) outside the request's transaction,
    # which on SQLite holds the one write lock; the decision is then taken in it, by
    # UPDATEs that both check the lock-out and record the outcome.
    async with accounts.db.reading() as reading:
        user = await _user_by_email(reading, body.email)
    stored = user.password_hash if user is not None else None
    right = await passwords.verify_async(stored, body.password)
    if user is None or stored is None:
        return _refused(background)
    moment = now()
    if not right:
        if await count_failure(db, user.id, settings, moment) and user.email is not None:
            background.add_task(
                _send_quietly,
                accounts.mailer,
                user.email,
                "locked",
                attempts=settings.login_attempts,
                minutes=max(1, settings.lockout_s // 60),
                reset_link=link(settings.public_url, RESET_PATH),
            )
        return _refused(background)
    if not await admit(db, user.id, stored, moment):
        return _refused(background)  # locked (or the password changed meanwhile)
    user = await db.get(User, user.id)  # as of the decision
    assert user is not None  # the row was just updated in this transaction
    check_enabled(user)  # after the password: a guess learns nothing about the account
    if not user.email_verified:  # raising rolls the forgotten failures back
        raise Forbidden(
            "confirm your email first: follow the link we sent you", code="email_not_verified"
        )
    if passwords.needs_rehash(stored):
        user.password_hash = await passwords.hash_async(body.password)
    pair = await accounts.tokens.start(db, user)
    return _session(accounts, response, pair, user)


@router.post(
    "/refresh",
    dependencies=[Depends(rate_limited("refresh"))],
    responses={401: {"description": "The refresh token is unknown, expired or revoked"}},
)
async def refresh(
    request: Request,
    accounts: AccountsDep,
    db: DbDep,
    response: Response,
    body: RefreshIn | None = None,
) -> SessionOut:
    """Exchange the refresh token (cookie, or `refresh_token` in the body) for a new pair."""
    token = (body.refresh_token if body is not None else None) or request.cookies.get(
        REFRESH_COOKIE
    )
    if not token:
        raise Unauthorized("sign in first")
    pair = await accounts.tokens.refresh(db, token)
    user = await db.get(User, pair.user_id)
    if user is None:
        raise Unauthorized("sign in again: the account no longer exists")
    if user.disabled_at is not None:  # raising rolls the new pair back
        raise Unauthorized(DISABLED, code="account_disabled")
    return _session(accounts, response, pair, user)


@router.post("/logout", status_code=204, dependencies=[Depends(rate_limited("logout"))])
async def logout(
    signed_in: CurrentAccess, accounts: AccountsDep, db: DbDep, response: Response
) -> None:
    """End this session: its refresh token and access token stop working."""
    await accounts.tokens.end(db, signed_in[1].session)
    accounts.clear_cookies(response)


@router.post("/logout-all", status_code=204, dependencies=[Depends(rate_limited("logout"))])
async def logout_all(
    user: CurrentUser, accounts: AccountsDep, db: DbDep, response: Response
) -> None:
    """End every session of the account, on every device."""
    await accounts.tokens.end_all(db, user.id)
    accounts.clear_cookies(response)


@router.post("/password/forgot", status_code=202, dependencies=[Depends(rate_limited("forgot"))])
async def forgot_password(
    body: EmailIn, accounts: AccountsDep, db: DbDep, background: BackgroundTasks
) -> StatusOut:
    """Email a password reset link, if the address has an account."""
    user = await _user_by_email(db, body.email)
    if user is not None:
        background.add_task(
            _send_quietly,
            accounts.mailer,
            **await _link_email(accounts, db, user, email_tokens.RESET),
        )
    return StatusOut(status="check your email")


@router.post(
    "/password/reset",
    dependencies=[Depends(rate_limited("reset"))],
    responses={422: {"description": "The link is invalid or has expired, or a weak password"}},
)
async def reset_password(body: ResetIn, accounts: AccountsDep, db: DbDep) -> StatusOut:
    """Set a new password with the token of a reset link; every session ends."""
    user = await db.get(User, await email_tokens.consume(db, body.token, email_tokens.RESET))
    assert user is not None  # the token's row goes with its user
    check_rules(body.password, user.email)  # refused: the error rolls the token's use back
    user.password_hash = await _passwords(accounts).hash_async(body.password)
    user.email_verified = True  # the link reached the address
    record_success(user)
    await accounts.tokens.end_all(db, user.id)
    return StatusOut(status="password changed: sign in again")


@me_router.get("")
async def me(user: CurrentUser) -> MeOut:
    """The signed-in account."""
    return MeOut.model_validate(user)
