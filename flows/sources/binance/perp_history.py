"""A USDⓈ-M perpetual's history over REST, page by page: funding, open interest, mark klines.

`fetch_funding`, `fetch_open_interest` and `fetch_mark_klines` return every record of one
symbol whose time falls in ``[start_ms, end_ms)``, oldest first, as `schemas.perps`
records ready for `flows.sinks.perps.PerpWriter`. They page the way each endpoint allows:

- ``fundingRate`` and ``markPriceKlines`` answer from startTime forwards, so the next page
  starts after the last row of a full one;
- ``openInterestHist`` is asked one window of ``limit x period`` at a time, which can hold
  no more than a page whichever end of a range Binance answers from.

Open-interest history exists for the last 30 days only: `open_interest_floor` is the
first sample time that may be asked for, and a caller clips its range to it (Binance
refuses an older startTime).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from flows.sources.binance.markets import binance_market
from flows.sources.binance.perp_responses import (
    FUNDING_PAGE,
    HISTORY_DAYS,
    MARK_KLINE_INTERVAL,
    OPEN_INTEREST_PAGE,
    OPEN_INTEREST_PERIOD,
    OPEN_INTEREST_PERIOD_MS,
)
from flows.sources.binance.rest import BinanceRest
from schemas.perps import FundingEvent, MarkKline, OpenInterest

__all__ = [
    "fetch_funding",
    "fetch_mark_klines",
    "fetch_open_interest",
    "open_interest_floor",
]

DAY_MS = 86_400_000
MINUTE_MS = 60_000
FLOOR_MARGIN_MS = 15 * MINUTE_MS
"""Kept between the 30-day edge and the first open-interest sample asked for, so a request
sent a little later is not refused for asking a few seconds too far back."""

R = TypeVar("R")


async def _page_forward(
    fetch: Callable[[int, int, int], Awaitable[Sequence[R]]],
    time_ms: Callable[[R], int],
    start_ms: int,
    end_ms: int,
    *,
    limit: int,
    step_ms: int,
    window_ms: int | None = None,
    on_page: Callable[[int], None] | None = None,
) -> list[R]:
    """Every row with a time in ``[start_ms, end_ms)``, page by page.

    Without `window_ms` a page asks from the cursor to the end, and a short page ends the
    range; with it, each page asks one window and the next starts after it.
    """
    out: list[R] = []
    cursor = start_ms
    while cursor < end_ms:
        last = end_ms - 1 if window_ms is None else min(end_ms, cursor + window_ms) - 1
        rows = await fetch(cursor, last, limit)
        fresh = [r for r in rows if cursor <= time_ms(r) <= last]
        out.extend(fresh)
        if on_page is not None:
            on_page(len(fresh))
        if window_ms is not None:
            cursor = last + 1
            continue
        if not fresh or len(rows) < limit:
            break
        cursor = time_ms(fresh[-1]) + step_ms
    return out


async def fetch_funding(
    rest: BinanceRest,
    symbol: str,
    start_ms: int,
    end_ms: int,
    *,
    on_page: Callable[[int], None] | None = None,
) -> list[FundingEvent]:
    """The settled funding times of `symbol` in ``[start_ms, end_ms)`` (``fundingRate``).

    Args:
        rest: A USDⓈ-M client (its budget and the funding request window pace the pages).
        symbol: The exchange symbol.
        start_ms: First funding time wanted (inclusive).
        end_ms: End of the range (exclusive).
        on_page: Called with the number of events of each page.
    """
    return await _page_forward(
        lambda first, last, limit: rest.funding_rates(symbol, first, last, limit),
        lambda e: e.funding_time_us // 1000,
        start_ms,
        end_ms,
        limit=FUNDING_PAGE,
        step_ms=1,
        on_page=on_page,
    )


async def fetch_open_interest(
    rest: BinanceRest,
    symbol: str,
    start_ms: int,
    end_ms: int,
    *,
    on_page: Callable[[int], None] | None = None,
) -> list[OpenInterest]:
    """Open interest of `symbol` every 5 minutes in ``[start_ms, end_ms)`` (``openInterestHist``).

    The range must not start before `open_interest_floor`: Binance refuses it.
    """
    return await _page_forward(
        lambda first, last, limit: rest.open_interest_hist(
            symbol, OPEN_INTEREST_PERIOD, first, last, limit
        ),
        lambda o: o.time_us // 1000,
        start_ms,
        end_ms,
        limit=OPEN_INTEREST_PAGE,
        step_ms=OPEN_INTEREST_PERIOD_MS,
        window_ms=OPEN_INTEREST_PAGE * OPEN_INTEREST_PERIOD_MS,
        on_page=on_page,
    )


async def fetch_mark_klines(
    rest: BinanceRest,
    symbol: str,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int | None = None,
    on_page: Callable[[int], None] | None = None,
) -> list[MarkKline]:
    """The closed 1m mark-price klines of `symbol` opening in ``[start_ms, end_ms)``.

    Pages of the market's ``kline_page`` rows (the most klines per unit of weight, as for
    klines). A kline still open at `now_ms` (the wall clock by default) is left out.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    klines = await _page_forward(
        lambda first, last, limit: rest.mark_price_klines(
            symbol, MARK_KLINE_INTERVAL, first, last, limit
        ),
        lambda k: k.open_time,
        start_ms,
        end_ms,
        limit=binance_market(rest.market).kline_page,
        step_ms=MINUTE_MS,
        on_page=on_page,
    )
    return [k for k in klines if k.close_time < now_ms]


def open_interest_floor(now_ms: int) -> int:
    """The first open-interest sample time that may be asked for at `now_ms`.

    Binance keeps `HISTORY_DAYS` of open-interest history; this is that edge plus a small
    margin, rounded up to the sampling period.
    """
    edge = now_ms - HISTORY_DAYS * DAY_MS + FLOOR_MARGIN_MS
    return -(-edge // OPEN_INTEREST_PERIOD_MS) * OPEN_INTEREST_PERIOD_MS
