"""A USDⓈ-M perpetual's history over REST, page by page: funding, open interest, mark klines.

`fetch_history` returns every record of one symbol whose time falls in
``[start_ms, end_ms)``, oldest first, as `schemas.perps` records ready for
`flows.sinks.perps.PerpWriter`, from one of three endpoints (`FUNDING`, `OPEN_INTEREST`,
`MARK_KLINES`), paged the way each allows (`flows.sources.binance.klines.page_forward`):

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
from dataclasses import dataclass
from typing import Any

from flows.sources.binance.klines import Paging, page_forward
from flows.sources.binance.markets import USDM
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
    "FUNDING",
    "MARK_KLINES",
    "OPEN_INTEREST",
    "HistoryEndpoint",
    "fetch_history",
    "open_interest_floor",
]

DAY_MS = 86_400_000
MINUTE_MS = 60_000
FLOOR_MARGIN_MS = 15 * MINUTE_MS
"""Kept between the 30-day edge and the first open-interest sample asked for, so a request
sent a little later is not refused for asking a few seconds too far back."""

HistoryRecord = FundingEvent | OpenInterest | MarkKline


@dataclass(frozen=True)
class HistoryEndpoint:
    """One history endpoint: how a page is asked for, how it is paged, what is final.

    Attributes:
        page: Asks for one page: (client, symbol, first ms, last ms inclusive, limit).
        time_ms: A record's time, which the range and the paging go by.
        paging: Page size and how the next page starts.
        closed: Whether a record is final at a time (a kline still open is not); None when
            every record the exchange gives is.
    """

    page: Callable[[BinanceRest, str, int, int, int], Awaitable[Sequence[Any]]]
    time_ms: Callable[[Any], int]
    paging: Paging
    closed: Callable[[Any, int], bool] | None = None


FUNDING = HistoryEndpoint(
    lambda rest, symbol, first, last, limit: rest.funding_rates(symbol, first, last, limit),
    lambda event: event.funding_time_us // 1000,
    Paging(FUNDING_PAGE, 1),
)
"""``fundingRate``: `FundingEvent` records, 1000 a page."""

OPEN_INTEREST = HistoryEndpoint(
    lambda rest, symbol, first, last, limit: rest.open_interest_hist(
        symbol, OPEN_INTEREST_PERIOD, first, last, limit
    ),
    lambda sample: sample.time_us // 1000,
    Paging(
        OPEN_INTEREST_PAGE, OPEN_INTEREST_PERIOD_MS, OPEN_INTEREST_PAGE * OPEN_INTEREST_PERIOD_MS
    ),
)
"""``openInterestHist`` every 5 minutes: `OpenInterest` records, one 500-sample window a
page. The range must not start before `open_interest_floor`: Binance refuses it."""

MARK_KLINES = HistoryEndpoint(
    lambda rest, symbol, first, last, limit: rest.mark_price_klines(
        symbol, MARK_KLINE_INTERVAL, first, last, limit
    ),
    lambda kline: kline.open_time,
    Paging(USDM.kline_page, MINUTE_MS),  # the most klines per unit of weight, as klines
    lambda kline, now_ms: kline.close_time < now_ms,
)
"""``markPriceKlines`` 1m: `MarkKline` records; a kline still open is left out."""


async def fetch_history(
    rest: BinanceRest,
    endpoint: HistoryEndpoint,
    symbol: str,
    span: tuple[int, int],
    *,
    now_ms: int | None = None,
    on_page: Callable[[int], None] | None = None,
) -> list[HistoryRecord]:
    """One symbol's records of an endpoint with a time in ``[start_ms, end_ms)``.

    Args:
        rest: A USDⓈ-M client (its budget and request windows pace the pages).
        endpoint: `FUNDING`, `OPEN_INTEREST` or `MARK_KLINES`.
        symbol: The exchange symbol.
        span: ``(start_ms, end_ms)``: first time wanted (inclusive), end (exclusive).
        now_ms: What records must be final by (`HistoryEndpoint.closed`); the wall clock
            by default.
        on_page: Called with the number of records of each page in the range.

    Returns:
        The records, oldest first.
    """
    records = await page_forward(
        lambda first, last, limit: endpoint.page(rest, symbol, first, last, limit),
        endpoint.time_ms,
        span[0],
        span[1],
        endpoint.paging,
        on_page,
    )
    closed = endpoint.closed
    if closed is None:
        return records
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return [r for r in records if closed(r, now_ms)]


def open_interest_floor(now_ms: int) -> int:
    """The first open-interest sample time that may be asked for at `now_ms`.

    Binance keeps `HISTORY_DAYS` of open-interest history; this is that edge plus a small
    margin, rounded up to the sampling period.
    """
    edge = now_ms - HISTORY_DAYS * DAY_MS + FLOOR_MARGIN_MS
    return -(-edge // OPEN_INTEREST_PERIOD_MS) * OPEN_INTEREST_PERIOD_MS
