"""What an account may use: the features and limits of its plan, and the `Entitled` check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends
from starlette.requests import HTTPConnection

from api.accounts.deps import Accounts, OptionalAccountsDep, authenticate, bearer_token
from api.accounts.models import BillingCustomer, User
from api.accounts.tokens import now
from api.errors import Forbidden, answers
from api.settings import AccountsSettings

LIVE_BOARD = "live_board"
"""The ranks board in real time (`/scan` live, `/stream/ranks`, WebSocket ranks); without
it the board runs `accounts.free_delay_s` behind."""
CANDLES_1S = "candles_1s"
"""1-second candles: history, SSE and WebSocket."""
SIGNALS = "signals"
"""Signals (alerts): the live stream and the history."""

FEATURES: tuple[str, ...] = (LIVE_BOARD, CANDLES_1S, SIGNALS)
"""Every feature a plan may grant (`PlanSettings.features`)."""

FREE_PLAN = "free"
SELF_HOSTED = "self_hosted"
"""The plan everyone is on when billing is off: every feature."""

PAYING_STATUSES = frozenset({"active", "trialing"})
"""Stripe subscription statuses that grant the plan; `past_due` grants it only until the
period that was paid for ends (Stripe is still retrying the card)."""

NOT_ENTITLED: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "The feature needs a paid plan",
        "content": {
            "application/json": {
                "example": {
                    "error": {
                        "code": "not_entitled",
                        "message": "'signals' is not in the free plan: a paid plan unlocks it",
                    }
                }
            }
        },
    }
}
"""The 403 of a gated route, for the OpenAPI document."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How much per-user state an account may keep."""

    watchlists: int
    watchlist_symbols: int
    """Symbols in one watchlist."""
    presets: int
    paper_accounts: int = 2
    """Paper trading accounts."""
    paper_open_orders: int = 20
    """Open (resting or untriggered) orders of one paper account."""


FREE_LIMITS = Limits(
    watchlists=1, watchlist_symbols=20, presets=3, paper_accounts=2, paper_open_orders=20
)
PAID_LIMITS = Limits(
    watchlists=50, watchlist_symbols=500, presets=100, paper_accounts=20, paper_open_orders=200
)
"""Also every account's when billing is off (self-hosted)."""


@dataclass(frozen=True, slots=True)
class Entitlements:
    """What one caller may use.

    Attributes:
        plan: `self_hosted` (billing off), `free`, or the id of a paid plan.
        features: The features granted (names from `FEATURES`).
        limits: How many watchlists, symbols per watchlist and presets.
        delay_s: How far behind the live board this caller's board runs (0: live).
    """

    plan: str
    features: frozenset[str]
    limits: Limits
    delay_s: int

    @property
    def live_board(self) -> bool:
        """Whether the caller sees the ranks board in real time."""
        return LIVE_BOARD in self.features

    def require(self, feature: str) -> None:
        """Refuse a feature outside the plan.

        Raises:
            Forbidden: With code `not_entitled`, naming the feature.
        """
        if feature not in self.features:
            raise Forbidden(
                f"{feature!r} is not in the {self.plan} plan: a paid plan unlocks it",
                code="not_entitled",
            )


def billing_on(settings: AccountsSettings) -> bool:
    """Whether accounts pay for features (a Stripe key is set); off, everyone has all."""
    return settings.billing.stripe_api_key is not None


def board_delay_s(settings: AccountsSettings) -> int:
    """How far behind the live board the free tier's board runs (0: no delayed board)."""
    return settings.free_delay_s if billing_on(settings) else 0


def everything() -> Entitlements:
    """Every feature, the paid limits, the live board: billing is off."""
    return Entitlements(SELF_HOSTED, frozenset(FEATURES), PAID_LIMITS, 0)


def free_tier(settings: AccountsSettings) -> Entitlements:
    """The anonymous and unpaid tier: the delayed board, no 1s candles nor signals."""
    delay_s = board_delay_s(settings)
    # With no delay to apply, the free board is the live one.
    features = frozenset() if delay_s else frozenset({LIVE_BOARD})
    return Entitlements(FREE_PLAN, features, FREE_LIMITS, delay_s)


def resolve(
    settings: AccountsSettings, customer: BillingCustomer | None, at: datetime
) -> Entitlements:
    """The entitlements of an account from its mirrored Stripe subscription.

    Args:
        settings: The accounts settings (billing, plans, free delay).
        customer: The account's billing row; None for anonymous callers and accounts
            that never subscribed.
        at: The moment to judge a `past_due` subscription's period end against.

    Returns:
        Everything when billing is off; the features of the subscribed plan (and the
        paid limits) while the subscription is active, trialing, or past due within its
        paid period; else the free tier. A plan no longer in the settings grants
        nothing beyond the free tier.
    """
    if not billing_on(settings):
        return everything()
    if customer is None or customer.plan is None or not _paying(customer, at):
        return free_tier(settings)
    plan = next((p for p in settings.billing.plans if p.id == customer.plan), None)
    if plan is None:
        return free_tier(settings)
    features = frozenset(plan.features)
    delay_s = 0 if LIVE_BOARD in features else board_delay_s(settings)
    return Entitlements(plan.id, features, PAID_LIMITS, delay_s)


def _paying(customer: BillingCustomer, at: datetime) -> bool:
    if customer.status in PAYING_STATUSES:
        return True
    end = customer.current_period_end
    return customer.status == "past_due" and end is not None and at < end


async def entitlements_for(accounts: Accounts, user: User | None) -> Entitlements:
    """The entitlements of a user (None: anonymous) now.

    Args:
        accounts: The process's accounts services.
        user: The signed-in user, or None.

    Returns:
        See `resolve`; the database is read only when billing is on and someone is
        signed in.
    """
    settings = accounts.settings.accounts
    if not billing_on(settings) or user is None:
        return resolve(settings, None, now())
    async with accounts.db.reading() as db:
        customer = await db.get(BillingCustomer, user.id)
    return resolve(settings, customer, now())


async def connection_entitlements(
    connection: HTTPConnection, accounts: OptionalAccountsDep
) -> Entitlements:
    """The caller's entitlements, for a request or a WebSocket (a FastAPI dependency).

    An app without accounts services (a partial app built for one router) has no
    billing either: everything. The app built by `create_app` always has them.

    Raises:
        Unauthorized: When billing is on and the request carries a bad or expired token
            (a client refreshes it rather than silently falling to the free tier).
    """
    if accounts is None or not billing_on(accounts.settings.accounts):
        return everything()
    user = None
    if bearer_token(connection) is not None:
        user, _ = await authenticate(connection, accounts)
    return await entitlements_for(accounts, user)


EntitlementsDep = Annotated[Entitlements, Depends(connection_entitlements)]
"""The caller's whole set of entitlements (e.g. for the ranks delay)."""


def Entitled(feature: str) -> Any:
    """A dependency that lets a request through only with `feature`.

    Use it as `dependencies=[Entitled(SIGNALS)]` on a route, or as a parameter
    `entitlements: Annotated[Entitlements, Entitled(SIGNALS)]`. On SSE routes it runs
    before the stream starts, so a refusal is a 403 JSON error, not a broken stream.

    Args:
        feature: One of `FEATURES`.

    Raises:
        ValueError: For a name not in `FEATURES` (a typo would otherwise gate nothing).
    """
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r}: use one of {', '.join(FEATURES)}")

    @answers(Forbidden)
    async def entitled(entitlements: EntitlementsDep) -> Entitlements:
        entitlements.require(feature)
        return entitlements

    return Depends(entitled)


def require_interval(entitlements: Entitlements, interval: str) -> None:
    """Refuse 1s candles (history or live) outside the plan.

    Raises:
        Forbidden: `not_entitled`, for interval `1s` without `candles_1s`.
    """
    if interval == "1s":
        entitlements.require(CANDLES_1S)


def check_subscription(entitlements: Entitlements, channel: str, params: Mapping[str, Any]) -> None:
    """Refuse a live subscription (a WebSocket `subscribe`) outside the plan.

    Ranks are never refused: a caller without `live_board` follows the delayed board
    (`Hub.subscribe_ranks(..., live=entitlements.live_board)`).

    Args:
        entitlements: The connection's entitlements.
        channel: `ranks`, `candles` or `signals`.
        params: The subscription's fields (`interval` for candles).

    Raises:
        Forbidden: `not_entitled`, for signals without `signals` or 1s candles without
            `candles_1s`.
    """
    if channel == "signals":
        entitlements.require(SIGNALS)
    elif channel == "candles":
        require_interval(entitlements, str(params.get("interval", "")))
