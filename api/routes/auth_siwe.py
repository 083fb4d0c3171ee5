"""`/api/v1/auth/siwe`: Sign-In with Ethereum (EIP-4361) — a nonce, then a signed message."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from api.accounts.deps import AccountsDep, DbDep
from api.accounts.ratelimit import rate_limited
from api.accounts.siwe_login import issue_nonce, verify_message, wallet_user

router = APIRouter(prefix="/api/v1/auth/siwe", tags=["auth"])


class NonceOut(BaseModel):
    """The nonce to put in the message the wallet signs."""

    nonce: str


class SiweIn(BaseModel):
    """A signed sign-in message."""

    message: str = Field(max_length=4096, description="The EIP-4361 message as signed.")
    signature: str = Field(max_length=200, description="The EIP-191 signature, hex.")


class UserOut(BaseModel):
    """Who signed in."""

    id: int
    email: str | None
    email_verified: bool
    wallet_address: str | None


class SessionOut(BaseModel):
    """A new session (the same body as a password login); the tokens are also in cookies."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserOut


@router.get("/nonce", dependencies=[Depends(rate_limited("siwe_nonce"))])
async def nonce(db: DbDep, response: Response) -> NonceOut:
    """A single-use nonce for the next sign-in message (valid 10 minutes)."""
    response.headers["Cache-Control"] = "no-store"
    return NonceOut(nonce=await issue_nonce(db))


@router.post(
    "/verify",
    dependencies=[Depends(rate_limited("siwe_verify"))],
    responses={401: {"description": "A bad message, signature or nonce, or one already used"}},
)
async def verify(body: SiweIn, accounts: AccountsDep, db: DbDep, response: Response) -> SessionOut:
    """Sign in with a message signed by a wallet; its first sign-in makes the account.

    A bad message, signature or nonce, or a message already used, is a 401 saying which.
    """
    public_url = accounts.settings.accounts.public_url
    address = await verify_message(db, body.message, body.signature, public_url)
    user = await wallet_user(db, address)
    pair = await accounts.tokens.start(db, user)
    accounts.set_cookies(response, pair)
    return SessionOut(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        user=UserOut(
            id=user.id,
            email=user.email,
            email_verified=user.email_verified,
            wallet_address=user.wallet_address,
        ),
    )
