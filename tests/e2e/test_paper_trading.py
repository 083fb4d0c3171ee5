"""Paper trading from the chart in a real browser, on the simulated market, end to end:
open a paper account from the ticket, place a limit order with the keyboard, see it drawn
on the chart, see it fill when the market trades through it, see the position's P&L move
with the mark, and close it; on a desktop and on a 390 px phone, without a console error.

Nothing is stubbed: the order goes through the API to the paper engine, which fills it
from the simulated perpetual's trades and values the position at its marks.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.pages import open_board, row, sign_in
from tests.e2e.site import Account, Site, eventually, save_screenshot
from tests.e2e.test_board_views import PHONE
from tests.e2e.test_chart_perps import console_errors

SYMBOL = "SYM0001USDT"
KEY = f"sim:usdm:{SYMBOL}"
"""The simulated market's busiest perpetual: it prints trades and marks every second."""
FILL_S = 180.0
"""How long the market may take to trade through a price one tick under the last."""
NOTIONAL = Decimal(1000)
"""What the order is worth in USDT: above any minimum notional, far below the balance."""


def filters(site: Site) -> dict[str, str]:
    """The perpetual's trading filters as GET /api/v1/symbols gives them."""
    answer = httpx.get(f"{site.url}/api/v1/symbols", params={"exchange": "sim", "market": "usdm"})
    answer.raise_for_status()
    found: dict[str, str] = next(s for s in answer.json()["symbols"] if s["symbol"] == SYMBOL)
    return found


def order_size(site: Site, last: Decimal) -> tuple[str, str]:
    """A buy limit one tick under `last` (resting, not crossing: at most at the best bid
    or inside the spread, so the first trade at or under it fills it) and a quantity on
    the lot step worth about `NOTIONAL`."""
    symbol = filters(site)
    tick, step = Decimal(symbol["tick_size"]), Decimal(symbol["step_size"])
    price = (last // tick - 1) * tick
    qty = max((NOTIONAL / price) // step * step, Decimal(symbol.get("min_qty") or step))
    return f"{price.normalize():f}", f"{qty.normalize():f}"


def trade_from_the_chart(page: Page, site: Site, account: Account, shot: str) -> None:
    errors = console_errors(page)
    sign_in(page, account)
    open_board(page)
    row(page, KEY).dblclick()
    chart = page.get_by_test_id("chart")
    expect(chart).to_be_visible()
    ticket = page.get_by_test_id("ticket")

    # A new user opens a paper account from the ticket, with the starting balance chosen.
    expect(ticket.get_by_test_id("paper-create")).to_be_visible()
    ticket.get_by_test_id("paper-balance").fill("5000")
    ticket.get_by_test_id("paper-create-submit").click()
    expect(ticket.get_by_test_id("paper-equity")).to_have_text("5000.00")

    # The ticket by keyboard: S and B choose the side, Esc clears, Enter sends.
    last_close = page.get_by_test_id("chart-last-close")
    expect(last_close).not_to_be_empty()
    price, qty = order_size(site, Decimal(last_close.inner_text()))
    amount = ticket.get_by_test_id("ticket-amount")
    amount.fill("12")
    amount.press("s")
    expect(ticket.get_by_test_id("ticket-sell")).to_have_attribute("aria-checked", "true")
    amount.press("Escape")
    expect(amount).to_have_value("")
    expect(chart).to_be_visible()  # the ticket's Esc does not close the chart
    amount.press("b")
    expect(ticket.get_by_test_id("ticket-buy")).to_have_attribute("aria-checked", "true")
    amount.fill(qty)
    ticket.get_by_test_id("ticket-price").fill(price)
    ticket.get_by_test_id("ticket-price").press("Enter")
    expect(ticket.get_by_test_id("ticket-notice")).to_contain_text("Buy order #1")

    # Resting, it is drawn on the chart at its price, with its side and quantity; or the
    # market already traded through it and the position's entry is drawn instead.
    order_line = page.get_by_test_id("chart-line-order")
    entry_line = page.get_by_test_id("chart-line-entry")
    expect(order_line.or_(entry_line)).to_be_visible()
    if order_line.count():
        expect(order_line).to_have_attribute("data-price", price)
        expect(order_line).to_contain_text(f"Buy {qty}")
        page.get_by_test_id("trading-tab-open").click()
        expect(page.get_by_test_id("open-order-row")).to_have_count(1)
        save_screenshot(f"{shot}-resting.png", page)

    # The market trades through it: a long at the order's price (or better), on the chart.
    expect(entry_line).to_be_visible(timeout=FILL_S * 1000)
    expect(order_line).to_have_count(0)
    page.get_by_test_id("trading-tab-positions").click()
    position = page.get_by_test_id("position-row")
    expect(position).to_have_count(1)
    expect(position.get_by_test_id("position-qty")).to_have_text(qty)
    assert Decimal(entry_line.get_attribute("data-price") or "0") <= Decimal(price)
    page.get_by_test_id("trading-tab-fills").click()
    expect(page.get_by_test_id("fill-row")).to_have_count(1)
    expect(page.get_by_test_id("fill-row")).to_contain_text("maker")
    page.get_by_test_id("trading-tab-positions").click()
    # Unrealised, realised, fees and funding each on their own; the fee is the maker's.
    expect(position.get_by_test_id("position-fees")).not_to_have_text("0.00")
    for field in ("position-unrealized", "position-realized", "position-funding"):
        expect(position.get_by_test_id(field)).to_be_visible()

    # The P&L moves with the mark.
    unrealized = position.get_by_test_id("position-unrealized")
    seen = {unrealized.inner_text()}
    eventually(lambda: seen.add(unrealized.inner_text()) or len(seen) > 1,
               f"the position's unrealised P&L stayed at {seen}", 90)  # fmt: skip
    save_screenshot(f"{shot}-position.png", page)

    # Close it: a reduce-only market order flattens it, the realised P&L and the fees stay.
    position.get_by_test_id("position-close").click()
    expect(page.get_by_test_id("position-row")).to_have_count(0, timeout=60_000)
    expect(entry_line).to_have_count(0)
    page.get_by_test_id("trading-tab-fills").click()
    expect(page.get_by_test_id("fill-row")).to_have_count(2)
    expect(page.get_by_test_id("fill-row").first).to_contain_text("Sell")
    page.get_by_test_id("trading-tab-orders").click()
    expect(page.get_by_test_id("order-row").first.get_by_test_id("order-status")).to_have_text(
        "filled"
    )
    save_screenshot(f"{shot}-closed.png", page)
    assert errors == [], errors


def test_a_limit_order_from_the_ticket_fills_and_its_position_closes(
    page: Page, site: Site, account: Account
) -> None:
    trade_from_the_chart(page, site, account, "paper")


def test_paper_trading_fits_a_phone(
    new_page: Callable[[], Page], site: Site, account: Account
) -> None:
    page = new_page()
    page.set_viewport_size(PHONE)
    trade_from_the_chart(page, site, account, "phone-paper")
    # The ticket comes after the chart, the page never scrolls sideways.
    chart_box = page.locator(".chart-area").bounding_box()
    ticket_box = page.get_by_test_id("ticket").bounding_box()
    assert chart_box and ticket_box and ticket_box["y"] >= chart_box["y"] + chart_box["height"] - 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
