"""Sign-In with Ethereum: real EIP-4361 messages signed by real keys, through the routes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from fastapi.testclient import TestClient
from siwe import ISO8601Datetime, SiweMessage
from sqlalchemy import select, update

from api.accounts.db import AccountsDb
from api.accounts.deps import ACCESS_COOKIE, Accounts
from api.accounts.models import SiweNonce, User
from api.accounts.siwe_login import NONCE_TTL_S
from api.accounts.tokens import TokenService
from api.errors import install_error_handlers
from api.routes import auth_siwe
from api.settings import AccountsSettings
from tickscan.settings import Settings

SITE = "https://scan.example:8443"
DOMAIN = "scan.example:8443"
VERIFY = "/api/v1/auth/siwe/verify"
T = TypeVar("T")


def make_accounts(db: AccountsDb, tmp_path: Path, rate: str = "20/minute") -> Accounts:
    account = AccountsSettings(public_url=SITE, auth_rate_limit=rate)
    settings = Settings(data_dir=tmp_path, accounts=account)
    return Accounts(settings, db, TokenService(b"s" * 48, 900, 3600))


def make_client(accounts: Accounts) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(auth_siwe.router)
    app.state.accounts = accounts
    return TestClient(app, base_url=SITE)


@pytest.fixture
def accounts(accounts_db: AccountsDb, tmp_path: Path) -> Accounts:
    return make_accounts(accounts_db, tmp_path)


@pytest.fixture
def client(accounts: Accounts) -> Iterator[TestClient]:
    with make_client(accounts) as c:
        yield c


@pytest.fixture
def wallet() -> LocalAccount:
    return Account.create()


def new_nonce(client: TestClient) -> str:
    response = client.get("/api/v1/auth/siwe/nonce")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    return str(response.json()["nonce"])


def message(wallet: LocalAccount, nonce: str, **fields: object) -> str:
    issued = datetime.now(UTC)
    defaults: dict[str, object] = {
        "scheme": "https",
        "domain": DOMAIN,
        "address": wallet.address,
        "statement": "Sign in to tickscan",
        "uri": SITE,
        "version": "1",
        "chain_id": 1,
        "nonce": nonce,
        "issued_at": ISO8601Datetime.from_datetime(issued),
        "expiration_time": ISO8601Datetime.from_datetime(issued + timedelta(minutes=5)),
    }
    return SiweMessage(**{**defaults, **fields}).prepare_message()


def sign(wallet: LocalAccount, text: str) -> str:
    return "0x" + wallet.sign_message(encode_defunct(text=text)).signature.hex()


def sign_in(client: TestClient, wallet: LocalAccount, **fields: object) -> dict[str, object]:
    text = message(wallet, new_nonce(client), **fields)
    return {"message": text, "signature": sign(wallet, text)}


def refused(client: TestClient, body: dict[str, object], says: str) -> None:
    response = client.post(VERIFY, json=body)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert says in error["message"]


def rows(accounts: Accounts, model: type[T]) -> list[T]:
    async def go() -> list[T]:
        async with accounts.db.session() as db:
            return list(await db.scalars(select(model)))

    return asyncio.run(go())


def expire_nonces(accounts: Accounts) -> None:
    async def go() -> None:
        async with accounts.db.session() as db:
            gone = datetime.now(UTC) - timedelta(seconds=1)
            await db.execute(update(SiweNonce).values(expires_at=gone))

    asyncio.run(go())


def test_a_signed_message_signs_the_wallet_in(
    client: TestClient, accounts: Accounts, wallet: LocalAccount
) -> None:
    response = client.post(VERIFY, json=sign_in(client, wallet))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["user"]["wallet_address"] == wallet.address
    assert (body["user"]["email"], body["user"]["email_verified"]) == (None, False)
    access = accounts.tokens.read_access(body["access_token"])
    assert access.user_id == body["user"]["id"]
    assert client.cookies.get(ACCESS_COOKIE) == body["access_token"]
    assert [u.wallet_address for u in rows(accounts, User)] == [wallet.address]


def test_the_same_wallet_signs_in_to_the_same_account(
    client: TestClient, wallet: LocalAccount
) -> None:
    first = client.post(VERIFY, json=sign_in(client, wallet)).json()["user"]["id"]
    second = client.post(VERIFY, json=sign_in(client, wallet)).json()["user"]["id"]
    other = client.post(VERIFY, json=sign_in(client, Account.create())).json()["user"]["id"]
    assert first == second
    assert other != first


def test_nonces_are_fresh_and_live_ten_minutes(client: TestClient, accounts: Accounts) -> None:
    nonces = {new_nonce(client) for _ in range(3)}
    assert len(nonces) == 3
    assert all(len(n) >= 8 and n.isalnum() for n in nonces)
    stored = rows(accounts, SiweNonce)
    assert {r.nonce for r in stored} == nonces
    assert {r.expires_at - r.created_at for r in stored} == {timedelta(seconds=NONCE_TTL_S)}


def test_a_replayed_message_is_refused(client: TestClient, wallet: LocalAccount) -> None:
    body = sign_in(client, wallet)
    assert client.post(VERIFY, json=body).status_code == 200
    refused(client, body, "nonce is unknown, used or expired")


def test_a_message_for_another_domain_is_refused(client: TestClient, wallet: LocalAccount) -> None:
    refused(client, sign_in(client, wallet, domain="evil.example"), "another site")


def test_a_message_for_another_origin_is_refused(client: TestClient, wallet: LocalAccount) -> None:
    refused(client, sign_in(client, wallet, uri="https://evil.example/"), "URI is on another site")
    refused(client, sign_in(client, wallet, scheme="http"), "another site")


def test_an_expired_message_is_refused(client: TestClient, wallet: LocalAccount) -> None:
    past = ISO8601Datetime.from_datetime(datetime.now(UTC) - timedelta(seconds=1))
    refused(client, sign_in(client, wallet, expiration_time=past), "expired")


def test_a_message_issued_long_ago_or_in_the_future_is_refused(
    client: TestClient, wallet: LocalAccount
) -> None:
    moment = datetime.now(UTC)
    old = ISO8601Datetime.from_datetime(moment - timedelta(seconds=NONCE_TTL_S + 60))
    refused(client, sign_in(client, wallet, issued_at=old, expiration_time=None), "expired")
    ahead = ISO8601Datetime.from_datetime(moment + timedelta(hours=1))
    refused(client, sign_in(client, wallet, issued_at=ahead, expiration_time=None), "future")


def test_a_message_not_valid_yet_is_refused(client: TestClient, wallet: LocalAccount) -> None:
    later = ISO8601Datetime.from_datetime(datetime.now(UTC) + timedelta(minutes=2))
    refused(client, sign_in(client, wallet, not_before=later), "not valid yet")


def test_a_signature_by_another_key_is_refused(client: TestClient, wallet: LocalAccount) -> None:
    body = sign_in(client, wallet)
    body["signature"] = sign(Account.create(), str(body["message"]))
    refused(client, body, "signature does not match")


def test_a_tampered_message_is_refused(client: TestClient, wallet: LocalAccount) -> None:
    body = sign_in(client, wallet)
    body["message"] = str(body["message"]).replace("Chain ID: 1", "Chain ID: 137")
    refused(client, body, "signature does not match")


def test_a_message_claiming_another_address_is_refused(
    client: TestClient, wallet: LocalAccount
) -> None:
    victim = Account.create()
    text = message(victim, new_nonce(client))
    refused(client, {"message": text, "signature": sign(wallet, text)}, "signature does not match")


def test_a_nonce_we_never_issued_is_refused(client: TestClient, wallet: LocalAccount) -> None:
    text = message(wallet, "abcdef0123456789")
    refused(client, {"message": text, "signature": sign(wallet, text)}, "nonce is unknown")


def test_an_expired_nonce_is_refused_and_later_deleted(
    client: TestClient, accounts: Accounts, wallet: LocalAccount
) -> None:
    body = sign_in(client, wallet)
    expire_nonces(accounts)

    refused(client, body, "nonce is unknown, used or expired")

    fresh = new_nonce(client)
    assert [r.nonce for r in rows(accounts, SiweNonce)] == [fresh]


def test_a_refused_signature_leaves_the_nonce_usable(
    client: TestClient, wallet: LocalAccount
) -> None:
    body = sign_in(client, wallet)
    forged = {**body, "signature": sign(Account.create(), str(body["message"]))}
    refused(client, forged, "signature does not match")
    assert client.post(VERIFY, json=body).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"message": "sign me in please", "signature": "0x00"},
        {"message": "", "signature": ""},
    ],
)
def test_text_that_is_not_a_sign_in_message_is_refused(
    client: TestClient, body: dict[str, object]
) -> None:
    refused(client, body, "not an EIP-4361 sign-in message")


def test_a_malformed_signature_is_refused(client: TestClient, wallet: LocalAccount) -> None:
    body = sign_in(client, wallet)
    refused(client, {**body, "signature": "0xnothex"}, "signature does not match")


def test_sign_in_attempts_are_rate_limited(
    accounts_db: AccountsDb, tmp_path: Path, wallet: LocalAccount
) -> None:
    with make_client(make_accounts(accounts_db, tmp_path, rate="2/minute")) as client:
        body = sign_in(client, wallet)
        forged = {**body, "signature": sign(Account.create(), str(body["message"]))}
        assert [client.post(VERIFY, json=forged).status_code for _ in range(2)] == [401, 401]

        third = client.post(VERIFY, json=body)

        assert third.status_code == 429
        assert int(third.headers["retry-after"]) >= 1
