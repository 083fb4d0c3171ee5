"""The site's content security policy in a real browser: the board (signed in, its live
socket and a chart drawn by lightweight-charts) and the API's documentation run without a
single violation, so the policy forbids nothing they need."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.e2e.pages import open_board, row, sign_in
from tests.e2e.site import Account

FIRST_RENDER_MS = 90_000
"""Both documentation pages parse the whole OpenAPI document before drawing anything."""

REPORT_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:` +
      `${e.lineNumber}:${e.columnNumber} (${e.sample})`));
"""
"""Run before the page's own scripts: every violation the browser reports to the page."""


def watch(page: Page) -> list[str]:
    """Record the page's policy violations, as events and as console errors."""
    console: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on(
        "console",
        lambda message: (
            console.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return console


def violations(page: Page, console: list[str]) -> list[str]:
    reported: list[str] = page.evaluate("window.__violations")
    return reported + console


def test_the_signed_in_board_and_a_chart_break_no_rule(page: Page, account: Account) -> None:
    console = watch(page)
    received: list[str] = []

    def on_socket(socket: WebSocket) -> None:
        socket.on("framereceived", lambda frame: received.append(str(frame)))

    page.on("websocket", on_socket)
    sign_in(page, account)
    response = page.goto("/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    open_board(page)
    # The board's socket, opened by the site's own page, is signed in by its cookie.
    expect(page.get_by_test_id("user-menu")).to_contain_text(account.email)
    messages = [json.loads(text) for text in received if text.startswith("{")]
    assert any(m.get("type") == "authenticated" for m in messages), received[:5]
    row(page, "sim:spot:SYM0001USDT").dblclick()
    chart = page.get_by_test_id("chart")
    expect(chart.locator("canvas").first).to_be_visible()
    # The library's logo (an inline style) is off: the licence's link is the page's own.
    attribution = chart.get_by_test_id("chart-attribution")
    expect(attribution).to_have_attribute("href", "https://www.tradingview.com/")
    assert violations(page, console) == []


@pytest.mark.parametrize(
    ("path", "drawn"),
    [("/docs", ".opblock-summary-path"), ("/redoc", "h2")],
    ids=["swagger-ui", "redoc"],
)
def test_the_api_documentation_breaks_no_rule(page: Page, path: str, drawn: str) -> None:
    console = watch(page)
    response = page.goto(path)
    assert (
        response is not None
        and "frame-ancestors 'none'" in response.headers["content-security-policy"]
    )
    expect(page.locator(drawn).first).to_be_visible(timeout=FIRST_RENDER_MS)
    if path == "/docs":
        # An operation opens and shows its parameters: Swagger UI's scripts all ran.
        page.locator(".opblock-summary-path", has_text="/api/v1/candles").first.click()
        expect(page.locator(".parameters-container").first).to_contain_text("symbol")
    found = violations(page, console)
    # ReDoc's sidebar names its vendor's logo on a CDN: the policy keeps it out, as meant.
    assert [v for v in found if "cdn.redoc.ly" not in v] == [], found
