"""FastAPI dependencies of live delivery: the hub, its board, the feed and their metrics.

The lifespan (`api.main.create_app`) opens them and puts them on `app.state`; these
accessors are the only readers of it. Each is None in an app built without live delivery
(a process serving history only, a partial app of a test), and a handler says what that
means for it. WebSocket routes ask for them like any route; code outside a request (the
server's shutdown) uses the `app_*` accessors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from api.accounts.deps import Accounts, AccountsDep
from api.accounts.user_state_models import Change
from api.live.board import Board
from api.live.feed import LiveFeed
from api.live.hub import Hub
from api.live.trading import TradingStreams


def app_hub(app: Any) -> Hub | None:
    """The hub of an app (None for an app, or an ASGI callable, without one)."""
    hub: Hub | None = getattr(getattr(app, "state", None), "hub", None)
    return hub


def get_hub(connection: HTTPConnection) -> Hub | None:
    """The process's live hub, None without live delivery."""
    return app_hub(connection.app)


def get_board(connection: HTTPConnection) -> Board | None:
    """The live board (the hub's), None without live delivery."""
    board: Board | None = getattr(connection.app.state, "board", None)
    return board


def get_feed(connection: HTTPConnection) -> LiveFeed | None:
    """The live feed that fills the board, None when this process has none."""
    feed: LiveFeed | None = getattr(connection.app.state, "feed", None)
    return feed


def get_metrics(connection: HTTPConnection) -> CollectorRegistry | None:
    """The registry of the live metrics, None without live delivery."""
    registry: CollectorRegistry | None = getattr(connection.app.state, "metrics", None)
    return registry


def get_trading(connection: HTTPConnection) -> TradingStreams | None:
    """Paper trading's commands, answers and account views (the hub's), None without
    live delivery."""
    hub = app_hub(connection.app)
    return None if hub is None else hub.trading


HubDep = Annotated[Hub | None, Depends(get_hub)]
TradingDep = Annotated[TradingStreams | None, Depends(get_trading)]
BoardDep = Annotated[Board | None, Depends(get_board)]
FeedDep = Annotated[LiveFeed | None, Depends(get_feed)]
MetricsDep = Annotated[CollectorRegistry | None, Depends(get_metrics)]


class UserChanges:
    """Changes to a user's board state, each in a transaction of its own and then pushed
    to the user's live sessions.

    Args:
        accounts: The accounts services (their database).
        hub: The live hub whose sessions are told, None without live delivery.
    """

    def __init__(self, accounts: Accounts, hub: Hub | None) -> None:
        self.accounts = accounts
        self.hub = hub

    async def apply(
        self, user_id: int, step: Callable[[AsyncSession], Awaitable[Change[Any]]]
    ) -> Any:
        """Run `step`, commit, then publish the change: only after the commit, so a
        session told of a change finds it when it reads.

        Returns:
            The changed value.
        """
        async with self.accounts.db.session() as db:
            change = await step(db)
        if self.hub is not None:
            self.hub.users.publish(user_id, change)
        return change.value


def get_user_changes(accounts: AccountsDep, hub: HubDep) -> UserChanges:
    """The way a request changes the signed-in user's board state."""
    return UserChanges(accounts, hub)


UserChangesDep = Annotated[UserChanges, Depends(get_user_changes)]
