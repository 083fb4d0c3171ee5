"""Sessions: access JWTs, refresh rotation, reuse detection, logging out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import func, select

from api.accounts.db import AccountsDb
from api.accounts.models import RefreshToken, User
from api.accounts.tokens import TokenPair, TokenService, load_secret
from api.errors import Unauthorized
from api.settings import AccountsSettings
from tests.unit.api.sessions import run
from tickscan.settings import Settings

SECRET = b"s" * 48


def service(access_ttl_s: int = 900) -> TokenService:
    return TokenService(SECRET, access_ttl_s, 3600)


def new_user(db: AccountsDb) -> User:
    async def add(session: object) -> User:
        user = User(email="ada@example.com", created_at=datetime.now(UTC))
        session.add(user)  # type: ignore[attr-defined]
        await session.flush()  # type: ignore[attr-defined]
        return user

    return run(db, add)


def test_an_access_token_names_its_user_and_session() -> None:
    tokens = service()
    access = tokens.read_access(tokens.access_token(7, "abc"))
    assert (access.user_id, access.session) == (7, "abc")


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: TokenService(b"x" * 48, 900, 60).access_token(7, "abc"),  # other key
        lambda t: jwt.encode(  # a token of another kind, well signed
            {"alg": "HS256"},
            {"iss": "tickscan", "sub": "7", "sid": "abc", "exp": int(time.time()) + 60},
            OctKey.import_key(SECRET),
        ),
        lambda t: "not-a-jwt",
    ],
)
def test_forged_or_foreign_access_tokens_are_refused(forge: Callable[[str], str]) -> None:
    tokens = service()
    with pytest.raises(Unauthorized):
        tokens.read_access(forge(tokens.access_token(7, "abc")))


def test_an_expired_access_token_is_refused() -> None:
    tokens = service(access_ttl_s=-10)
    with pytest.raises(Unauthorized):
        tokens.read_access(tokens.access_token(7, "abc"))


def test_refresh_rotates_and_a_reused_token_ends_the_session(accounts_db: AccountsDb) -> None:
    tokens = service()
    user = new_user(accounts_db)
    first: TokenPair = run(accounts_db, tokens.start, user)
    second: TokenPair = run(accounts_db, tokens.refresh, first.refresh_token)
    assert second.session == first.session and second.refresh_token != first.refresh_token
    run(accounts_db, tokens.check_session, tokens.read_access(second.access_token))
    with pytest.raises(Unauthorized):  # the first token again: it was copied
        run(accounts_db, tokens.refresh, first.refresh_token)
    with pytest.raises(Unauthorized):  # ...so the thief's successor is dead too
        run(accounts_db, tokens.refresh, second.refresh_token)
    with pytest.raises(Unauthorized):
        run(accounts_db, tokens.check_session, tokens.read_access(second.access_token))


def test_logging_out_everywhere_ends_every_session_of_the_user(accounts_db: AccountsDb) -> None:
    tokens = service()
    user = new_user(accounts_db)
    laptop: TokenPair = run(accounts_db, tokens.start, user)
    phone: TokenPair = run(accounts_db, tokens.start, user)
    run(accounts_db, tokens.end, laptop.session)
    with pytest.raises(Unauthorized):
        run(accounts_db, tokens.check_session, tokens.read_access(laptop.access_token))
    run(accounts_db, tokens.check_session, tokens.read_access(phone.access_token))
    run(accounts_db, tokens.end_all, user.id)
    with pytest.raises(Unauthorized):
        run(accounts_db, tokens.refresh, phone.refresh_token)


def test_only_a_digest_of_a_refresh_token_is_stored(accounts_db: AccountsDb) -> None:
    tokens = service()
    pair: TokenPair = run(accounts_db, tokens.start, new_user(accounts_db))

    async def stored(session: object) -> list[str]:
        rows = await session.scalars(select(RefreshToken.token_hash))  # type: ignore[attr-defined]
        return list(rows)

    hashes = run(accounts_db, stored)
    assert len(hashes) == 1 and pair.refresh_token not in hashes[0]


def test_times_come_back_timezone_aware_from_sqlite(accounts_db: AccountsDb) -> None:
    user = new_user(accounts_db)

    async def read(session: object) -> datetime:
        return await session.scalar(select(User.created_at).where(User.id == user.id))  # type: ignore[attr-defined,no-any-return]

    assert run(accounts_db, read).tzinfo is not None


def test_deleting_a_user_deletes_their_sessions(accounts_db: AccountsDb) -> None:
    tokens = service()
    user = new_user(accounts_db)
    run(accounts_db, tokens.start, user)

    async def delete(session: object) -> int:
        await session.delete(await session.get(User, user.id))  # type: ignore[attr-defined]
        await session.flush()  # type: ignore[attr-defined]
        return await session.scalar(select(func.count()).select_from(RefreshToken))  # type: ignore[attr-defined,no-any-return]

    assert run(accounts_db, delete) == 0


def test_a_generated_secret_is_kept_for_the_next_start(tmp_path: object) -> None:
    settings = Settings(data_dir=tmp_path)  # type: ignore[arg-type]
    first = load_secret(settings)
    assert load_secret(settings) == first and len(first) >= 32
    configured = Settings(accounts=AccountsSettings(secret_key="k" * 40))  # type: ignore[arg-type]
    assert load_secret(configured) == b"k" * 40


def test_a_savepoint_does_not_commit_the_outer_transaction(accounts_db: AccountsDb) -> None:
    async def scenario() -> int:
        with pytest.raises(RuntimeError):
            async with accounts_db.session() as session:
                async with session.begin_nested():
                    session.add(User(email="nested@example.com", created_at=datetime.now(UTC)))
                raise RuntimeError("the request failed after the savepoint")
        async with accounts_db.session() as session:
            return await session.scalar(select(func.count()).select_from(User)) or 0

    assert asyncio.run(scenario()) == 0
