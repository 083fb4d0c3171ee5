"""A perpetual's chart in a real browser: open interest and funding in panes under the
candles, liquidations as markers on them, from history and live, on a desktop and a
390 px phone, without a console error.

The simulated market of the e2e stack trades spot only, so the perpetual's data here is a
stand-in the test controls: its history through routed REST answers in the API's shapes
(the API's own answers are tested on chDB in tests/integration/test_api_perps.py), its
live channel through the page's WebSocket (`tests.e2e.feed`). The page, its assets and
everything else are the real site's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, Route, WebSocketRoute, expect

from schemas.ranks import RankRow
from tests.e2e.feed import FakeFeed
from tests.e2e.pages import row
from tests.e2e.site import save_screenshot
from tests.e2e.test_board_views import PHONE

MINUTE = 60_000
LAST = time.time_ns() // 1_000_000 // MINUTE * MINUTE
BARS = 60
FIRST = LAST - (BARS - 1) * MINUTE
KEY = "sim:usdm:PERPUSDT"
LONG_BAR = FIRST + 40 * MINUTE
SETTLED_BAR = FIRST + 30 * MINUTE

# chartView.ts's colours of liquidated longs and shorts (#ff7043, #4dd0e1).
LONGS = (255, 112, 67)
SHORTS = (77, 208, 225)


def price(i: int) -> float:
    return 100 + (i % 7) - 3 + i * 0.1


def candles() -> dict[str, Any]:
    bars = []
    for i in range(BARS):
        t, p = FIRST + i * MINUTE, price(i)
        bars.append(
            {
                "open_time": t, "close_time": t + MINUTE - 1, "open": f"{p:.2f}",
                "high": f"{p + 1.5:.2f}", "low": f"{p - 1.5:.2f}", "close": f"{p + 0.5:.2f}",
                "volume": "10", "quote_volume": f"{10 * p:.2f}", "count": 5,
                "taker_buy_volume": "5", "taker_buy_quote_volume": f"{5 * p:.2f}",
                "first_trade_id": i * 5, "last_trade_id": i * 5 + 4, "version": 1,
                "source": "trades",
            }
        )  # fmt: skip
    return {**_named(), "candles": bars, "next_cursor": None}


def _named() -> dict[str, Any]:
    return {"exchange": "sim", "market": "usdm", "symbol": "PERPUSDT", "interval": "1m"}


def open_interest() -> dict[str, Any]:
    points = [
        {"time_ms": FIRST + i * MINUTE, "sample_ms": FIRST + i * MINUTE + 30_000,
         "open_interest": f"{1000 + 10 * i}.5", "open_interest_value": f"{(1000 + 10 * i) * 100}"}
        for i in range(BARS)
    ]  # fmt: skip
    return {**_named(), "points": points, "more": False}


def funding() -> dict[str, Any]:
    estimates = [
        {"time_ms": FIRST + i * MINUTE, "funding_rate": "0.0001" if i % 10 < 6 else "-0.00005"}
        for i in range(BARS)
    ]
    return {
        **_named(),
        "settled": [
            {
                "funding_time_ms": SETTLED_BAR,
                "funding_rate": "0.00011",
                "mark_price": "102.5",
                "source": "sim",
            }
        ],
        "estimates": estimates,
        "current": None,
        "more": False,
    }


def liquidations() -> dict[str, Any]:
    long = {"time_ms": LONG_BAR + 1_000, "side": "SELL", "price": "103", "avg_price": "103.5",
            "filled_qty": "2415.5", "quote_volume": "250004.25"}  # fmt: skip
    return {**_named(), "liquidations": [long], "more": False, "note": "undercount"}


HISTORY: dict[str, Callable[[], dict[str, Any]]] = {
    "/api/v1/candles": candles,
    "/api/v1/perps/open_interest": open_interest,
    "/api/v1/perps/funding": funding,
    "/api/v1/perps/liquidations": liquidations,
}


class PerpFeed(FakeFeed):
    """The board's channel with one perpetual's row, and that perpetual's candles and perps
    channels: `subscribed`, then what the test sends."""

    def __init__(self, page: Page) -> None:
        rows = [RankRow("sim", "usdm", "PERPUSDT", LAST, 103.0),
                RankRow("sim", "spot", "PERPUSDT", LAST, 103.1)]  # fmt: skip
        super().__init__(page, rows, LAST)
        self.perps: tuple[WebSocketRoute, str] | None = None

    def _receive(self, socket: WebSocketRoute, message: str | bytes) -> None:
        op = json.loads(message)
        if op.get("op") == "subscribe" and op.get("channel") in ("candles", "perps"):
            socket.send(
                json.dumps({"type": "subscribed", "id": op["id"], "channel": op["channel"]})
            )
            if op["channel"] == "perps":
                assert (op["exchange"], op["market"], op["symbol"]) == ("sim", "usdm", "PERPUSDT")
                self.perps = (socket, op["id"])
            return
        super()._receive(socket, message)

    def send(self, type: str, **body: Any) -> None:
        """A message of the perpetual's live channel."""
        assert self.perps is not None, "the chart has not subscribed to the perpetual"
        socket, sub = self.perps
        socket.send(json.dumps({"type": type, "id": sub, **body}))


def serve_history(page: Page) -> None:
    def answer(route: Route) -> None:
        path = route.request.url.split("?", 1)[0].split("//", 1)[1].split("/", 1)[1]
        route.fulfill(json=HISTORY["/" + path]())

    for path in HISTORY:
        page.route(f"**{path}?*", answer)


def console_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def panes(page: Page) -> list[float]:
    """The heights of the chart's panes, top to bottom (the library lays them out as the
    rows of a table, a separator row between two)."""
    heights: list[float] = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=chart] table tr')]
            .filter((tr) => tr.querySelectorAll('canvas').length > 0 && tr.offsetHeight > 8)
            .map((tr) => tr.offsetHeight)"""
    )
    return heights[:-1]  # the last row is the time axis


def pixels_of(page: Page, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the chart's canvases have this colour (a marker's)."""
    count: int = page.evaluate(
        """([r, g, b]) => {
            let n = 0;
            for (const canvas of document.querySelectorAll('[data-testid=chart] canvas')) {
                if (!canvas.width || !canvas.height) continue;
                const data = canvas.getContext('2d')
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                for (let i = 0; i < data.length; i += 4) {
                    if (Math.abs(data[i] - r) < 8 && Math.abs(data[i + 1] - g) < 8
                        && Math.abs(data[i + 2] - b) < 8 && data[i + 3] > 200) n++;
                }
            }
            return n;
        }""",
        list(rgb),
    )
    return count


def open_chart(page: Page) -> tuple[PerpFeed, list[str]]:
    errors = console_errors(page)
    serve_history(page)
    feed = PerpFeed(page)
    page.goto("/")
    row(page, KEY).dblclick()
    expect(page.get_by_test_id("chart")).to_be_visible()
    return feed, errors


def check_chart(page: Page, feed: PerpFeed, errors: list[str], shot: str) -> None:
    legend = page.get_by_test_id("chart-perps")
    expect(legend).to_be_visible()
    page.mouse.move(0, 0)  # off the chart: the legend shows the last bar
    # The last bar's open interest, in the quote asset and in contracts, its funding.
    expect(legend.get_by_test_id("perps-oi")).to_have_text("OI159.00K(1590.5)")
    expect(legend.get_by_test_id("perps-funding")).to_have_text("Funding-0.0050%")
    liquidations = legend.get_by_test_id("perps-liquidations")
    assert "undercount" in (liquidations.get_attribute("title") or "")
    expect(legend.get_by_test_id("perps-undercount")).to_be_visible()

    # Candles, open interest, funding: three panes, the candles the tallest.
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=chart] canvas').length > 6"
    )
    heights = panes(page)
    assert len(heights) == 3, heights
    assert heights[0] > heights[1] and heights[0] > heights[2], heights
    # The history's long liquidation is marked on its bar.
    page.wait_for_timeout(300)  # the library paints on the next animation frame
    assert pixels_of(page, LONGS) > 10, "no marker of liquidated longs"

    # Live: a liquidated short on the last bar and a new open-interest sample.
    feed.send("liquidation", time_ms=LAST + 5_000, side="BUY", price="104", avg_price="104",
              filled_qty="120", quote_volume="12480")  # fmt: skip
    feed.send("open_interest", time_ms=LAST + 20_000, open_interest="1700.5",
              open_interest_value="176852")  # fmt: skip
    feed.send("funding", settled=False, time_ms=LAST + 21_000, funding_rate="0.00012",
              next_funding_time_ms=LAST + 3_600_000, mark_price="104",
              index_price="103.9")  # fmt: skip
    expect(liquidations).to_contain_text("S 12.48K")
    expect(legend.get_by_test_id("perps-oi")).to_have_text("OI176.85K(1700.5)")
    expect(legend.get_by_test_id("perps-funding")).to_have_text("Funding0.0120%")
    page.wait_for_timeout(300)
    assert pixels_of(page, SHORTS) > 10, "no marker of liquidated shorts"
    save_screenshot(shot, page)
    assert errors == []


def test_a_perpetuals_chart_has_open_interest_and_funding_panes_and_liquidations(
    page: Page,
) -> None:
    feed, errors = open_chart(page)
    check_chart(page, feed, errors, "chart-perps.png")

    # The spot pair's chart has no panes and no perpetuals legend.
    feed.perps = None
    page.get_by_test_id("chart-close").click()
    row(page, "sim:spot:PERPUSDT").dblclick()
    expect(page.get_by_test_id("chart-last-close")).not_to_be_empty()
    expect(page.get_by_test_id("chart-perps")).to_have_count(0)
    assert len(panes(page)) == 1
    assert feed.perps is None, "a spot chart subscribed to perpetuals data"
    assert errors == []


def test_a_perpetuals_chart_fits_a_phone(new_page: Callable[[], Page]) -> None:
    page = new_page()
    page.set_viewport_size(PHONE)
    feed, errors = open_chart(page)
    expect(page.get_by_test_id("board")).to_be_hidden()
    expect(page.get_by_test_id("chart-perps")).to_be_in_viewport(ratio=1)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    check_chart(page, feed, errors, "phone-chart-perps.png")
