"""The accounts store under concurrent requests, over real HTTP to uvicorn (the server
`tickscan run` starts), on SQLite and on PostgreSQL: parallel sign-ups all succeed, parallel
wrong passwords lock the account, and what a request wrote is there for the next one.

An in-process TestClient sends one request at a time, so these go through a socket.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from api.accounts.db import AccountsDb
from tests.integration.accounts_site import PASSWORD, WRONG, Outbox, served, site_settings
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

PARALLEL = 50


async def _empty_postgres(url: str) -> None:
    db = AccountsDb(url)
    try:
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await db.aclose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty accounts database: SQLite in a file, or the module's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'accounts.db'}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_empty_postgres(url))
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return site_settings(tmp_path, database_url)


def client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        timeout=60,
        limits=httpx.Limits(max_connections=PARALLEL * 2, max_keepalive_connections=PARALLEL),
    )


async def sign_up(http: httpx.AsyncClient, email: str) -> int:
    response = await http.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    return response.status_code


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/api/v1/auth/login", json={"email": email, "password": password})


async def verify(http: httpx.AsyncClient, outbox: Outbox, email: str) -> int:
    """Sign up and follow the verification link: the two answers' status codes (as a
    number, e.g. 202200), so that a gathered scenario can compare them all at the end."""
    signed_up = await sign_up(http, email)
    if signed_up != 202:
        return signed_up * 1000
    token = outbox.token(email, "verify")
    verified = await http.post("/api/v1/auth/verify", json={"token": token})
    return signed_up * 1000 + verified.status_code


VERIFIED = 202200


def test_parallel_sign_ups_all_succeed(settings: Settings) -> None:
    # 40 new addresses, and one address 10 times at once (its race ends in one account).
    emails = [f"user{i}@example.com" for i in range(PARALLEL - 10)] + ["twin@example.com"] * 10

    async def scenario(url: str) -> Counter[int]:
        async with client(url) as http:
            return Counter(await asyncio.gather(*(sign_up(http, email) for email in emails)))

    with served(settings) as (url, outbox):
        codes = asyncio.run(scenario(url))
    assert codes == Counter({202: PARALLEL})
    for email in set(emails) - {"twin@example.com"}:
        assert outbox.templates(email) == ["verify"]
    assert sorted(outbox.templates("twin@example.com")) == ["signup_exists"] * 9 + ["verify"]


def test_parallel_wrong_passwords_lock_the_account(settings: Settings) -> None:
    email = "ada@example.com"

    async def scenario(url: str, outbox: Outbox) -> tuple[int, Counter[int], int]:
        async with client(url) as http:
            verified = await verify(http, outbox, email)
            wrong = await asyncio.gather(*(login(http, email, WRONG) for _ in range(PARALLEL)))
            right = await login(http, email)
        return verified, Counter(r.status_code for r in wrong), right.status_code

    with served(settings) as (url, outbox):
        verified, wrong, right = asyncio.run(scenario(url, outbox))
    assert verified == VERIFIED
    assert wrong == Counter({401: PARALLEL})
    assert right == 401  # locked: even the right password is refused now
    # Five failures in a row lock it once; the others are refused without counting.
    assert outbox.templates(email).count("locked") == 1


def test_a_verified_email_signs_in_at_once(settings: Settings) -> None:
    emails = [f"new{i}@example.com" for i in range(20)]

    async def verify_then_login(
        http: httpx.AsyncClient, outbox: Outbox, email: str
    ) -> tuple[int, int]:
        return await verify(http, outbox, email), (await login(http, email)).status_code

    async def scenario(url: str, outbox: Outbox) -> list[tuple[int, int]]:
        async with client(url) as http:
            return await asyncio.gather(*(verify_then_login(http, outbox, e) for e in emails))

    with served(settings) as (url, outbox):
        answers = asyncio.run(scenario(url, outbox))
    assert answers == [(VERIFIED, 200)] * len(emails)


def test_a_logged_out_session_is_refused_at_once(settings: Settings) -> None:
    emails = [f"out{i}@example.com" for i in range(20)]

    async def logout_then_me(
        http: httpx.AsyncClient, outbox: Outbox, email: str
    ) -> tuple[int, ...]:
        verified = await verify(http, outbox, email)
        signed_in = await login(http, email)
        if signed_in.status_code != 200:
            return verified, signed_in.status_code
        bearer = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        logout = await http.post("/api/v1/auth/logout", headers=bearer)
        me = await http.get("/api/v1/me", headers=bearer)
        return verified, signed_in.status_code, logout.status_code, me.status_code

    async def scenario(url: str, outbox: Outbox) -> list[tuple[int, ...]]:
        async with client(url) as http:
            return await asyncio.gather(*(logout_then_me(http, outbox, e) for e in emails))

    with served(settings) as (url, outbox):
        answers = asyncio.run(scenario(url, outbox))
    assert answers == [(VERIFIED, 200, 204, 401)] * len(emails)


def test_a_refresh_token_sent_twice_at_once_ends_its_session(settings: Settings) -> None:
    email = "eve@example.com"

    async def scenario(url: str, outbox: Outbox) -> tuple[int, int, Counter[int], Counter[int]]:
        async with client(url) as http:
            verified = await verify(http, outbox, email)
            signed_in = await login(http, email)
            token = signed_in.cookies.get("ts_refresh") if signed_in.status_code == 200 else ""
            refreshes = await asyncio.gather(
                *(
                    http.post("/api/v1/auth/refresh", json={"refresh_token": token})
                    for _ in range(10)
                )
            )
            # Whatever pair came out of the race must be dead: the token was used twice.
            pairs = [r.json() for r in refreshes if r.status_code == 200]
            after = await asyncio.gather(
                *(
                    http.get("/api/v1/me", headers={"Authorization": f"Bearer {p['access_token']}"})
                    for p in pairs
                )
            )
        return (
            verified,
            signed_in.status_code,
            Counter(r.status_code for r in refreshes),
            Counter(r.status_code for r in after),
        )

    with served(settings) as (url, outbox):
        verified, signed_in, refreshes, after = asyncio.run(scenario(url, outbox))
    assert (verified, signed_in) == (VERIFIED, 200)
    assert refreshes == Counter({200: 1, 401: 9})  # the first use wins, the others are reuse
    assert after == Counter({401: 1})
