"""Live sync of a user's state over real sockets: a change made through REST, or on one
WebSocket, reaches the user's other WebSockets at once, and nobody else's.

The accounts part of the API (the `/api/v1/me` routes and `/api/v1/ws` on a hub without
a feed) runs under uvicorn in a thread, on a loopback port of its own choosing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from api.accounts.db import AccountsDb
from api.accounts.models import User
from api.accounts.tokens import TokenService, load_secret
from api.errors import install_error_handlers
from api.live.board import Board
from api.live.hub import Hub
from api.main import open_accounts
from api.routes import me_state, ws
from api.settings import AccountsSettings
from tests.integration.threaded_server import ThreadedServer
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0
"""How long a socket may take to answer before the test gives up (a hang, not a timing)."""


def accounts_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_accounts(settings) as accounts:
            app.state.accounts = accounts
            app.state.hub = hub = Hub(settings.api, Board())
            try:
                yield
            finally:
                await hub.aclose()

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(me_state.router)
    app.include_router(ws.router)
    return app


class Server(ThreadedServer):
    """The app served in a thread, with its base URLs, for a `with` block."""

    def __enter__(self) -> Server:
        port = self.start()
        self.http = f"http://127.0.0.1:{port}/api/v1"
        self.ws = f"ws://127.0.0.1:{port}/api/v1/ws"
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        assert not self.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        accounts=AccountsSettings(
            secret_key=SecretStr("t" * 48), argon2_time_cost=1, argon2_memory_kib=8
        ),
    )


@pytest.fixture
def tokens(settings: Settings) -> dict[str, str]:
    """Access tokens of two users, Ada and Bob, made in the app's database."""

    async def sign_up() -> dict[str, str]:
        db = AccountsDb(settings.accounts_url())
        service = TokenService(load_secret(settings), 900, 3600)
        try:
            await db.migrate()
            async with db.session() as session:
                users = {
                    name: User(email=f"{name}@example.com", created_at=datetime.now(UTC))
                    for name in ("ada", "bob")
                }
                session.add_all(users.values())
                await session.flush()
                return {
                    name: (await service.start(session, user)).access_token
                    for name, user in users.items()
                }
        finally:
            await db.aclose()

    return asyncio.run(sign_up())


@pytest.fixture
def server(settings: Settings, tokens: dict[str, str]) -> Iterator[Server]:
    with Server(accounts_app(settings)) as running:
        yield running


def receive(socket: Connection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(socket.recv(timeout=DEADLINE_S))
    return message


def nothing_more(socket: Connection) -> None:
    """Whatever was sent to the socket before this arrives before the pong it asks for."""
    socket.send(json.dumps({"op": "ping"}))
    assert receive(socket) == {"type": "pong"}


def test_a_watchlist_change_reaches_the_users_other_sockets_only(
    server: Server, tokens: dict[str, str]
) -> None:
    ada = {"Authorization": f"Bearer {tokens['ada']}"}
    with (
        connect(server.ws, additional_headers=ada) as laptop,
        connect(server.ws) as phone,
        connect(server.ws, additional_headers={"Authorization": f"Bearer {tokens['bob']}"}) as bob,
        httpx.Client(base_url=server.http, headers=ada) as http,
    ):
        signed_in = receive(laptop)
        assert (signed_in["type"], signed_in["version"]) == ("authenticated", 0)
        phone.send(json.dumps({"op": "auth", "token": tokens["ada"]}))
        assert receive(phone) == signed_in
        assert receive(bob)["type"] == "authenticated"

        made = http.post("/me/watchlists", json={"name": "majors", "symbols": ["btcusdt"]})
        assert made.status_code == 201
        pushed = {
            "type": "user_state",
            "version": 1,
            "change": {"kind": "watchlist", "watchlist": made.json()},
        }
        assert receive(laptop) == pushed
        assert receive(phone) == pushed

        wid = made.json()["id"]
        phone.send(
            json.dumps({"op": "watchlist.add", "watchlist": wid, "symbol": "ETHUSDT", "ref": "p1"})
        )
        ack = receive(phone)
        assert (ack["type"], ack["ref"], ack["version"]) == ("ack", "p1", 2)
        assert ack["change"]["watchlist"]["symbols"] == ["BTCUSDT", "ETHUSDT"]
        assert receive(laptop) == {"type": "user_state", "version": 2, "change": ack["change"]}
        nothing_more(phone)  # its own change came as the ack only

        assert http.delete(f"/me/watchlists/{wid}").status_code == 204
        gone = {"type": "user_state", "version": 3, "change": {"kind": "watchlist", "deleted": wid}}
        assert receive(laptop) == gone
        assert receive(phone) == gone

        nothing_more(bob)
        assert http.get("/me/state").json()["version"] == 3
