"""The account lock-out after failed logins."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy import update

from api.accounts.db import AccountsDb
from api.accounts.models import User
from api.accounts.ratelimit import admit, count_failure, record_success
from api.settings import AccountsSettings

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
T = TypeVar("T")


def on_accounts(tmp_path: Path, scenario: Callable[[AccountsDb, int], Awaitable[T]]) -> T:
    """Run a scenario on a migrated SQLite store holding one account (`ada`, with a
    password hash "H")."""

    async def run() -> T:
        db = AccountsDb(f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}")
        try:
            await db.migrate()
            async with db.session() as session:
                ada = User(email="ada@example.com", password_hash="H", created_at=T0)
                session.add(ada)
                await session.flush()
            return await scenario(db, ada.id)
        finally:
            await db.aclose()

    return asyncio.run(run())


async def fail(db: AccountsDb, user_id: int, settings: AccountsSettings, at: datetime) -> bool:
    async with db.session() as session:
        return await count_failure(session, user_id, settings, at)


async def login(db: AccountsDb, user_id: int, at: datetime) -> bool:
    async with db.session() as session:
        return await admit(session, user_id, "H", at)


def test_the_account_locks_at_the_configured_failure(tmp_path: Path) -> None:
    settings = AccountsSettings(login_attempts=3, lockout_s=600)

    async def scenario(db: AccountsDb, ada: int) -> tuple[list[bool], list[bool]]:
        failures = [await fail(db, ada, settings, T0) for _ in range(4)]
        logins = [
            await login(db, ada, T0 + timedelta(seconds=599)),
            await login(db, ada, T0 + timedelta(seconds=600)),
        ]
        return failures, logins

    failures, logins = on_accounts(tmp_path, scenario)
    # The third locks it; the fourth, while locked, is not counted and locks nothing.
    assert failures == [False, False, True, False]
    assert logins == [False, True]


def test_a_success_forgets_earlier_failures(tmp_path: Path) -> None:
    settings = AccountsSettings(login_attempts=3)

    async def scenario(db: AccountsDb, ada: int) -> list[bool]:
        await fail(db, ada, settings, T0)
        await fail(db, ada, settings, T0)
        assert await login(db, ada, T0)
        return [await fail(db, ada, settings, T0) for _ in range(3)]

    assert on_accounts(tmp_path, scenario) == [False, False, True]


def test_failures_at_once_are_each_counted(tmp_path: Path) -> None:
    settings = AccountsSettings(login_attempts=5)

    async def scenario(db: AccountsDb, ada: int) -> tuple[list[bool], bool]:
        locked = await asyncio.gather(*(fail(db, ada, settings, T0) for _ in range(12)))
        return list(locked), await login(db, ada, T0)

    locked, admitted = on_accounts(tmp_path, scenario)
    assert locked.count(True) == 1
    assert not admitted


def test_a_changed_password_is_not_admitted_with_the_hash_checked_before(
    tmp_path: Path,
) -> None:
    async def scenario(db: AccountsDb, ada: int) -> bool:
        async with db.session() as session:
            await session.execute(update(User).values(password_hash="new"))
        return await login(db, ada, T0)

    assert on_accounts(tmp_path, scenario) is False


def test_an_unlock_lifts_the_lock_out(tmp_path: Path) -> None:
    settings = AccountsSettings(login_attempts=1)

    async def scenario(db: AccountsDb, ada: int) -> bool:
        await fail(db, ada, settings, T0)
        async with db.session() as session:
            user = await session.get(User, ada)
            assert user is not None
            record_success(user)
        return await login(db, ada, T0)

    assert on_accounts(tmp_path, scenario) is True
