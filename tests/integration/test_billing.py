"""Billing end to end: a real localstripe process sends signed webhooks to the billing API
served by uvicorn, both on loopback ports; the subscription mirror follows Stripe.

localstripe has no Checkout, so a test subscribes the user's customer directly, as a
completed Checkout would; Checkout and the portal are covered by the unit tests.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.accounts.billing import Billing, open_billing
from api.accounts.db import AccountsDb
from api.accounts.email import Mailer, RenderedEmail
from api.accounts.models import User
from api.accounts.tokens import TokenService, load_secret, now
from api.errors import install_error_handlers
from api.main import open_accounts
from api.routes import billing as billing_routes
from api.routes import entitlements as entitlement_routes
from api.settings import AccountsSettings, BillingSettings, PlanSettings
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

API_KEY = "sk_test_tickscan"
WHSEC = "whsec_tickscan_integration"
WEBHOOK_PATH = "/api/v1/billing/webhook"
DEADLINE_S = 30.0

LAUNCH = """
import sys
from aiohttp import web
from localstripe import resources, server
# localstripe saves its store to /tmp/localstripe.pickle after every write, for a later
# run to load: a test's server starts empty and leaves nothing behind.
resources.store.dump_to_disk = lambda: None
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""
"""localstripe's server on a loopback port (its command line listens on every interface)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    """Poll `check` until it returns something truthy; fail after `DEADLINE_S`."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


class Stripe:
    """A localstripe process and a client of its API."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.base, auth=(API_KEY, ""), timeout=10)

    def start(self) -> None:
        def up() -> bool:
            assert self.process.poll() is None, "localstripe exited at start"
            try:
                return self.http.get("/v1/plans").status_code == 200
            except httpx.TransportError:
                return False

        wait_for("localstripe to listen", up)

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(10)
        self.log.close()

    def post(self, path: str, **form: str) -> dict[str, Any]:
        response = self.http.post(path, data=form)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook request as it reached the app, and the app's answer."""

    body: bytes
    signature: str
    status: int

    @property
    def type(self) -> str:
        return str(json.loads(self.body)["type"])


class WebhookRecorder:
    """ASGI middleware keeping every webhook delivery, so a test can replay or tamper
    with exactly what Stripe signed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.deliveries: list[Delivery] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        status = [0]

        async def recording() -> Message:
            message = await receive()
            chunks.append(message.get("body", b""))
            return message

        async def answering(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.app(scope, recording, answering)
        signature = dict(scope["headers"]).get(b"stripe-signature", b"").decode()
        self.deliveries.append(Delivery(b"".join(chunks), signature, status[0]))

    def of(self, event_type: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.type == event_type]


class Outbox:
    """The app's mailer: renders each email from its templates and keeps it."""

    def __init__(self, settings: Settings) -> None:
        self.mailer = Mailer(settings)
        self.sent: list[tuple[str, str, RenderedEmail]] = []

    async def send(self, to: str, template: str, **context: Any) -> None:
        self.sent.append((to, template, self.mailer.render(template, **context)))


class Api:
    """The billing API under uvicorn in a thread, behind a webhook recorder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outbox = Outbox(settings)

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            async with open_accounts(settings) as accounts, open_billing(settings) as billing:
                accounts.mailer = self.outbox
                app.state.accounts, app.state.billing = accounts, billing
                yield

        app = FastAPI(lifespan=lifespan)
        install_error_handlers(app)
        app.include_router(billing_routes.router)
        app.include_router(entitlement_routes.router)
        self.recorder = WebhookRecorder(app)
        config = uvicorn.Config(
            self.recorder, host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        wait_for("uvicorn to start", lambda: self.server.started)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def sign_up(self, email: str) -> tuple[dict[str, str], str]:
        """A signed-in user with a Stripe customer (as the first checkout makes one).

        Returns:
            The user's auth header and Stripe customer id.
        """

        async def make() -> tuple[str, str]:
            db = AccountsDb(self.settings.accounts_url())
            tokens = TokenService(load_secret(self.settings), 900, 3600)
            billing = Billing(self.settings)
            try:
                async with db.session() as session:
                    user = User(email=email, email_verified=True, created_at=now())
                    session.add(user)
                    await session.flush()
                    customer = await billing.customer(session, user)
                    pair = await tokens.start(session, user)
                return pair.access_token, customer.stripe_customer_id
            finally:
                await billing.aclose()
                await db.aclose()

        token, customer = asyncio.run(make())
        return {"Authorization": f"Bearer {token}"}, customer

    def subscription(self, auth: dict[str, str]) -> dict[str, Any]:
        response = httpx.get(f"{self.base}/api/v1/billing/subscription", headers=auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def entitlements(self, auth: dict[str, str]) -> dict[str, Any]:
        response = httpx.get(f"{self.base}/api/v1/me/entitlements", headers=auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def post_webhook(self, body: bytes, signature: str) -> httpx.Response:
        headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
        return httpx.post(f"{self.base}{WEBHOOK_PATH}", content=body, headers=headers)


@pytest.fixture(scope="module")
def stripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stripe]:
    server = Stripe(tmp_path_factory.mktemp("localstripe") / "localstripe.log")
    try:
        server.start()
        server.post(
            "/v1/plans",
            id="plan_pro",
            amount="1500",
            currency="eur",
            interval="month",
            **{"product[name]": "tickscan Pro"},
        )
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api(stripe_server: Stripe, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("billing"),
        accounts=AccountsSettings(
            secret_key=SecretStr("integration-" + "k" * 40),
            public_url="https://tickscan.test",
            billing=BillingSettings(
                stripe_api_key=SecretStr(API_KEY),
                stripe_api_base=stripe_server.base,
                webhook_secret=SecretStr(WHSEC),
                plans=[
                    PlanSettings(
                        id="pro", stripe_price="plan_pro", label="Pro", features=["signals"]
                    )
                ],
            ),
        ),
    )
    server = Api(settings)
    server.start()
    try:
        # What the Stripe dashboard does when the webhook endpoint is added.
        response = stripe_server.http.post(
            "/_config/webhooks/tickscan",
            data={"url": server.base + WEBHOOK_PATH, "secret": WHSEC},
        )
        assert response.status_code == 200, response.text
        yield server
    finally:
        server.stop()


def mirrored_status(api: Api, auth: dict[str, str]) -> dict[str, Any] | None:
    body = api.subscription(auth)
    return body if body["status"] else None


def pay_with(stripe_server: Stripe, customer: str, payment_method: str) -> None:
    stripe_server.post(f"/v1/payment_methods/{payment_method}/attach", customer=customer)
    stripe_server.post(
        f"/v1/customers/{customer}",
        **{"invoice_settings[default_payment_method]": payment_method},
    )


def test_subscribe_then_cancel_through_signed_webhooks(stripe_server: Stripe, api: Api) -> None:
    auth, customer = api.sign_up("ada@example.com")
    assert api.subscription(auth)["status"] is None
    assert api.entitlements(auth)["plan"] == "free"
    pay_with(stripe_server, customer, "pm_card_visa")
    subscription = stripe_server.post(
        "/v1/subscriptions", customer=customer, **{"items[0][plan]": "plan_pro"}
    )

    active = wait_for("the mirrored subscription", lambda: mirrored_status(api, auth))
    assert active["status"] == "active" and active["plan"] == "pro"
    entitled = api.entitlements(auth)
    assert entitled["plan"] == "pro" and "signals" in entitled["features"]
    assert active["current_period_end"].startswith(
        time.strftime("%Y-%m-%dT%H:%M", time.gmtime(subscription["current_period_end"]))
    )
    [created] = api.recorder.of("customer.subscription.created")
    assert created.status == 200 and created.signature.startswith("t=")

    # The body changed after signing (a forged upgrade to another plan): refused.
    tampered = created.body.replace(b'"active"', b'"trialing"')
    assert api.post_webhook(tampered, created.signature).status_code == 400
    assert api.subscription(auth) == active

    response = stripe_server.http.delete(f"/v1/subscriptions/{subscription['id']}")
    assert response.status_code == 200, response.text
    ended = wait_for(
        "the mirror to see the cancellation",
        lambda: (body := api.subscription(auth))["status"] == "canceled" and body,
    )
    assert ended["plan"] == "pro"
    assert api.entitlements(auth)["plan"] == "free"  # canceled: not entitled any more

    # The creation delivered again, exactly as Stripe signed it: acknowledged, no effect.
    replay = api.post_webhook(created.body, created.signature)
    assert (replay.status_code, replay.json()["outcome"]) == (200, "replayed")
    assert api.subscription(auth) == ended
    [(to, template, email)] = [m for m in api.outbox.sent if m[0] == "ada@example.com"]
    assert (to, template) == ("ada@example.com", "billing_ended")
    assert "tickscan Pro subscription has ended" in email.text


def test_a_bounced_debit_is_emailed_and_ends_the_subscription(
    stripe_server: Stripe, api: Api
) -> None:
    auth, customer = api.sign_up("bo@example.com")
    # localstripe's SEPA debit that bounces: the subscription starts active, then the
    # payment fails and Stripe ends the subscription.
    debit = stripe_server.post(
        "/v1/payment_methods",
        type="sepa_debit",
        **{"sepa_debit[iban]": "DE62370400440532013001"},
    )
    pay_with(stripe_server, customer, debit["id"])
    stripe_server.post("/v1/subscriptions", customer=customer, **{"items[0][plan]": "plan_pro"})

    def emails() -> dict[str, RenderedEmail] | None:
        sent = {
            template: email for to, template, email in api.outbox.sent if to == "bo@example.com"
        }
        return sent if len(sent) == 2 else None

    sent = wait_for("the payment failed and ended emails", emails)
    failed = sent["billing_payment_failed"]
    assert failed.subject == "Your tickscan payment did not go through"
    assert "15.00 EUR" in failed.text and "https://tickscan.test/billing" in failed.text
    assert "tickscan Pro subscription has ended" in sent["billing_ended"].text
    mirrored = api.subscription(auth)
    assert (mirrored["status"], mirrored["plan"]) == ("canceled", "pro")
