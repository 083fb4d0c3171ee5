"""Watchlists and presets are rows of their own, always looked up with their owner."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.models import FilterPreset, Watchlist
from api.accounts.user_state.state import bump
from api.accounts.user_state_models import Change
from api.errors import Conflict, NotFound

Owned = type[Watchlist] | type[FilterPreset]
"""The kinds of row a user owns by id."""


async def owned(db: AsyncSession, model: Owned, user_id: int, row_id: int) -> Any:
    """A row of the user's, by id; another user's row is as unknown as a missing one."""
    found = await db.scalar(select(model).where(model.id == row_id, model.user_id == user_id))
    if found is None:
        what = "watchlist" if model is Watchlist else "preset"
        raise NotFound(f"no {what} {row_id}", code=f"unknown_{what}")
    return found


async def check_room(db: AsyncSession, model: Owned, user_id: int, limit: int) -> None:
    """Refuse a new row when the user keeps `limit` of the kind already (`limit_reached`)."""
    count = await db.scalar(select(func.count()).where(model.user_id == user_id))
    if (count or 0) >= limit:
        what = "watchlists" if model is Watchlist else "filter presets"
        raise Conflict(
            f"you have {count} {what}, as many as you may keep; delete one first",
            code="limit_reached",
        )


async def check_name(
    db: AsyncSession,
    model: Owned,
    user_id: int,
    name: str,
    row_id: int | None = None,
) -> None:
    """Refuse a name another of the user's rows of the kind has (`name_taken`)."""
    taken = await db.scalar(
        select(model.id).where(model.user_id == user_id, model.name == name, model.id != row_id)
    )
    if taken is not None:
        raise Conflict(f"you already have one named {name!r}", code="name_taken")


async def rows(db: AsyncSession, model: Owned, user_id: int) -> list[Any]:
    """The user's rows of a kind, oldest first."""
    return list(await db.scalars(select(model).where(model.user_id == user_id).order_by(model.id)))


async def delete(db: AsyncSession, model: Owned, user_id: int, row_id: int) -> Change[None]:
    """Delete one of the user's rows, by id; `NotFound` for anyone else's."""
    state = await bump(db, user_id)
    await db.delete(await owned(db, model, user_id, row_id))
    return Change("watchlist" if model is Watchlist else "preset", state.version, None, row_id)
