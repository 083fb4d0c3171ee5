"""Brakes on guessing: per-address rate limits of the auth endpoints, and account lock-out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import ColumnElement, case, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.deps import get_accounts
from api.accounts.models import User
from api.errors import TooManyRequests, answers
from api.settings import AccountsSettings


def rate_limited(endpoint: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency counting each request to an endpoint per client address.

    The rate is `accounts.auth_rate_limit`; over it the request is answered 429 with
    `Retry-After` before the handler runs. The address is the socket's peer, or the one a
    proxy of `api.trusted_proxies` forwarded (the server believes no one else's
    `X-Forwarded-For`, which a client could change on every request).

    Args:
        endpoint: The name requests are counted under (each endpoint has its own budget).
    """

    @answers(TooManyRequests)
    async def check(request: Request) -> None:
        accounts = get_accounts(request)
        address = request.client.host if request.client is not None else "unknown"
        accounts.limiter.hit(accounts.settings.accounts.auth_rate_limit, endpoint, address)

    return check


def _unlocked(moment: datetime) -> ColumnElement[bool]:
    return or_(User.locked_until.is_(None), User.locked_until <= moment)


async def count_failure(
    db: AsyncSession, user_id: int, settings: AccountsSettings, moment: datetime
) -> bool:
    """Count a wrong password; lock the account at `login_attempts` failures in a row.

    One UPDATE reads and writes the count, so wrong passwords sent at once are each
    counted (read-then-write in Python lost most of them), and a locked account's
    failures are not counted at all: the lock-out runs its time whatever is sent.

    Returns:
        True if this failure locked the account (the owner is then told by email).
    """
    failures = User.failed_logins + 1
    locks = failures >= settings.login_attempts
    counted = await db.execute(
        update(User)
        .where(User.id == user_id, _unlocked(moment))
        .values(
            failed_logins=case((locks, 0), else_=failures),
            locked_until=case(
                (locks, moment + timedelta(seconds=settings.lockout_s)), else_=User.locked_until
            ),
        )
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)
    )
    # Nothing counted: locked already. A count back to 0: this failure locked it.
    return counted.scalar_one_or_none() == 0


async def admit(db: AsyncSession, user_id: int, password_hash: str, moment: datetime) -> bool:
    """After a correct password, decide and record in one UPDATE: forget earlier failures
    unless the account is locked (or its password changed since it was checked).

    Returns:
        False if the login must be refused: the account is locked.
    """
    admitted = await db.execute(
        update(User)
        .where(User.id == user_id, User.password_hash == password_hash, _unlocked(moment))
        .values(failed_logins=0, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return bool(admitted.rowcount)  # type: ignore[attr-defined]


def record_success(user: User) -> None:
    """Forget earlier failures and lift a lock-out (a password reset, an operator's unlock)."""
    user.failed_logins = 0
    user.locked_until = None
