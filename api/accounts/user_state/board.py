"""What the board reads of a user's state: all of it at once, or a filter with their lists."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.models import UserState, Watchlist
from api.accounts.user_state.owned import owned
from api.accounts.user_state.presets import list_presets
from api.accounts.user_state.state import get_ignored, preferences_of
from api.accounts.user_state.watchlists import list_watchlists
from api.accounts.user_state_models import Preferences, UserStateOut
from api.errors import InvalidRequest
from api.services.filters import ScanFilter, explain


async def get_state(db: AsyncSession, user_id: int) -> UserStateOut:
    """All of the user's board state at once, with its version (what a new session loads)."""
    state = await db.get(UserState, user_id)
    return UserStateOut(
        version=state.version if state is not None else 0,
        watchlists=await list_watchlists(db, user_id),
        ignored=state.ignored if state is not None else [],
        presets=await list_presets(db, user_id),
        preferences=preferences_of(state.preferences) if state is not None else Preferences(),
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
        row: Watchlist = await owned(db, Watchlist, user_id, watchlist)
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
