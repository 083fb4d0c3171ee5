"""`/api/v1/me/...`: the signed-in user's watchlists, ignore-list, presets and preferences.

Every route needs a signed-in user and reads or changes only that user's rows: another
user's watchlist or preset is a 404, like one that never existed. Each change is pushed
to the user's live WebSocket sessions (`user_state`) once it is committed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from api.accounts import user_state
from api.accounts.deps import CurrentUser, DbDep
from api.accounts.entitlements import EntitlementsDep
from api.accounts.user_state_models import (
    IgnoreList,
    Preferences,
    PresetIn,
    PresetOut,
    SymbolIn,
    UserStateOut,
    WatchlistIn,
    WatchlistOut,
)
from api.live.deps import UserChangesDep
from api.services.board import MAX_ID

router = APIRouter(prefix="/api/v1/me", tags=["me"])

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="The watchlist's or preset's id.")]

_MISSING: dict[int | str, dict[str, Any]] = {
    404: {"description": "The user has no watchlist or preset with that id."}
}
_LIMITED: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The name is taken (`name_taken`), or the plan's limit is reached "
        "(`limit_reached`)."
    },
    422: {"description": "Invalid body, or more symbols than a list may hold."},
}


@router.get("/state", summary="All of the user's board state, with its version")
async def get_state(user: CurrentUser, db: DbDep) -> UserStateOut:
    """Watchlists, ignore-list, presets and preferences at once (what a new session loads);
    `version` is the one the next `user_state` message goes beyond."""
    return await user_state.get_state(db, user.id)


@router.get("/watchlists", summary="The user's watchlists")
async def list_watchlists(user: CurrentUser, db: DbDep) -> list[WatchlistOut]:
    """The signed-in user's watchlists, oldest first."""
    return await user_state.list_watchlists(db, user.id)


@router.post("/watchlists", status_code=201, summary="Add a watchlist", responses=_LIMITED)
async def create_watchlist(
    changes: UserChangesDep, user: CurrentUser, entitlements: EntitlementsDep, body: WatchlistIn
) -> WatchlistOut:
    """A new watchlist; symbols are `BTCUSDT` or keys `binance:spot:BTCUSDT`, in order."""
    limits = entitlements.limits
    return await changes.apply(
        user.id,
        lambda db: user_state.create_watchlist(
            db,
            user.id,
            body,
            max_watchlists=limits.watchlists,
            max_symbols=limits.watchlist_symbols,
        ),
    )


@router.get("/watchlists/{watchlist_id}", summary="One watchlist", responses=_MISSING)
async def get_watchlist(watchlist_id: RowId, user: CurrentUser, db: DbDep) -> WatchlistOut:
    """One of the user's watchlists."""
    return await user_state.get_watchlist(db, user.id, watchlist_id)


@router.put(
    "/watchlists/{watchlist_id}",
    summary="Rename a watchlist, replace its symbols",
    responses=_MISSING | _LIMITED,
)
async def update_watchlist(
    changes: UserChangesDep,
    watchlist_id: RowId,
    user: CurrentUser,
    entitlements: EntitlementsDep,
    body: WatchlistIn,
) -> WatchlistOut:
    """The watchlist with the name and symbols given."""
    max_symbols = entitlements.limits.watchlist_symbols
    return await changes.apply(
        user.id,
        lambda db: user_state.update_watchlist(
            db, user.id, watchlist_id, body, max_symbols=max_symbols
        ),
    )


@router.delete(
    "/watchlists/{watchlist_id}",
    status_code=204,
    summary="Delete a watchlist",
    responses=_MISSING,
)
async def delete_watchlist(
    changes: UserChangesDep, watchlist_id: RowId, user: CurrentUser
) -> Response:
    """Delete one of the user's watchlists."""
    await changes.apply(user.id, lambda db: user_state.delete_watchlist(db, user.id, watchlist_id))
    return Response(status_code=204)


@router.post(
    "/watchlists/{watchlist_id}/symbols",
    summary="Add a symbol to a watchlist",
    responses=_MISSING | _LIMITED,
)
async def add_symbol(
    changes: UserChangesDep,
    watchlist_id: RowId,
    user: CurrentUser,
    entitlements: EntitlementsDep,
    body: SymbolIn,
) -> WatchlistOut:
    """The watchlist with the symbol at its end (where it was, if it was in it already)."""
    max_symbols = entitlements.limits.watchlist_symbols
    return await changes.apply(
        user.id,
        lambda db: user_state.add_symbol(
            db, user.id, watchlist_id, body.symbol, max_symbols=max_symbols
        ),
    )


@router.delete(
    "/watchlists/{watchlist_id}/symbols",
    summary="Take a symbol out of a watchlist",
    responses=_MISSING,
)
async def remove_symbol(
    changes: UserChangesDep,
    watchlist_id: RowId,
    user: CurrentUser,
    symbol: Annotated[str, Query(max_length=120, examples=["binance:spot:BTCUSDT"])],
) -> WatchlistOut:
    """The watchlist without the symbol (unchanged if it was not in it)."""
    return await changes.apply(
        user.id, lambda db: user_state.remove_symbol(db, user.id, watchlist_id, symbol)
    )


@router.get("/ignored", summary="The user's ignore-list")
async def get_ignored(user: CurrentUser, db: DbDep) -> IgnoreList:
    """Symbols kept off the board of a filter that asks for `ignored=mine`."""
    return await user_state.get_ignored(db, user.id)


@router.put("/ignored", summary="Replace the ignore-list", responses=_LIMITED)
async def set_ignored(changes: UserChangesDep, user: CurrentUser, body: IgnoreList) -> IgnoreList:
    """The ignore-list as given (normalised: `BTCUSDT` or `exchange:market:SYMBOL`)."""
    return await changes.apply(user.id, lambda db: user_state.set_ignored(db, user.id, body))


@router.get("/presets", summary="The user's filter presets")
async def list_presets(user: CurrentUser, db: DbDep) -> list[PresetOut]:
    """The signed-in user's saved scanner filters, oldest first."""
    return await user_state.list_presets(db, user.id)


@router.post("/presets", status_code=201, summary="Save a filter preset", responses=_LIMITED)
async def create_preset(
    changes: UserChangesDep, user: CurrentUser, entitlements: EntitlementsDep, body: PresetIn
) -> PresetOut:
    """A new preset; `filter` is the `ScanFilter` of `GET /api/v1/scan`."""
    max_presets = entitlements.limits.presets
    return await changes.apply(
        user.id,
        lambda db: user_state.create_preset(db, user.id, body, max_presets=max_presets),
    )


@router.get("/presets/{preset_id}", summary="One filter preset", responses=_MISSING)
async def get_preset(preset_id: RowId, user: CurrentUser, db: DbDep) -> PresetOut:
    """One of the user's presets."""
    return await user_state.get_preset(db, user.id, preset_id)


@router.put(
    "/presets/{preset_id}",
    summary="Rename a preset, replace its filter",
    responses=_MISSING | _LIMITED,
)
async def update_preset(
    changes: UserChangesDep, preset_id: RowId, user: CurrentUser, body: PresetIn
) -> PresetOut:
    """The preset with the name and filter given."""
    return await changes.apply(
        user.id, lambda db: user_state.update_preset(db, user.id, preset_id, body)
    )


@router.delete(
    "/presets/{preset_id}", status_code=204, summary="Delete a preset", responses=_MISSING
)
async def delete_preset(changes: UserChangesDep, preset_id: RowId, user: CurrentUser) -> Response:
    """Delete one of the user's presets."""
    await changes.apply(user.id, lambda db: user_state.delete_preset(db, user.id, preset_id))
    return Response(status_code=204)


@router.get("/preferences", summary="The user's board preferences")
async def get_preferences(user: CurrentUser, db: DbDep) -> Preferences:
    """Columns, sort, chart interval, theme ... (the defaults until first saved)."""
    return await user_state.get_preferences(db, user.id)


@router.put("/preferences", summary="Replace the board preferences")
async def set_preferences(
    changes: UserChangesDep, user: CurrentUser, body: Preferences
) -> Preferences:
    """The preferences as given; a field the board does not know is a 422."""
    return await changes.apply(user.id, lambda db: user_state.set_preferences(db, user.id, body))
