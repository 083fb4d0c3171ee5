"""The board as a link, on a phone, and with the user's lists: the filter and sort ride in
the URL, a 390 px screen shows the board and then the chart as its own view, and
watchlists and the ignore-list are managed from the toolbar."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect

from tests.e2e.pages import open_board, row, rows, sign_in
from tests.e2e.site import ROWS, Account, save_screenshot
from tests.e2e.test_board import apply_price_above, middle_price

PHONE = {"width": 390, "height": 844}


def linked_filter(page: Page) -> dict[str, object] | None:
    query = parse_qs(urlsplit(page.url).query)
    return json.loads(query["filter"][0]) if "filter" in query else None


def test_the_filter_and_sort_travel_in_the_link(new_page: Callable[[], Page]) -> None:
    here = new_page()
    open_board(here)
    assert linked_filter(here) is None  # nothing chosen yet: a clean address
    threshold, above = middle_price(here)
    apply_price_above(here, threshold)
    here.get_by_test_id("col-price").click()
    expect(here.get_by_test_id("board-row")).to_have_count(above)
    sort = here.get_by_test_id("col-price").get_attribute("aria-sort")
    assert sort in ("ascending", "descending")

    shared = linked_filter(here)
    assert shared is not None, here.url
    assert shared["sort"] == "price"
    assert shared["conditions"] == [
        {
            "metric": "price",
            "window": None,
            "op": ">",
            "value": float(f"{threshold:.10g}"),
            "value2": None,
        }
    ]

    there = new_page()  # another browser: nothing stored, only the link
    there.goto(here.url)
    expect(there.get_by_test_id("board-row")).to_have_count(above)
    expect(there.get_by_test_id("col-price")).to_have_attribute("aria-sort", sort)
    expect(there.get_by_test_id("filter-value")).to_have_value(f"{threshold:.10g}")
    assert linked_filter(there) == shared
    # Changing the board there changes its link, in place (no new history entry).
    length = there.evaluate("history.length")
    there.get_by_test_id("col-change_pct_1m").click()
    expect(there.get_by_test_id("col-change_pct_1m")).to_have_attribute("aria-sort", "descending")
    assert linked_filter(there)["sort"] == "change_pct_1m"  # type: ignore[index]
    assert there.evaluate("history.length") == length


def test_a_phone_shows_the_board_then_the_chart_as_its_own_view(
    new_page: Callable[[], Page],
) -> None:
    page = new_page()
    page.set_viewport_size(PHONE)
    open_board(page)
    width = "() => document.documentElement.scrollWidth"
    assert page.evaluate(width) <= PHONE["width"]
    signup = page.get_by_test_id("signup-link")
    expect(signup).to_be_in_viewport(ratio=1)
    save_screenshot("phone-board.png", page)

    key = rows(page)[0]["key"]
    row(page, key).dblclick()
    chart = page.get_by_test_id("chart")
    expect(chart).to_be_visible()
    # The chart does not cover the board: it replaces it.
    expect(page.get_by_test_id("board")).to_be_hidden()
    back = page.get_by_test_id("chart-back")
    expect(back).to_be_in_viewport(ratio=1)
    expect(page.get_by_test_id("chart-interval-1d")).to_be_in_viewport(ratio=1)
    box = chart.bounding_box()
    assert box is not None and box["width"] <= PHONE["width"] and box["height"] > 400, box
    assert page.evaluate(width) <= PHONE["width"]
    save_screenshot("phone-chart.png", page)

    back.click()
    expect(chart).to_have_count(0)
    expect(page.get_by_test_id("board")).to_be_visible()
    expect(page.get_by_test_id("board-row")).to_have_count(ROWS)


def test_favicon_is_served_and_linked(page: Page) -> None:
    page.goto("/")
    icon = page.locator('link[rel="icon"]')
    expect(icon).to_have_attribute("href", "/favicon.svg")
    answer = page.request.get("/favicon.svg")
    assert answer.ok and answer.headers["content-type"].startswith("image/svg+xml")


def test_watchlists_are_made_renamed_switched_and_deleted(page: Page, account: Account) -> None:
    sign_in(page, account)
    open_board(page)
    select = page.get_by_test_id("watchlist-select")
    menu = page.get_by_test_id("lists-menu")

    menu.click()
    page.get_by_test_id("watchlist-new-name").fill("Majors")
    page.get_by_test_id("watchlist-create").click()
    expect(select.locator("option:checked")).to_have_text("★ Majors (0)")  # switched to it
    expect(page.get_by_test_id("board-row")).to_have_count(0)
    expect(page.get_by_test_id("board")).to_contain_text("no symbols yet")

    select.select_option(label="All symbols")
    expect(page.get_by_test_id("board-row")).to_have_count(ROWS)
    key = rows(page)[0]["key"]
    row(page, key).get_by_test_id("row-watch").click()
    expect(select.locator("option", has_text="Majors")).to_have_text("★ Majors (1)")
    select.select_option(label="★ Majors (1)")
    expect(page.get_by_test_id("board-row")).to_have_count(1)
    expect(row(page, key)).to_be_visible()

    menu.click()
    name = page.get_by_test_id("watchlist-name")
    name.fill("Core")
    page.get_by_test_id("watchlist-rename").click()
    expect(select.locator("option:checked")).to_have_text("★ Core (1)")
    # The free plan keeps one watchlist: a second is refused, saying why.
    page.get_by_test_id("watchlist-new-name").fill("Alts")
    page.get_by_test_id("watchlist-create").click()
    expect(page.get_by_test_id("board-notice")).to_be_visible()
    expect(select.locator("option")).to_have_count(2)

    delete = page.get_by_test_id("watchlist-delete")
    delete.click()
    expect(delete).to_contain_text("Core")  # asks once more before deleting
    delete.click()
    expect(page.get_by_test_id("lists")).not_to_have_attribute("open", "")
    expect(select.locator("option")).to_have_count(1)
    expect(select).to_have_value("")
    expect(page.get_by_test_id("board-row")).to_have_count(ROWS)
    states = page.request.get("/api/v1/me/watchlists").json()
    assert states == [], states

    # And a new one takes the freed place.
    menu.click()
    page.get_by_test_id("watchlist-new-name").fill("Alts")
    page.get_by_test_id("watchlist-create").click()
    expect(select.locator("option:checked")).to_have_text("★ Alts (0)")


def test_ignored_symbols_are_listed_and_can_be_let_back(page: Page, account: Account) -> None:
    sign_in(page, account)
    open_board(page)
    key = rows(page)[0]["key"]
    row(page, key).get_by_test_id("row-ignore").click()
    expect(row(page, key)).to_have_count(0)  # ignored symbols are hidden by default
    expect(page.get_by_test_id("board-row")).to_have_count(ROWS - 1)

    page.get_by_test_id("lists-menu").click()
    entry = page.get_by_test_id("ignored-entry")
    expect(entry).to_have_count(1)
    expect(entry).to_have_attribute("data-entry", key)
    entry.get_by_test_id("unignore").click()
    expect(entry).to_have_count(0)
    expect(row(page, key)).to_be_visible()
    expect(page.get_by_test_id("board-row")).to_have_count(ROWS)
    assert page.request.get("/api/v1/me/ignored").json()["symbols"] == []
