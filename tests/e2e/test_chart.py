"""Charts in a real browser: opened from the board beside it, with history from the API
and the forming candle moving live; 1s candles locked for a free account."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.sync_api import Page, Response, expect

from tests.e2e.pages import open_board, row, sign_in
from tests.e2e.site import Account, Site, eventually, save_screenshot

BUSIEST = "sim:spot:SYM0001USDT"
"""The simulated market's most active symbol: its price moves nearly every second."""


def history(interval: str) -> Callable[[Response], bool]:
    """Matches the chart's history request for `interval`."""

    def matches(response: Response) -> bool:
        return "/api/v1/candles?" in response.url and f"interval={interval}" in response.url

    return matches


def test_a_chart_opens_beside_the_board_with_history_and_a_live_last_candle(
    page: Page, site: Site
) -> None:
    # History holds closed minutes: the stack may be younger than its first one.
    params = {"exchange": "sim", "market": "spot", "symbol": "SYM0001USDT", "interval": "1m"}
    candles = f"{site.url}/api/v1/candles"
    eventually(lambda: httpx.get(candles, params=params).json()["candles"], "no 1m candle", 90)
    open_board(page)
    with page.expect_response(history("1m")) as loaded:
        row(page, BUSIEST).dblclick()
    assert loaded.value.ok, loaded.value.status
    assert loaded.value.json()["candles"], "the chart's history came back empty"

    chart = page.get_by_test_id("chart")
    expect(chart).to_be_visible()
    expect(page.get_by_test_id("chart-interval-1m")).to_have_attribute("aria-pressed", "true")
    last_close = page.get_by_test_id("chart-last-close")
    expect(last_close).not_to_be_empty()
    first = last_close.inner_text()
    eventually(lambda: last_close.inner_text() != first, f"the last close stayed at {first}")
    # The board stays live beside it.
    expect(page.get_by_test_id("board")).to_be_visible()
    save_screenshot("chart.png", page)

    with page.expect_response(history("5m")) as reloaded:
        page.get_by_test_id("chart-interval-5m").click()
    assert reloaded.value.ok and reloaded.value.json()["candles"]
    expect(page.get_by_test_id("chart-interval-5m")).to_have_attribute("aria-pressed", "true")

    page.get_by_test_id("chart-close").click()
    expect(chart).to_have_count(0)


def test_a_free_account_sees_1s_candles_and_signals_locked(page: Page, account: Account) -> None:
    sign_in(page, account)
    open_board(page)
    row(page, BUSIEST).dblclick()
    expect(page.get_by_test_id("chart")).to_be_visible()
    for feature in ("candles_1s", "signals"):
        locked = page.get_by_test_id(f"locked-{feature}")
        expect(locked).to_be_visible()
        expect(locked.get_by_role("link")).to_have_attribute("href", "/billing")
    # Shown, but not usable: the 1s interval cannot be chosen.
    expect(page.get_by_test_id("chart-interval-1s")).not_to_have_attribute("aria-pressed", "true")
