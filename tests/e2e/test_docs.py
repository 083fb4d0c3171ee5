"""The API's documentation in a browser cut off from the internet: /docs (Swagger UI) and
/redoc (ReDoc) render every operation from files the server ships."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.site import Site

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
FIRST_RENDER_MS = 90_000
"""Both pages parse the whole OpenAPI document (and ReDoc a 1 MB bundle) before drawing
anything: on shared, busy cores that alone has taken over 30 s."""


@pytest.fixture
def offline_page(site: Site, browser: Browser) -> tuple[Page, list[str]]:
    """A page whose every request off this machine is aborted (and listed)."""
    context = browser.new_context(base_url=site.url)
    blocked: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOOPBACK or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", only_loopback)
    return context.new_page(), blocked


def test_swagger_ui_renders_the_operations_offline(offline_page: tuple[Page, list[str]]) -> None:
    page, blocked = offline_page
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto("/docs")
    candles = page.locator(".opblock-summary-path", has_text="/api/v1/candles").first
    expect(candles).to_be_visible(timeout=FIRST_RENDER_MS)
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/health")).to_be_visible()
    # The operation opens and shows its parameters: Swagger UI is working, not just drawn.
    candles.click()
    expect(page.locator(".parameters-container").first).to_contain_text("symbol")
    assert blocked == [] and failed == [], (blocked, failed)


def test_redoc_renders_the_operations_offline(offline_page: tuple[Page, list[str]]) -> None:
    page, blocked = offline_page
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto("/redoc")
    expect(page.locator("h2", has_text="Candles of one symbol and interval")).to_be_visible(
        timeout=FIRST_RENDER_MS
    )
    expect(page.locator("h2", has_text="Health of this API process")).to_be_visible()
    # ReDoc's sidebar names its vendor's logo on a CDN: the page's policy keeps the
    # browser from asking for it (ReDoc hides an image that does not load).
    assert blocked == [], blocked
    assert [url for url in failed if "cdn.redoc.ly" not in url] == [], failed
