"""Sign-In with Ethereum (EIP-4361): single-use nonces, message checks, the wallet's account."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import siwe
from siwe.siwe import datetime_from_iso8601_string
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.models import SiweNonce, User
from api.accounts.tokens import now
from api.errors import Unauthorized

logger = logging.getLogger(__name__)

NONCE_TTL_S = 600
"""How long a nonce may wait for its signed message."""
CLOCK_SKEW_S = 60
"""How far ahead of our clock a wallet's `Issued At` may be."""

_REFUSALS: dict[type[siwe.VerificationError], str] = {
    siwe.DomainMismatch: "the message is for another site",
    siwe.ExpiredMessage: "the message has expired: sign a new one",
    siwe.NotYetValidMessage: "the message is not valid yet",
    siwe.InvalidSignature: "the signature does not match the message's address",
}


async def issue_nonce(db: AsyncSession) -> str:
    """A fresh nonce for one sign-in message, valid for `NONCE_TTL_S`.

    Nonces that expired are deleted on the way: anyone may ask for a nonce, so the table
    must not grow with requests.
    """
    moment = now()
    await db.execute(delete(SiweNonce).where(SiweNonce.expires_at <= moment))
    nonce = secrets.token_hex(16)  # EIP-4361: at least 8 alphanumeric characters
    db.add(
        SiweNonce(
            nonce=nonce,
            created_at=moment,
            expires_at=moment + timedelta(seconds=NONCE_TTL_S),
        )
    )
    await db.flush()
    return nonce


async def verify_message(db: AsyncSession, message: str, signature: str, public_url: str) -> str:
    """Check a signed EIP-4361 message and consume its nonce.

    The message must name this site (`domain` is the host and port of `public_url`, its
    `URI` on the same origin), be within its validity times, carry a nonce we issued and
    nobody used, and be signed by the key of its address.

    Args:
        db: The request's session; the nonce is marked used in it.
        message: The message as the wallet signed it.
        signature: The EIP-191 signature, hex.
        public_url: `accounts.public_url`.

    Returns:
        The EIP-55 address that signed in.

    Raises:
        Unauthorized: Saying which check failed.
    """
    site = urlsplit(public_url)
    try:
        parsed = siwe.SiweMessage.from_message(message)
    except ValueError:
        raise Unauthorized("sign-in failed: not an EIP-4361 sign-in message") from None
    if parsed.scheme is not None and parsed.scheme != site.scheme:
        raise Unauthorized("sign-in failed: the message is for another site")
    uri = urlsplit(str(parsed.uri))
    if (uri.scheme, uri.netloc) != (site.scheme, site.netloc):
        raise Unauthorized("sign-in failed: the message's URI is on another site")
    moment = now()
    issued = datetime_from_iso8601_string(parsed.issued_at)
    if issued > moment + timedelta(seconds=CLOCK_SKEW_S):
        raise Unauthorized("sign-in failed: the message is issued in the future")
    if issued < moment - timedelta(seconds=NONCE_TTL_S):
        raise Unauthorized("sign-in failed: the message has expired: sign a new one")
    try:
        # Recovering the signer is CPU work: keep it off the event loop.
        await asyncio.to_thread(parsed.verify, signature, domain=site.netloc, timestamp=moment)
    except siwe.VerificationError as exc:
        reason = _REFUSALS.get(type(exc), "the message could not be verified")
        raise Unauthorized(f"sign-in failed: {reason}") from None
    # One statement tests and consumes the nonce, so two racing replays cannot both win.
    consumed = cast(
        "CursorResult[Any]",
        await db.execute(
            update(SiweNonce)
            .where(
                SiweNonce.nonce == parsed.nonce,
                SiweNonce.used_at.is_(None),
                SiweNonce.expires_at > moment,
            )
            .values(used_at=moment)
        ),
    )
    if consumed.rowcount != 1:
        raise Unauthorized(
            "sign-in failed: the nonce is unknown, used or expired: ask for a new one"
        )
    return str(parsed.address)


async def wallet_user(db: AsyncSession, address: str) -> User:
    """The account of a wallet address, made on its first sign-in."""
    user = await db.scalar(select(User).where(User.wallet_address == address))
    if user is not None:
        return user
    try:
        async with db.begin_nested():
            user = User(wallet_address=address, created_at=now())
            db.add(user)
    except IntegrityError:  # the same wallet's first sign-in, racing in another request
        user = await db.scalar(select(User).where(User.wallet_address == address))
        if user is None:
            raise
        return user
    logger.info("sign-in with Ethereum created user %s", user.id)
    return user
