"""Entitlements against the live API with billing on: a paying and a free user on the real
broker and chDB. The paying user's board is live, the free user's runs `free_delay_s`
behind, and the free user's 1s candle stream is a 403 before any stream starts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from httpx_sse import ServerSentEvent, connect_sse
from pydantic import SecretStr

from api.accounts.db import AccountsDb
from api.accounts.entitlements import FEATURES
from api.accounts.models import BillingCustomer, User
from api.accounts.tokens import TokenService
from api.settings import AccountsSettings, BillingSettings, PlanSettings
from api.store import Store
from schemas import topics
from schemas.ranks import RankRow
from tests.integration.live_api import live_api_settings, live_topics
from tests.integration.test_api_live import DEADLINE_S, Api, eventually
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

DELAY_S = 2
SECRET = "entitlements-test-secret-" + "x" * 24


def sign_in(settings: Settings) -> dict[str, dict[str, str]]:
    """Make a free and a paying user in the API's accounts database; their auth headers."""

    async def make() -> dict[str, dict[str, str]]:
        db = AccountsDb(settings.accounts_url())
        tokens = TokenService(SECRET.encode(), 900, 3600)
        now = datetime.now(UTC)
        headers = {}
        try:
            await db.migrate()
            async with db.session() as session:
                for name in ("free", "paid"):
                    user = User(email=f"{name}@example.com", created_at=now)
                    session.add(user)
                    await session.flush()
                    if name == "paid":
                        session.add(
                            BillingCustomer(
                                user_id=user.id,
                                stripe_customer_id="cus_paid",
                                subscription_id="sub_paid",
                                plan="pro",
                                status="active",
                                current_period_end=now + timedelta(days=30),
                                updated_at=now,
                            )
                        )
                    pair = await tokens.start(session, user)
                    headers[name] = {"Authorization": f"Bearer {pair.access_token}"}
        finally:
            await db.aclose()
        return headers

    return asyncio.run(make())


@contextmanager
def sse(
    api: Api, path: str, params: dict[str, str], headers: dict[str, str]
) -> Iterator[Iterator[ServerSentEvent]]:
    """A signed-in user's stream; a read that waits `DEADLINE_S` fails the test."""
    with (
        httpx.Client(base_url=api.http, timeout=DEADLINE_S, headers=headers) as http,
        connect_sse(http, "GET", path, params=params) as source,
    ):
        yield iter(source.iter_sse())


def on_live_board(api: Api, headers: dict[str, str], symbol: str) -> None:
    """Produce a row of `symbol` and wait until the (paying) user's live board has it."""
    now_ms = time.time_ns() // 1_000_000
    api.produce(topics.RANKS, [RankRow("binance", "spot", symbol, now_ms, 1.0)])

    def listed() -> bool:
        board = httpx.get(
            api.http + "/api/v1/scan", params={"watch": symbol}, headers=headers
        ).json()
        return bool(board["rows"])

    eventually(listed, f"{symbol} never reached the live board")


@pytest.fixture(scope="module")
def billed(
    kafka_bootstrap: str,
    clickhouse_dsn: str,
    ch: Client,
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Api, dict[str, dict[str, str]]]]:
    settings = live_api_settings(
        tmp_path_factory.mktemp("billed-api"),
        kafka_bootstrap,
        clickhouse_dsn,
        database,
        live_topics(kafka_bootstrap, 3),
        3,
        heartbeat_s=60.0,
        board_interval_s=0.2,
        accounts=AccountsSettings(
            secret_key=SecretStr(SECRET),
            argon2_time_cost=1,
            argon2_memory_kib=8,
            free_delay_s=DELAY_S,
            billing=BillingSettings(
                stripe_api_key=SecretStr("sk_test_entitlements"),
                plans=[PlanSettings(id="pro", stripe_price="price_pro", features=list(FEATURES))],
            ),
        ),
    )
    users = sign_in(settings)
    server = Api(settings, Store(ch, database))
    server.start()
    try:
        health = server.http + "/api/v1/health"
        eventually(lambda: httpx.get(health).json()["live"] is True, "the feed did not start")
        yield server, users
    finally:
        server.stop()


def test_the_paying_users_board_is_live_and_the_free_users_runs_behind(
    billed: tuple[Api, dict[str, dict[str, str]]],
) -> None:
    api, users = billed
    params = {"watch": "ENTAUSDT"}
    with (
        sse(api, "/api/v1/stream/ranks", params, users["paid"]) as paid,
        sse(api, "/api/v1/stream/ranks", params, users["free"]) as free,
    ):
        assert next(paid).json()["rows"] == []
        assert next(free).json()["rows"] == []
        now_ms = time.time_ns() // 1_000_000
        produced = time.monotonic()
        api.produce(topics.RANKS, [RankRow("binance", "spot", "ENTAUSDT", now_ms, 2.0)])
        live = next(paid)
        assert live.event == "diff"
        assert live.json()["upsert"][0]["key"] == "binance:spot:ENTAUSDT"
        late = next(free)
        seen = time.monotonic()
        assert late.event == "diff"
        assert late.json()["upsert"][0]["key"] == "binance:spot:ENTAUSDT"
        assert late.json()["as_of_ms"] == now_ms
        # The row reached the API after it was produced and waited out the delay there.
        assert seen - produced >= DELAY_S
    with httpx.Client(base_url=api.http, timeout=DEADLINE_S) as http:
        board = http.get("/api/v1/scan", params=params, headers=users["free"]).json()
        assert [r["symbol"] for r in board["rows"]] == ["ENTAUSDT"]


def test_the_free_users_1s_candle_stream_is_a_403_before_any_stream(
    billed: tuple[Api, dict[str, dict[str, str]]],
) -> None:
    api, users = billed
    on_live_board(api, users["paid"], "ENTCUSDT")
    params = {"exchange": "binance", "market": "spot", "symbol": "ENTCUSDT", "interval": "1s"}
    with httpx.Client(base_url=api.http, timeout=DEADLINE_S) as http:
        for who in (users["free"], {}):
            refused = http.get("/api/v1/stream/candles", params=params, headers=who)
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/json"
            assert refused.json()["error"]["code"] == "not_entitled"
            signals = http.get("/api/v1/stream/signals", headers=who)
            assert signals.status_code == 403
        with http.stream(
            "GET", "/api/v1/stream/candles", params=params, headers=users["paid"]
        ) as allowed:
            assert allowed.status_code == 200
            assert allowed.headers["content-type"].startswith("text/event-stream")
    eventually(lambda: not api.app.state.hub.clients, "the streams were never let go")
