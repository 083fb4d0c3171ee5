"""uvicorn for the API: at shutdown, live clients hear it from the app before uvicorn
closes their connections."""

from __future__ import annotations

import socket

import uvicorn

from api.live.deps import app_hub
from api.live.hub import Hub

GOING_AWAY_S = 3.0
"""How long a shutdown waits at most for live clients to take their last message."""


class Server(uvicorn.Server):
    """uvicorn, which first tells the app's live clients that it is going away.

    uvicorn's own shutdown closes every open WebSocket with 1012 (service restart) and
    lets SSE streams run into its graceful timeout, then cancels them mid-stream, before
    the app's lifespan hears of it. This server first stops accepting connections, then
    has the hub close every live client (`Hub.going_away`: WebSockets close with 1001,
    SSE streams end with their `error` `shutdown` event), then shuts down as uvicorn does.

    Args:
        config: uvicorn's configuration; its app is the one `api.main.create_app` built.
        going_away_s: How long to wait at most for the live clients to be told.
    """

    def __init__(self, config: uvicorn.Config, going_away_s: float = GOING_AWAY_S) -> None:
        super().__init__(config)
        self.going_away_s = going_away_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Tell the live clients, then shut down as uvicorn does."""
        for server in self.servers:
            server.close()  # no new clients while the live ones are told
        hub = app_hub(self.config.app)
        if isinstance(hub, Hub):
            await hub.going_away(self.going_away_s)
        await super().shutdown(sockets)
