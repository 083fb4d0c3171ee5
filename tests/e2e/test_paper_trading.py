"""Paper trading from the chart in a real browser, on the simulated market, end to end:
open a paper account from the ticket, place a limit order with the keyboard, see it drawn
on the chart, see it fill when the market trades through it, see the position's P&L move
with the mark, and close it; on a desktop and on a 390 px phone, without a console error.
A resting order's line is also dragged (and stepped by keyboard) to amend its price.

Nothing is stubbed: the order goes through the API to the paper engine, which fills it
from the simulated perpetual's trades and values the position at its marks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import httpx
from playwright.sync_api import Locator, Page, expect

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


def order_size(site: Site, last: Decimal, ticks: int) -> tuple[str, str]:
    """A buy limit `ticks` ticks under `last` and a quantity on the lot step worth about
    `NOTIONAL`."""
    symbol = filters(site)
    tick, step = Decimal(symbol["tick_size"]), Decimal(symbol["step_size"])
    price = (last // tick - ticks) * tick
    qty = max((NOTIONAL / price) // step * step, Decimal(symbol.get("min_qty") or step))
    return f"{price.normalize():f}", f"{qty.normalize():f}"


def fills(page: Page) -> list[list[str]]:
    """The fills table's rows: side, quantity and liquidity of each, newest first."""
    rows: list[list[str]] = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="fill-row"]')].map((row) =>
            ['fill-side', 'fill-qty', 'fill-liquidity'].map((id) =>
                row.querySelector(`[data-testid="${id}"]`).textContent.trim()))"""
    )
    return rows


def traded(page: Page, side: str) -> Decimal:
    """The quantity the fills table shows bought (`Buy`) or sold (`Sell`)."""
    return sum((Decimal(q) for s, q, _ in fills(page) if s.startswith(side)), Decimal(0))


def open_ticket(page: Page, account: Account, balance: str) -> tuple[list[str], Locator]:
    """Sign in, open the perpetual's chart and, as a new user does from its ticket, open a
    paper account with `balance` USDT. Returns the console's errors (as they come) and
    the ticket."""
    errors = console_errors(page)
    sign_in(page, account)
    open_board(page)
    row(page, KEY).dblclick()
    expect(page.get_by_test_id("chart")).to_be_visible()
    ticket = page.get_by_test_id("ticket")
    expect(ticket.get_by_test_id("paper-create")).to_be_visible()
    ticket.get_by_test_id("paper-balance").fill(balance)
    ticket.get_by_test_id("paper-create-submit").click()
    expect(ticket.get_by_test_id("paper-equity")).to_have_text(f"{balance}.00")
    return errors, ticket


def trade_from_the_chart(
    page: Page, site: Site, account: Account, shot: str, *, phone: bool = False
) -> None:
    errors, ticket = open_ticket(page, account, "5000")
    chart = page.get_by_test_id("chart")

    # The ticket by keyboard: S and B choose the side, Esc clears, Enter sends.
    last_close = page.get_by_test_id("chart-last-close")
    expect(last_close).not_to_be_empty()
    amount = ticket.get_by_test_id("ticket-amount")
    amount.fill("12")
    amount.press("s")
    expect(ticket.get_by_test_id("ticket-sell")).to_have_attribute("aria-checked", "true")
    amount.press("Escape")
    expect(amount).to_have_value("")
    expect(chart).to_be_visible()  # the ticket's Esc does not close the chart
    amount.press("b")
    expect(ticket.get_by_test_id("ticket-buy")).to_have_attribute("aria-checked", "true")

    # A post-only buy just under the last price: it rests at the top of the book, where
    # the market's next sells trade through it. The book may have moved under the last
    # trade, so the venue can refuse it as a taker (Binance's words); then lower, twice as
    # far each time (the chart's last close can trail a market that runs up).
    ticket.get_by_test_id("ticket-tif").select_option("GTX")
    refused = 0
    while True:
        price, qty = order_size(site, Decimal(last_close.inner_text()), 1 + 5 * (2**refused - 1))
        amount.fill(qty)
        ticket.get_by_test_id("ticket-price").fill(price)
        ticket.get_by_test_id("ticket-price").press("Enter")
        answer = ticket.get_by_test_id("ticket-notice").or_(ticket.get_by_test_id("ticket-error"))
        expect(answer).not_to_be_empty()
        if ticket.get_by_test_id("ticket-error").count() == 0:
            break
        expect(ticket.get_by_test_id("ticket-error")).to_contain_text(
            "Post Only order will be rejected"
        )
        refused += 1
        assert refused < 10, "every post-only order would have taken liquidity"
    expect(ticket.get_by_test_id("ticket-notice")).to_contain_text(f"Buy order #{refused + 1}")
    # The browser logs each refusal's 400 as a failed load: nothing else may be logged.
    rejected = "the server responded with a status of 400"
    assert sum(rejected in error for error in errors) == refused, errors
    errors[:] = [error for error in errors if rejected not in error]

    # Resting, it is drawn on the chart at its price, with its side and quantity.
    order_line = page.get_by_test_id("chart-line-order")
    entry_line = page.get_by_test_id("chart-line-entry")
    expect(order_line).to_have_attribute("data-price", price)
    expect(order_line).to_contain_text(f"Buy {qty}")
    page.get_by_test_id("trading-tab-open").click()
    # In the open orders, unless the market has traded through it already (at the top of
    # the book it may fill within a second): then its position's entry line is drawn.
    open_row = page.get_by_test_id("open-order-row")
    expect(open_row.or_(entry_line).first).to_be_visible()
    assert set(open_row.get_by_test_id("order-price").all_inner_texts()) <= {price}
    save_screenshot(f"{shot}-resting.png", page)

    # The market trades through it (in one fill or several): a long of the whole size at
    # the order's price or better, drawn on the chart, every fill a maker's.
    expect(order_line).to_have_count(0, timeout=FILL_S * 1000)
    expect(entry_line).to_be_visible()
    assert Decimal(entry_line.get_attribute("data-price") or "0") <= Decimal(price)
    page.get_by_test_id("trading-tab-positions").click()
    position = page.get_by_test_id("position-row")
    expect(position).to_have_count(1)
    expect(position.get_by_test_id("position-qty")).to_have_text(qty)
    page.get_by_test_id("trading-tab-fills").click()
    eventually(lambda: traded(page, "Buy") == Decimal(qty), f"the fills do not buy {qty}")
    assert {liquidity for side, _, liquidity in fills(page) if side == "Buy"} == {"maker"}
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
    if phone:
        # The ticket comes after the chart, the page never scrolls sideways.
        chart_box = page.locator(".chart-area").bounding_box()
        ticket_box = ticket.bounding_box()
        assert chart_box and ticket_box
        assert ticket_box["y"] >= chart_box["y"] + chart_box["height"] - 1
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]

    # Close it: a reduce-only market order flattens it, the realised P&L and the fees stay.
    position.get_by_test_id("position-close").click()
    expect(page.get_by_test_id("position-row")).to_have_count(0, timeout=60_000)
    expect(entry_line).to_have_count(0)
    # The closing market order may walk several levels: its fills sell the whole size.
    page.get_by_test_id("trading-tab-fills").click()
    eventually(lambda: traded(page, "Sell") == Decimal(qty), f"the fills do not sell {qty}")
    expect(page.get_by_test_id("fill-row").first.get_by_test_id("fill-side")).to_have_text("Sell")
    page.get_by_test_id("trading-tab-orders").click()
    expect(page.get_by_test_id("order-row").first.get_by_test_id("order-status")).to_have_text(
        "filled"
    )
    save_screenshot(f"{shot}-closed.png", page)

    # The account page: its summary and equity curve, the trade in its history.
    page.get_by_test_id("paper-page-link").click()
    expect(page).to_have_url(re.compile(r"/paper\?account="))
    expect(page.get_by_test_id("paper-summary")).to_be_visible()
    expect(page.get_by_test_id("paper-summary-unrealized")).to_have_text("0.00")
    expect(page.get_by_test_id("equity-chart")).to_have_attribute("data-state", "ready")
    page.get_by_test_id("trading-tab-fills").click()
    expect(page.get_by_test_id("fill-row").first).to_be_visible()
    save_screenshot(f"{shot}-account.png", page)
    assert errors == [], errors


def test_a_limit_order_from_the_ticket_fills_and_its_position_closes(
    page: Page, site: Site, account: Account
) -> None:
    trade_from_the_chart(page, site, account, "paper")


def line_y(page: Page) -> float:
    """Where the resting order's line is on the chart: the pointer turns into a grab
    handle over it."""
    canvas = page.locator(".chart-canvas")
    box = canvas.bounding_box()
    assert box
    for dy in range(4, int(box["height"]) - 40, 2):
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + dy)
        if "line-grab" in (canvas.get_attribute("class") or ""):
            return box["y"] + dy
    raise AssertionError("no order line to grab on the chart")


def test_a_resting_order_is_dragged_and_stepped_to_new_prices_then_canceled(
    page: Page, site: Site, account: Account
) -> None:
    errors, ticket = open_ticket(page, account, "10000")
    last_close = page.get_by_test_id("chart-last-close")
    expect(last_close).not_to_be_empty()
    # Far enough under the market to stay resting, near enough to be on the chart.
    price, qty = order_size(site, Decimal(last_close.inner_text()) * Decimal("0.985"), 0)
    ticket.get_by_test_id("ticket-amount").fill(qty)
    ticket.get_by_test_id("ticket-price").fill(price)
    ticket.get_by_test_id("ticket-price").press("Enter")
    line = page.get_by_test_id("chart-line-order")
    expect(line).to_have_attribute("data-price", price)
    page.get_by_test_id("trading-tab-open").click()
    open_price = page.get_by_test_id("open-order-row").get_by_test_id("order-price")

    # Dragged down (away from the market, so it keeps resting), the line snaps to
    # the tick and the order is amended to its price.
    tick = Decimal(filters(site)["tick_size"])
    y = line_y(page)
    page.mouse.down()
    page.mouse.move(page.viewport_size["width"] - 500 if page.viewport_size else 0, y + 25, steps=5)
    page.mouse.up()
    expect(open_price).not_to_have_text(price)
    dragged = Decimal(open_price.inner_text())
    assert Decimal(0) < dragged < Decimal(price) and dragged % tick == 0, dragged
    expect(line).to_have_attribute("data-price", f"{dragged.normalize():f}")

    # By keyboard: two ticks down, Enter amends.
    line.focus()
    line.press("ArrowDown")
    line.press("ArrowDown")
    stepped = f"{(dragged - 2 * tick).normalize():f}"
    expect(line).to_have_attribute("data-price", stepped)
    line.press("Enter")
    expect(open_price).to_have_text(stepped)

    page.get_by_test_id("order-cancel").click()
    expect(line).to_have_count(0)
    expect(page.get_by_test_id("open-order-row")).to_have_count(0)
    assert errors == [], errors


def test_paper_trading_fits_a_phone(
    new_page: Callable[[], Page], site: Site, account: Account
) -> None:
    page = new_page()
    page.set_viewport_size(PHONE)
    trade_from_the_chart(page, site, account, "phone-paper", phone=True)
