"""Stripe webhook events applied to the local subscription mirror, each exactly once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.billing import ENDED_STATUSES, LIVE_STATUSES, Billing
from api.accounts.db import AccountsDb, upsert_insert
from api.accounts.email import EmailSender
from api.accounts.models import BillingCustomer, StripeEvent, User
from api.accounts.tokens import now

logger = logging.getLogger(__name__)

Result = Literal["applied", "replayed", "stale", "ignored"]

ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)
"""Currencies whose Stripe amounts are whole units, not hundredths."""


@dataclass(frozen=True, slots=True)
class Notice:
    """A billing email to send once the event that caused it is committed."""

    to: str
    template: str
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an event did: `applied`, `replayed` (seen before), `stale` (older than what
    the mirror holds) or `ignored` (a type or customer we do not follow)."""

    result: Result
    notices: list[Notice] = field(default_factory=list)


Handler = Callable[[AsyncSession, dict[str, Any], Billing], Awaitable[Outcome]]


async def process_event(db: AccountsDb, event: dict[str, Any], billing: Billing) -> Outcome:
    """Apply a verified event in one transaction of its own, with its record.

    Args:
        db: The accounts database.
        event: The event, as verified by `Billing.verify`.
        billing: The plans the mirror maps prices to.

    Returns:
        What the event did.
    """
    async with db.session() as session:
        return await apply_event(session, event, billing)


async def apply_event(db: AsyncSession, event: dict[str, Any], billing: Billing) -> Outcome:
    """Apply an event to the mirror and record its id in the same transaction.

    An event already recorded changes nothing, so Stripe's retries and replays are safe.

    Args:
        db: A session in the transaction that will commit the effect and the record.
        event: The event, as verified by `Billing.verify`.
        billing: The plans the mirror maps prices to.

    Returns:
        What the event did, and the emails it calls for.
    """
    event_id, event_type = str(event["id"]), str(event["type"])
    if not await _record(db, event_id, event_type):
        return Outcome("replayed")
    handler = HANDLERS.get(event_type)
    outcome = Outcome("ignored") if handler is None else await handler(db, event, billing)
    logger.info("Stripe event %s (%s): %s", event_id, event_type, outcome.result)
    return outcome


async def send_notices(mailer: EmailSender, notices: Sequence[Notice]) -> None:
    """Send the emails of a committed event; a failure is logged, not raised.

    The mirror is already committed: a mail outage must not make Stripe retry an event
    that would then be a replay (and must not hold up what the user paid for).
    """
    for notice in notices:
        try:
            await mailer.send(notice.to, notice.template, **notice.context)
        except Exception as exc:
            logger.warning("the %s email to %s was not sent: %s", notice.template, notice.to, exc)


async def _subscription_changed(
    db: AsyncSession, event: dict[str, Any], billing: Billing
) -> Outcome:
    subscription = event["data"]["object"]
    row = await _customer(db, subscription.get("customer"))
    if row is None:
        return Outcome("ignored")
    created = int(event["created"])
    if not _supersedes(row, subscription, created):
        return Outcome("stale")
    price = _price(subscription)
    plan = billing.plan_of_price(price)
    if plan is None:
        logger.warning("subscription %s is at price %s of no plan", subscription["id"], price)
    was_live = row.status in LIVE_STATUSES
    row.subscription_id = subscription["id"]
    row.plan = plan.id if plan is not None else None
    row.status = subscription["status"]
    row.current_period_end = _period_end(subscription)
    row.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    row.event_created = created
    row.updated_at = now()
    if not (was_live and row.status in ENDED_STATUSES):
        return Outcome("applied")
    user = await db.get(User, row.user_id)
    if user is None or not user.email:
        return Outcome("applied")
    context = {"plan": billing.label(row.plan), "manage_url": billing.page_url()}
    return Outcome("applied", [Notice(user.email, "billing_ended", context)])


async def _checkout_completed(db: AsyncSession, event: dict[str, Any], billing: Billing) -> Outcome:
    session = event["data"]["object"]
    reference, customer = session.get("client_reference_id"), session.get("customer")
    if session.get("mode") != "subscription" or not customer or not str(reference).isdigit():
        return Outcome("ignored")
    user = await db.get(User, int(reference))
    if user is None:
        logger.warning("checkout %s names no user (%s)", session.get("id"), reference)
        return Outcome("ignored")
    row = await db.get(BillingCustomer, user.id)
    if row is not None:
        if row.stripe_customer_id != customer:
            logger.warning(
                "checkout %s of user %s paid as customer %s, not their %s",
                session.get("id"),
                user.id,
                customer,
                row.stripe_customer_id,
            )
            return Outcome("ignored")
        return Outcome("applied")
    if await _customer(db, customer) is not None:
        logger.warning("checkout %s: customer %s belongs to another user", session["id"], customer)
        return Outcome("ignored")
    # A checkout started outside this API: link its customer, so the subscription's
    # events that follow find the user.
    db.add(BillingCustomer(user_id=user.id, stripe_customer_id=customer, updated_at=now()))
    return Outcome("applied")


async def _payment_failed(db: AsyncSession, event: dict[str, Any], billing: Billing) -> Outcome:
    invoice = event["data"]["object"]
    row = await _customer(db, invoice.get("customer"))
    if row is None:
        return Outcome("ignored")
    user = await db.get(User, row.user_id)
    if user is None or not user.email:
        return Outcome("applied")
    context = {
        "plan": billing.label(row.plan),
        "amount": _money(invoice.get("amount_due"), invoice.get("currency")),
        "invoice_url": invoice.get("hosted_invoice_url") or "",
        "manage_url": billing.page_url(),
    }
    return Outcome("applied", [Notice(user.email, "billing_payment_failed", context)])


HANDLERS: dict[str, Handler] = {
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "checkout.session.completed": _checkout_completed,
    "invoice.payment_failed": _payment_failed,
}
"""The event types the mirror follows; any other is recorded and acknowledged."""


async def _record(db: AsyncSession, event_id: str, event_type: str) -> bool:
    """Record an event as processed; False if it already was.

    An insert that skips a known id, and the transaction's first statement: it takes
    SQLite's write lock before anything is read (a transaction that read first and then
    writes fails when another wrote in between), and on PostgreSQL a delivery of the same
    event at the same moment waits for the first one and then finds it recorded.
    """
    recorded = await db.scalar(
        upsert_insert(db, StripeEvent)
        .values(id=event_id, type=event_type[:64], processed_at=now())
        .on_conflict_do_nothing(index_elements=[StripeEvent.id])
        .returning(StripeEvent.id)
    )
    return recorded is not None


async def _customer(db: AsyncSession, customer: Any) -> BillingCustomer | None:
    if not isinstance(customer, str):
        return None
    row = await db.scalar(
        select(BillingCustomer).where(BillingCustomer.stripe_customer_id == customer)
    )
    if row is None:
        logger.warning("Stripe customer %s is no user's", customer)
    return row


def _supersedes(row: BillingCustomer, subscription: dict[str, Any], created: int) -> bool:
    """Whether an event about `subscription`, created at `created`, may replace the mirror."""
    if created < row.event_created:
        return False  # Stripe does not deliver in order: an older event arrived late
    status = subscription.get("status")
    if row.subscription_id not in (None, subscription["id"]):
        # Another subscription of the customer: it takes over when the mirrored one has
        # stopped billing or it bills itself; the end of an old one never hides a new one.
        return row.status not in LIVE_STATUSES or status in LIVE_STATUSES
    # `created` has whole-second resolution: of two events of the same second, the one
    # saying the subscription ended wins, because an ended subscription never resumes.
    return not (
        created == row.event_created
        and row.status in ENDED_STATUSES
        and status not in ENDED_STATUSES
    )


def _price(subscription: dict[str, Any]) -> str | None:
    """The price (or, before 2018 API versions and in localstripe, the plan) billed."""
    items = (subscription.get("items") or {}).get("data") or []
    for holder in [*items[:1], subscription]:
        for key in ("price", "plan"):
            value = holder.get(key)
            if isinstance(value, dict) and value.get("id"):
                return str(value["id"])
    return None


def _period_end(subscription: dict[str, Any]) -> datetime | None:
    """The end of the paid period: on the subscription in older API versions, on its
    items since 2025-03-31."""
    end = subscription.get("current_period_end")
    if end is None:
        items = (subscription.get("items") or {}).get("data") or []
        end = items[0].get("current_period_end") if items else None
    return datetime.fromtimestamp(int(end), UTC) if end is not None else None


def _money(amount: Any, currency: Any) -> str:
    if not isinstance(amount, int) or not isinstance(currency, str):
        return ""
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return f"{amount} {currency.upper()}"
    return f"{amount / 100:.2f} {currency.upper()}"
