"""The accounts store on PostgreSQL (a real server from the pgserver wheel): the same
migrations, sessions, per-user state and billing mirror as on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, text

from api.accounts import paper_accounts, user_state
from api.accounts.billing import Billing
from api.accounts.billing_webhooks import apply_event
from api.accounts.db import AccountsDb
from api.accounts.models import BillingCustomer, StripeEvent, User
from api.accounts.tokens import TokenService
from api.accounts.user_state_models import WatchlistIn
from api.errors import Forbidden, NotFound, Unauthorized
from api.settings import AccountsSettings, BillingSettings, PlanSettings
from tickscan.settings import Settings

pytestmark = pytest.mark.integration


T = TypeVar("T")


def on_postgres(url: str, scenario: Callable[[AccountsDb], Awaitable[T]]) -> T:
    """Run a scenario on a freshly migrated schema, in one event loop (asyncpg's pooled
    connections belong to the loop that opened them)."""

    async def run() -> T:
        db = AccountsDb(url)
        try:
            async with db.engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
            await db.migrate()
            return await scenario(db)
        finally:
            await db.aclose()

    return asyncio.run(run())


async def new_user(db: AccountsDb, email: str = "ada@example.com") -> int:
    async with db.session() as session:
        user = User(email=email, created_at=datetime.now(UTC))
        session.add(user)
        await session.flush()
        return user.id


def test_migrations_make_every_table_with_aware_times(postgres_url: str) -> None:
    async def check(db: AccountsDb) -> tuple[set[str], datetime | None]:
        async with db.session() as session:
            names = await session.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            user = User(email="x@example.com", created_at=datetime.now(UTC))
            session.add(user)
            await session.flush()
            created = await session.scalar(select(User.created_at).where(User.id == user.id))
            return set(names), created

    tables, created = on_postgres(postgres_url, check)
    assert {
        "users",
        "refresh_tokens",
        "watchlists",
        "billing_customers",
        "paper_accounts",
        "alembic_version",
    } <= tables
    assert created is not None and created.tzinfo is not None


def test_a_reused_refresh_token_ends_its_session_on_postgres(postgres_url: str) -> None:
    tokens = TokenService(b"k" * 48, 900, 3600)

    async def scenario(db: AccountsDb) -> None:
        user_id = await new_user(db)
        async with db.session() as session:
            user = await session.get(User, user_id)
            assert user is not None
            first = await tokens.start(session, user)
        async with db.session() as session:
            second = await tokens.refresh(session, first.refresh_token)
        with pytest.raises(Unauthorized):
            async with db.session() as session:
                await tokens.refresh(session, first.refresh_token)
        with pytest.raises(Unauthorized):
            async with db.session() as session:
                await tokens.check_session(session, tokens.read_access(second.access_token))

    on_postgres(postgres_url, scenario)


def test_user_state_changes_bump_one_version_per_change(postgres_url: str) -> None:
    async def scenario(db: AccountsDb) -> tuple[int, int, list[str]]:
        user_id = await new_user(db)
        async with db.session() as session:
            made = await user_state.create_watchlist(
                session, user_id, WatchlistIn(name="majors", symbols=["BTCUSDT"])
            )
        async with db.session() as session:
            added = await user_state.add_symbol(session, user_id, made.value.id, "ETHUSDT")
        async with db.session() as session:
            version = await user_state.state_version(session, user_id)
        return made.version, version, list(added.value.symbols)

    first, last, symbols = on_postgres(postgres_url, scenario)
    assert (first, last) == (1, 2)
    assert symbols == ["BTCUSDT", "ETHUSDT"]


def test_paper_accounts_are_their_owners_only_within_the_plan_on_postgres(
    postgres_url: str,
) -> None:
    async def scenario(db: AccountsDb) -> tuple[list[str], str, str]:
        ada, bob = await new_user(db), await new_user(db, "bob@example.com")
        made = []
        for name in ("one", "two"):
            async with db.session() as session:
                row = await paper_accounts.add(
                    session, ada, name=name, market="usdm", exchange="binance", limit=2
                )
                made.append(row.id)
        with pytest.raises(Forbidden) as third:
            async with db.session() as session:
                await paper_accounts.add(
                    session, ada, name="three", market="spot", exchange="binance", limit=2
                )
        with pytest.raises(NotFound) as not_bobs:
            async with db.reading() as session:
                await paper_accounts.owned(session, bob, made[0])
        async with db.session() as session:
            await paper_accounts.remove(session, made[1])
        async with db.reading() as session:
            left = [row.id for row in await paper_accounts.of_user(session, ada)]
            assert (await paper_accounts.owned(session, ada, made[0])).name == "one"
        assert left == made[:1]
        return left, third.value.code, not_bobs.value.code

    left, third, not_bobs = on_postgres(postgres_url, scenario)
    assert len(left) == 1 and (third, not_bobs) == ("limit_reached", "unknown_account")


def test_a_replayed_stripe_event_changes_nothing_on_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        accounts=AccountsSettings(
            billing=BillingSettings(
                stripe_api_key="sk_test_x",  # type: ignore[arg-type]
                plans=[PlanSettings(id="pro", stripe_price="price_pro", features=["signals"])],
            )
        ),
    )
    billing = Billing(settings)

    def event(created: int, status: str) -> dict[str, Any]:
        return {
            "id": f"evt_{created}",
            "type": "customer.subscription.updated",
            "created": created,
            "data": {
                "object": {
                    "id": "sub_1",
                    "customer": "cus_1",
                    "status": status,
                    "cancel_at_period_end": False,
                    "items": {"data": [{"price": {"id": "price_pro"}, "current_period_end": 2e9}]},
                }
            },
        }

    async def scenario(db: AccountsDb) -> tuple[list[str], str | None, int]:
        user_id = await new_user(db)
        async with db.session() as session:
            session.add(
                BillingCustomer(
                    user_id=user_id, stripe_customer_id="cus_1", updated_at=datetime.now(UTC)
                )
            )
        results: list[str] = []
        for step in (event(100, "active"), event(200, "canceled"), event(100, "active")):
            async with db.session() as session:
                results.append((await apply_event(session, step, billing)).result)
        async with db.session() as session:
            row = await session.get(BillingCustomer, user_id)
            count = await session.scalar(select(func.count()).select_from(StripeEvent))
        await billing.aclose()
        return results, row.status if row else None, count or 0

    results, status, recorded = on_postgres(postgres_url, scenario)
    assert results == ["applied", "applied", "replayed"]
    assert (status, recorded) == ("canceled", 2)
