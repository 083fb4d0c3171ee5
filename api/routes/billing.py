"""`/api/v1/billing`: plans, Stripe Checkout and portal, the user's subscription, webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from pydantic import BaseModel, Field

from api.accounts.billing import Billing, BillingDisabled
from api.accounts.billing_webhooks import Result, process_event, send_notices
from api.accounts.deps import AccountsDep, AppBillingDep, CurrentUser, DbDep
from api.accounts.models import BillingCustomer
from api.errors import answers

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


@answers(BillingDisabled)
def get_billing(billing: AppBillingDep) -> Billing:
    """The process's billing, when it is on.

    Raises:
        BillingDisabled: When no Stripe API key is configured (404 `billing_disabled`).
    """
    if not billing.enabled:
        raise BillingDisabled("billing is not enabled on this server")
    return billing


BillingDep = Annotated[Billing, Depends(get_billing)]


class PlanOut(BaseModel):
    """A plan on offer."""

    id: str
    label: str
    features: list[str] = Field(description="What the plan unlocks (entitlement names).")


class OfferOut(BaseModel):
    """What the site sells: the plans, or that billing is off and every feature is free."""

    billing: bool = Field(
        description="Whether billing is on; false: no plans, every feature for everybody."
    )
    plans: list[PlanOut] = Field(description="The plans on offer, in their configured order.")


class CheckoutIn(BaseModel):
    """Which plan to subscribe to."""

    plan: str = Field(description="A plan id from `GET /api/v1/billing/plans`.")


class RedirectOut(BaseModel):
    """A Stripe page to send the browser to."""

    url: str


class SubscriptionOut(BaseModel):
    """The user's subscription as Stripe last reported it (all null: never subscribed)."""

    plan: str | None = Field(
        default=None, description="Our plan id; null when none, or a price we do not sell."
    )
    label: str | None = None
    status: str | None = Field(
        default=None, description="Stripe's status: active, trialing, past_due, canceled, ..."
    )
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False


class WebhookOut(BaseModel):
    """The acknowledgement Stripe waits for."""

    received: bool = True
    outcome: Result


@router.get("/plans", response_model=OfferOut, summary="Plans on offer")
async def get_plans(billing: AppBillingDep) -> OfferOut:
    """The configured plans, in their configured order; with billing off (self-hosted),
    ``{"billing": false, "plans": []}``: every feature is everybody's."""
    if not billing.enabled:
        return OfferOut(billing=False, plans=[])
    return OfferOut(
        billing=True,
        plans=[PlanOut(id=p.id, label=p.label or p.id, features=p.features) for p in billing.plans],
    )


@router.post(
    "/checkout",
    response_model=RedirectOut,
    summary="Subscribe through Stripe Checkout",
    responses={409: {"description": "Already subscribed: use the portal"}},
)
async def post_checkout(
    body: CheckoutIn, billing: BillingDep, user: CurrentUser, db: DbDep
) -> RedirectOut:
    """A Checkout page for a subscription of the signed-in user to a plan."""
    return RedirectOut(url=await billing.checkout(db, user, body.plan))


@router.post(
    "/portal",
    response_model=RedirectOut,
    summary="Manage the subscription in Stripe's portal",
    responses={404: {"description": "Never subscribed"}},
)
async def post_portal(billing: BillingDep, user: CurrentUser, db: DbDep) -> RedirectOut:
    """A customer portal page where the user changes plan, card, or cancels."""
    return RedirectOut(url=await billing.portal(db, user))


@router.get("/subscription", response_model=SubscriptionOut, summary="The user's subscription")
async def get_subscription(billing: BillingDep, user: CurrentUser, db: DbDep) -> SubscriptionOut:
    """The signed-in user's subscription, mirrored from Stripe's webhooks."""
    row = await db.get(BillingCustomer, user.id)
    if row is None or row.status is None:
        return SubscriptionOut()
    return SubscriptionOut(
        plan=row.plan,
        label=billing.label(row.plan) if row.plan else None,
        status=row.status,
        current_period_end=row.current_period_end,
        cancel_at_period_end=row.cancel_at_period_end,
    )


@router.post(
    "/webhook",
    response_model=WebhookOut,
    summary="Stripe's webhook endpoint",
    responses={
        400: {"description": "Missing or wrong Stripe-Signature: nothing changed"},
        503: {"description": "No webhook secret configured (`webhook_unconfigured`)"},
    },
)
async def post_webhook(
    request: Request, billing: BillingDep, accounts: AccountsDep, after: BackgroundTasks
) -> WebhookOut:
    """Apply a signed Stripe event to the subscription mirror, once.

    A replayed event is acknowledged and changes nothing; an event older than what the
    mirror holds changes nothing either. Emails go out after the answer: Stripe counts a
    slow answer as a failed delivery.
    """
    event = billing.verify(await request.body(), request.headers.get("stripe-signature"))
    outcome = await process_event(accounts.db, event, billing)
    after.add_task(send_notices, accounts.mailer, outcome.notices)
    return WebhookOut(outcome=outcome.result)
