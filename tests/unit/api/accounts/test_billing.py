"""Billing: the subscription mirror Stripe's events keep, webhook signatures, the routes.

Stripe's API is stood in for at the HTTP boundary (a `stripe.HTTPClient` answering from a
table), so the official client builds and sends its real requests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from api.accounts.billing import Billing, InvalidSignature
from api.accounts.billing_webhooks import (
    Notice,
    Outcome,
    apply_event,
    process_event,
    send_notices,
)
from api.accounts.db import AccountsDb
from api.accounts.deps import Accounts
from api.accounts.email import Mailer
from api.accounts.models import BillingCustomer, StripeEvent, User
from api.accounts.tokens import TokenService
from api.errors import Unavailable, install_error_handlers
from api.routes import billing as billing_routes
from api.settings import AccountsSettings, BillingSettings, PlanSettings
from tickscan.settings import Settings

T = TypeVar("T")
WHSEC = "whsec_unit"
SECRET = b"k" * 48
T0 = 1_760_000_000
PERIOD_END = T0 + 30 * 86_400
PLANS = [
    PlanSettings(id="pro", stripe_price="price_pro", label="Pro", features=["live_board"]),
    PlanSettings(id="legacy", stripe_price="plan_legacy", features=["alerts"]),
]


def run(step: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(step)


def make_settings(tmp_path: Path, *, stripe_key: str | None = "sk_test_unit") -> Settings:
    return Settings(
        data_dir=tmp_path,
        accounts=AccountsSettings(
            public_url="https://tickscan.test",
            billing=BillingSettings(
                stripe_api_key=SecretStr(stripe_key) if stripe_key else None,
                webhook_secret=SecretStr(WHSEC),
                plans=PLANS,
            ),
        ),
    )


class StripeDouble(stripe.HTTPClient):
    """Stripe's API as a table of answers by method and path; records every request."""

    name = "double"

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {
            ("post", "/v1/customers"): (200, {"id": "cus_new", "object": "customer"}),
            ("post", "/v1/checkout/sessions"): (
                200,
                {"id": "cs_1", "object": "checkout.session", "url": "https://pay.test/cs_1"},
            ),
            ("post", "/v1/billing_portal/sessions"): (
                200,
                {"id": "bps_1", "object": "billing_portal.session", "url": "https://pay.test/p"},
            ),
        }
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []

    async def request_async(
        self, method: str, url: str, headers: Any, post_data: Any = None
    ) -> tuple[bytes, int, dict[str, str]]:
        body = post_data.decode() if isinstance(post_data, bytes) else post_data or ""
        form = {k: v[0] for k, v in parse_qs(body).items()}
        path = urlsplit(url).path
        self.requests.append((method, path, form, dict(headers)))
        status, answer = self.answers[(method, path)]
        return json.dumps(answer).encode(), status, {"request-id": "req_1"}

    async def close_async(self) -> None:
        return None

    def sleep_async(self, secs: float) -> Coroutine[Any, Any, None]:
        return asyncio.sleep(0)  # between retries: no need to wait for a table

    def calls(self, path: str) -> list[dict[str, str]]:
        return [form for _, p, form, _ in self.requests if p == path]


class Outbox:
    """Records the emails the app sends."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = fail

    async def send(self, to: str, template: str, **context: Any) -> None:
        if self.fail:
            raise Unavailable("the email could not be sent: try again later")
        self.sent.append((to, template, context))


async def add_user(db: AccountsDb, email: str | None, customer: str | None = None) -> int:
    async with db.session() as session:
        user = User(email=email, created_at=datetime.now(UTC))
        session.add(user)
        await session.flush()
        if customer is not None:
            session.add(
                BillingCustomer(
                    user_id=user.id, stripe_customer_id=customer, updated_at=datetime.now(UTC)
                )
            )
        return user.id


async def mirror(db: AccountsDb, user_id: int) -> BillingCustomer | None:
    async with db.session() as session:
        return await session.get(BillingCustomer, user_id)


def subscription_event(
    kind: str,
    created: int,
    *,
    event_id: str | None = None,
    subscription: str = "sub_1",
    customer: str = "cus_1",
    status: str = "active",
    price: str = "price_pro",
    cancel_at_period_end: bool = False,
) -> dict[str, Any]:
    """A subscription event as API versions since 2025 shape it (price and period on items)."""
    return {
        "id": event_id or f"evt_{kind}_{subscription}_{created}_{status}",
        "object": "event",
        "type": f"customer.subscription.{kind}",
        "created": created,
        "data": {
            "object": {
                "id": subscription,
                "object": "subscription",
                "customer": customer,
                "status": status,
                "cancel_at_period_end": cancel_at_period_end,
                "items": {
                    "data": [
                        {
                            "id": "si_1",
                            "price": {"id": price, "object": "price"},
                            "current_period_end": PERIOD_END,
                        }
                    ]
                },
            }
        },
    }


@pytest.fixture
def billing(tmp_path: Path) -> Billing:
    return Billing(make_settings(tmp_path), http_client=StripeDouble())


@pytest.fixture
def customer_user(accounts_db: AccountsDb) -> int:
    return run(add_user(accounts_db, "ada@example.com", "cus_1"))


def apply(db: AccountsDb, event: dict[str, Any], billing: Billing) -> Outcome:
    return run(process_event(db, event, billing))


# --- the mirror ---------------------------------------------------------------------------


def test_a_new_subscription_is_mirrored_with_our_plan(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    outcome = apply(accounts_db, subscription_event("created", T0), billing)
    row = run(mirror(accounts_db, customer_user))
    assert outcome == Outcome("applied")
    assert row is not None
    assert (row.subscription_id, row.plan, row.status) == ("sub_1", "pro", "active")
    assert row.current_period_end == datetime.fromtimestamp(PERIOD_END, UTC)
    assert (row.cancel_at_period_end, row.event_created) == (False, T0)


def test_a_legacy_plan_and_the_period_on_the_subscription_are_understood(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    # The shape localstripe and pre-2025 API versions send: plan, not price, and the
    # period end on the subscription itself.
    event = subscription_event("created", T0)
    subscription = event["data"]["object"]
    subscription["items"]["data"][0] = {"id": "si_1", "plan": {"id": "plan_legacy"}}
    subscription["current_period_end"] = PERIOD_END + 5
    apply(accounts_db, event, billing)
    row = run(mirror(accounts_db, customer_user))
    assert row is not None
    assert (row.plan, row.current_period_end) == (
        "legacy",
        datetime.fromtimestamp(PERIOD_END + 5, UTC),
    )


def test_a_replayed_event_changes_nothing(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    created = subscription_event("created", T0)
    apply(accounts_db, created, billing)
    apply(accounts_db, subscription_event("deleted", T0 + 60, status="canceled"), billing)
    assert apply(accounts_db, created, billing) == Outcome("replayed")
    row = run(mirror(accounts_db, customer_user))
    assert row is not None and row.status == "canceled"

    async def recorded() -> int | None:
        async with accounts_db.session() as session:
            return await session.scalar(select(func.count()).select_from(StripeEvent))

    assert run(recorded()) == 2


def test_an_event_older_than_the_mirror_changes_nothing(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    apply(accounts_db, subscription_event("updated", T0 + 60, cancel_at_period_end=True), billing)
    late = subscription_event("created", T0, status="incomplete")
    assert apply(accounts_db, late, billing) == Outcome("stale")
    row = run(mirror(accounts_db, customer_user))
    assert row is not None
    assert (row.status, row.cancel_at_period_end, row.event_created) == ("active", True, T0 + 60)


def test_of_two_events_in_one_second_the_end_wins(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    apply(accounts_db, subscription_event("deleted", T0, status="canceled"), billing)
    assert apply(accounts_db, subscription_event("created", T0), billing) == Outcome("stale")
    row = run(mirror(accounts_db, customer_user))
    assert row is not None and row.status == "canceled"


def test_an_unknown_price_mirrors_the_status_but_no_plan(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    apply(accounts_db, subscription_event("created", T0, price="price_someone_else"), billing)
    row = run(mirror(accounts_db, customer_user))
    assert row is not None
    assert (row.plan, row.status) == (None, "active")


def test_deletion_ends_the_subscription_and_tells_the_user(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    apply(accounts_db, subscription_event("created", T0), billing)
    outcome = apply(accounts_db, subscription_event("deleted", T0 + 60, status="canceled"), billing)
    row = run(mirror(accounts_db, customer_user))
    assert row is not None and (row.status, row.plan) == ("canceled", "pro")
    context = {"plan": "Pro", "manage_url": "https://tickscan.test/billing"}
    assert outcome.notices == [Notice("ada@example.com", "billing_ended", context)]


def test_a_subscription_that_never_started_ends_without_an_email(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    apply(accounts_db, subscription_event("created", T0, status="incomplete"), billing)
    expired = subscription_event("updated", T0 + 60, status="incomplete_expired")
    assert apply(accounts_db, expired, billing) == Outcome("applied")
    row = run(mirror(accounts_db, customer_user))
    assert row is not None and row.status == "incomplete_expired"


def test_an_event_recorded_before_is_not_applied_again_in_the_same_session(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    event = subscription_event("created", T0)

    async def twice() -> tuple[Outcome, Outcome]:
        async with accounts_db.session() as session:
            return (
                await apply_event(session, event, billing),
                await apply_event(session, event, billing),
            )

    assert run(twice()) == (Outcome("applied"), Outcome("replayed"))


def test_the_end_of_an_old_subscription_does_not_hide_a_new_one(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    apply(accounts_db, subscription_event("created", T0, status="canceled"), billing)
    apply(accounts_db, subscription_event("created", T0 + 60, subscription="sub_2"), billing)
    old_end = subscription_event("deleted", T0 + 120, status="canceled")
    assert apply(accounts_db, old_end, billing) == Outcome("stale")
    row = run(mirror(accounts_db, customer_user))
    assert row is not None and (row.subscription_id, row.status) == ("sub_2", "active")


def test_unknown_types_and_customers_are_acknowledged_and_ignored(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    other = {"id": "evt_x", "type": "charge.refunded", "created": T0, "data": {"object": {}}}
    assert apply(accounts_db, other, billing) == Outcome("ignored")
    assert apply(accounts_db, other, billing) == Outcome("replayed")
    stranger = subscription_event("created", T0, customer="cus_stranger")
    assert apply(accounts_db, stranger, billing) == Outcome("ignored")
    row = run(mirror(accounts_db, customer_user))
    assert row is not None and row.status is None


def checkout_completed(user: str | None, customer: str, event_id: str) -> dict[str, Any]:
    session = {"id": "cs_1", "mode": "subscription", "client_reference_id": user}
    return {
        "id": event_id,
        "type": "checkout.session.completed",
        "created": T0,
        "data": {"object": session | {"customer": customer}},
    }


def test_a_completed_checkout_links_a_customer_made_outside_the_api(
    accounts_db: AccountsDb, billing: Billing
) -> None:
    user_id = run(add_user(accounts_db, "bo@example.com"))
    outcome = apply(accounts_db, checkout_completed(str(user_id), "cus_9", "evt_1"), billing)
    assert outcome == Outcome("applied")
    apply(accounts_db, subscription_event("created", T0 + 1, customer="cus_9"), billing)
    row = run(mirror(accounts_db, user_id))
    assert row is not None and (row.stripe_customer_id, row.plan) == ("cus_9", "pro")


def test_a_checkout_cannot_move_a_customer_or_name_a_stranger(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    other = run(add_user(accounts_db, "eve@example.com"))
    taken = checkout_completed(str(other), "cus_1", "evt_1")  # ada's customer
    assert apply(accounts_db, taken, billing) == Outcome("ignored")
    assert run(mirror(accounts_db, other)) is None
    moved = checkout_completed(str(customer_user), "cus_2", "evt_2")
    assert apply(accounts_db, moved, billing) == Outcome("ignored")
    unknown = checkout_completed("999", "cus_3", "evt_3")
    assert apply(accounts_db, unknown, billing) == Outcome("ignored")
    row = run(mirror(accounts_db, customer_user))
    assert row is not None and row.stripe_customer_id == "cus_1"


def test_a_failed_payment_sends_a_notice_with_the_amount(
    accounts_db: AccountsDb, billing: Billing, customer_user: int
) -> None:
    apply(accounts_db, subscription_event("created", T0), billing)
    invoice = {"customer": "cus_1", "amount_due": 1500, "currency": "eur"}
    invoice["hosted_invoice_url"] = "https://pay.test/in_1"
    event = {"id": "evt_f", "type": "invoice.payment_failed", "created": T0 + 9}
    outcome = apply(accounts_db, event | {"data": {"object": invoice}}, billing)
    [notice] = outcome.notices
    assert (notice.to, notice.template) == ("ada@example.com", "billing_payment_failed")
    assert notice.context["amount"] == "15.00 EUR"
    # The notice renders from its template files with every variable it uses.
    email = Mailer(billing.settings).render(notice.template, **notice.context)
    assert "15.00 EUR" in email.text and "https://tickscan.test/billing" in email.html
    assert "https://pay.test/in_1" in email.text
    assert apply(accounts_db, event | {"data": {"object": invoice}}, billing).notices == []


def test_the_ended_notice_renders(billing: Billing) -> None:
    context = {"plan": "Pro", "manage_url": billing.page_url()}
    email = Mailer(billing.settings).render("billing_ended", **context)
    assert email.subject == "Your tickscan subscription has ended"
    assert "tickscan Pro subscription has ended" in email.text


def test_a_mail_outage_does_not_fail_the_webhook() -> None:
    broken, working = Outbox(fail=True), Outbox()
    notice = Notice("ada@example.com", "billing_ended", {"plan": "Pro"})
    run(send_notices(broken, [notice]))
    run(send_notices(working, [notice, notice]))
    assert broken.sent == [] and len(working.sent) == 2


# --- webhook signatures -------------------------------------------------------------------


def sign(payload: str, secret: str = WHSEC, at: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(payload, secret, at)


def test_a_signed_event_is_read(billing: Billing) -> None:
    payload = json.dumps(subscription_event("created", T0))
    assert billing.verify(payload.encode(), sign(payload))["data"]["object"]["id"] == "sub_1"


@pytest.mark.parametrize(
    "forge",
    [
        lambda p: (p.replace('"active"', '"trialing"').encode(), sign(p)),  # body changed
        lambda p: (p.encode(), sign(p, secret="whsec_other")),
        lambda p: (p.encode(), sign(p, at=int(time.time()) - 3600)),  # an old capture
        lambda p: (p.encode(), None),
        lambda p: (p.encode(), "t=1,v1=00"),
        lambda p: (b"not json", sign("not json")),
    ],
    ids=["tampered", "other_secret", "stale", "missing", "garbage", "not_json"],
)
def test_a_bad_signature_is_refused(billing: Billing, forge: Any) -> None:
    payload, header = forge(json.dumps(subscription_event("created", T0)))
    with pytest.raises(InvalidSignature):
        billing.verify(payload, header)


def test_without_a_webhook_secret_nothing_is_accepted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.accounts.billing.webhook_secret = None
    payload = json.dumps(subscription_event("created", T0))
    with pytest.raises(Unavailable):
        Billing(settings, http_client=StripeDouble()).verify(payload.encode(), sign(payload))


# --- routes -------------------------------------------------------------------------------


class Site:
    """The billing router on a partial app, with a Stripe double and an outbox."""

    def __init__(self, db: AccountsDb, settings: Settings) -> None:
        self.db = db
        self.stripe = StripeDouble()
        self.outbox = Outbox()
        self.tokens = TokenService(SECRET, 900, 3600)
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(billing_routes.router)
        app.state.accounts = Accounts(settings, db, self.tokens, mailer=self.outbox)
        app.state.billing = Billing(settings, http_client=self.stripe)
        self.client = TestClient(app)

    def sign_in(self, email: str, customer: str | None = None) -> dict[str, str]:
        async def start() -> str:
            user_id = await add_user(self.db, email, customer)
            async with self.db.session() as session:
                user = await session.get(User, user_id)
                assert user is not None
                return (await self.tokens.start(session, user)).access_token

        return {"Authorization": f"Bearer {run(start())}"}

    def webhook(self, event: dict[str, Any]) -> Any:
        payload = json.dumps(event)
        headers = {"Stripe-Signature": sign(payload), "Content-Type": "application/json"}
        return self.client.post("/api/v1/billing/webhook", content=payload, headers=headers)


@pytest.fixture
def site(accounts_db: AccountsDb, tmp_path: Path) -> Iterator[Site]:
    made = Site(accounts_db, make_settings(tmp_path))
    with made.client:
        yield made


def test_billing_off_is_a_clear_404(accounts_db: AccountsDb, tmp_path: Path) -> None:
    off = Site(accounts_db, make_settings(tmp_path, stripe_key=None))
    for method, path in [("post", "/checkout"), ("post", "/webhook")]:
        response = off.client.request(method, f"/api/v1/billing{path}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "billing_disabled"


def test_with_billing_off_the_offer_says_so_instead_of_a_404(
    accounts_db: AccountsDb, tmp_path: Path
) -> None:
    # Every page of the UI asks for the offer: billing off is an answer, not an error.
    off = Site(accounts_db, make_settings(tmp_path, stripe_key=None))
    response = off.client.get("/api/v1/billing/plans")
    assert response.status_code == 200
    assert response.json() == {"billing": False, "plans": []}


def test_plans_are_public(site: Site) -> None:
    assert site.client.get("/api/v1/billing/plans").json() == {
        "billing": True,
        "plans": [
            {"id": "pro", "label": "Pro", "features": ["live_board"]},
            {"id": "legacy", "label": "legacy", "features": ["alerts"]},
        ],
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/checkout"), ("post", "/portal"), ("get", "/subscription")],
)
def test_user_routes_require_sign_in(site: Site, method: str, path: str) -> None:
    response = site.client.request(method, f"/api/v1/billing{path}", json={"plan": "pro"})
    assert response.status_code == 401
    assert site.stripe.requests == []


def test_checkout_subscribes_the_users_one_customer_to_the_plans_price(site: Site) -> None:
    ada = site.sign_in("ada@example.com")
    for _ in range(2):
        response = site.client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=ada)
        assert response.json() == {"url": "https://pay.test/cs_1"}
    [customer] = site.stripe.calls("/v1/customers")
    assert customer["email"] == "ada@example.com"
    first, second = site.stripe.calls("/v1/checkout/sessions")
    assert first == second
    user_id = customer["metadata[user_id]"]
    assert first["customer"] == "cus_new" and first["client_reference_id"] == user_id
    assert (first["mode"], first["line_items[0][price]"]) == ("subscription", "price_pro")
    assert first["success_url"].startswith("https://tickscan.test/billing?checkout=success")
    assert "{CHECKOUT_SESSION_ID}" in first["success_url"]
    assert first["cancel_url"] == "https://tickscan.test/billing?checkout=cancel"
    [create_headers] = [h for _, p, _, h in site.stripe.requests if p == "/v1/customers"]
    assert create_headers["Idempotency-Key"] == f"tickscan-customer-{user_id}"


def test_checkout_refuses_an_unknown_plan_and_a_second_subscription(site: Site) -> None:
    ada = site.sign_in("ada@example.com", customer="cus_1")
    unknown = site.client.post("/api/v1/billing/checkout", json={"plan": "gold"}, headers=ada)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "unknown_plan")
    site.webhook(subscription_event("created", T0))
    again = site.client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=ada)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_subscribed")
    assert site.stripe.calls("/v1/checkout/sessions") == []


def test_a_stripe_outage_is_a_503(site: Site) -> None:
    site.stripe.answers[("post", "/v1/customers")] = (
        500,
        {"error": {"type": "api_error", "message": "boom"}},
    )
    ada = site.sign_in("ada@example.com")
    response = site.client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=ada)
    assert (response.status_code, response.json()["error"]["code"]) == (503, "billing_unavailable")
    # Retried, and with one idempotency key: Stripe would make one customer at most.
    keys = {h["Idempotency-Key"] for _, p, _, h in site.stripe.requests if p == "/v1/customers"}
    assert len(site.stripe.calls("/v1/customers")) == 3 and len(keys) == 1


def test_the_portal_opens_for_the_users_customer_only(site: Site) -> None:
    bo = site.sign_in("bo@example.com")
    none = site.client.post("/api/v1/billing/portal", headers=bo)
    assert (none.status_code, none.json()["error"]["code"]) == (404, "no_billing_account")
    ada = site.sign_in("ada@example.com", customer="cus_1")
    assert site.client.post("/api/v1/billing/portal", headers=ada).json() == {
        "url": "https://pay.test/p"
    }
    [portal] = site.stripe.calls("/v1/billing_portal/sessions")
    assert portal == {"customer": "cus_1", "return_url": "https://tickscan.test/billing"}


def test_the_subscription_route_shows_only_the_users_own(site: Site) -> None:
    ada = site.sign_in("ada@example.com", customer="cus_1")
    eve = site.sign_in("eve@example.com", customer="cus_2")
    assert site.client.get("/api/v1/billing/subscription", headers=ada).json()["plan"] is None
    assert site.webhook(subscription_event("created", T0)).json() == {
        "received": True,
        "outcome": "applied",
    }
    assert site.client.get("/api/v1/billing/subscription", headers=ada).json() == {
        "plan": "pro",
        "label": "Pro",
        "status": "active",
        "current_period_end": "2025-11-08T08:53:20Z",  # PERIOD_END
        "cancel_at_period_end": False,
    }
    assert site.client.get("/api/v1/billing/subscription", headers=eve).json() == {
        "plan": None,
        "label": None,
        "status": None,
        "current_period_end": None,
        "cancel_at_period_end": False,
    }


def test_the_webhook_refuses_a_tampered_event_and_acknowledges_a_replay(site: Site) -> None:
    ada = site.sign_in("ada@example.com", customer="cus_1")
    created = subscription_event("created", T0)
    payload = json.dumps(created)
    tampered = site.client.post(
        "/api/v1/billing/webhook",
        content=payload.replace("price_pro", "price_free"),
        headers={"Stripe-Signature": sign(payload)},
    )
    assert (tampered.status_code, tampered.json()["error"]["code"]) == (400, "invalid_signature")
    assert site.client.get("/api/v1/billing/subscription", headers=ada).json()["status"] is None
    assert site.webhook(created).json()["outcome"] == "applied"
    site.webhook(subscription_event("deleted", T0 + 60, status="canceled"))
    replay = site.webhook(created)
    assert (replay.status_code, replay.json()["outcome"]) == (200, "replayed")
    body = site.client.get("/api/v1/billing/subscription", headers=ada).json()
    assert body["status"] == "canceled"
    assert site.outbox.sent == [
        (
            "ada@example.com",
            "billing_ended",
            {"plan": "Pro", "manage_url": "https://tickscan.test/billing"},
        )
    ]
