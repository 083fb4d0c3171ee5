"""A user's board state: watchlists, the ignore-list, filter presets and preferences.

Every change bumps the user's `UserState.version` and returns a `Change` for the caller
to publish to the user's live sessions once the transaction has committed. Every query
names its user: another user's watchlist or preset is as unknown as a missing one.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.db import upsert_insert
from api.accounts.models import FilterPreset, UserState, Watchlist
from api.accounts.tokens import now
from api.accounts.user_state_models import (
    Change,
    IgnoreList,
    Preferences,
    PresetIn,
    PresetOut,
    SymbolIn,
    UserStateOut,
    WatchlistIn,
    WatchlistOut,
    parse,
)
from api.errors import Conflict, InvalidRequest, NotFound
from api.services.filters import MAX_SYMBOLS, ScanFilter, explain

logger = logging.getLogger(__name__)

MAX_WATCHLISTS = 50
"""Watchlists a user may keep (the default; a plan may allow another number)."""
MAX_WATCHLIST_SYMBOLS = 500
"""Symbols one watchlist may hold."""
MAX_PRESETS = 100
"""Filter presets a user may keep."""
MAX_IGNORED = MAX_SYMBOLS
"""Symbols the ignore-list may hold: as many as a filter's `ignore`, which it feeds."""


# -- the state row: version, ignore-list, preferences -----------------------------------


async def _bump(db: AsyncSession, user_id: int) -> UserState:
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
    _check_symbols(ignored.symbols, max_symbols, "the ignore-list")
    state = await _bump(db, user_id)
    state.ignored = list(ignored.symbols)
    return Change("ignored", state.version, ignored)


def _preferences(stored: dict[str, Any]) -> Preferences:
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
    return _preferences(state.preferences) if state is not None else Preferences()


async def set_preferences(
    db: AsyncSession, user_id: int, preferences: Preferences
) -> Change[Preferences]:
    """Replace the user's board preferences."""
    state = await _bump(db, user_id)
    state.preferences = preferences.model_dump(mode="json")
    return Change("preferences", state.version, preferences)


# -- watchlists and presets: rows of their own, always looked up with their owner -------


async def _own(
    db: AsyncSession, model: type[Watchlist] | type[FilterPreset], user_id: int, row_id: int
) -> Any:
    """A row of the user's, by id; another user's row is as unknown as a missing one."""
    found = await db.scalar(select(model).where(model.id == row_id, model.user_id == user_id))
    if found is None:
        what = "watchlist" if model is Watchlist else "preset"
        raise NotFound(f"no {what} {row_id}", code=f"unknown_{what}")
    return found


async def _check_room(
    db: AsyncSession, model: type[Watchlist] | type[FilterPreset], user_id: int, limit: int
) -> None:
    count = await db.scalar(select(func.count()).where(model.user_id == user_id))
    if (count or 0) >= limit:
        what = "watchlists" if model is Watchlist else "filter presets"
        raise Conflict(
            f"you have {count} {what}, as many as you may keep; delete one first",
            code="limit_reached",
        )


async def _check_name(
    db: AsyncSession,
    model: type[Watchlist] | type[FilterPreset],
    user_id: int,
    name: str,
    row_id: int | None = None,
) -> None:
    taken = await db.scalar(
        select(model.id).where(model.user_id == user_id, model.name == name, model.id != row_id)
    )
    if taken is not None:
        raise Conflict(f"you already have one named {name!r}", code="name_taken")


def _check_symbols(symbols: list[str], limit: int, where: str) -> None:
    if len(symbols) > limit:
        raise InvalidRequest(
            f"{where} holds at most {limit} symbols, not {len(symbols)}", code="too_many_symbols"
        )


def _watchlist_out(row: Watchlist) -> WatchlistOut:
    return WatchlistOut(id=row.id, name=row.name, symbols=row.symbols, updated_at=row.updated_at)


def _preset_out(row: FilterPreset) -> PresetOut:
    return PresetOut(
        id=row.id,
        name=row.name,
        filter=ScanFilter.model_validate(row.filter),
        updated_at=row.updated_at,
    )


async def _all(
    db: AsyncSession, model: type[Watchlist] | type[FilterPreset], user_id: int
) -> list[Any]:
    """The user's rows of a kind, oldest first."""
    return list(await db.scalars(select(model).where(model.user_id == user_id).order_by(model.id)))


async def _delete(
    db: AsyncSession, model: type[Watchlist] | type[FilterPreset], user_id: int, row_id: int
) -> Change[None]:
    state = await _bump(db, user_id)
    await db.delete(await _own(db, model, user_id, row_id))
    return Change("watchlist" if model is Watchlist else "preset", state.version, None, row_id)


async def list_watchlists(db: AsyncSession, user_id: int) -> list[WatchlistOut]:
    """The user's watchlists, oldest first."""
    return [_watchlist_out(row) for row in await _all(db, Watchlist, user_id)]


async def get_watchlist(db: AsyncSession, user_id: int, watchlist_id: int) -> WatchlistOut:
    """One of the user's watchlists.

    Raises:
        NotFound: If the user has no watchlist with that id.
    """
    return _watchlist_out(await _own(db, Watchlist, user_id, watchlist_id))


async def create_watchlist(
    db: AsyncSession,
    user_id: int,
    watchlist: WatchlistIn,
    *,
    max_watchlists: int = MAX_WATCHLISTS,
    max_symbols: int = MAX_WATCHLIST_SYMBOLS,
) -> Change[WatchlistOut]:
    """Add a watchlist.

    Raises:
        InvalidRequest: With more than `max_symbols` symbols.
        Conflict: When the user keeps `max_watchlists` already (`limit_reached`) or has
            one of that name (`name_taken`).
    """
    _check_symbols(watchlist.symbols, max_symbols, "a watchlist")
    state = await _bump(db, user_id)
    await _check_room(db, Watchlist, user_id, max_watchlists)
    await _check_name(db, Watchlist, user_id, watchlist.name)
    row = Watchlist(
        user_id=user_id,
        name=watchlist.name,
        symbols=list(watchlist.symbols),
        updated_at=state.updated_at,
    )
    db.add(row)
    await db.flush()
    return Change("watchlist", state.version, _watchlist_out(row))


async def update_watchlist(
    db: AsyncSession,
    user_id: int,
    watchlist_id: int,
    watchlist: WatchlistIn,
    *,
    max_symbols: int = MAX_WATCHLIST_SYMBOLS,
) -> Change[WatchlistOut]:
    """Rename a watchlist and replace its symbols.

    Raises:
        NotFound: If the user has no watchlist with that id.
        InvalidRequest: With more than `max_symbols` symbols.
        Conflict: When another of the user's watchlists has the name (`name_taken`).
    """
    _check_symbols(watchlist.symbols, max_symbols, "a watchlist")
    state = await _bump(db, user_id)
    row: Watchlist = await _own(db, Watchlist, user_id, watchlist_id)
    await _check_name(db, Watchlist, user_id, watchlist.name, watchlist_id)
    row.name, row.symbols, row.updated_at = watchlist.name, watchlist.symbols, state.updated_at
    return Change("watchlist", state.version, _watchlist_out(row))


async def _edit_symbols(
    db: AsyncSession, user_id: int, watchlist_id: int, symbol: str, max_symbols: int | None
) -> Change[WatchlistOut]:
    """Add a symbol (with the watchlist's `max_symbols`), or remove it (None)."""
    ref = parse(SymbolIn, {"symbol": symbol}, "symbol").symbol
    state = await _bump(db, user_id)
    row: Watchlist = await _own(db, Watchlist, user_id, watchlist_id)
    if max_symbols is None:
        symbols = [s for s in row.symbols if s != ref]
    else:
        symbols = row.symbols if ref in row.symbols else [*row.symbols, ref]
        _check_symbols(symbols, max_symbols, f"watchlist {row.name!r}")
    row.symbols, row.updated_at = symbols, state.updated_at
    return Change("watchlist", state.version, _watchlist_out(row))


async def add_symbol(
    db: AsyncSession,
    user_id: int,
    watchlist_id: int,
    symbol: str,
    *,
    max_symbols: int = MAX_WATCHLIST_SYMBOLS,
) -> Change[WatchlistOut]:
    """Append a symbol to a watchlist (one already in it stays where it is).

    Raises:
        NotFound: If the user has no watchlist with that id.
        InvalidRequest: For something that is not a symbol, or a full watchlist.
    """
    return await _edit_symbols(db, user_id, watchlist_id, symbol, max_symbols)


async def remove_symbol(
    db: AsyncSession, user_id: int, watchlist_id: int, symbol: str
) -> Change[WatchlistOut]:
    """Take a symbol out of a watchlist (one not in it changes nothing).

    Raises:
        NotFound: If the user has no watchlist with that id.
        InvalidRequest: For something that is not a symbol.
    """
    return await _edit_symbols(db, user_id, watchlist_id, symbol, None)


async def delete_watchlist(db: AsyncSession, user_id: int, watchlist_id: int) -> Change[None]:
    """Delete a watchlist.

    Raises:
        NotFound: If the user has no watchlist with that id.
    """
    return await _delete(db, Watchlist, user_id, watchlist_id)


async def list_presets(db: AsyncSession, user_id: int) -> list[PresetOut]:
    """The user's filter presets, oldest first."""
    return [_preset_out(row) for row in await _all(db, FilterPreset, user_id)]


async def get_preset(db: AsyncSession, user_id: int, preset_id: int) -> PresetOut:
    """One of the user's filter presets.

    Raises:
        NotFound: If the user has no preset with that id.
    """
    return _preset_out(await _own(db, FilterPreset, user_id, preset_id))


async def create_preset(
    db: AsyncSession, user_id: int, preset: PresetIn, *, max_presets: int = MAX_PRESETS
) -> Change[PresetOut]:
    """Save a filter preset.

    Raises:
        Conflict: When the user keeps `max_presets` already (`limit_reached`) or has one
            of that name (`name_taken`).
    """
    state = await _bump(db, user_id)
    await _check_room(db, FilterPreset, user_id, max_presets)
    await _check_name(db, FilterPreset, user_id, preset.name)
    row = FilterPreset(
        user_id=user_id,
        name=preset.name,
        filter=preset.filter.model_dump(mode="json"),
        updated_at=state.updated_at,
    )
    db.add(row)
    await db.flush()
    return Change("preset", state.version, _preset_out(row))


async def update_preset(
    db: AsyncSession, user_id: int, preset_id: int, preset: PresetIn
) -> Change[PresetOut]:
    """Rename a preset and replace its filter.

    Raises:
        NotFound: If the user has no preset with that id.
        Conflict: When another of the user's presets has the name (`name_taken`).
    """
    state = await _bump(db, user_id)
    row: FilterPreset = await _own(db, FilterPreset, user_id, preset_id)
    await _check_name(db, FilterPreset, user_id, preset.name, preset_id)
    row.name, row.filter = preset.name, preset.filter.model_dump(mode="json")
    row.updated_at = state.updated_at
    return Change("preset", state.version, _preset_out(row))


async def delete_preset(db: AsyncSession, user_id: int, preset_id: int) -> Change[None]:
    """Delete a filter preset.

    Raises:
        NotFound: If the user has no preset with that id.
    """
    return await _delete(db, FilterPreset, user_id, preset_id)


async def get_state(db: AsyncSession, user_id: int) -> UserStateOut:
    """All of the user's board state at once, with its version (what a new session loads)."""
    state = await db.get(UserState, user_id)
    return UserStateOut(
        version=state.version if state is not None else 0,
        watchlists=await list_watchlists(db, user_id),
        ignored=state.ignored if state is not None else [],
        presets=await list_presets(db, user_id),
        preferences=_preferences(state.preferences) if state is not None else Preferences(),
    )


async def apply_lists(
    db: AsyncSession, user_id: int, scan: ScanFilter, *, watchlist: int | None, ignored: bool
) -> ScanFilter:
    """A scanner filter with the user's watchlist as its `watch` and ignore-list in its
    `ignore` (added to any the filter names).

    Args:
        db: The accounts database.
        user_id: The signed-in user.
        scan: The filter as asked for.
        watchlist: One of the user's watchlists, whose symbols the board is kept to.
        ignored: Whether the user's ignore-list is left off the board.

    Raises:
        NotFound: If the user has no watchlist with that id.
        InvalidRequest: For a filter that names `watch` as well as a watchlist, an empty
            watchlist (which would otherwise mean the whole board), or lists too long
            for a filter.
    """
    data = scan.model_dump()
    if watchlist is not None:
        if scan.watch:
            raise InvalidRequest("use either watch or a watchlist, not both")
        row: Watchlist = await _own(db, Watchlist, user_id, watchlist)
        if not row.symbols:
            raise InvalidRequest(
                f"watchlist {row.name!r} has no symbols yet; add some first", code="empty_watchlist"
            )
        data["watch"] = row.symbols
    if ignored:
        data["ignore"] = [*scan.ignore, *(await get_ignored(db, user_id)).symbols]
    try:
        return ScanFilter.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(explain(exc)) from None
