"""Binance's own klines over REST as candle rows: one symbol's range, page by page.

Both `tickscan backfill` and the history a live ingest fetches at start use this: the
exchange's candles go to candles_1m (or candles_1s) as ``source = 'exchange'`` with
``version = 0``, so a candle our flow builds from trades (``version >= 1``) always wins.

`page_forward` pages any endpoint that answers a time range oldest first (the
perpetuals' history too: `flows.sources.binance.perp_history`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from flows.sources.binance.markets import binance_market
from flows.sources.binance.responses import Kline
from flows.sources.binance.rest import BinanceRest
from schemas.candles import INTERVAL_MS, Candle, Interval
from schemas.trades import Market

EXCHANGE = "binance"

R = TypeVar("R")


def candle_from_kline(kline: Kline, market: Market, symbol: str, interval: Interval) -> Candle:
    """The exchange's kline as a candle row: version 0, no trade ids.

    Every field of a `Kline` is the candle field of the same name.
    """
    return Candle(
        exchange=EXCHANGE,
        market=market,
        symbol=symbol,
        interval=interval,
        first_trade_id=None,
        last_trade_id=None,
        version=0,
        **msgspec.structs.asdict(kline),
    )


async def fetch_klines(
    rest: BinanceRest,
    symbol: str,
    interval: Interval,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int | None = None,
    on_page: Callable[[int], None] | None = None,
) -> list[Candle]:
    """The closed klines of `symbol` opening in ``[start_ms, end_ms)``, as candles.

    Pages of the market's ``kline_page`` rows (the most klines per unit of weight), oldest
    first, until the range or the exchange's klines end. A kline still open at
    `now_ms` is left out: it has not got all its trades yet.

    Args:
        rest: The client (its budget paces the pages).
        symbol: The exchange symbol.
        interval: ``1m`` or (spot) ``1s``.
        start_ms: First open time wanted (inclusive).
        end_ms: End of the range (exclusive).
        now_ms: The time klines must have closed by; the wall clock by default.
        on_page: Called with the number of klines of each page in the range.

    Returns:
        The candles, oldest first.
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    klines = await page_forward(
        lambda first, last, limit: rest.klines(symbol, interval, first, last, limit),
        lambda k: k.open_time,
        start_ms,
        end_ms,
        Paging(binance_market(rest.market).kline_page, INTERVAL_MS[interval]),
        on_page,
    )
    return [
        candle_from_kline(k, rest.market, symbol, interval) for k in klines if k.close_time < now_ms
    ]


@dataclass(frozen=True)
class Paging:
    """How an endpoint is paged through time.

    Attributes:
        limit: Rows asked for per page.
        step_ms: Least time between two rows: the next page starts this long after the
            last row of a full one.
        window_ms: When set, each page asks one window of this length instead of
            everything to the end of the range, and the next page starts after it, full
            or not (for endpoints that may answer from either end of a range).
    """

    limit: int
    step_ms: int
    window_ms: int | None = None


async def page_forward(
    fetch: Callable[[int, int, int], Awaitable[Sequence[R]]],
    time_ms: Callable[[R], int],
    start_ms: int,
    end_ms: int,
    paging: Paging,
    on_page: Callable[[int], None] | None = None,
) -> list[R]:
    """Every row with a time in ``[start_ms, end_ms)``, oldest first, page by page.

    Args:
        fetch: Fetches one page: (first ms, last ms inclusive, limit) -> rows, oldest first.
        time_ms: A row's time.
        start_ms: First time wanted (inclusive).
        end_ms: End of the range (exclusive).
        paging: Page size and how the next page starts.
        on_page: Called with the number of rows of each page in the range.
    """
    out: list[R] = []
    cursor = start_ms
    while cursor < end_ms:
        window = paging.window_ms
        last = end_ms - 1 if window is None else min(end_ms, cursor + window) - 1
        rows = await fetch(cursor, last, paging.limit)
        fresh = [r for r in rows if cursor <= time_ms(r) <= last]
        out.extend(fresh)
        if on_page is not None:
            on_page(len(fresh))
        if window is not None:
            cursor = last + 1
        elif not fresh or len(rows) < paging.limit:
            break
        else:
            cursor = time_ms(fresh[-1]) + paging.step_ms
    return out
