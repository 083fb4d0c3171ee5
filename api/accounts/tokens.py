"""Sign-in sessions: short-lived access JWTs (joserfc) and rotating, revocable refresh tokens."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.models import EmailToken, RefreshToken, User
from api.errors import Forbidden, Unauthorized
from api.settings import ApiAppSettings

logger = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "tickscan"


def now() -> datetime:
    """The current time, timezone-aware UTC (what every accounts table stores)."""
    return datetime.now(UTC)


def digest(token: str) -> str:
    """SHA-256 of a bearer secret: what the database keeps instead of the secret."""
    return hashlib.sha256(token.encode()).hexdigest()


async def store_secret(
    db: AsyncSession, row: type[RefreshToken] | type[EmailToken], ttl_s: int, **fields: Any
) -> str:
    """A new random bearer secret, kept in a new `row` valid for `ttl_s` only as its digest.

    Args:
        db: The accounts database.
        row: The table that keeps it.
        ttl_s: Seconds it stays valid.
        fields: The row's other columns (its user, what the secret is for).

    Returns:
        The secret itself, handed to its owner once and never stored.
    """
    token = secrets.token_urlsafe(32)
    moment = now()
    db.add(
        row(
            token_hash=digest(token),
            created_at=moment,
            expires_at=moment + timedelta(seconds=ttl_s),
            **fields,
        )
    )
    await db.flush()
    return token


def load_secret(settings: ApiAppSettings) -> bytes:
    """The key that signs access tokens.

    `accounts.secret_key` when set; else a random key made once and kept in
    `<data_dir>/secret_key` (mode 0600), so sign-ins survive a restart of one machine.
    """
    configured = settings.accounts.secret_key
    if configured is not None:
        return configured.get_secret_value().encode()
    path = Path(settings.data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
        logger.warning("no accounts.secret_key set: generated one in %s", path)
    return path.read_text().strip().encode()


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a sign-in or a refresh returns."""

    access_token: str
    refresh_token: str
    expires_in: int
    """Seconds the access token lives."""
    user_id: int
    session: str
    """The session (refresh token family) both tokens belong to."""


@dataclass(frozen=True, slots=True)
class Access:
    """A verified access token."""

    user_id: int
    session: str


class TokenService:
    """Issues and checks the tokens of a sign-in session.

    A session is a family of refresh tokens. Each refresh exchanges the presented token
    for a new one; presenting an already exchanged token means it was copied, and the
    whole family is revoked. Access tokens carry their session, and `check_session`
    refuses one whose session was revoked, so "log out everywhere" takes effect at once.

    Args:
        secret: The HMAC key.
        access_ttl_s: Access token lifetime.
        refresh_ttl_s: Refresh token lifetime.
    """

    def __init__(self, secret: bytes, access_ttl_s: int, refresh_ttl_s: int) -> None:
        self._key = OctKey.import_key(secret)
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s

    def access_token(self, user_id: int, session: str) -> str:
        """A signed JWT for the user and session, valid for `access_ttl_s`."""
        issued = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "sid": session,
            "iat": issued,
            "exp": issued + self.access_ttl_s,
            "typ": "access",
        }
        return jwt.encode({"alg": ALGORITHM}, claims, self._key)

    def read_access(self, token: str) -> Access:
        """Verify an access token's signature, issuer and expiry.

        Raises:
            Unauthorized: If it is malformed, forged or expired.
        """
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": ISSUER},
                sub={"essential": True},
                sid={"essential": True},
                exp={"essential": True},
                typ={"essential": True, "value": "access"},
            ).validate(decoded.claims)
            return Access(int(decoded.claims["sub"]), str(decoded.claims["sid"]))
        except (JoseError, ValueError, KeyError):
            raise Unauthorized("sign in again: the access token is invalid or expired") from None

    async def start(self, db: AsyncSession, user: User) -> TokenPair:
        """Open a new session for a user who just proved who they are.

        Raises:
            Forbidden: `account_disabled` if an operator disabled the account (every way
                of signing in ends here).
        """
        check_enabled(user)
        return await self._issue(db, user.id, secrets.token_hex(16))

    async def refresh(self, db: AsyncSession, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair.

        Raises:
            Unauthorized: If the token is unknown, expired or revoked, or was already
                used (then its whole session is revoked too).
        """
        found = await db.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == digest(refresh_token))
        )
        moment = now()
        if found is None or found.revoked_at is not None or found.expires_at <= moment:
            raise Unauthorized("sign in again: the session has ended")
        # Marked used only if no one else did first: two uses at once (PostgreSQL lets
        # both read it unused) are then a reuse too, instead of two live sessions.
        marked = await db.execute(
            update(RefreshToken)
            .where(RefreshToken.id == found.id, RefreshToken.used_at.is_(None))
            .values(used_at=moment)
            .execution_options(synchronize_session=False)
        )
        if not marked.rowcount:  # type: ignore[attr-defined]
            logger.warning("refresh token reused: revoking session %s", found.family)
            await self._revoke(db, RefreshToken.family == found.family)
            await db.commit()  # the revocation must outlive the error's rollback
            raise Unauthorized("sign in again: the session has ended")
        return await self._issue(db, found.user_id, found.family)

    async def check_session(self, db: AsyncSession, access: Access) -> None:
        """Refuse an access token whose session was logged out.

        Raises:
            Unauthorized: If no live refresh token of its session is left.
        """
        live = await db.scalar(
            select(RefreshToken.id).where(
                RefreshToken.family == access.session,
                RefreshToken.user_id == access.user_id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.used_at.is_(None),
                RefreshToken.expires_at > now(),
            )
        )
        if live is None:
            raise Unauthorized("sign in again: the session has ended")

    async def end(self, db: AsyncSession, session: str) -> None:
        """Log out one session."""
        await self._revoke(db, RefreshToken.family == session)

    async def end_all(self, db: AsyncSession, user_id: int) -> None:
        """Log out every session of a user (after a password reset, or on request)."""
        await end_all_sessions(db, user_id)

    async def _issue(self, db: AsyncSession, user_id: int, family: str) -> TokenPair:
        token = await store_secret(
            db, RefreshToken, self.refresh_ttl_s, user_id=user_id, family=family
        )
        return TokenPair(
            self.access_token(user_id, family), token, self.access_ttl_s, user_id, family
        )

    async def _revoke(self, db: AsyncSession, where: object) -> None:
        await _revoke(db, where)


DISABLED = "this account is disabled: ask the site's operator"


def check_enabled(user: User) -> None:
    """Refuse a sign-in of a disabled account.

    Raises:
        Forbidden: `account_disabled`.
    """
    if user.disabled_at is not None:
        raise Forbidden(DISABLED, code="account_disabled")


async def end_all_sessions(db: AsyncSession, user_id: int) -> None:
    """Revoke every refresh token of a user: each session ends, on every device."""
    await _revoke(db, RefreshToken.user_id == user_id)


async def _revoke(db: AsyncSession, where: object) -> None:
    await db.execute(
        update(RefreshToken)
        .where(where, RefreshToken.revoked_at.is_(None))  # type: ignore[arg-type]
        .values(revoked_at=now())
    )
