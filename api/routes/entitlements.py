"""`GET /api/v1/me/entitlements`: what the caller's plan lets them use."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.accounts.entitlements import FEATURES, EntitlementsDep

router = APIRouter(prefix="/api/v1/me", tags=["account"])


class LimitsResponse(BaseModel):
    """How much per-user state the plan allows."""

    watchlists: int
    watchlist_symbols: int = Field(description="Symbols in one watchlist.")
    presets: int = Field(description="Saved filter presets.")
    paper_accounts: int = Field(description="Paper trading accounts.")
    paper_open_orders: int = Field(description="Open orders of one paper trading account.")


class EntitlementsResponse(BaseModel):
    """The caller's plan, its features and limits, and how far behind their board runs."""

    plan: str = Field(
        description="`self_hosted` (billing is off: everything), `free`, or a paid plan's id."
    )
    features: list[str] = Field(description=f"Granted features, of {', '.join(FEATURES)}.")
    limits: LimitsResponse
    delay_s: int = Field(
        description="Seconds the caller's ranks board runs behind the live one (0: live)."
    )


@router.get(
    "/entitlements",
    response_model=EntitlementsResponse,
    summary="The caller's plan and what it unlocks",
    description="Anonymous callers get the free tier (everything when billing is off). "
    "A subscription counts while Stripe reports it active or trialing, or past due "
    "until the end of the period paid for.",
)
async def get_entitlements(entitlements: EntitlementsDep) -> EntitlementsResponse:
    """The caller's entitlements; a bad or expired token is a 401."""
    limits = entitlements.limits
    return EntitlementsResponse(
        plan=entitlements.plan,
        features=sorted(entitlements.features),
        limits=LimitsResponse(
            watchlists=limits.watchlists,
            watchlist_symbols=limits.watchlist_symbols,
            presets=limits.presets,
            paper_accounts=limits.paper_accounts,
            paper_open_orders=limits.paper_open_orders,
        ),
        delay_s=entitlements.delay_s,
    )
