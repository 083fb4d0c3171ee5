"""Single-use, time-limited link tokens sent by email: address verification, password reset."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.email import link
from api.accounts.models import EmailToken
from api.accounts.tokens import digest, now, store_secret
from api.errors import InvalidRequest

Purpose = Literal["verify", "reset"]
VERIFY: Purpose = "verify"
RESET: Purpose = "reset"

VERIFY_PATH = "/verify-email"
RESET_PATH = "/reset-password"
"""Pages of the web front end the emailed links open (they POST the token to the API)."""

INVALID_LINK = "this link is invalid or has expired"
"""The one answer to any unusable token, so a guess learns nothing about why it failed."""


async def issue(db: AsyncSession, user_id: int, purpose: Purpose, ttl_s: int) -> str:
    """A new token for a user; only its digest is stored.

    Args:
        db: The request's session.
        user_id: Whose token it is.
        purpose: What it may be used for.
        ttl_s: Seconds it stays valid (`accounts.email_token_ttl_s`).

    Returns:
        The token, to put in the emailed link.
    """
    return await store_secret(db, EmailToken, ttl_s, user_id=user_id, purpose=purpose)


def page_link(public_url: str, purpose: Purpose, token: str) -> str:
    """The absolute link that uses a token: the page of the web front end for `purpose`."""
    return link(public_url, VERIFY_PATH if purpose == VERIFY else RESET_PATH, token=token)


async def consume(db: AsyncSession, token: str, purpose: Purpose) -> int:
    """Use a token up, and every other unused token of the same purpose of its user (after
    a reset, an older reset link must not work either).

    The check and the marking are one UPDATE, so two requests racing with the same token
    cannot both succeed.

    Returns:
        The id of the token's user.

    Raises:
        InvalidRequest: `INVALID_LINK` if the token is unknown, expired, already used or
            for another purpose.
    """
    moment = now()
    user_id = await db.scalar(
        update(EmailToken)
        .where(
            EmailToken.token_hash == digest(token),
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
            EmailToken.expires_at > moment,
        )
        .values(used_at=moment)
        .returning(EmailToken.user_id)
    )
    if user_id is None:
        raise InvalidRequest(INVALID_LINK, code="invalid_link")
    await db.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user_id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=moment)
    )
    return user_id
