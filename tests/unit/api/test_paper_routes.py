"""`/api/v1/paper/...` through the app, against an in-memory engine: accounts, orders and
their idempotency, Binance-worded rejections, field errors, plan limits, history from
ClickHouse, timeouts, and the live `trading` channel of the account's owner only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.accounts.db import AccountsDb
from api.errors import install_error_handlers
from api.routes import paper, stream, ws
from api.services.symbols import SymbolDirectory
from api.settings import BillingSettings, PlanSettings
from tests.unit.api.paper_engine import T0_US, FakeEngine, FakeStore
from tests.unit.api.test_me_state_routes import ROWS, Site, connect, frames, serve, settings_for

BASE = "/api/v1/paper/accounts"


@dataclass
class Paper:
    site: Site
    engine: FakeEngine
    store: FakeStore

    @property
    def http(self) -> TestClient:
        return self.site.http

    def open(self, market: str = "usdm", who: str = "ada", **body: Any) -> dict[str, Any]:
        headers = self.site.as_ada if who == "ada" else self.site.as_bob
        answer = self.http.post(
            BASE, json={"name": f"{who}-paper", "market": market, **body}, headers=headers
        )
        assert answer.status_code == 201, answer.text
        made: dict[str, Any] = answer.json()
        return made

    def place(self, account: str, who: str = "ada", **order: Any) -> Any:
        headers = self.site.as_ada if who == "ada" else self.site.as_bob
        body = {
            "symbol": "SOLUSDT",
            "side": "BUY",
            "type": "limit",
            "quantity": "0.5",
            "price": "90",
        }
        return self.http.post(f"{BASE}/{account}/orders", json={**body, **order}, headers=headers)


def make_app(tmp_path: Path, db: AccountsDb) -> tuple[Site, FakeEngine, FakeStore]:
    """The paper, stream and WebSocket routes on the accounts database, billing on (so a
    user without a subscription has the free plan's limits), the board listing
    binance spot BTCUSDT and ETHUSDT and usdm SOLUSDT, an in-memory engine."""
    app = FastAPI()
    install_error_handlers(app)
    for router in (paper.router, stream.router, ws.router):
        app.include_router(router)
    billing = BillingSettings(
        stripe_api_key=SecretStr("sk_test_unused"),
        stripe_api_base="http://127.0.0.1:9",  # never called: nobody here has a customer
        webhook_secret=SecretStr("whsec_unused"),
        plans=[PlanSettings(id="pro", stripe_price="price_pro", features=["live_board"])],
    )
    site = serve(app, settings_for(tmp_path, db, billing=billing), db)
    store = FakeStore()
    app.state.store, app.state.symbols = store, SymbolDirectory()
    engine = FakeEngine().attach(app.state.hub.trading)
    return site, engine, store


@pytest.fixture
def api(accounts_db: AccountsDb, tmp_path: Path) -> Iterator[Paper]:
    site, engine, store = make_app(tmp_path, accounts_db)
    with site.http:  # one event loop for every request and socket, as in a server
        yield Paper(site, engine, store)


def error(answer: Any) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()["error"]
    return body


def test_an_account_opens_on_the_boards_exchange_and_is_listed(api: Paper) -> None:
    assert {row.key for row in ROWS} >= {"binance:usdm:SOLUSDT", "binance:spot:BTCUSDT"}
    made = api.open("usdm")
    assert made["market"] == "usdm" and made["exchange"] == "binance"
    assert made["balances"] == [{"asset": "USDT", "free": "10000", "locked": "0"}]
    assert made["equity"] == "10000" and made["owner"] == str(api.site.ada)
    spot = api.open("spot", balances={"USDT": "2500.5", "BTC": 0.25})
    assert spot["balances"] == [
        {"asset": "USDT", "free": "2500.5", "locked": "0"},
        {"asset": "BTC", "free": "0.25", "locked": "0"},
    ]
    listed = api.http.get(BASE, headers=api.site.as_ada).json()
    assert [a["account_id"] for a in listed] == [made["account_id"], spot["account_id"]]
    one = api.http.get(f"{BASE}/{made['account_id']}", headers=api.site.as_ada)
    assert one.json() == made
    assert api.http.get(BASE, headers=api.site.as_bob).json() == []


def test_new_accounts_are_checked(api: Paper) -> None:
    http, me = api.http, api.site.as_ada
    bad = http.post(BASE, json={"name": "x", "market": "coinm"}, headers=me)
    assert bad.status_code == 422 and "market" in error(bad)["message"]
    bad = http.post(
        BASE, json={"name": "x", "market": "spot", "balances": {"USDT": "-5"}}, headers=me
    )
    assert bad.status_code == 422 and "balances.USDT" in error(bad)["message"]
    assert api.engine.commands == []


def test_an_order_is_placed_once_per_client_order_id(api: Paper) -> None:
    account = api.open()["account_id"]
    first = api.place(account, client_order_id="dip-1")
    assert first.status_code == 201
    order = first.json()
    assert order["status"] == "new" and order["request"]["client_order_id"] == "dip-1"
    assert order["request"]["exchange"] == "binance" and order["request"]["market"] == "usdm"
    again = api.place(account, client_order_id="dip-1", price="95")
    assert again.status_code == 200 and again.json() == order
    view = api.http.get(f"{BASE}/{account}", headers=api.site.as_ada).json()
    assert [o["order_id"] for o in view["open_orders"]] == [order["order_id"]]
    made_up = api.place(account).json()["request"]["client_order_id"]
    assert made_up and made_up != "dip-1"


def test_a_rejection_answers_binances_words_and_code(api: Paper) -> None:
    account = api.open()["account_id"]
    answer = api.place(account, quantity="0.0001", client_order_id="tiny")
    assert answer.status_code == 400
    body = error(answer)
    assert body["code"] == "order_rejected" and body["message"] == "Filter failure: LOT_SIZE"
    assert body["binance_code"] == -1013
    assert (
        body["order"]["status"] == "rejected" and body["order"]["request"]["quantity"] == "0.0001"
    )


@pytest.mark.parametrize(
    ("order", "says"),
    [
        ({"price": None}, "a limit order needs a price"),
        ({"quantity": "abc"}, "body.quantity"),
        ({"quantity": "0"}, "body.quantity"),
        ({"quantity": None}, "give exactly one of quantity and quote_quantity"),
        ({"type": "market", "price": None, "time_in_force": "GTX"}, "post-only"),
        ({"side": "HOLD"}, "body.side"),
        ({"client_order_id": "x" * 37}, "body.client_order_id"),
        ({"reduce_only": True, "trigger": "mark", "type": "stop_market"}, "takes no price"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_bad_orders_are_a_422_naming_the_field(
    api: Paper, order: dict[str, Any], says: str
) -> None:
    account = api.open()["account_id"]
    answer = api.place(account, **order)
    assert answer.status_code == 422, answer.text
    assert says in error(answer)["message"]
    assert [type(c).__name__ for c in api.engine.commands] == ["OpenAccount"]


def test_numbers_are_taken_as_decimals_and_unknown_symbols_refused(api: Paper) -> None:
    account = api.open()["account_id"]
    placed = api.place(account, quantity=0.5, price=90.25)
    assert placed.status_code == 201
    assert placed.json()["request"]["quantity"] == "0.5" and placed.json()["price"] == "90.25"
    unknown = api.place(account, symbol="NOPEUSDT")
    assert unknown.status_code == 400
    assert error(unknown) == {
        "code": "invalid_symbol",
        "message": "Invalid symbol.",
        "binance_code": -1121,
    }
    spot_symbol = api.place(account, symbol="btcusdt")  # listed on spot, not usdm
    assert spot_symbol.status_code == 400


def test_amend_cancel_and_cancel_all(api: Paper) -> None:
    http, me = api.http, api.site.as_ada
    account = api.open()["account_id"]
    for n in range(3):
        api.place(account, client_order_id=f"o{n}")
    amended = http.patch(f"{BASE}/{account}/orders/o0", json={"price": "91.5"}, headers=me)
    assert amended.status_code == 200 and amended.json()["price"] == "91.5"
    empty = http.patch(f"{BASE}/{account}/orders/o0", json={}, headers=me)
    assert empty.status_code == 422
    canceled = http.delete(f"{BASE}/{account}/orders/o1", headers=me)
    assert canceled.json()["status"] == "canceled"
    again = http.delete(f"{BASE}/{account}/orders/o1", headers=me)
    assert again.status_code == 400
    assert error(again) == {
        "code": "command_refused",
        "message": "Unknown order sent.",
        "binance_code": -2011,
    }
    rest = http.delete(f"{BASE}/{account}/orders", headers=me).json()
    assert [(o["request"]["client_order_id"], o["status"]) for o in rest] == [
        ("o0", "canceled"),
        ("o2", "canceled"),
    ]
    sent = len(api.engine.commands)
    assert http.delete(f"{BASE}/{account}/orders", headers=me).json() == []
    assert len(api.engine.commands) == sent  # nothing open: nothing sent
    assert http.get(f"{BASE}/{account}/orders", headers=me).json() == []


def test_positions_close_and_leverage(api: Paper) -> None:
    http, me = api.http, api.site.as_ada
    account = api.open()["account_id"]
    placed = api.place(account, type="market", price=None, quantity="2").json()
    # a market order answers as its fills left it, as Binance's RESULT response does
    assert (placed["status"], placed["filled_qty"]) == ("filled", "2")
    positions = http.get(f"{BASE}/{account}/positions", headers=me).json()
    assert [(p["symbol"], p["qty"], p["mark_price"]) for p in positions] == [
        ("SOLUSDT", "2", "100")
    ]
    closed = http.post(f"{BASE}/{account}/positions/SOLUSDT/close", headers=me).json()
    assert len(closed) == 1
    assert closed[0]["status"] == "filled" and closed[0]["request"]["reduce_only"] is True
    assert closed[0]["request"]["side"] == "SELL"
    assert http.get(f"{BASE}/{account}/positions", headers=me).json() == []
    assert http.post(f"{BASE}/{account}/positions/close", headers=me).json() == []
    lev = http.put(
        f"{BASE}/{account}/leverage/solusdt",
        json={"leverage": 20, "margin_mode": "isolated"},
        headers=me,
    )
    assert lev.json() == {"symbol": "SOLUSDT", "leverage": 20, "margin_mode": "isolated"}
    too_high = http.put(f"{BASE}/{account}/leverage/SOLUSDT", json={"leverage": 126}, headers=me)
    assert too_high.status_code == 422 and "body.leverage" in error(too_high)["message"]
    spot = api.open("spot")["account_id"]
    on_spot = http.put(f"{BASE}/{spot}/leverage/BTCUSDT", json={"leverage": 2}, headers=me)
    assert on_spot.status_code == 422 and "USDⓈ-M" in error(on_spot)["message"]


def test_plan_limits_accounts_and_open_orders(api: Paper) -> None:
    api.open()
    account = api.open()["account_id"]  # the free plan's second and last
    third = api.http.post(BASE, json={"name": "c", "market": "spot"}, headers=api.site.as_ada)
    assert third.status_code == 403 and error(third)["code"] == "limit_reached"
    assert "2 paper accounts" in error(third)["message"]
    for n in range(20):
        assert api.place(account, client_order_id=f"r{n}").status_code == 201
    refused = api.place(account, client_order_id="r20")
    assert refused.status_code == 403 and error(refused)["code"] == "limit_reached"
    market = api.place(account, client_order_id="m", type="market", price=None)
    assert market.status_code == 201  # a market order never rests


def test_an_account_the_engine_refuses_is_not_kept(api: Paper) -> None:
    api.open()
    api.engine.max_accounts = 1
    refused = api.http.post(BASE, json={"name": "b", "market": "spot"}, headers=api.site.as_ada)
    assert refused.status_code == 400
    assert error(refused)["code"] == "command_refused"
    assert error(refused)["message"] == "Too many accounts."
    assert len(api.http.get(BASE, headers=api.site.as_ada).json()) == 1
    api.engine.max_accounts = 2
    api.open()  # the refused one does not count towards the plan's two


def test_a_silent_engine_is_a_504_and_no_engine_a_503(api: Paper) -> None:
    account = api.open()["account_id"]
    api.engine.silent = True
    api.site.http.app.state.hub.trading.timeout_s = 0.05  # type: ignore[attr-defined]
    answer = api.place(account, client_order_id="late")
    assert answer.status_code == 504 and error(answer)["code"] == "timeout"
    assert "look the account up" in error(answer)["message"]
    unopened = api.http.post(BASE, json={"name": "x", "market": "spot"}, headers=api.site.as_ada)
    assert unopened.status_code == 504 and "not opened" in error(unopened)["message"]
    api.engine.silent = False
    assert len(api.http.get(BASE, headers=api.site.as_ada).json()) == 1  # not kept
    api.engine.silent = True
    api.site.http.app.state.hub.trading.sender = None  # type: ignore[attr-defined]
    down = api.place(account)
    assert down.status_code == 503 and "not running" in error(down)["message"]


ORDER_ROW = (
    3, "hist-1", "binance", "usdm", "SOLUSDT", "SELL", "limit", "GTC", "last", 0,
    Decimal("0.500000000000000000"), None, Decimal("120.000000000000000000"), None, "filled",
    Decimal("0.500000000000000000"), Decimal("60.000000000000000000"),
    Decimal("0.012000000000000000"), "USDT", 0, None, None, T0_US - 10, T0_US - 5,
)  # fmt: skip
FILL_ROW = (
    1, 3, "hist-1", "binance", "usdm", "SOLUSDT", "SELL", Decimal("120.000000000000000000"),
    Decimal("0.500000000000000000"), Decimal("60.000000000000000000"),
    Decimal("0.012000000000000000"), "USDT", "maker", None, Decimal(0),
    Decimal("1.500000000000000000"), 0, T0_US - 5,
)  # fmt: skip


def test_history_comes_from_clickhouse_with_live_orders_over_it(api: Paper) -> None:
    http, me = api.http, api.site.as_ada
    account = api.open()["account_id"]
    live = api.place(account, client_order_id="live-1").json()
    api.store.rows = {
        "paper_orders": [ORDER_ROW],
        "paper_fills": [FILL_ROW],
        "paper_ledger": [
            (1_723_161_360_000, Decimal("10001.5")),
            (1_723_161_300_000, Decimal("10000")),
        ],
    }
    orders = http.get(f"{BASE}/{account}/orders", params={"status": "all"}, headers=me).json()
    assert [o["request"]["client_order_id"] for o in orders] == ["live-1", "hist-1"]
    assert orders[0] == live
    hist = orders[1]
    assert (hist["quantity"], hist["price"], hist["filled_quote"], hist["fees"]) == (
        "0.5",
        "120",
        "60",
        "0.012",
    )
    assert hist["request"]["quantity"] == "0.5" and hist["status"] == "filled"
    fills = http.get(
        f"{BASE}/{account}/fills", params={"symbol": "solusdt", "limit": 5}, headers=me
    ).json()
    assert [(f["price"], f["qty"], f["fee"], f["realized_pnl"], f["liquidity"]) for f in fills] == [
        ("120", "0.5", "0.012", "1.5", "maker")
    ]
    equity = http.get(
        f"{BASE}/{account}/equity",
        params={"from": "2024-08-08T23:55:00Z", "to": "1723161900000"},
        headers=me,
    ).json()
    assert equity == [
        {"time_ms": 1_723_161_300_000, "equity": "10000"},
        {"time_ms": 1_723_161_360_000, "equity": "10001.5"},
    ]
    (orders_sql, orders_params), (fills_sql, fills_params), (equity_sql, equity_params) = (
        api.store.queries
    )
    assert (
        orders_params["account"] == fills_params["account"] == equity_params["account"] == account
    )
    assert fills_params["symbol"] == "SOLUSDT" and fills_params["limit"] == 5
    assert (equity_params["start"], equity_params["end"]) == (1_723_161_300_000, 1_723_161_900_000)
    for sql in (orders_sql, fills_sql, equity_sql):
        assert account not in sql and "FINAL" in sql
    bad = http.get(f"{BASE}/{account}/equity", params={"from": "yesterday"}, headers=me)
    assert bad.status_code == 422 and "from" in error(bad)["message"]


def test_the_trading_channel_delivers_to_the_owner_only(api: Paper) -> None:
    site = api.site
    account = api.open()["account_id"]
    ada, bob = connect(site, site.tokens[site.ada]), connect(site, site.tokens[site.bob])
    frames(ada), frames(bob)
    subscribe = {"op": "subscribe", "channel": "trading", "id": "t", "account": account}
    refused = frames(bob, subscribe)
    assert [(f["type"], f["code"]) for f in refused] == [("error", "unknown_account")]
    anonymous = connect(site)
    assert frames(anonymous, subscribe)[0]["code"] == "unauthorized"
    got = frames(ada, subscribe)
    assert [f["type"] for f in got] == ["subscribed", "account"]
    assert got[1]["account"]["account_id"] == account and got[1]["id"] == "t"
    api.place(account, type="market", price=None, quantity="1", client_order_id="now")
    got = frames(ada)
    assert [f["type"] for f in got] == ["order", "fill", "order", "account"]
    assert got[1]["fill"]["price"] == "100" and got[1]["fill"]["client_order_id"] == "now"
    assert got[2]["order"]["status"] == "filled"
    assert got[3]["account"]["positions"][0]["qty"] == "1"
    assert frames(bob) == []
    # signing in as someone else ends the subscription
    signed = frames(ada, {"op": "auth", "token": site.tokens[site.bob]})
    assert [f["type"] for f in signed] == ["unsubscribed", "authenticated"]
    api.place(account, client_order_id="later")
    assert frames(ada) == []


def test_the_trading_stream_is_the_owners_only(api: Paper) -> None:
    account = api.open()["account_id"]
    path = "/api/v1/stream/trading"
    assert api.http.get(path, params={"account": account}).status_code == 401
    other = api.http.get(path, params={"account": account}, headers=api.site.as_bob)
    assert other.status_code == 404 and error(other)["code"] == "unknown_account"
