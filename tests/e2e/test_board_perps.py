"""The perpetuals columns in the browser: the column picker offers them and shows them as
traders read them (rows a test controls, see feed.py), and a filter on funding built in
the filter builder goes to the server, whose board applies it (the real tickscan: its
simulated rows have no funding yet, and a condition on a null is false)."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from schemas.ranks import PERP_METRICS, RankRow
from tests.e2e.feed import FakeFeed
from tests.e2e.pages import column, open_board, row
from tests.e2e.site import PERPETUALS, ROWS

NOW = int(time.time()) * 1000
PERP = "sim:usdm:FUNDUSDT"
NEW_COLUMNS = (*PERP_METRICS, "premium_bps")


def add_funding_condition(page: Page, op: str, value: str) -> None:
    page.get_by_test_id("filter-add").click()
    builder = page.get_by_test_id("filter-builder")
    builder.get_by_test_id("filter-metric").last.select_option("funding_rate_pct")
    builder.get_by_test_id("filter-op").last.select_option(op)
    builder.get_by_test_id("filter-value").last.fill(value)
    builder.get_by_test_id("filter-apply").click()


def test_the_column_picker_offers_the_perpetuals_columns(page: Page) -> None:
    perp = RankRow(
        "sim", "usdm", "FUNDUSDT", NOW, 101.5, mark_price=101.25, basis_bps=12.34,
        premium_bps=-3.05, funding_rate_pct=0.01, funding_annual_pct=10.95,
        next_funding_s=3 * 3600 + 12 * 60 + 5, open_interest_value=1_234_567_890.0,
        oi_change_pct_1h=2.5, liq_long_5m=45_600.0, liq_short_5m=0.0,
    )  # fmt: skip
    feed = FakeFeed(page, [perp], NOW)
    page.goto("/")
    expect(row(page, PERP)).to_be_visible()
    page.get_by_test_id("columns-menu").click()
    for field in NEW_COLUMNS:
        expect(page.get_by_test_id(f"column-{field}")).to_be_visible()
    liq = page.get_by_test_id("column-liq_long_5m").locator("xpath=..")
    assert "at most one liquidation per symbol per second" in (liq.get_attribute("title") or "")
    shown = {
        "funding_rate_pct": "+0.0100%",
        "funding_annual_pct": "+10.95%",
        "basis_bps": "+12.3 bp",
        "premium_bps": "-3.0 bp",
        "open_interest_value": "1.23B",
        "oi_change_pct_1h": "+2.50%",
        "liq_long_5m": "45.60K",
        "mark_price": "101.2500",
    }
    for field in (*shown, "next_funding_s"):
        page.get_by_test_id(f"column-{field}").check()
    for field, text in shown.items():
        expect(row(page, PERP).get_by_test_id(f"cell-{field}")).to_have_text(text)
    # The countdown counts on from the row's time to the board's.
    countdown = row(page, PERP).get_by_test_id("cell-next_funding_s")
    expect(countdown).to_have_text("3:12:05")
    feed.diff(NOW + 65_000)
    expect(countdown).to_have_text("3:11:00")
    # Sorting by a new column asks the server for it.
    page.get_by_test_id("columns-menu").click()  # closes it
    page.get_by_test_id("col-funding_rate_pct").click()
    expect(page.get_by_test_id("col-funding_rate_pct")).to_have_attribute("aria-sort", "descending")
    assert feed.requests[-1]["filter"]["sort"] == "funding_rate_pct"

    add_funding_condition(page, ">", "0.005")
    conditions = feed.requests[-1]["filter"]["conditions"]
    assert conditions[-1]["metric"] == "funding_rate_pct"
    assert (conditions[-1]["op"], conditions[-1]["value"]) == (">", 0.005)
    # the builder's liquidation metrics say the stream undercounts, as the columns do
    option = page.locator('[data-testid="filter-metric"] option[value="liq_short"]').first
    assert "at most one liquidation per symbol per second" in (option.get_attribute("title") or "")


def test_a_filter_on_funding_is_applied_by_the_server(page: Page) -> None:
    open_board(page)
    page.get_by_test_id("columns-menu").click()
    page.get_by_test_id("column-funding_rate_pct").check()
    page.get_by_test_id("columns-menu").click()  # closes it
    # A condition on a null is false: the filter keeps exactly the rows with a funding rate,
    # the simulated perpetuals' (their marks are in the store from the first start on).
    with_funding = sum(v is not None for v in column(page, "funding_rate_pct"))
    assert with_funding == PERPETUALS
    add_funding_condition(page, ">=", "-100")
    expect(page.get_by_test_id("board-row")).to_have_count(with_funding)
    assert all(v is not None for v in column(page, "funding_rate_pct"))
    page.get_by_test_id("filter-remove").last.click()
    page.get_by_test_id("filter-apply").click()
    expect(page.get_by_test_id("board-row")).to_have_count(ROWS)
