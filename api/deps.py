"""FastAPI dependencies of the core API: what a handler may ask for, as `Annotated` types.

The lifespan (`api.main.create_app`) puts each shared object on `app.state`; the
accessors here are the only readers of it, so a route or a service names what it needs
by type and never reaches into the application. The accounts area declares its own in
`api.accounts.deps`, live delivery in `api.live.deps`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path
from starlette.requests import HTTPConnection

from api.accounts.deps import AccountsDep, CurrentUser
from api.accounts.models import PaperAccount
from api.live.deps import BoardDep, HubDep, TradingDep
from api.services.board import Boards
from api.services.paper.commands import Paper
from api.services.symbols import SymbolDirectory
from api.settings import ApiAppSettings
from api.store import Store


def get_settings(connection: HTTPConnection) -> ApiAppSettings:
    """The settings the app was created with."""
    settings: ApiAppSettings = connection.app.state.settings
    return settings


SourceKind = Literal["binance", "sim", "replay"]
"""What feeds the board: live Binance, the simulated market, or a replay of files."""


def get_source(connection: HTTPConnection) -> SourceKind | None:
    """What feeds the board when this process runs the flows too (`tickscan run`); None
    for an API serving a feed it did not start (`tickscan api`)."""
    source: SourceKind | None = getattr(connection.app.state, "source", None)
    return source


def get_store(connection: HTTPConnection) -> Store:
    """The process's ClickHouse store (opened by the app's lifespan)."""
    store: Store = connection.app.state.store
    return store


def app_symbols(app: Any) -> SymbolDirectory | None:
    """The symbol directory of an app (None for one built without it)."""
    directory: SymbolDirectory | None = getattr(app.state, "symbols", None)
    return directory


def get_symbols(connection: HTTPConnection) -> SymbolDirectory | None:
    """The process's symbol directory, refreshed from ClickHouse by the lifespan; None in
    an app built without it."""
    return app_symbols(connection.app)


SettingsDep = Annotated[ApiAppSettings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
SourceDep = Annotated[SourceKind | None, Depends(get_source)]
SymbolsDep = Annotated[SymbolDirectory | None, Depends(get_symbols)]


def get_boards(store: StoreDep, board: BoardDep, hub: HubDep, symbols: SymbolsDep) -> Boards:
    """The boards a scan may read: live, delayed (free tier), or the history in the store."""
    delayed = None if hub is None else hub.delayed
    return Boards(store, board, None if delayed is None else delayed.board, symbols)


BoardsDep = Annotated[Boards, Depends(get_boards)]


def get_paper(
    accounts: AccountsDep,
    trading: TradingDep,
    store: StoreDep,
    board: BoardDep,
    symbols: SymbolsDep,
) -> Paper:
    """Paper trading for a request: the registry, the engine's answers and views, history."""

    def keys() -> set[str]:
        known = set() if board is None else set(board.rows)
        if symbols is not None:
            known.update(info.key for info in symbols.all())
        return known

    return Paper(accounts.db, trading, store, keys)


PaperDep = Annotated[Paper, Depends(get_paper)]


async def owned_paper_account(
    account_id: Annotated[str, Path(max_length=36, description="The paper account's id.")],
    user: CurrentUser,
    paper: PaperDep,
) -> PaperAccount:
    """The caller's paper account named in the path; another user's is a 404 (as a missing
    one), and no sign-in a 401."""
    return await paper.owned(user.id, account_id)


PaperAccountDep = Annotated[PaperAccount, Depends(owned_paper_account)]
