"""Stripe billing: the plans on offer, each user's Stripe customer, Checkout and the portal."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncSession
from stripe.params import CustomerCreateParams

from api.accounts.models import BillingCustomer, User
from api.accounts.tokens import now
from api.errors import ApiError, Conflict, InvalidRequest, NotFound, Unavailable
from api.settings import ApiAppSettings, PlanSettings

logger = logging.getLogger(__name__)

LIVE_STATUSES = frozenset({"active", "trialing", "past_due", "unpaid"})
"""Stripe statuses of a subscription that still bills: a second one must not be started."""

ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
"""Stripe statuses a subscription never leaves."""


class BillingDisabled(NotFound):
    """Billing is off on this server (no Stripe API key): there is nothing to buy."""

    code = "billing_disabled"


class InvalidSignature(ApiError):
    """A webhook whose `Stripe-Signature` is missing, stale or does not match its body."""

    code = "invalid_signature"


class Billing:
    """The Stripe side of billing for one API process (`api.accounts.deps.AppBillingDep`).

    Args:
        settings: The process's settings; billing is on when
            `accounts.billing.stripe_api_key` is set.
        http_client: The HTTP client Stripe's library sends requests with (default: its
            httpx client); tests pass a stand-in for Stripe's API.
    """

    def __init__(
        self, settings: ApiAppSettings, http_client: stripe.HTTPClient | None = None
    ) -> None:
        self.settings = settings
        config = settings.accounts.billing
        self.plans: list[PlanSettings] = list(config.plans)
        self._plans_by_id = {plan.id: plan for plan in self.plans}
        self._plans_by_price = {plan.stripe_price: plan for plan in self.plans}
        self._http: stripe.HTTPClient | None = None
        self._client: stripe.StripeClient | None = None
        if config.stripe_api_key is not None:
            self._http = http_client or stripe.HTTPXClient()
            self._client = stripe.StripeClient(
                config.stripe_api_key.get_secret_value(),
                base_addresses={"api": config.stripe_api_base},
                http_client=self._http,
                # Stripe's library sends an idempotency key with every POST, so a retry
                # after a lost response cannot create a second object.
                max_network_retries=2,
            )

    @property
    def enabled(self) -> bool:
        """Whether billing is on (a Stripe API key is configured)."""
        return self._client is not None

    @property
    def client(self) -> stripe.StripeClient:
        """The Stripe client.

        Raises:
            BillingDisabled: When billing is off.
        """
        if self._client is None:
            raise BillingDisabled("billing is not enabled on this server")
        return self._client

    def plan(self, plan_id: str) -> PlanSettings:
        """The configured plan called `plan_id`.

        Raises:
            InvalidRequest: If there is no such plan.
        """
        found = self._plans_by_id.get(plan_id)
        if found is None:
            known = ", ".join(sorted(self._plans_by_id)) or "none"
            raise InvalidRequest(f"no plan {plan_id!r} (plans: {known})", code="unknown_plan")
        return found

    def plan_of_price(self, price: str | None) -> PlanSettings | None:
        """The plan sold at a Stripe price or legacy plan id; None for one we do not sell."""
        return self._plans_by_price.get(price) if price else None

    def label(self, plan_id: str | None) -> str:
        """What to call a plan in front of a user: its label, else its id."""
        plan = self._plans_by_id.get(plan_id) if plan_id else None
        if plan is None:
            return plan_id or ""
        return plan.label or plan.id

    def page_url(self, query: str = "") -> str:
        """The site's billing page (where Checkout and the portal send the user back)."""
        return f"{self.settings.accounts.public_url.rstrip('/')}/billing{query}"

    async def customer(self, db: AsyncSession, user: User) -> BillingCustomer:
        """The user's Stripe customer, created at Stripe and kept on first use.

        Raises:
            BillingDisabled: When billing is off.
            Unavailable: If Stripe cannot be reached or refuses.
        """
        kept = await db.get(BillingCustomer, user.id)
        if kept is not None:
            return kept
        params: CustomerCreateParams = {"metadata": {"user_id": str(user.id)}}
        if user.email:
            params["email"] = user.email
        with _provider_errors("create a customer"):
            created = await self.client.v1.customers.create_async(
                params,
                # Two first checkouts at once must not make two customers for one user.
                {"idempotency_key": f"tickscan-customer-{user.id}"},
            )
        row = BillingCustomer(user_id=user.id, stripe_customer_id=created.id, updated_at=now())
        db.add(row)
        await db.flush()
        logger.info("user %s is Stripe customer %s", user.id, created.id)
        return row

    async def checkout(self, db: AsyncSession, user: User, plan_id: str) -> str:
        """Start a Stripe Checkout of a subscription to a plan.

        Args:
            db: The request's session (the customer is kept in it).
            user: Who subscribes.
            plan_id: Our id of the plan (`PlanSettings.id`).

        Returns:
            The URL of the Checkout page to send the user to.

        Raises:
            InvalidRequest: For an unknown plan.
            Conflict: If the user already has a subscription that bills (they change it
                in the portal instead).
            Unavailable: If Stripe cannot be reached or refuses.
        """
        plan = self.plan(plan_id)
        row = await self.customer(db, user)
        if row.status in LIVE_STATUSES:
            raise Conflict(
                "you already have a subscription: change it in the billing portal",
                code="already_subscribed",
            )
        with _provider_errors("start a checkout"):
            session = await self.client.v1.checkout.sessions.create_async(
                {
                    "mode": "subscription",
                    "customer": row.stripe_customer_id,
                    "client_reference_id": str(user.id),
                    "line_items": [{"price": plan.stripe_price, "quantity": 1}],
                    "success_url": self.page_url(
                        "?checkout=success&session_id={CHECKOUT_SESSION_ID}"
                    ),
                    "cancel_url": self.page_url("?checkout=cancel"),
                    "subscription_data": {"metadata": {"user_id": str(user.id), "plan": plan.id}},
                }
            )
        return _url(session.url, "checkout")

    async def portal(self, db: AsyncSession, user: User) -> str:
        """Open a Stripe customer portal session, where the user manages their subscription.

        Returns:
            The URL of the portal page.

        Raises:
            NotFound: If the user never started a checkout (no customer yet).
            Unavailable: If Stripe cannot be reached or refuses.
        """
        row = await db.get(BillingCustomer, user.id)
        if row is None:
            raise NotFound("no billing account yet: subscribe first", code="no_billing_account")
        with _provider_errors("open the billing portal"):
            session = await self.client.v1.billing_portal.sessions.create_async(
                {"customer": row.stripe_customer_id, "return_url": self.page_url()}
            )
        return _url(session.url, "portal")

    def verify(self, payload: bytes, signature: str | None) -> dict[str, Any]:
        """Check a webhook's `Stripe-Signature` against the endpoint's secret.

        Args:
            payload: The request body exactly as received.
            signature: The `Stripe-Signature` header.

        Returns:
            The event, as plain JSON values.

        Raises:
            InvalidSignature: If the signature is missing, stale or wrong, or the body
                is not an event.
            Unavailable: If no webhook secret is configured.
        """
        secret = self.settings.accounts.billing.webhook_secret
        if secret is None:
            raise Unavailable("billing webhooks are not configured", code="webhook_unconfigured")
        try:
            event = self.client.construct_event(payload, signature, secret.get_secret_value())
        except stripe.SignatureVerificationError:
            raise InvalidSignature("the Stripe-Signature does not match the body") from None
        except ValueError:
            raise InvalidSignature("the body is not a Stripe event") from None
        return event.to_dict()

    async def aclose(self) -> None:
        """Close the HTTP client's connections."""
        if self._http is not None:
            await self._http.close_async()


@asynccontextmanager
async def open_billing(settings: ApiAppSettings) -> AsyncIterator[Billing]:
    """The process's billing (off without a Stripe API key), closed on exit."""
    billing = Billing(settings)
    try:
        yield billing
    finally:
        await billing.aclose()


@contextmanager
def _provider_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        logger.warning("Stripe refused to %s: %s", doing, exc)
        raise Unavailable(
            f"the payment provider could not {doing}; try again shortly", code="billing_unavailable"
        ) from exc


def _url(url: str | None, what: str) -> str:
    if not url:
        logger.warning("Stripe returned a %s session without a URL", what)
        raise Unavailable(
            f"the payment provider returned no {what} page", code="billing_unavailable"
        )
    return url
