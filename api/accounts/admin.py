"""What an operator does to accounts from the command line (`tickscan users`): list,
verify, disable and enable, set a password or issue a reset link.

A self-hosted site without a mail service still has its owner: these act on the accounts
store directly (SQLite or PostgreSQL, the API's own), so nobody is locked out for want
of an email.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts import email_tokens
from api.accounts.models import User
from api.accounts.passwords import Passwords, check_rules
from api.accounts.ratelimit import record_success
from api.accounts.tokens import end_all_sessions, now
from api.errors import ApiPackageError, InvalidRequest
from api.settings import ApiAppSettings


class AdminError(ApiPackageError):
    """An account operation that cannot be done (no such user, a refused password)."""


@dataclass(frozen=True, slots=True)
class UserRow:
    """One account as `tickscan users list` shows it."""

    id: int
    email: str | None
    wallet_address: str | None
    email_verified: bool
    created_at: datetime
    disabled_at: datetime | None
    locked_until: datetime | None

    @classmethod
    def of(cls, user: User) -> UserRow:
        """The row of an account."""
        return cls(
            user.id,
            user.email,
            user.wallet_address,
            user.email_verified,
            user.created_at,
            user.disabled_at,
            user.locked_until,
        )


async def list_users(db: AsyncSession) -> list[UserRow]:
    """Every account, oldest first."""
    users: Sequence[User] = (await db.scalars(select(User).order_by(User.id))).all()
    return [UserRow.of(user) for user in users]


async def find_user(db: AsyncSession, who: str) -> User:
    """The account an operator names: by email, by id, or by wallet address.

    Raises:
        AdminError: If no account matches.
    """
    wanted = who.strip()
    conditions = [User.email == wanted.lower()]
    if wanted.isdigit():
        conditions.append(User.id == int(wanted))
    if wanted.lower().startswith("0x"):
        conditions.append(User.wallet_address.ilike(wanted))
    user: User | None = await db.scalar(select(User).where(or_(*conditions)).limit(1))
    if user is None:
        raise AdminError(f"no account {wanted!r} (give its email, id or wallet address)")
    return user


async def verify(db: AsyncSession, who: str) -> UserRow:
    """Mark an account's email as confirmed, as its emailed link would."""
    user = await find_user(db, who)
    user.email_verified = True
    return UserRow.of(user)


async def disable(db: AsyncSession, who: str) -> UserRow:
    """Disable an account: its sessions end at once and it cannot sign in again."""
    user = await find_user(db, who)
    if user.disabled_at is None:
        user.disabled_at = now()
    await end_all_sessions(db, user.id)
    return UserRow.of(user)


async def enable(db: AsyncSession, who: str) -> UserRow:
    """Let a disabled account sign in again."""
    user = await find_user(db, who)
    user.disabled_at = None
    return UserRow.of(user)


async def set_password(
    db: AsyncSession, settings: ApiAppSettings, who: str, password: str
) -> UserRow:
    """Give an account a new password; its sessions end and a lock-out is lifted.

    Raises:
        AdminError: No such account, or a password the site's rules refuse.
    """
    user = await find_user(db, who)
    try:
        check_rules(password, user.email)
    except InvalidRequest as exc:
        raise AdminError(exc.message) from None
    user.password_hash = await Passwords(settings.accounts).hash_async(password)
    record_success(user)
    await end_all_sessions(db, user.id)
    return UserRow.of(user)


async def reset_link(db: AsyncSession, settings: ApiAppSettings, who: str) -> str:
    """A password reset link for an account, as the "forgot password" email carries.

    Raises:
        AdminError: No such account.
    """
    user = await find_user(db, who)
    ttl_s = settings.accounts.email_token_ttl_s
    token = await email_tokens.issue(db, user.id, email_tokens.RESET, ttl_s)
    return email_tokens.page_link(settings.accounts.public_url, email_tokens.RESET, token)
