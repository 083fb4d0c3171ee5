"""What the browser tests read off and do on tickscan's pages, by their data-testid names."""

from __future__ import annotations

import re
from typing import TypedDict

from playwright.sync_api import Locator, Page, expect

from tests.e2e.site import ROWS, Account

_UNITS = {"K": 1e3, "M": 1e6, "B": 1e9}
_NUMBER = re.compile(r"^([+-]?\d+(?:\.\d+)?)([KMB]?)")


class Row(TypedDict):
    key: str
    cells: dict[str, str]


# One read of the whole rendered grid: the board re-renders at 1 Hz, so rows read one by
# one could mix two seconds. Rows are absolutely positioned: screen order is by `top`.
_READ_ROWS = """() => [...document.querySelectorAll('[data-testid="board-row"]')]
  .map((row) => ({
    key: row.dataset.key,
    top: row.getBoundingClientRect().top,
    cells: Object.fromEntries([...row.querySelectorAll('[data-testid^="cell-"]')]
      .map((cell) => [cell.dataset.testid.slice(5), cell.textContent.trim()])),
  }))
  .sort((a, b) => a.top - b.top)
  .map(({ key, cells }) => ({ key, cells }))"""


def rows(page: Page) -> list[Row]:
    """The board's rendered rows, top to bottom, with the text of each cell by field."""
    read: list[Row] = page.evaluate(_READ_ROWS)
    return read


def number(text: str) -> float | None:
    """A cell's value as the board writes it (`+1.25%`, `12.40M`, `0.00012345`, `–`)."""
    match = _NUMBER.match(text.replace(",", ""))
    if match is None:
        return None
    return float(match.group(1)) * _UNITS.get(match.group(2), 1.0)


def column(page: Page, field: str) -> list[float | None]:
    """One column of the board, top to bottom."""
    return [number(row["cells"][field]) for row in rows(page)]


def open_board(page: Page) -> None:
    """Load the board and wait until every symbol has its row."""
    page.goto("/")
    expect(page.get_by_test_id("board-row")).to_have_count(ROWS)


def row(page: Page, key: str) -> Locator:
    """The board's row of `exchange:market:symbol`."""
    return page.locator(f'[data-testid="board-row"][data-key="{key}"]')


def sign_in(page: Page, account: Account) -> None:
    """Log in through the login page and wait until the app shows the account."""
    page.goto("/login")
    page.get_by_test_id("login-email").fill(account.email)
    page.get_by_test_id("login-password").fill(account.password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("user-menu")).to_contain_text(account.email)
