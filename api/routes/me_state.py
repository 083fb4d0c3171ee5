"""`/api/v1/me/...`: the signed-in user's watchlists, ignore-list, presets and preferences.

Every route needs a signed-in user and reads or changes only that user's rows: another
user's watchlist or preset is a 404, like one that never existed. Each change is pushed
to the user's live WebSocket sessions (`user_state`) once it is committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts import user_state
from api.accounts.deps import CurrentUser, DbDep, authenticate, get_accounts
from api.accounts.entitlements import EntitlementsDep
from api.accounts.models import User
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
)
from api.errors import InvalidRequest
from api.services.filter_query import parse_query
from api.services.filters import ScanFilter, shown

router = APIRouter(prefix="/api/v1/me", tags=["me"])

MAX_ID = 2**31 - 1
"""Largest row id (an id beyond it is refused before it reaches the database)."""

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


async def _change(
    request: Request, user: User, step: Callable[[AsyncSession], Awaitable[Change[Any]]]
) -> Any:
    """Apply a change in a transaction of its own, then push it to the user's sessions:
    only after the commit, so a session told of a change finds it when it reads."""
    async with get_accounts(request).db.session() as db:
        change = await step(db)
    hub = getattr(request.app.state, "hub", None)
    if hub is not None:
        hub.users.publish(user.id, change)
    return change.value


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
    request: Request, user: CurrentUser, entitlements: EntitlementsDep, body: WatchlistIn
) -> WatchlistOut:
    """A new watchlist; symbols are `BTCUSDT` or keys `binance:spot:BTCUSDT`, in order."""
    limits = entitlements.limits
    return await _change(
        request,
        user,
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
    request: Request,
    watchlist_id: RowId,
    user: CurrentUser,
    entitlements: EntitlementsDep,
    body: WatchlistIn,
) -> WatchlistOut:
    """The watchlist with the name and symbols given."""
    max_symbols = entitlements.limits.watchlist_symbols
    return await _change(
        request,
        user,
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
async def delete_watchlist(request: Request, watchlist_id: RowId, user: CurrentUser) -> Response:
    """Delete one of the user's watchlists."""
    await _change(request, user, lambda db: user_state.delete_watchlist(db, user.id, watchlist_id))
    return Response(status_code=204)


@router.post(
    "/watchlists/{watchlist_id}/symbols",
    summary="Add a symbol to a watchlist",
    responses=_MISSING | _LIMITED,
)
async def add_symbol(
    request: Request,
    watchlist_id: RowId,
    user: CurrentUser,
    entitlements: EntitlementsDep,
    body: SymbolIn,
) -> WatchlistOut:
    """The watchlist with the symbol at its end (where it was, if it was in it already)."""
    max_symbols = entitlements.limits.watchlist_symbols
    return await _change(
        request,
        user,
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
    request: Request,
    watchlist_id: RowId,
    user: CurrentUser,
    symbol: Annotated[str, Query(max_length=120, examples=["binance:spot:BTCUSDT"])],
) -> WatchlistOut:
    """The watchlist without the symbol (unchanged if it was not in it)."""
    return await _change(
        request, user, lambda db: user_state.remove_symbol(db, user.id, watchlist_id, symbol)
    )


@router.get("/ignored", summary="The user's ignore-list")
async def get_ignored(user: CurrentUser, db: DbDep) -> IgnoreList:
    """Symbols kept off the board of a filter that asks for `ignored=mine`."""
    return await user_state.get_ignored(db, user.id)


@router.put("/ignored", summary="Replace the ignore-list", responses=_LIMITED)
async def set_ignored(request: Request, user: CurrentUser, body: IgnoreList) -> IgnoreList:
    """The ignore-list as given (normalised: `BTCUSDT` or `exchange:market:SYMBOL`)."""
    return await _change(request, user, lambda db: user_state.set_ignored(db, user.id, body))


@router.get("/presets", summary="The user's filter presets")
async def list_presets(user: CurrentUser, db: DbDep) -> list[PresetOut]:
    """The signed-in user's saved scanner filters, oldest first."""
    return await user_state.list_presets(db, user.id)


@router.post("/presets", status_code=201, summary="Save a filter preset", responses=_LIMITED)
async def create_preset(
    request: Request, user: CurrentUser, entitlements: EntitlementsDep, body: PresetIn
) -> PresetOut:
    """A new preset; `filter` is the `ScanFilter` of `GET /api/v1/scan`."""
    max_presets = entitlements.limits.presets
    return await _change(
        request,
        user,
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
    request: Request, preset_id: RowId, user: CurrentUser, body: PresetIn
) -> PresetOut:
    """The preset with the name and filter given."""
    return await _change(
        request, user, lambda db: user_state.update_preset(db, user.id, preset_id, body)
    )


@router.delete(
    "/presets/{preset_id}", status_code=204, summary="Delete a preset", responses=_MISSING
)
async def delete_preset(request: Request, preset_id: RowId, user: CurrentUser) -> Response:
    """Delete one of the user's presets."""
    await _change(request, user, lambda db: user_state.delete_preset(db, user.id, preset_id))
    return Response(status_code=204)


@router.get("/preferences", summary="The user's board preferences")
async def get_preferences(user: CurrentUser, db: DbDep) -> Preferences:
    """Columns, sort, chart interval, theme ... (the defaults until first saved)."""
    return await user_state.get_preferences(db, user.id)


@router.put("/preferences", summary="Replace the board preferences")
async def set_preferences(request: Request, user: CurrentUser, body: Preferences) -> Preferences:
    """The preferences as given; a field the board does not know is a 422."""
    return await _change(request, user, lambda db: user_state.set_preferences(db, user.id, body))


LIST_PARAMS: tuple[str, ...] = ("watchlist", "ignored")
"""Query parameters that put the signed-in user's lists in a scanner filter."""

LIST_PARAMS_DOC = """
- `watchlist`: the id of one of the signed-in user's watchlists: only its symbols
  (instead of `watch`; a 401 without a signed-in user)
- `ignored=mine`: never the symbols of the signed-in user's ignore-list (besides any in
  `ignore`; a 401 without a signed-in user)"""
"""How the list parameters are written, for the routes' descriptions."""


def _one(request: Request, name: str) -> str | None:
    values = [value.strip() for value in request.query_params.getlist(name) if value.strip()]
    if len(values) > 1:
        raise InvalidRequest(f"parameter {name} is given more than once")
    return values[0] if values else None


async def board_filter(request: Request, *, exclude: Collection[str] = ()) -> ScanFilter:
    """The scanner filter of a request's query string, with the signed-in user's
    watchlist (`watchlist=<id>`) and ignore-list (`ignored=mine`) resolved into it.

    Args:
        request: The request (`/scan`, `/stream/ranks`).
        exclude: Parameters of the route itself, not of the filter (`at`).

    Raises:
        InvalidRequest: For a bad filter or list parameter.
        Unauthorized: For a list parameter without a signed-in user.
        NotFound: For a watchlist id the user has not.
    """
    scan = parse_query(request.query_params, exclude=(*exclude, *LIST_PARAMS))
    watchlist, ignored = _one(request, "watchlist"), _one(request, "ignored")
    if watchlist is None and ignored is None:
        return scan
    if watchlist is not None and not (
        watchlist.isascii() and watchlist.isdigit() and 0 < int(watchlist[:12]) <= MAX_ID
    ):
        raise InvalidRequest(f"watchlist: {shown(watchlist)} is not a watchlist id")
    if ignored is not None and ignored != "mine":
        raise InvalidRequest(f"ignored: {shown(ignored)} is not 'mine'")
    accounts = get_accounts(request)
    user, _ = await authenticate(request, accounts)
    async with accounts.db.session() as db:
        return await user_state.apply_lists(
            db,
            user.id,
            scan,
            watchlist=None if watchlist is None else int(watchlist),
            ignored=ignored is not None,
        )
