"""The board's display of rows a test controls (the live socket is a stand-in, see
feed.py): dashes that count down to their window, the warm-up in the status line and the
default sort while warming, flashes that agree with what a cell shows, and a board that
dims and says so when the server is gone."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from schemas.ranks import RankRow
from tests.e2e.feed import FakeFeed
from tests.e2e.pages import row
from tests.e2e.site import save_screenshot

NOW = int(time.time()) * 1000
YOUNG = "sim:spot:YOUNGUSDT"
MUTE = "sim:spot:MUTEUSDT"


def cell(page: Page, key: str, field: str) -> str:
    return row(page, key).get_by_test_id(f"cell-{field}").inner_text()


def test_a_dash_says_how_long_until_its_window_is_covered(page: Page) -> None:
    # 100 s of 1s history: the 1m change has its value, the 5m change waits 201 s more.
    young = RankRow(
        "sim",
        "spot",
        "YOUNGUSDT",
        NOW,
        2.5,
        change_pct_1m=0.4,
        trades_per_min=40.0,
        history_1s_from_ms=NOW - 100_000,
        history_1m_from_ms=NOW - 60_000,
    )
    # A row that says nothing of its history: its dashes stay dashes.
    mute = RankRow("sim", "spot", "MUTEUSDT", NOW, 7.0, trades_per_min=90.0)
    feed = FakeFeed(page, [young, mute], NOW)
    page.goto("/")
    expect(row(page, YOUNG)).to_be_visible()

    expect(row(page, YOUNG).get_by_test_id("cell-change_pct_5m")).to_have_text("in 3:21")
    expect(row(page, YOUNG).get_by_test_id("cell-quote_volume_24h")).to_have_text("in 23h59m")
    assert cell(page, YOUNG, "change_pct_1m") == "+0.40%"
    assert cell(page, MUTE, "change_pct_5m") == "–"
    assert cell(page, MUTE, "quote_volume_24h") == "–"
    expect(page.get_by_test_id("status-warmup")).to_contain_text("warming up")

    # Nothing sorted by hand: the board sorts by a column that has values from the start.
    expect(page.get_by_test_id("col-trades_per_min")).to_have_attribute("aria-sort", "descending")
    assert feed.requests[-1]["filter"]["sort"] == "trades_per_min"
    keys = page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=board-row]')]"
        ".sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)"
        ".map((r) => r.dataset.key)"
    )
    assert keys == [YOUNG, MUTE]  # the server's order, as sent

    # Counting down with the board's time.
    feed.diff(NOW + 5_000, YOUNGUSDT={"price": 2.6})
    expect(row(page, YOUNG).get_by_test_id("cell-change_pct_5m")).to_have_text("in 3:16")
    save_screenshot("board-warming.png", page)

    # Once the window is covered the value takes the dash's place, and with every row warm
    # the status line stops saying so.
    day = 86_400_000
    warm = {
        "change_pct_5m": -1.25,
        "quote_volume_24h": 5e6,
        "history_1s_from_ms": NOW - day,
        "history_1m_from_ms": NOW - day,
    }
    filled = {
        f: 1.0
        for f in (
            "change_pct_15m",
            "change_pct_1h",
            "change_pct_4h",
            "change_pct_24h",
            "quote_volume_1m",
            "quote_volume_5m",
            "quote_volume_15m",
            "quote_volume_1h",
            "quote_volume_4h",
            "rvol_1m",
            "rvol_5m",
            "rvol_15m",
            "rvol_1h",
            "volatility_1h",
            "rsi_14",
            "vwap_24h",
            "vwap_distance_pct",
            "high_24h",
            "low_24h",
            "from_high_pct",
            "from_low_pct",
        )
    }
    feed.diff(NOW + 6_000, YOUNGUSDT=warm | filled, MUTEUSDT={"quote_volume_24h": 9e6})
    expect(row(page, YOUNG).get_by_test_id("cell-change_pct_5m")).to_have_text("-1.25%")
    expect(page.get_by_test_id("status-warmup")).to_have_count(0)
    # Warm: the default sort becomes 24h quote volume.
    expect(page.get_by_test_id("col-quote_volume_24h")).to_have_attribute("aria-sort", "descending")
    assert feed.requests[-1]["filter"]["sort"] == "quote_volume_24h"


def test_flashes_agree_with_what_the_cell_shows(page: Page) -> None:
    before = RankRow(
        "sim",
        "spot",
        "FLASHUSDT",
        NOW,
        10.0,
        change_pct_5m=-0.05,
        quote_volume_5m=1000.0,
        trades_per_min=10.0,
    )
    feed = FakeFeed(page, [before], NOW)
    page.goto("/")
    key = "sim:spot:FLASHUSDT"
    expect(row(page, key)).to_be_visible()

    # The price ticks up; the 5m change rises but is still negative; volume falls, trades rise.
    feed.diff(
        NOW + 1_000,
        FLASHUSDT={
            "price": 11.0,
            "change_pct_5m": -0.01,
            "quote_volume_5m": 900.0,
            "trades_per_min": 12.0,
        },
    )
    change = row(page, key).get_by_test_id("cell-change_pct_5m")
    expect(change).to_have_text("-0.01%")
    expect(change).to_have_class(re.compile(r"\bdown\b"))
    expect(change).to_have_class(re.compile(r"\bflash-down\b"))  # a red cell flashes red
    expect(row(page, key).get_by_test_id("cell-price")).to_have_class(re.compile(r"\bflash-up\b"))
    for field in ("quote_volume_5m", "trades_per_min"):
        expect(row(page, key).get_by_test_id(f"cell-{field}")).to_have_class(
            re.compile(r"\bflash-neutral\b")
        )

    # Rising through zero: the change turns green and flashes green; the price ticks down.
    feed.diff(NOW + 2_000, FLASHUSDT={"price": 10.5, "change_pct_5m": 0.3})
    expect(change).to_have_text("+0.30%")
    expect(change).to_have_class(re.compile(r"\bflash-up\b"))
    expect(row(page, key).get_by_test_id("cell-price")).to_have_class(re.compile(r"\bflash-down\b"))


def test_the_board_dims_and_says_so_when_the_server_is_gone(page: Page) -> None:
    rows = [RankRow("sim", "spot", "GONEUSDT", NOW, 3.0, trades_per_min=5.0)]
    feed = FakeFeed(page, rows, NOW)
    page.goto("/")
    board = page.get_by_test_id("board")
    expect(row(page, "sim:spot:GONEUSDT")).to_be_visible()
    expect(page.get_by_test_id("board-offline")).to_have_count(0)
    expect(page.get_by_test_id("status-connection")).to_have_text("connected")

    feed.go_down()
    expect(page.get_by_test_id("board-offline")).to_contain_text("cannot be reached")
    expect(board).to_have_attribute("data-offline", "true")
    expect(page.get_by_test_id("status-connection")).to_have_text("offline")
    opacity = page.evaluate("() => getComputedStyle(document.querySelector('.board-body')).opacity")
    assert float(opacity) < 0.5, opacity
    save_screenshot("board-offline.png", page)

    feed.come_back()  # the socket retries within seconds, and gets a fresh snapshot
    expect(page.get_by_test_id("board-offline")).to_have_count(0)
    expect(board).not_to_have_attribute("data-offline", "true")
    expect(page.get_by_test_id("status-connection")).to_have_text("connected")
