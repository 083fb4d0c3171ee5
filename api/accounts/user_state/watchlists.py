"""A user's watchlists: named lists of symbols the board can be kept to."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.models import Watchlist
from api.accounts.user_state.owned import check_name, check_room, delete, owned, rows
from api.accounts.user_state.state import bump, check_symbols
from api.accounts.user_state_models import Change, SymbolIn, WatchlistIn, WatchlistOut, parse

MAX_WATCHLISTS = 50
"""Watchlists a user may keep (the default; a plan may allow another number)."""
MAX_WATCHLIST_SYMBOLS = 500
"""Symbols one watchlist may hold."""


def _watchlist_out(row: Watchlist) -> WatchlistOut:
    return WatchlistOut(id=row.id, name=row.name, symbols=row.symbols, updated_at=row.updated_at)


async def list_watchlists(db: AsyncSession, user_id: int) -> list[WatchlistOut]:
    """The user's watchlists, oldest first."""
    return [_watchlist_out(row) for row in await rows(db, Watchlist, user_id)]


async def get_watchlist(db: AsyncSession, user_id: int, watchlist_id: int) -> WatchlistOut:
    """One of the user's watchlists.

    Raises:
        NotFound: If the user has no watchlist with that id.
    """
    return _watchlist_out(await owned(db, Watchlist, user_id, watchlist_id))


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
    check_symbols(watchlist.symbols, max_symbols, "a watchlist")
    state = await bump(db, user_id)
    await check_room(db, Watchlist, user_id, max_watchlists)
    await check_name(db, Watchlist, user_id, watchlist.name)
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
    check_symbols(watchlist.symbols, max_symbols, "a watchlist")
    state = await bump(db, user_id)
    row: Watchlist = await owned(db, Watchlist, user_id, watchlist_id)
    await check_name(db, Watchlist, user_id, watchlist.name, watchlist_id)
    row.name, row.symbols, row.updated_at = watchlist.name, watchlist.symbols, state.updated_at
    return Change("watchlist", state.version, _watchlist_out(row))


async def _edit_symbols(
    db: AsyncSession, user_id: int, watchlist_id: int, symbol: str, max_symbols: int | None
) -> Change[WatchlistOut]:
    """Add a symbol (with the watchlist's `max_symbols`), or remove it (None)."""
    ref = parse(SymbolIn, {"symbol": symbol}, "symbol").symbol
    state = await bump(db, user_id)
    row: Watchlist = await owned(db, Watchlist, user_id, watchlist_id)
    if max_symbols is None:
        symbols = [s for s in row.symbols if s != ref]
    else:
        symbols = row.symbols if ref in row.symbols else [*row.symbols, ref]
        check_symbols(symbols, max_symbols, f"watchlist {row.name!r}")
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
    return await delete(db, Watchlist, user_id, watchlist_id)
