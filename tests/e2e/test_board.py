"""The scanner board in a real browser: it fills with the whole market and moves live,
sorts and filters as asked (OR groups and metrics compared with metrics too), and a
user's watchlist follows them from browser to browser."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

from tests.e2e.pages import column, number, open_board, row, rows, sign_in
from tests.e2e.site import FREE_DELAY_S, ROWS, Account, eventually, save_screenshot


def test_the_board_fills_with_every_symbol_and_moves_live(page: Page) -> None:
    open_board(page)
    expect(page.get_by_test_id("board-count")).to_contain_text(str(ROWS))
    expect(page.get_by_test_id("status-connection")).to_have_text("connected")
    # The simulator's data says so, and the free plan's board says how late it runs.
    expect(page.get_by_test_id("sim-banner")).to_be_visible()
    expect(page.get_by_test_id("delay-banner")).to_contain_text(str(FREE_DELAY_S))

    first = {row["key"]: row["cells"]["price"] for row in rows(page)}
    as_of = page.get_by_test_id("board-as-of").inner_text()

    def moved() -> bool:
        now = {row["key"]: row["cells"]["price"] for row in rows(page)}
        return any(now.get(key) not in (None, price) for key, price in first.items())

    eventually(moved, "no price on the board changed")
    expect(page.get_by_test_id("board-as-of")).not_to_have_text(as_of)
    save_screenshot("board.png", page)


def test_sorting_by_a_column_orders_the_rows_both_ways(page: Page) -> None:
    open_board(page)
    header = page.get_by_test_id("col-price")
    for _ in ("one way", "the other"):
        before = header.get_attribute("aria-sort")
        header.click()
        expect(header).not_to_have_attribute("aria-sort", before or "none")
        order = header.get_attribute("aria-sort")
        assert order in ("ascending", "descending"), order
        want_descending = order == "descending"

        def ordered(descending: bool = want_descending) -> bool:
            prices = column(page, "price")
            return len(prices) == ROWS and prices == sorted(prices, reverse=descending)  # type: ignore[type-var]

        eventually(ordered, f"the rows are not in {order} price order: {column(page, 'price')}", 5)


def middle_price(page: Page) -> tuple[float, int]:
    """A price threshold between the middle two symbols' prices, and how many lie above.

    On a log scale: the simulated prices lie decades apart, so no symbol crosses it while
    a test runs.
    """
    prices = sorted(p for p in column(page, "price") if p is not None)
    assert len(prices) == ROWS
    middle = ROWS // 2
    return math.sqrt(prices[middle - 1] * prices[middle]), ROWS - middle


def apply_price_above(page: Page, threshold: float) -> None:
    """Add the condition `price > threshold` in the filter builder and apply it."""
    page.get_by_test_id("filter-add").click()
    builder = page.get_by_test_id("filter-builder")
    builder.get_by_test_id("filter-metric").last.select_option("price")
    builder.get_by_test_id("filter-op").last.select_option(">")
    builder.get_by_test_id("filter-value").last.fill(f"{threshold:.10g}")
    builder.get_by_test_id("filter-apply").click()


def test_a_filter_keeps_exactly_the_rows_that_match(page: Page) -> None:
    open_board(page)
    threshold, above = middle_price(page)
    apply_price_above(page, threshold)

    expect(page.get_by_test_id("board-row")).to_have_count(above)
    expect(page.get_by_test_id("board-count")).to_contain_text(str(above))
    shown = column(page, "price")
    assert all(p is not None and p > threshold for p in shown), (threshold, shown)


def test_a_watchlist_change_reaches_the_users_other_browser(
    new_page: Callable[[], Page], account: Account
) -> None:
    here, there = new_page(), new_page()
    for page in (here, there):
        sign_in(page, account)
        open_board(page)
    key = rows(here)[0]["key"]

    def star(page: Page) -> Locator:
        return row(page, key).get_by_test_id("row-watch")

    expect(star(there)).to_have_attribute("aria-pressed", "false")
    star(here).click()
    expect(star(here)).to_have_attribute("aria-pressed", "true")
    expect(star(there)).to_have_attribute("aria-pressed", "true")
    # And back the other way, after a reload: the server kept it.
    there.reload()
    expect(star(there)).to_have_attribute("aria-pressed", "true")
    star(there).click()
    expect(star(here)).to_have_attribute("aria-pressed", "false")


def test_the_view_follows_the_user_to_another_browser(
    new_page: Callable[[], Page], account: Account
) -> None:
    here = new_page()
    sign_in(here, account)
    open_board(here)
    threshold, above = middle_price(here)
    apply_price_above(here, threshold)
    here.get_by_test_id("col-price").click()  # and a sort of the user's own
    expect(here.get_by_test_id("board-row")).to_have_count(above)
    expect(here.get_by_test_id("col-price")).not_to_have_attribute("aria-sort", "none")
    sort = here.get_by_test_id("col-price").get_attribute("aria-sort")
    # The view is saved a moment after it settles; a new browser has none stored locally.
    eventually(
        lambda: here.request.get("/api/v1/me/preferences").json().get("filter") is not None,
        "the view was never saved to the user's preferences",
    )
    there = new_page()
    sign_in(there, account)
    there.goto("/")
    expect(there.get_by_test_id("board-row")).to_have_count(above)
    expect(there.get_by_test_id("col-price")).to_have_attribute("aria-sort", sort or "")


def ratio_split(low: list[tuple[float, float]]) -> float:
    """A factor F splitting symbols by trades per minute over price at its widest gap.

    `low` holds (price, trades_per_min) of the symbols a price condition leaves out; F
    lies in the middle (on a log scale) of the widest gap between two neighbouring
    ratios, some of them on either side, so no symbol's rate drifts across it while a
    test runs.
    """
    ratios = sorted(trades / price for price, trades in low)
    assert len(ratios) >= 4, ratios
    gaps = [(ratios[i + 1] / ratios[i], i) for i in range(1, len(ratios) - 2)]
    widest, at = max(gaps)
    assert widest > 1.5, f"no gap between the symbols' trades/price ratios: {ratios}"
    return math.sqrt(ratios[at] * ratios[at + 1])


def test_an_or_group_with_a_metric_comparison_keeps_exactly_the_rows_that_match(
    page: Page, account: Account
) -> None:
    sign_in(page, account)
    open_board(page)
    # Trades per minute needs a minute of trades.
    eventually(
        lambda: None not in column(page, "trades_per_min"),
        "not every symbol has its trades per minute",
        150,
    )
    threshold, _ = middle_price(page)
    board = {
        r["key"]: (number(r["cells"]["price"]), number(r["cells"]["trades_per_min"]))
        for r in rows(page)
    }
    low = [(p, t) for p, t in board.values() if p is not None and t is not None and p <= threshold]
    factor = ratio_split(low)
    # any of: price > threshold, or trades_per_min > price × factor
    expected = {
        key
        for key, (price, trades) in board.items()
        if price is not None
        and trades is not None
        and (price > threshold or trades > price * factor)
    }
    assert ROWS // 2 < len(expected) < ROWS, (threshold, factor, board)

    builder = page.get_by_test_id("filter-builder")
    builder.get_by_test_id("filter-add-group").click()
    group = builder.get_by_test_id("filter-group")
    above, busy = (
        group.get_by_test_id("filter-condition").nth(0),
        group.get_by_test_id("filter-condition").nth(1),
    )
    above.get_by_test_id("filter-metric").select_option("price")
    above.get_by_test_id("filter-op").select_option(">")
    above.get_by_test_id("filter-value").fill(f"{threshold:.10g}")
    busy.get_by_test_id("filter-metric").select_option("trades_per_min")
    busy.get_by_test_id("filter-op").select_option(">")
    busy.get_by_test_id("filter-than").select_option("metric")
    busy.get_by_test_id("filter-other").select_option("price")
    busy.get_by_test_id("filter-factor").fill(f"{factor:.10g}")
    builder.get_by_test_id("filter-apply").click()

    def kept() -> set[str]:
        return {r["key"] for r in rows(page)}

    eventually(lambda: kept() == expected, f"the board does not keep {sorted(expected)}")
    expect(page.get_by_test_id("board-count")).to_contain_text(str(len(expected)))

    # Saved as a preset, the filter comes back from the server as it went: the builder
    # shows the same group and the board the same rows.
    page.get_by_test_id("preset-save").click()
    expect(page.get_by_test_id("preset-name")).to_have_value(
        re.compile(r"\(Price > .* or Trades / min > Price × ")
    )
    page.get_by_test_id("preset-save").click()
    expect(page.get_by_test_id("preset-select")).not_to_have_value("")
    page.reload()
    group = page.get_by_test_id("filter-builder").get_by_test_id("filter-group")
    expect(group).to_have_count(1)
    busy = group.get_by_test_id("filter-condition").nth(1)
    expect(busy.get_by_test_id("filter-than")).to_have_value("metric")
    expect(busy.get_by_test_id("filter-other")).to_have_value("price")
    assert float(busy.get_by_test_id("filter-factor").input_value()) == float(f"{factor:.10g}")
    eventually(
        lambda: kept() == expected, f"after a reload the board does not keep {sorted(expected)}"
    )


def test_an_anonymous_visit_logs_no_error(page: Page) -> None:
    # Nobody is signed in: the page must not ask who is (two 401s a browser logs as errors).
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    failed: list[str] = []
    page.on(
        "response", lambda response: failed.append(response.url) if response.status >= 400 else None
    )
    open_board(page)
    page.wait_for_timeout(2000)
    assert (errors, failed) == ([], [])
