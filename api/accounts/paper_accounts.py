"""The paper accounts registry: whose each paper trading account is, and how many a user has.

The paper engine knows an account by its id only; this table is the authority on who
owns it. Every lookup goes through the owner, so another user's account is as unknown as
a missing one (404).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.models import PaperAccount
from api.errors import Forbidden, NotFound


async def owned(db: AsyncSession, user_id: int, account_id: str) -> PaperAccount:
    """One of the user's paper accounts, by id.

    Raises:
        NotFound: `unknown_account`, for a missing account or anyone else's.
    """
    found = await db.scalar(
        select(PaperAccount).where(PaperAccount.id == account_id, PaperAccount.user_id == user_id)
    )
    if found is None:
        raise NotFound(f"no paper account {account_id[:40]!r}", code="unknown_account")
    return found


async def of_user(db: AsyncSession, user_id: int) -> list[PaperAccount]:
    """The user's paper accounts, oldest first."""
    query = (
        select(PaperAccount)
        .where(PaperAccount.user_id == user_id)
        .order_by(PaperAccount.created, PaperAccount.id)
    )
    return list(await db.scalars(query))


async def add(
    db: AsyncSession, user_id: int, *, name: str, market: str, exchange: str, limit: int
) -> PaperAccount:
    """Register a new paper account of the user, within their plan's limit.

    Args:
        db: A transaction (the count and the insert are one step in it).
        user_id: The owner.
        name: What the user calls it.
        market: ``spot`` or ``usdm``.
        exchange: The exchange it trades against.
        limit: How many paper accounts the user's plan allows.

    Returns:
        The new row, with a fresh id.

    Raises:
        Forbidden: `limit_reached`, when the user has `limit` accounts already.
    """
    count = await db.scalar(select(func.count()).where(PaperAccount.user_id == user_id)) or 0
    if count >= limit:
        raise Forbidden(
            f"your plan allows {limit} paper account{'s' if limit != 1 else ''} and you have "
            f"{count}: reset one instead, or upgrade",
            code="limit_reached",
        )
    account = PaperAccount(
        id=str(uuid.uuid4()),
        user_id=user_id,
        name=name,
        market=market,
        exchange=exchange,
        created=datetime.now(UTC),
    )
    db.add(account)
    await db.flush()
    return account


async def remove(db: AsyncSession, account_id: str) -> None:
    """Forget an account the engine never opened (it refused it, or never got it)."""
    await db.execute(delete(PaperAccount).where(PaperAccount.id == account_id))
