"""Binance's own klines over REST as candle rows: one symbol's range, page by page.

Both `tickscan backfill` and the history a live ingest fetches at start use this: the
exchange's candles go to candles_1m (or candles_1s) as ``source = 'exchange'`` with
``version = 0``, so a candle our flow builds from trades (``version >= 1``) always wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from flows.sources.binance.markets import binance_market
from flows.sources.binance.responses import Kline
from flows.sources.binance.rest import BinanceRest
from schemas.candles import INTERVAL_MS, Candle, Interval
from schemas.trades import Market

EXCHANGE = "binance"


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
    step = INTERVAL_MS[interval]
    page = binance_market(rest.market).kline_page
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    candles: list[Candle] = []
    cursor = start_ms
    while cursor < end_ms:
        klines = await rest.klines(symbol, interval, start_ms=cursor, end_ms=end_ms - 1, limit=page)
        fresh = [k for k in klines if cursor <= k.open_time < end_ms]
        candles.extend(
            candle_from_kline(k, rest.market, symbol, interval)
            for k in fresh
            if k.close_time < now_ms
        )
        if on_page is not None:
            on_page(len(fresh))
        if not fresh or len(klines) < page:
            break
        cursor = fresh[-1].open_time + step
    return candles
