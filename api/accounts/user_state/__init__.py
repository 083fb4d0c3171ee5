"""A user's board state: watchlists, the ignore-list, filter presets and preferences.

Every change bumps the user's `UserState.version` and returns a `Change` for the caller
to publish to the user's live sessions once the transaction has committed. Every query
names its user: another user's watchlist or preset is as unknown as a missing one.
"""

from api.accounts.user_state.board import apply_lists, get_state
from api.accounts.user_state.presets import (
    MAX_PRESETS,
    create_preset,
    delete_preset,
    get_preset,
    list_presets,
    update_preset,
)
from api.accounts.user_state.state import (
    MAX_IGNORED,
    get_ignored,
    get_preferences,
    set_ignored,
    set_preferences,
    state_version,
)
from api.accounts.user_state.watchlists import (
    MAX_WATCHLIST_SYMBOLS,
    MAX_WATCHLISTS,
    add_symbol,
    create_watchlist,
    delete_watchlist,
    get_watchlist,
    list_watchlists,
    remove_symbol,
    update_watchlist,
)

__all__ = [
    "MAX_IGNORED",
    "MAX_PRESETS",
    "MAX_WATCHLISTS",
    "MAX_WATCHLIST_SYMBOLS",
    "add_symbol",
    "apply_lists",
    "create_preset",
    "create_watchlist",
    "delete_preset",
    "delete_watchlist",
    "get_ignored",
    "get_preferences",
    "get_preset",
    "get_state",
    "get_watchlist",
    "list_presets",
    "list_watchlists",
    "remove_symbol",
    "set_ignored",
    "set_preferences",
    "state_version",
    "update_preset",
    "update_watchlist",
]
