"""Entitlements: plans' features from mirrored subscriptions, and the one check that gates
1s candles, signals and the live board on REST, SSE and the WebSocket protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.accounts.db import AccountsDb
from api.accounts.deps import Accounts
from api.accounts.entitlements import (
    CANDLES_1S,
    FEATURES,
    FREE_LIMITS,
    PAID_LIMITS,
    SIGNALS,
    Entitled,
    Entitlements,
    check_subscription,
    entitlements_for,
    resolve,
)
from api.accounts.models import BillingCustomer, User
from api.accounts.tokens import TokenService
from api.errors import Forbidden, install_error_handlers
from api.live.board import Board
from api.routes import candles, entitlements, scan, signals, stream
from api.settings import AccountsSettings, BillingSettings, PlanSettings
from schemas.ranks import RankRow
from tickscan.settings import Settings

SECRET = b"s" * 48
NOW = datetime(2024, 8, 9, 12, 0, tzinfo=UTC)
PRO = PlanSettings(id="pro", stripe_price="price_pro", features=list(FEATURES))
CHARTS = PlanSettings(id="charts", stripe_price="price_charts", features=[CANDLES_1S])


def account_settings(*, billing: bool = True, free_delay_s: int = 60) -> AccountsSettings:
    return AccountsSettings(
        argon2_time_cost=1,
        argon2_memory_kib=8,
        free_delay_s=free_delay_s,
        billing=BillingSettings(
            stripe_api_key=SecretStr("sk_test_entitlements") if billing else None,
            plans=[PRO, CHARTS],
        ),
    )


def customer(
    status: str | None, end: datetime | None = None, plan: str | None = "pro", user_id: int = 1
) -> BillingCustomer:
    return BillingCustomer(
        user_id=user_id,
        stripe_customer_id=f"cus_{user_id}",
        subscription_id=f"sub_{user_id}",
        plan=plan,
        status=status,
        current_period_end=end,
        updated_at=NOW,
    )


# --- resolution ---------------------------------------------------------------------------

LATER, EARLIER = NOW + timedelta(days=3), NOW - timedelta(seconds=1)


@pytest.mark.parametrize(
    ("status", "end", "paid"),
    [
        ("active", LATER, True),
        ("trialing", None, True),
        ("past_due", LATER, True),  # Stripe retries the card; the period was paid for
        ("past_due", EARLIER, False),
        ("past_due", None, False),
        ("canceled", LATER, False),
        ("unpaid", LATER, False),
        ("incomplete", LATER, False),
        ("incomplete_expired", LATER, False),
        (None, None, False),
    ],
)
def test_a_subscription_grants_its_plan_only_while_it_is_paid_for(
    status: str | None, end: datetime | None, paid: bool
) -> None:
    got = resolve(account_settings(), customer(status, end), NOW)
    if paid:
        assert got == Entitlements("pro", frozenset(FEATURES), PAID_LIMITS, 0)
    else:
        assert got == Entitlements("free", frozenset(), FREE_LIMITS, 60)


def test_anonymous_and_never_subscribed_accounts_get_the_free_tier() -> None:
    free = resolve(account_settings(), None, NOW)
    assert (free.plan, free.features, free.delay_s, free.live_board) == ("free", set(), 60, False)
    assert (free.limits.watchlists, free.limits.watchlist_symbols, free.limits.presets) == (
        1,
        20,
        3,
    )


def test_a_plan_without_the_live_board_keeps_the_delay_with_paid_limits() -> None:
    got = resolve(account_settings(), customer("active", LATER, plan="charts"), NOW)
    assert got == Entitlements("charts", frozenset({CANDLES_1S}), PAID_LIMITS, 60)
    assert (got.limits.watchlists, got.limits.watchlist_symbols, got.limits.presets) == (
        50,
        500,
        100,
    )


def test_a_plan_dropped_from_the_settings_grants_nothing_more_than_free() -> None:
    got = resolve(account_settings(), customer("active", LATER, plan="gold"), NOW)
    assert got.plan == "free" and not got.features


def test_billing_off_gives_everyone_everything_even_a_lapsed_account() -> None:
    settings = account_settings(billing=False)
    for row in (None, customer("canceled", EARLIER)):
        got = resolve(settings, row, NOW)
        assert got.plan == "self_hosted" and got.features == set(FEATURES)
        assert got.delay_s == 0 and got.live_board


def test_without_a_delay_the_free_tier_sees_the_live_board() -> None:
    free = resolve(account_settings(free_delay_s=0), None, NOW)
    assert free.live_board and free.delay_s == 0
    assert not {SIGNALS, CANDLES_1S} & free.features


def test_entitled_refuses_an_unknown_feature_name() -> None:
    with pytest.raises(ValueError, match="unknown feature"):
        Entitled("live_boards")


# --- WebSocket subscriptions ----------------------------------------------------------------

FREE = resolve(account_settings(), None, NOW)
PAID = resolve(account_settings(), customer("active", LATER), NOW)


@pytest.mark.parametrize(
    ("channel", "params", "feature"),
    [
        ("signals", {"symbol": "BTCUSDT"}, SIGNALS),
        ("candles", {"symbol": "BTCUSDT", "interval": "1s"}, CANDLES_1S),
    ],
)
def test_a_free_websocket_subscription_to_a_paid_channel_is_refused(
    channel: str, params: Mapping[str, Any], feature: str
) -> None:
    with pytest.raises(Forbidden) as refused:
        check_subscription(FREE, channel, params)
    assert refused.value.code == "not_entitled"
    assert repr(feature) in refused.value.message and "paid plan" in refused.value.message
    check_subscription(PAID, channel, params)


def test_free_websocket_subscriptions_to_ranks_and_minute_candles_are_allowed() -> None:
    check_subscription(FREE, "ranks", {"filter": {}})
    check_subscription(FREE, "candles", {"symbol": "BTCUSDT", "interval": "1m"})


# --- against the database ---------------------------------------------------------------


def add_user(db: AccountsDb, email: str, billing: BillingCustomer | None = None) -> User:
    async def add() -> User:
        async with db.session() as session:
            user = User(email=email, created_at=NOW)
            session.add(user)
            await session.flush()
            if billing is not None:
                billing.user_id = user.id
                billing.stripe_customer_id = f"cus_{user.id}"
                billing.subscription_id = f"sub_{user.id}"
                session.add(billing)
            return user

    return asyncio.run(add())


def test_entitlements_for_reads_the_users_own_billing_row(
    accounts_db: AccountsDb, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, accounts=account_settings())
    accounts = Accounts(settings, accounts_db, TokenService(SECRET, 900, 3600))
    paying = add_user(accounts_db, "pay@example.com", customer("active", LATER))
    other = add_user(accounts_db, "free@example.com")
    assert asyncio.run(entitlements_for(accounts, paying)).plan == "pro"
    assert asyncio.run(entitlements_for(accounts, other)).plan == "free"
    assert asyncio.run(entitlements_for(accounts, None)).plan == "free"


# --- routes -------------------------------------------------------------------------------

T0 = 1_723_161_300_000


class FakeStore:
    """ClickHouse stand-in: an unknown query answers nothing, the symbol check answers yes."""

    database = "tickscan"

    def __init__(self) -> None:
        self.queries = 0

    async def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        self.queries += 1
        return [], [(1,)] if sql.lstrip().startswith("SELECT 1 FROM") else []


class Api:
    """A partial app (no ClickHouse, no Kafka) with the gated routers, and bearer tokens of
    a free and a paying user."""

    def __init__(self, db: AccountsDb, tmp_path: Path, settings: AccountsSettings) -> None:
        tokens = TokenService(SECRET, 900, 3600)
        self.app = FastAPI()
        install_error_handlers(self.app)
        for module in (candles, signals, stream, scan, entitlements):
            self.app.include_router(module.router)
        self.app.state.settings = Settings(data_dir=tmp_path, accounts=settings)
        self.app.state.accounts = Accounts(self.app.state.settings, db, tokens)
        self.store = self.app.state.store = FakeStore()
        self.http = TestClient(self.app)
        free = add_user(db, "free@example.com")
        paid = add_user(
            db, "paid@example.com", customer("active", datetime.now(UTC) + timedelta(days=3))
        )
        self.free, self.paid = (self._sign_in(db, tokens, user) for user in (free, paid))

    @staticmethod
    def _sign_in(db: AccountsDb, tokens: TokenService, user: User) -> dict[str, str]:
        async def start() -> str:
            async with db.session() as session:
                return (await tokens.start(session, user)).access_token

        return {"Authorization": f"Bearer {asyncio.run(start())}"}

    def get(self, path: str, who: dict[str, str] | None, **params: str) -> Any:
        return self.http.get(path, params=params, headers=who or {})


@pytest.fixture
def api(accounts_db: AccountsDb, tmp_path: Path) -> Iterator[Api]:
    built = Api(accounts_db, tmp_path, account_settings())
    with built.http:
        yield built


GATED = [
    ("/api/v1/signals", {}, SIGNALS),
    ("/api/v1/candles", {"symbol": "BTCUSDT", "interval": "1s"}, CANDLES_1S),
    ("/api/v1/stream/signals", {}, SIGNALS),
    (
        "/api/v1/stream/candles",
        {"exchange": "binance", "market": "spot", "symbol": "BTCUSDT", "interval": "1s"},
        CANDLES_1S,
    ),
]


@pytest.mark.parametrize(("path", "params", "feature"), GATED)
def test_free_and_anonymous_callers_get_a_403_naming_the_feature(
    api: Api, path: str, params: dict[str, str], feature: str
) -> None:
    for who in (api.free, None):
        response = api.get(path, who, **params)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/json"  # not a stream
        error = response.json()["error"]
        assert error["code"] == "not_entitled"
        assert repr(feature) in error["message"] and "paid plan" in error["message"]
    assert api.store.queries == 0  # refused before ClickHouse was asked


def test_a_paying_user_gets_1s_candles_and_signal_history(api: Api) -> None:
    history = api.get("/api/v1/signals", api.paid)
    assert (history.status_code, history.json()) == (200, {"signals": [], "more": False})
    charts = api.get(
        "/api/v1/candles", api.paid, exchange="binance", symbol="BTCUSDT", interval="1s"
    )
    assert charts.status_code == 200
    assert (charts.json()["interval"], charts.json()["candles"]) == ("1s", [])


def test_paying_users_pass_the_gate_of_the_live_streams(api: Api) -> None:
    # This partial app has no hub: past the gate, a stream is a 503, not a 403.
    for path, params, _ in GATED[2:]:
        response = api.get(path, api.paid, **params)
        assert response.json()["error"]["code"] == "unavailable", path


def test_minute_candles_stay_free(api: Api) -> None:
    response = api.get(
        "/api/v1/candles", api.free, exchange="binance", symbol="BTCUSDT", interval="1m"
    )
    assert response.status_code == 200


def test_a_bad_token_is_a_401_not_a_silent_free_tier(api: Api) -> None:
    response = api.get("/api/v1/me/entitlements", {"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_me_entitlements_describes_each_callers_tier(api: Api) -> None:
    free = {
        "plan": "free",
        "features": [],
        "limits": {
            "watchlists": 1,
            "watchlist_symbols": 20,
            "presets": 3,
            "paper_accounts": 2,
            "paper_open_orders": 20,
        },
        "delay_s": 60,
    }
    assert api.get("/api/v1/me/entitlements", None).json() == free
    assert api.get("/api/v1/me/entitlements", api.free).json() == free
    assert api.get("/api/v1/me/entitlements", api.paid).json() == {
        "plan": "pro",
        "features": sorted(FEATURES),
        "limits": {
            "watchlists": 50,
            "watchlist_symbols": 500,
            "presets": 100,
            "paper_accounts": 20,
            "paper_open_orders": 200,
        },
        "delay_s": 0,
    }


def test_with_billing_off_an_anonymous_caller_has_everything(
    accounts_db: AccountsDb, tmp_path: Path
) -> None:
    off = Api(accounts_db, tmp_path, account_settings(billing=False))
    with off.http:
        body = off.get("/api/v1/me/entitlements", None).json()
        assert (body["plan"], body["features"], body["delay_s"]) == (
            "self_hosted",
            sorted(FEATURES),
            0,
        )
        assert off.get("/api/v1/signals", None).status_code == 200


def boards(api: Api) -> None:
    live, late = Board(), Board()
    live.apply([RankRow("binance", "spot", "BTCUSDT", T0 + 60_000, 61_000.0)])
    late.apply([RankRow("binance", "spot", "BTCUSDT", T0, 60_000.0)])
    api.app.state.board = live
    api.app.state.hub = SimpleNamespace(delayed=SimpleNamespace(board=late))
    api.app.state.symbols = {}


def test_the_live_scan_of_a_free_caller_is_the_delayed_board(api: Api) -> None:
    boards(api)
    for who in (api.free, None):
        body = api.get("/api/v1/scan", who).json()
        assert (body["as_of_ms"], body["rows"][0]["price"]) == (T0, 60_000.0)
    body = api.get("/api/v1/scan", api.paid).json()
    assert (body["as_of_ms"], body["rows"][0]["price"]) == (T0 + 60_000, 61_000.0)


def test_without_a_delayed_board_a_free_caller_gets_no_board_rather_than_the_live_one(
    api: Api,
) -> None:
    boards(api)
    api.app.state.hub = SimpleNamespace(delayed=None)
    response = api.get("/api/v1/scan", api.free)
    assert response.status_code == 503


def test_a_free_caller_cannot_ask_history_for_the_last_delay(api: Api) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    recent = api.get("/api/v1/scan", api.free, at=str(now_ms - 10_000))
    assert recent.status_code == 403 and recent.json()["error"]["code"] == "not_entitled"
    assert api.store.queries == 0
    older = api.get("/api/v1/scan", api.free, at=str(now_ms - 120_000))
    assert (older.status_code, older.json()["source"]) == (200, "history")
    paid = api.get("/api/v1/scan", api.paid, at=str(now_ms - 10_000))
    assert paid.status_code == 200
