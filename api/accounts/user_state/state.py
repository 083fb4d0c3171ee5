"""The user's state row: its version, which every change bumps, the ignore-list, preferences."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.db import upsert_insert
from api.accounts.models import UserState
from api.accounts.tokens import now
from api.accounts.user_state_models import Change, IgnoreList, Preferences
from api.errors import InvalidRequest
from api.services.filters import MAX_SYMBOLS

logger = logging.getLogger(__name__)

MAX_IGNORED = MAX_SYMBOLS
"""Symbols the ignore-list may hold: as many as a filter's `ignore`, which it feeds."""


async def bump(db: AsyncSession, user_id: int) -> UserState:
    """Raise the user's state version, creating their state row the first time.

    Every change starts here: the update locks the row until the transaction ends, so
    concurrent changes of one user apply one after the other, each on what the last left.
    """
    moment = now()
    await db.execute(
        upsert_insert(db, UserState)
        .values(user_id=user_id, ignored=[], preferences={}, version=0, updated_at=moment)
        .on_conflict_do_nothing()
    )
    state = await db.scalar(
        update(UserState)
        .where(UserState.user_id == user_id)
        .values(version=UserState.version + 1, updated_at=moment)
        .returning(UserState),
        execution_options={"populate_existing": True},
    )
    assert state is not None  # the row was just made sure of
    return state


async def state_version(db: AsyncSession, user_id: int) -> int:
    """The user's state version (0 before their first change)."""
    version = await db.scalar(select(UserState.version).where(UserState.user_id == user_id))
    return version or 0


async def get_ignored(db: AsyncSession, user_id: int) -> IgnoreList:
    """The user's ignore-list."""
    state = await db.get(UserState, user_id)
    return IgnoreList(symbols=state.ignored if state is not None else [])


async def set_ignored(
    db: AsyncSession, user_id: int, ignored: IgnoreList, *, max_symbols: int = MAX_IGNORED
) -> Change[IgnoreList]:
    """Replace the user's ignore-list.

    Raises:
        InvalidRequest: With more than `max_symbols` symbols.
    """
    check_symbols(ignored.symbols, max_symbols, "the ignore-list")
    state = await bump(db, user_id)
    state.ignored = list(ignored.symbols)
    return Change("ignored", state.version, ignored)


def preferences_of(stored: dict[str, Any]) -> Preferences:
    """The preferences a state row stores; the defaults if they no longer validate."""
    try:
        return Preferences.model_validate(stored)
    except ValidationError:
        # Saved by an older release whose fields have changed: start the view afresh
        # rather than fail every request of the user.
        logger.warning("stored preferences no longer valid; using the defaults")
        return Preferences()


async def get_preferences(db: AsyncSession, user_id: int) -> Preferences:
    """The user's board preferences (the defaults until they save some)."""
    state = await db.get(UserState, user_id)
    return preferences_of(state.preferences) if state is not None else Preferences()


async def set_preferences(
    db: AsyncSession, user_id: int, preferences: Preferences
) -> Change[Preferences]:
    """Replace the user's board preferences."""
    state = await bump(db, user_id)
    state.preferences = preferences.model_dump(mode="json")
    return Change("preferences", state.version, preferences)


def check_symbols(symbols: list[str], limit: int, where: str) -> None:
    """Refuse a list of more than `limit` symbols (`too_many_symbols`), naming `where`."""
    if len(symbols) > limit:
        raise InvalidRequest(
            f"{where} holds at most {limit} symbols, not {len(symbols)}", code="too_many_symbols"
        )
