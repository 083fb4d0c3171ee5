"""Emailed link tokens: single use, time-limited, one purpose each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts import email_tokens
from api.accounts.db import AccountsDb
from api.accounts.models import EmailToken, User
from api.errors import InvalidRequest
from tests.unit.api.sessions import run


@pytest.fixture
def user_id(accounts_db: AccountsDb) -> int:
    async def add(session: AsyncSession) -> int:
        user = User(email="ada@example.com", created_at=datetime.now(UTC))
        session.add(user)
        await session.flush()
        return user.id

    return run(accounts_db, add)


def issue(db: AccountsDb, user_id: int, purpose: email_tokens.Purpose) -> str:
    return run(db, lambda s: email_tokens.issue(s, user_id, purpose, 3600))


def consume(db: AccountsDb, token: str, purpose: email_tokens.Purpose) -> int:
    return run(db, lambda s: email_tokens.consume(s, token, purpose))


def refused(db: AccountsDb, token: str, purpose: email_tokens.Purpose) -> None:
    with pytest.raises(InvalidRequest, match=r"^this link is invalid or has expired$") as error:
        consume(db, token, purpose)
    assert error.value.code == "invalid_link"


def test_a_token_works_once_and_only_its_digest_is_stored(
    accounts_db: AccountsDb, user_id: int
) -> None:
    token = issue(accounts_db, user_id, "verify")
    stored = run(accounts_db, lambda s: s.scalar(select(EmailToken.token_hash)))
    assert stored is not None and token not in stored
    assert consume(accounts_db, token, "verify") == user_id
    refused(accounts_db, token, "verify")


def test_an_expired_an_unknown_and_a_wrong_purpose_token_are_refused_alike(
    accounts_db: AccountsDb, user_id: int
) -> None:
    reset = issue(accounts_db, user_id, "reset")
    refused(accounts_db, reset, "verify")
    refused(accounts_db, "no-such-token", "reset")
    run(
        accounts_db,
        lambda s: s.execute(
            update(EmailToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        ),
    )
    refused(accounts_db, reset, "reset")


def test_using_one_link_voids_the_others_of_its_purpose_only(
    accounts_db: AccountsDb, user_id: int
) -> None:
    first, second = issue(accounts_db, user_id, "reset"), issue(accounts_db, user_id, "reset")
    verify = issue(accounts_db, user_id, "verify")
    consume(accounts_db, second, "reset")
    refused(accounts_db, first, "reset")
    assert consume(accounts_db, verify, "verify") == user_id
