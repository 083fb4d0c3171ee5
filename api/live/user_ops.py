"""The WebSocket messages that change a signed-in user's state, as `/api/v1/me` does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts import user_state
from api.accounts.entitlements import Limits
from api.accounts.user_state_models import (
    Change,
    IgnoreList,
    Preferences,
    PresetIn,
    WatchlistIn,
    parse,
)


class UserOp(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A change of the signed-in user's state; `ref` is echoed in its `ack` or `error`."""

    op: str
    ref: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class _WatchlistCreate(UserOp):
    name: str
    symbols: list[str] = msgspec.field(default_factory=list)


class _WatchlistUpdate(UserOp):
    watchlist: int
    name: str
    symbols: list[str]


class _WatchlistDelete(UserOp):
    watchlist: int


class _WatchlistSymbol(UserOp):
    watchlist: int
    symbol: str


class _IgnoredSet(UserOp):
    symbols: list[str]


class _PresetCreate(UserOp):
    name: str
    filter: dict[str, Any]


class _PresetUpdate(UserOp):
    preset: int
    name: str
    filter: dict[str, Any]


class _PresetDelete(UserOp):
    preset: int


class _PreferencesSet(UserOp):
    preferences: dict[str, Any]


USER_OPS: dict[str, type[UserOp]] = {
    "watchlist.create": _WatchlistCreate,
    "watchlist.update": _WatchlistUpdate,
    "watchlist.delete": _WatchlistDelete,
    "watchlist.add": _WatchlistSymbol,
    "watchlist.remove": _WatchlistSymbol,
    "ignored.set": _IgnoredSet,
    "preset.create": _PresetCreate,
    "preset.update": _PresetUpdate,
    "preset.delete": _PresetDelete,
    "preferences.set": _PreferencesSet,
}
"""The changes of a user's state a signed-in connection may send, as the REST routes
under `/api/v1/me` make them."""


Step = Callable[[AsyncSession, int], Awaitable[Change[Any]]]


def user_step(op: UserOp, limits: Limits) -> Step:
    """The service call that applies a user op, its fields validated as the REST body of
    the change would be.

    Raises:
        InvalidRequest: For fields that do not validate.
    """
    if isinstance(op, _WatchlistCreate):
        new = parse(WatchlistIn, {"name": op.name, "symbols": op.symbols}, "watchlist")
        return lambda db, uid: user_state.create_watchlist(
            db,
            uid,
            new,
            max_watchlists=limits.watchlists,
            max_symbols=limits.watchlist_symbols,
        )
    if isinstance(op, _WatchlistUpdate):
        edit = parse(WatchlistIn, {"name": op.name, "symbols": op.symbols}, "watchlist")
        return lambda db, uid: user_state.update_watchlist(
            db, uid, op.watchlist, edit, max_symbols=limits.watchlist_symbols
        )
    if isinstance(op, _WatchlistDelete):
        return lambda db, uid: user_state.delete_watchlist(db, uid, op.watchlist)
    if isinstance(op, _WatchlistSymbol) and op.op == "watchlist.add":
        return lambda db, uid: user_state.add_symbol(
            db, uid, op.watchlist, op.symbol, max_symbols=limits.watchlist_symbols
        )
    if isinstance(op, _WatchlistSymbol):
        return lambda db, uid: user_state.remove_symbol(db, uid, op.watchlist, op.symbol)
    if isinstance(op, _IgnoredSet):
        ignored = parse(IgnoreList, {"symbols": op.symbols}, "ignore-list")
        return lambda db, uid: user_state.set_ignored(db, uid, ignored)
    if isinstance(op, _PresetCreate | _PresetUpdate):
        preset = parse(PresetIn, {"name": op.name, "filter": op.filter}, "preset")
        if isinstance(op, _PresetUpdate):
            return lambda db, uid: user_state.update_preset(db, uid, op.preset, preset)
        return lambda db, uid: user_state.create_preset(db, uid, preset, max_presets=limits.presets)
    if isinstance(op, _PresetDelete):
        return lambda db, uid: user_state.delete_preset(db, uid, op.preset)
    assert isinstance(op, _PreferencesSet)
    preferences = parse(Preferences, op.preferences, "preferences")
    return lambda db, uid: user_state.set_preferences(db, uid, preferences)
