"""The accounts schema: users, their sign-in methods and sessions, their board state, billing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names spelled out, so migrations name them the same on SQLite and PostgreSQL."""


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, always timezone-aware UTC in Python.

    SQLite keeps no zone and hands back naive datetimes, which cannot be compared with
    aware ones: this type stores UTC and reads it back as UTC on every database.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("accounts times must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Every accounts table; times are timezone-aware UTC."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: JSON}


def _user_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class User(Base):
    """An account. It has an email and password, OIDC identities, a wallet, or several."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    """Lower-cased; None for an account that only ever signed in with a wallet."""
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    """argon2id encoded hash; None when the account has no password."""
    wallet_address: Mapped[str | None] = mapped_column(String(42), unique=True)
    """EIP-55 checksummed address of a Sign-In with Ethereum account."""
    created_at: Mapped[datetime]
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    """Failed password logins since the last success."""
    locked_until: Mapped[datetime | None]
    """Password logins are refused until then (too many failures)."""
    disabled_at: Mapped[datetime | None]
    """Set by an operator (`tickscan users disable`): no sign-in, no session, until enabled."""


class OidcIdentity(Base):
    """A user's account at an OpenID Connect provider (`sub` is unique per issuer)."""

    __tablename__ = "oidc_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = _user_fk()
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class RefreshToken(Base):
    """One refresh token (only its SHA-256 is stored).

    Each use replaces it with a new one of the same family. A token used twice means it
    was stolen: the whole family is revoked (RFC 6819 5.2.2.3).
    """

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = _user_fk()
    family: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    """When it was exchanged for its successor."""
    revoked_at: Mapped[datetime | None]


class EmailToken(Base):
    """A single-use, time-limited link token: email verification or password reset."""

    __tablename__ = "email_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = _user_fk()
    purpose: Mapped[str] = mapped_column(String(16))
    """`verify` or `reset`."""
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SiweNonce(Base):
    """A nonce handed out for a Sign-In with Ethereum message; consumed by one sign-in."""

    __tablename__ = "siwe_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Watchlist(Base):
    """A named list of symbol keys (`exchange:market:symbol`), in the user's order."""

    __tablename__ = "watchlists"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = _user_fk()
    name: Mapped[str] = mapped_column(String(64))
    symbols: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime]


class FilterPreset(Base):
    """A saved scanner filter (the JSON of `api.services.filters.Filter`)."""

    __tablename__ = "filter_presets"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = _user_fk()
    name: Mapped[str] = mapped_column(String(64))
    filter: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class UserState(Base):
    """A user's single-valued state: the ignore-list and preferences (board columns, ...).

    `version` rises with every change, so a client that hears of a change from another
    session knows whether it already has it.
    """

    __tablename__ = "user_state"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    ignored: Mapped[list[str]] = mapped_column(JSON, default=list)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class BillingCustomer(Base):
    """A user's Stripe customer and the subscription mirrored from Stripe's webhooks."""

    __tablename__ = "billing_customers"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    plan: Mapped[str | None] = mapped_column(String(32))
    """Our plan id (`PlanSettings.id`) of the subscription's price."""
    status: Mapped[str | None] = mapped_column(String(32))
    """Stripe's subscription status (`active`, `trialing`, `past_due`, `canceled`, ...)."""
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    event_created: Mapped[int] = mapped_column(BigInteger, default=0)
    """`created` of the newest event applied: an older event arriving late changes nothing."""
    updated_at: Mapped[datetime]


class StripeEvent(Base):
    """A Stripe webhook event already processed (its id): a replay is acknowledged, not
    applied again."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    processed_at: Mapped[datetime]


class PaperAccount(Base):
    """A paper trading account: who owns it, on which market and exchange. The paper
    engine keeps its balances and orders (a fold of ``tr.events.v1``); this row is the
    authority on whose it is and counts towards the owner's plan limit."""

    __tablename__ = "paper_accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """The account id the engine knows it by (also its Kafka key)."""
    user_id: Mapped[int] = _user_fk()
    name: Mapped[str] = mapped_column(String(64))
    market: Mapped[str] = mapped_column(String(8))
    """``spot`` or ``usdm``."""
    exchange: Mapped[str] = mapped_column(String(32))
    """The exchange whose market data it trades against (``binance``, ``sim``)."""
    created: Mapped[datetime]
