"""Session fixtures of the browser tests: one tickscan on a simulated market, with billing
on and a fake SendGrid receiving its emails, and Debian's chromium to drive its UI.

Billing is on with a paid plan on offer, so every account here is on the free plan (its
board runs `FREE_DELAY_S` behind, 1s candles and signals are locked) and no call reaches
Stripe unless someone checks out. Accounts are made as a user makes them: sign up, follow
the emailed link.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.browser import launch
from tests.e2e.site import FREE_DELAY_S, RATE, SYMBOLS, Account, Site, save_screenshot
from tests.e2e.stack import running_stack
from tests.fakes.sendgrid import FakeSendGrid

SENDGRID_KEY = "SG.e2e-test-key"
VIEWPORT = {"width": 1600, "height": 1000}
TIMEOUT_MS = 30_000
"""How long an action or an expectation waits: the board moves at 1 Hz, and CI's cores
are shared by the browser, the whole stack and the test."""

expect.set_options(timeout=TIMEOUT_MS)


# Package scope: the stack and the browser end with the last e2e test. Playwright's sync
# API keeps an event loop running in this thread while it lives, and the tests after
# these (integration, unit) call asyncio.run(), which refuses to run inside one.
@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    mail = FakeSendGrid(SENDGRID_KEY)
    mail_url = mail.start()
    plans = [{"id": "pro", "stripe_price": "price_e2e_pro", "label": "Pro",
              "features": ["live_board", "candles_1s", "signals"]}]  # fmt: skip
    env = {
        "TICKSCAN_ACCOUNTS__EMAIL__SENDGRID_API_KEY": SENDGRID_KEY,
        "TICKSCAN_ACCOUNTS__EMAIL__SENDGRID_HOST": mail_url,
        "TICKSCAN_ACCOUNTS__BILLING__STRIPE_API_KEY": "sk_test_e2e",
        "TICKSCAN_ACCOUNTS__BILLING__PLANS": json.dumps(plans),
        "TICKSCAN_ACCOUNTS__FREE_DELAY_S": str(FREE_DELAY_S),
        # Cheap password hashes, and room for the sign-ins of a whole session.
        "TICKSCAN_ACCOUNTS__ARGON2_TIME_COST": "1",
        "TICKSCAN_ACCOUNTS__ARGON2_MEMORY_KIB": "8",
        "TICKSCAN_ACCOUNTS__AUTH_RATE_LIMIT": "1000/minute",
    }
    try:
        with running_stack(
            tmp_path_factory.mktemp("tickscan"), symbols=SYMBOLS, rate=RATE, env=env
        ) as url:
            yield Site(url, mail)
    finally:
        mail.stop()


@pytest.fixture
def account(site: Site) -> Account:
    """A new account, confirmed through the link in its email (sent through the API)."""
    created = Account(f"trader-{uuid.uuid4().hex[:10]}@example.com")
    with httpx.Client(base_url=site.url, timeout=30) as http:
        body = {"email": created.email, "password": created.password}
        assert http.post("/api/v1/auth/signup", json=body).status_code == 202
        token = parse_qs(urlsplit(site.emailed_link(created.email, "/verify-email")).query)
        verified = http.post("/api/v1/auth/verify", json={"token": token["token"][0]})
        assert verified.status_code == 200, verified.text
    return created


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep the call's outcome on the item, so page fixtures can picture a failure."""
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def new_page(
    site: Site, browser: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Page]]:
    """Open pages, each in its own browser context (its own cookies: its own user); a
    failed test leaves a screenshot of each in tests/e2e/artifacts."""
    pages: list[Page] = []

    def open_page() -> Page:
        context = browser.new_context(base_url=site.url, viewport=VIEWPORT)  # type: ignore[arg-type]
        context.set_default_timeout(TIMEOUT_MS)
        pages.append(context.new_page())
        return pages[-1]

    yield open_page
    for number, page in enumerate(pages):
        if request.node.stash.get(FAILED, False):
            save_screenshot(f"failed-{request.node.name}-{number}.png", page)
        page.context.close()


@pytest.fixture
def page(new_page: Callable[[], Page]) -> Page:
    return new_page()
