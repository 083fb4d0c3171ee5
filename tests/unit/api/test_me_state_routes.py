"""`/api/v1/me/...` routes, the user's lists in scanner filters, state over the WebSocket,
and no account route (`/api/v1/me`, billing, paper trading) showing or changing another
user's data."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts import user_state
from api.accounts.db import AccountsDb
from api.accounts.deps import Accounts
from api.accounts.models import BillingCustomer, User
from api.accounts.tokens import TokenService
from api.errors import install_error_handlers
from api.live.board import Board
from api.live.hub import Hub
from api.live.protocol import Session
from api.routes import me_state, scan, stream, ws
from api.services.symbols import SymbolDirectory
from api.settings import AccountsSettings, ApiSettings, BillingSettings, PlanSettings
from schemas.ranks import RankRow
from tests.unit.api.paper_engine import FakeEngine, FakeStore
from tests.unit.api.sessions import run
from tickscan.settings import Settings

SECRET = b"k" * 48
T0 = 1_723_161_300_000
ROWS = [
    RankRow("binance", "spot", "BTCUSDT", T0, 60_000.0, change_pct_5m=1.0),
    RankRow("binance", "spot", "ETHUSDT", T0, 3_000.0, change_pct_5m=2.0),
    RankRow("binance", "usdm", "SOLUSDT", T0, 150.0, change_pct_5m=3.0),
    RankRow("binance", "spot", "USDCUSDT", T0, 1.0, change_pct_5m=0.0),
]


@dataclass
class Site:
    """A test app on the accounts database, two users and their bearer headers."""

    http: TestClient
    db: AccountsDb
    ada: int
    bob: int
    as_ada: dict[str, str]
    as_bob: dict[str, str]
    tokens: dict[int, str]


def add_users(db: AccountsDb, tokens: TokenService) -> tuple[int, int, dict[int, str]]:
    async def add(session: AsyncSession) -> tuple[int, int, dict[int, str]]:
        ada = User(email="ada@example.com", created_at=datetime.now(UTC))
        bob = User(email="bob@example.com", created_at=datetime.now(UTC))
        session.add_all([ada, bob])
        await session.flush()
        issued = {u.id: (await tokens.start(session, u)).access_token for u in (ada, bob)}
        return ada.id, bob.id, issued

    return run(db, add)


def settings_for(tmp_path: Path, db: AccountsDb, **accounts: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        accounts=AccountsSettings(
            database_url=db.url,
            secret_key=SecretStr(SECRET.decode()),
            argon2_time_cost=1,
            argon2_memory_kib=8,
            **accounts,
        ),
    )


def serve(app: FastAPI, settings: Settings, db: AccountsDb) -> Site:
    tokens = TokenService(SECRET, 900, 3600)
    app.state.settings = settings
    app.state.accounts = Accounts(settings, db, tokens)
    app.state.hub = hub = Hub(ApiSettings(), Board())
    hub.board.apply(ROWS)
    app.state.board, app.state.symbols = hub.board, {}
    app.state.store = SimpleNamespace(database="unused")  # the live board never queries it
    ada, bob, issued = add_users(db, tokens)
    return Site(
        TestClient(app),
        db,
        ada,
        bob,
        {"Authorization": f"Bearer {issued[ada]}"},
        {"Authorization": f"Bearer {issued[bob]}"},
        issued,
    )


@pytest.fixture
def site(accounts_db: AccountsDb, tmp_path: Path) -> Iterator[Site]:
    app = FastAPI()
    install_error_handlers(app)
    for router in (me_state.router, scan.router, stream.router, ws.router):
        app.include_router(router)
    made = serve(app, settings_for(tmp_path, accounts_db), accounts_db)
    with made.http:  # one event loop for every request and socket, as in a server
        yield made


def test_watchlist_crud(site: Site) -> None:
    http, me = site.http, site.as_ada
    made = http.post(
        "/api/v1/me/watchlists", json={"name": "majors", "symbols": ["btcusdt"]}, headers=me
    )
    assert made.status_code == 201
    wid = made.json()["id"]
    assert made.json()["symbols"] == ["BTCUSDT"]
    added = http.post(
        f"/api/v1/me/watchlists/{wid}/symbols", json={"symbol": "binance:spot:ethusdt"}, headers=me
    )
    assert added.json()["symbols"] == ["BTCUSDT", "binance:spot:ETHUSDT"]
    removed = http.delete(
        f"/api/v1/me/watchlists/{wid}/symbols", params={"symbol": "BTCUSDT"}, headers=me
    )
    assert removed.json()["symbols"] == ["binance:spot:ETHUSDT"]
    renamed = http.put(
        f"/api/v1/me/watchlists/{wid}", json={"name": "alts", "symbols": ["SOLUSDT"]}, headers=me
    )
    assert (renamed.json()["name"], renamed.json()["symbols"]) == ("alts", ["SOLUSDT"])
    assert http.get(f"/api/v1/me/watchlists/{wid}", headers=me).json() == renamed.json()
    assert http.get("/api/v1/me/watchlists", headers=me).json() == [renamed.json()]
    assert http.delete(f"/api/v1/me/watchlists/{wid}", headers=me).status_code == 204
    gone = http.get(f"/api/v1/me/watchlists/{wid}", headers=me)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "unknown_watchlist"


def test_bad_bodies_and_clashes_are_clear_errors(site: Site) -> None:
    http, me = site.http, site.as_ada
    http.post("/api/v1/me/watchlists", json={"name": "majors"}, headers=me)
    taken = http.post("/api/v1/me/watchlists", json={"name": "majors"}, headers=me)
    assert taken.status_code == 409
    assert taken.json()["error"] == {
        "code": "name_taken",
        "message": "you already have one named 'majors'",
    }
    bad = http.post(
        "/api/v1/me/watchlists", json={"name": "x", "symbols": ["BTC;DROP"]}, headers=me
    )
    assert bad.status_code == 422 and "is not a symbol" in bad.json()["error"]["message"]
    too_many = {"name": "big", "symbols": [f"S{i}USDT" for i in range(501)]}
    long = http.post("/api/v1/me/watchlists", json=too_many, headers=me)
    assert long.status_code == 422 and long.json()["error"]["code"] == "too_many_symbols"
    extra = http.put("/api/v1/me/preferences", json={"theme": "dark", "layout": "grid"}, headers=me)
    assert extra.status_code == 422 and "layout" in extra.json()["error"]["message"]
    bad_filter = {"filter": {"sort": "pric"}}
    refused = http.put("/api/v1/me/preferences", json=bad_filter, headers=me)
    assert refused.status_code == 422 and "cannot sort by" in refused.json()["error"]["message"]
    preset = http.post(
        "/api/v1/me/presets", json={"name": "p", "filter": {"sort": "pric"}}, headers=me
    )
    assert preset.status_code == 422 and "cannot sort by" in preset.json()["error"]["message"]
    huge = http.get("/api/v1/me/watchlists/99999999999", headers=me)
    assert huge.status_code == 422


def test_ignore_list_presets_preferences_and_state(site: Site) -> None:
    http, me = site.http, site.as_ada
    assert http.get("/api/v1/me/ignored", headers=me).json() == {"symbols": []}
    put = http.put("/api/v1/me/ignored", json={"symbols": ["usdcusdt"]}, headers=me)
    assert put.json() == {"symbols": ["USDCUSDT"]}
    assert http.get("/api/v1/me/ignored", headers=me).json() == {"symbols": ["USDCUSDT"]}

    preset = {"name": "movers", "filter": {"quotes": ["usdt"], "limit": 5}}
    made = http.post("/api/v1/me/presets", json=preset, headers=me)
    assert made.status_code == 201
    pid = made.json()["id"]
    assert made.json()["filter"]["quotes"] == ["USDT"]
    edit = {"name": "movers", "filter": {"limit": 9}}
    assert (
        http.put(f"/api/v1/me/presets/{pid}", json=edit, headers=me).json()["filter"]["limit"] == 9
    )
    assert [p["id"] for p in http.get("/api/v1/me/presets", headers=me).json()] == [pid]
    assert http.get(f"/api/v1/me/presets/{pid}", headers=me).json()["filter"]["limit"] == 9

    defaults = http.get("/api/v1/me/preferences", headers=me).json()
    assert defaults["theme"] == "system"
    prefs = {**defaults, "theme": "dark", "columns": ["symbol", "rsi_14"], "sort": "rsi_14"}
    assert http.put("/api/v1/me/preferences", json=prefs, headers=me).json() == prefs
    assert http.get("/api/v1/me/preferences", headers=me).json() == prefs

    with_filter = {**prefs, "filter": {"quotes": ["usdt"], "sort": "rsi_14", "limit": 50}}
    saved = http.put("/api/v1/me/preferences", json=with_filter, headers=me).json()
    assert (saved["filter"]["quotes"], saved["filter"]["limit"]) == (["USDT"], 50)
    assert http.get("/api/v1/me/preferences", headers=me).json() == saved
    prefs = saved

    state = http.get("/api/v1/me/state", headers=me).json()
    assert state["version"] == 5
    assert (state["ignored"], state["preferences"]) == (["USDCUSDT"], prefs)
    assert [p["name"] for p in state["presets"]] == ["movers"]
    assert http.delete(f"/api/v1/me/presets/{pid}", headers=me).status_code == 204
    assert http.get("/api/v1/me/presets", headers=me).json() == []


def test_the_scanner_takes_the_users_lists(site: Site) -> None:
    http, me = site.http, site.as_ada
    wid = http.post(
        "/api/v1/me/watchlists", json={"name": "w", "symbols": ["SOLUSDT", "USDCUSDT"]}, headers=me
    ).json()["id"]
    http.put("/api/v1/me/ignored", json={"symbols": ["USDCUSDT"]}, headers=me)

    def symbols(query: str, headers: dict[str, str]) -> list[str]:
        response = http.get(f"/api/v1/scan?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [row["symbol"] for row in response.json()["rows"]]

    assert symbols(f"watchlist={wid}&sort=symbol", me) == ["SOLUSDT", "USDCUSDT"]
    assert symbols(f"watchlist={wid}&ignored=mine", me) == ["SOLUSDT"]
    assert symbols("ignored=mine&sort=symbol", me) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert symbols(f'watchlist={wid}&filter={{"markets":["spot"]}}', me) == ["USDCUSDT"]

    for query in (f"watchlist={wid}", "ignored=mine"):
        anonymous = http.get(f"/api/v1/scan?{query}")
        assert anonymous.status_code == 401
        assert http.get(f"/api/v1/stream/ranks?{query}").status_code == 401
    assert http.get(f"/api/v1/scan?watchlist={wid}", headers=site.as_bob).status_code == 404
    assert http.get(f"/api/v1/stream/ranks?watchlist={wid}", headers=site.as_bob).status_code == 404
    for query in ("watchlist=abc", "ignored=theirs", f"watchlist={wid}&watchlist={wid}"):
        assert http.get(f"/api/v1/scan?{query}", headers=me).status_code == 422


# -- live sessions: `api.live.protocol.Session`s of the app's hub, as `/api/v1/ws` makes --
# (TestClient's sockets cancel the handler at close, which makes their tests flaky; real
# sockets are in tests/integration/test_user_sync.py)


def connect(site: Site, token: str | None = None) -> Session:
    """A live session in the app's hub, signed in with `token` as a handshake would be."""
    state = site.http.app.state  # type: ignore[attr-defined]
    session = Session(state.hub, state.hub.connect("ws"), state.accounts)
    asyncio.run(session.start(token))
    return session


def frames(session: Session, *messages: dict[str, Any]) -> list[dict[str, Any]]:
    """Send messages; every frame queued for the session since the last call."""

    async def send() -> None:
        for message in messages:
            await session.handle(json.dumps(message))

    asyncio.run(send())
    if not (session.client.replies or session.client.queue):
        return []
    taken = asyncio.run(session.client.next())  # the replies, then the data
    return [json.loads(m.ws(None if sub is None else sub.id)) for sub, m in taken]


def test_rest_changes_reach_every_session_of_the_user_only(site: Site) -> None:
    http = site.http
    mine = [connect(site, site.tokens[site.ada]) for _ in range(2)]
    theirs = connect(site, site.tokens[site.bob])
    anonymous = connect(site)
    for session in mine:
        assert frames(session) == [{"type": "authenticated", "user": site.ada, "version": 0}]
    assert frames(theirs)[0]["user"] == site.bob
    assert frames(anonymous) == []

    body = {"name": "w", "symbols": ["BTCUSDT"]}
    made = http.post("/api/v1/me/watchlists", json=body, headers=site.as_ada).json()
    http.delete(f"/api/v1/me/watchlists/{made['id']}", headers=site.as_ada)
    for session in mine:
        assert frames(session) == [
            {
                "type": "user_state",
                "version": 1,
                "change": {"kind": "watchlist", "watchlist": made},
            },
            {
                "type": "user_state",
                "version": 2,
                "change": {"kind": "watchlist", "deleted": made["id"]},
            },
        ]
    assert frames(theirs) == frames(anonymous) == []


def test_session_changes_are_acked_and_reach_the_other_sessions(site: Site) -> None:
    one, two = connect(site), connect(site, site.tokens[site.ada])
    frames(two)
    refused = frames(one, {"op": "watchlist.create", "name": "w", "ref": "r0"})
    assert [(f["type"], f["code"], f["ref"]) for f in refused] == [("error", "unauthorized", "r0")]
    assert frames(one, {"op": "auth", "token": "forged"})[0]["code"] == "unauthorized"
    assert frames(one, {"op": "auth", "token": site.tokens[site.ada]}) == [
        {"type": "authenticated", "user": site.ada, "version": 0}
    ]

    create = {"op": "watchlist.create", "name": "w", "symbols": ["btcusdt"], "ref": "r1"}
    [ack] = frames(one, create)
    assert (ack["type"], ack["op"], ack["ref"], ack["version"]) == (
        "ack",
        "watchlist.create",
        "r1",
        1,
    )
    wid = ack["change"]["watchlist"]["id"]
    assert frames(two) == [{"type": "user_state", "version": 1, "change": ack["change"]}]

    ops: list[dict[str, Any]] = [
        {"op": "watchlist.add", "watchlist": wid, "symbol": "ETHUSDT"},
        {"op": "watchlist.remove", "watchlist": wid, "symbol": "BTCUSDT"},
        {"op": "watchlist.update", "watchlist": wid, "name": "v", "symbols": ["SOLUSDT"]},
        {"op": "ignored.set", "symbols": ["usdcusdt"]},
        {"op": "preset.create", "name": "p", "filter": {"limit": 3}},
        {"op": "preferences.set", "preferences": {"theme": "dark"}},
    ]
    changes = []
    for op in ops:
        # The session that made a change hears of it once: in its ack.
        [answer] = frames(one, op)
        assert answer["type"] == "ack", answer
        assert [f["change"] for f in frames(two)] == [answer["change"]]
        changes.append(answer["change"])
    assert changes[0]["watchlist"]["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert changes[1]["watchlist"]["symbols"] == ["ETHUSDT"]
    assert changes[2]["watchlist"]["name"] == "v"
    assert changes[3] == {"kind": "ignored", "ignored": {"symbols": ["USDCUSDT"]}}
    assert changes[5]["preferences"]["theme"] == "dark"
    pid = changes[4]["preset"]["id"]
    for op in (
        {"op": "preset.update", "preset": pid, "name": "q", "filter": {}},
        {"op": "preset.delete", "preset": pid},
        {"op": "watchlist.delete", "watchlist": wid},
    ):
        [answer] = frames(one, op)
        assert [f["change"] for f in frames(two)] == [answer["change"]]
    state = site.http.get("/api/v1/me/state", headers=site.as_ada).json()
    assert (state["version"], state["watchlists"], state["presets"]) == (10, [], [])

    bad = {"op": "preferences.set", "preferences": {"layout": "grid"}, "ref": "bad"}
    [error] = frames(one, bad)
    assert (error["code"], error["ref"]) == ("invalid_request", "bad")
    assert error["message"].startswith("invalid preferences: layout")
    assert frames(one, {"op": "watchlist.delete", "watchlist": 12345})[0]["code"] == (
        "unknown_watchlist"
    )
    assert frames(two) == []


def test_a_session_logged_out_elsewhere_can_change_nothing(site: Site) -> None:
    session = connect(site, site.tokens[site.ada])
    frames(session)

    async def log_out(db: AsyncSession) -> None:
        await site.http.app.state.accounts.tokens.end_all(db, site.ada)  # type: ignore[attr-defined]

    run(site.db, log_out)
    assert frames(session, {"op": "ignored.set", "symbols": ["X"]})[0]["code"] == "unauthorized"
    assert run(site.db, lambda db: user_state.get_ignored(db, site.ada)).symbols == []
    # It is anonymous now: changes made elsewhere no longer reach it.
    hub: Hub = site.http.app.state.hub  # type: ignore[attr-defined]
    assert hub.users.clients_of(site.ada) == frozenset()


def test_a_ranks_subscription_takes_the_users_lists(site: Site) -> None:
    http = site.http
    body = {"name": "w", "symbols": ["ETHUSDT", "USDCUSDT"]}
    wid = http.post("/api/v1/me/watchlists", json=body, headers=site.as_ada).json()["id"]
    http.put("/api/v1/me/ignored", json={"symbols": ["USDCUSDT"]}, headers=site.as_ada)
    session = connect(site)
    subscribe = {"op": "subscribe", "channel": "ranks", "id": "w", "watchlist": wid}
    assert frames(session, {**subscribe, "ignored": "mine"}) == [
        {
            "type": "error",
            "code": "unauthorized",
            "message": 'sign in first: send {"op": "auth", "token": ...}',
            "id": "w",
        }
    ]
    frames(session, {"op": "auth", "token": site.tokens[site.ada]})
    subscribed, snapshot = frames(session, {**subscribe, "ignored": "mine"})
    assert subscribed["type"] == "subscribed"
    assert snapshot["order"] == ["binance:spot:ETHUSDT"]
    change = {"op": "filter", "id": "w", "filter": {"sort": "change_pct_5m"}, "ignored": "mine"}
    assert frames(session, change)[0]["order"] == [
        "binance:usdm:SOLUSDT",
        "binance:spot:ETHUSDT",
        "binance:spot:BTCUSDT",
    ]
    theirs = connect(site, site.tokens[site.bob])
    assert frames(theirs, {**subscribe, "id": "t"})[-1]["code"] == "unknown_watchlist"


def test_a_cancelled_socket_handler_lets_go_of_its_client(site: Site) -> None:
    """A server shutting down cancels its socket handlers: the hub must not keep the
    client (nor push the user's changes to it)."""
    state = site.http.app.state  # type: ignore[attr-defined]
    hub: Hub = state.hub

    class Socket:
        def __init__(self) -> None:
            self.app, self.cookies = SimpleNamespace(state=state), dict[str, str]()
            self.headers = {"authorization": site.as_ada["Authorization"]}

        async def accept(self) -> None:
            pass

        async def send_text(self, text: str) -> None:
            sent.append(json.loads(text))

        async def receive(self) -> dict[str, Any]:
            await asyncio.Event().wait()  # a client that never says anything
            raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def serve_then_cancel() -> None:
        handler = asyncio.create_task(ws.websocket(Socket()))  # type: ignore[arg-type]
        for _ in range(1000):  # until the handshake's sign-in is done (a bound, not a time)
            if hub.users.clients_of(site.ada):
                break
            await asyncio.sleep(0.01)
        assert hub.users.clients_of(site.ada), "the handler never signed in"
        handler.cancel()
        await asyncio.gather(handler, return_exceptions=True)

    asyncio.run(serve_then_cancel())
    assert sent == [{"type": "authenticated", "user": site.ada, "version": 0}]
    assert hub.clients == set() and hub.users.clients_of(site.ada) == frozenset()


# -- every account route, enumerated from the real app ------------------------------------

ACCOUNT_PREFIXES = ("/api/v1/me", "/api/v1/billing", "/api/v1/paper")
PUBLIC = {
    ("GET", "/api/v1/me/entitlements"),  # anonymous callers get the free tier's
    ("GET", "/api/v1/billing/plans"),
    ("POST", "/api/v1/billing/webhook"),  # Stripe's call, checked by its signature
}
"""Account routes that serve anonymous callers, on purpose."""

OWN_ONLY = {
    ("POST", "/api/v1/billing/checkout"),
    ("POST", "/api/v1/billing/portal"),
}
"""Routes that act on the caller's account alone (they take no id) and call Stripe: here
only checked for their 401."""

BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/me/watchlists"): {"json": {"name": "bob-list", "symbols": ["BOBUSDT"]}},
    ("PUT", "/api/v1/me/watchlists/{watchlist_id}"): {"json": {"name": "bob", "symbols": []}},
    ("POST", "/api/v1/me/watchlists/{watchlist_id}/symbols"): {"json": {"symbol": "BOBUSDT"}},
    ("DELETE", "/api/v1/me/watchlists/{watchlist_id}/symbols"): {"params": {"symbol": "ADAXUSDT"}},
    ("PUT", "/api/v1/me/ignored"): {"json": {"symbols": ["BOBUSDT"]}},
    ("POST", "/api/v1/me/presets"): {"json": {"name": "bob-preset", "filter": {}}},
    ("PUT", "/api/v1/me/presets/{preset_id}"): {"json": {"name": "bob", "filter": {}}},
    ("PUT", "/api/v1/me/preferences"): {"json": {"theme": "light"}},
    ("POST", "/api/v1/paper/accounts"): {"json": {"name": "bob-paper", "market": "spot"}},
    ("POST", "/api/v1/paper/accounts/{account_id}/reset"): {"json": {}},
    ("POST", "/api/v1/paper/accounts/{account_id}/orders"): {
        "json": {"symbol": "SOLUSDT", "side": "BUY", "type": "limit", "quantity": 1, "price": 1}
    },
    ("PATCH", "/api/v1/paper/accounts/{account_id}/orders/{client_order_id}"): {
        "json": {"price": "2"}
    },
    ("PUT", "/api/v1/paper/accounts/{account_id}/leverage/{symbol}"): {"json": {"leverage": 5}},
}
"""A valid request of each route that needs one, so a refusal is about whose data it is."""

QUERY_IDS: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/api/v1/stream/trading"): {"account": "account_id"},
}
"""Routes outside the prefixes that name one of the user's things in the query: which of
Ada's ids each parameter stands for."""

ADA_MARKS = (
    "ada@example.com",
    "ada-secret-list",
    "ADAXUSDT",
    "ada-secret-preset",
    "cus_ada",
    "ada-paper-account",
    "ada-order-1",
)
"""Strings only Ada's data holds."""


@pytest.fixture
def full_site(accounts_db: AccountsDb, tmp_path: Path) -> Iterator[Site]:
    """The real app's routes, billing on, without its lifespan (no ClickHouse)."""
    from api.accounts.billing import Billing
    from api.main import create_app

    settings = settings_for(
        tmp_path,
        accounts_db,
        billing=BillingSettings(
            stripe_api_key=SecretStr("sk_test_unused"),
            stripe_api_base="http://127.0.0.1:9",  # never called: see OWN_ONLY
            webhook_secret=SecretStr("whsec_unused"),
            plans=[PlanSettings(id="pro", stripe_price="price_pro", features=["live_board"])],
        ),
    )
    app = create_app(settings)
    app.state.billing = Billing(settings)
    made = serve(app, settings, accounts_db)
    app.state.store, app.state.symbols = FakeStore(), SymbolDirectory()
    FakeEngine().attach(app.state.hub.trading)
    yield made
    made.http.close()


def account_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every account route the app serves, from its OpenAPI document (FastAPI nests
    included routers; the document is where they are all listed)."""
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(ACCOUNT_PREFIXES)
        for method in operations
    ) + sorted(QUERY_IDS)


def test_the_app_serves_every_user_state_route(full_site: Site) -> None:
    served = set(account_routes(full_site.http.app))  # type: ignore[arg-type]
    mine = {
        (method, route.path)
        for route in me_state.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert len(mine) == 17 and mine <= served


def seed_ada(site: Site) -> dict[str, Any]:
    """Ada's watchlist, preset, ignore-list, Stripe customer, and a paper account with an
    open order; the ids of her things."""
    http, me = site.http, site.as_ada
    wid = http.post(
        "/api/v1/me/watchlists",
        json={"name": "ada-secret-list", "symbols": ["ADAXUSDT"]},
        headers=me,
    ).json()["id"]
    pid = http.post(
        "/api/v1/me/presets",
        json={"name": "ada-secret-preset", "filter": {"watch": ["ADAXUSDT"]}},
        headers=me,
    ).json()["id"]
    http.put("/api/v1/me/ignored", json={"symbols": ["ADAXUSDT"]}, headers=me)

    async def customer(db: AsyncSession) -> None:
        db.add(
            BillingCustomer(
                user_id=site.ada,
                stripe_customer_id="cus_ada",
                subscription_id="sub_ada",
                plan="pro",
                status="active",
                updated_at=datetime.now(UTC),
            )
        )

    run(site.db, customer)
    paper = http.post(
        "/api/v1/paper/accounts", json={"name": "ada-paper-account", "market": "usdm"}, headers=me
    ).json()["account_id"]
    order = {"symbol": "SOLUSDT", "side": "SELL", "type": "limit", "quantity": 1, "price": 200}
    placed = http.post(
        f"/api/v1/paper/accounts/{paper}/orders",
        json={**order, "client_order_id": "ada-order-1"},
        headers=me,
    )
    assert placed.status_code == 201
    return {
        "watchlist_id": wid,
        "preset_id": pid,
        "account_id": paper,
        "client_order_id": "ada-order-1",
        "symbol": "SOLUSDT",
    }


def request(
    site: Site, method: str, path: str, ids: dict[str, Any], headers: dict[str, str]
) -> Any:
    names = re.findall(r"{(\w+)}", path)
    unknown = [name for name in names if name not in ids]
    assert not unknown, f"{method} {path}: say which of Ada's ids {unknown} stands for"
    url = path.format(**ids)
    given = dict(BODIES.get((method, path), {}))
    named = {name: ids[key] for name, key in QUERY_IDS.get((method, path), {}).items()}
    given["params"] = {**given.get("params", {}), **named}
    return site.http.request(method, url, headers=headers, **given)


def test_every_account_route_needs_a_signed_in_user(full_site: Site) -> None:
    ids = seed_ada(full_site)
    routes = account_routes(full_site.http.app)  # type: ignore[arg-type]
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        response = request(full_site, method, path, ids, {})
        assert response.status_code == 401, f"{method} {path}: {response.status_code}"
        forged = request(full_site, method, path, ids, {"Authorization": "Bearer forged"})
        assert forged.status_code == 401, f"{method} {path} with a forged token"


def test_no_account_route_shows_or_changes_another_users_data(full_site: Site) -> None:
    site = full_site
    ids = seed_ada(site)
    before = run(site.db, lambda db: user_state.get_state(db, site.ada))
    trading = site.http.app.state.hub.trading  # type: ignore[attr-defined]
    paper_before = trading.view(ids["account_id"])
    routes = account_routes(site.http.app)  # type: ignore[arg-type]
    checked = 0
    for method, path in routes:
        if "{" in path or (method, path) in QUERY_IDS:
            # Ada's own id works for her, so Bob's 404 is about whose it is (a stream
            # would not end: its owner's side is in tests/unit/api/test_paper_routes.py).
            if method == "GET" and (method, path) not in QUERY_IDS:
                assert request(site, method, path, ids, site.as_ada).status_code == 200
            response = request(site, method, path, ids, site.as_bob)
            assert response.status_code == 404, f"{method} {path}: {response.status_code}"
        elif method == "GET":
            response = request(site, method, path, ids, site.as_bob)
            assert response.status_code == 200, f"{method} {path}: {response.text}"
            leaked = [mark for mark in ADA_MARKS if mark in response.text]
            assert not leaked, f"{method} {path} shows Bob Ada's {leaked}"
        elif (method, path) in BODIES:
            response = request(site, method, path, ids, site.as_bob)
            assert response.status_code in (200, 201), f"{method} {path}: {response.text}"
        else:
            assert (method, path) in PUBLIC | OWN_ONLY, (
                f"{method} {path} is new: add a valid request to BODIES or classify it"
            )
            continue
        checked += 1
    assert checked >= 30
    assert trading.view(ids["account_id"]) == paper_before
    assert [o.request.client_order_id for o in paper_before.open_orders] == ["ada-order-1"]
    after = run(site.db, lambda db: user_state.get_state(db, site.ada))
    assert after == before
    assert (
        after.watchlists[0].symbols == ["ADAXUSDT"] and after.presets[0].name == "ada-secret-preset"
    )
    bobs = run(site.db, lambda db: user_state.get_state(db, site.bob))
    assert [w.name for w in bobs.watchlists] == ["bob-list"]
    assert (ids["watchlist_id"], ids["preset_id"]) == (
        before.watchlists[0].id,
        before.presets[0].id,
    )
