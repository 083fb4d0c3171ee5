"""`GET /api/v1/perps/...`: a perpetual's open interest, funding and liquidations, for charts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, Query

from api.accounts.entitlements import EntitlementsDep
from api.deps import StoreDep
from api.errors import Unavailable
from api.openapi import HISTORY_ERRORS, time_query
from api.services import perps
from api.services.candles import HistoryInterval
from api.services.perps import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    FundingSeries,
    LiquidationSeries,
    OpenInterestSeries,
    PerpQuery,
)
from api.services.times import TIME_FORMS, parse_time
from api.store import Store

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/perps", tags=["history"])

_RANGE = (
    "The latest points of the range come, oldest first; `more` says earlier ones were left "
    "out (ask again with `end` = the first time received)."
)

T = TypeVar("T")


async def _query(
    read: Callable[[Store, PerpQuery], Awaitable[T]],
    store: Store,
    what: str,
    exchange: str | None,
    market: str,
    symbol: str,
    interval: str,
    start: str | None,
    end: str | None,
    limit: int,
) -> T:
    query = PerpQuery(
        exchange,
        market,
        symbol,
        interval,
        parse_time("start", start) if start is not None else None,
        parse_time("end", end) if end is not None else None,
        limit,
    )
    try:
        return await read(store, query)
    except ClickHouseError as exc:
        logger.warning("%s history failed: %s", what, exc)
        raise Unavailable(f"{what} history cannot be read now; try again") from exc


# The parameters every route takes, each documented once.
Symbol = Annotated[str, Query(description="As the exchange spells it.", examples=["BTCUSDT"])]
Exchange = Annotated[
    str | None,
    Query(
        description="Exchange, lower case (`binance`, `sim`). Optional when only one exchange "
        "has the perpetual; when several do, leaving it out is a 422 `ambiguous_symbol`."
    ),
]
Market = Annotated[str, Query(description="`usdm`: the only market with perpetuals data.")]
Interval = Annotated[HistoryInterval, Query(description="The chart's bars: one point per bar.")]
Start = Annotated[str | None, time_query(f"At or after this ({TIME_FORMS}).", with_examples=True)]
End = Annotated[str | None, time_query(f"Before this ({TIME_FORMS}); now by default.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many points.")]


@router.get(
    "/open_interest",
    response_model=OpenInterestSeries,
    summary="Open interest of a perpetual, per bar",
    description="The open interest of each bar of `interval` that has samples: its last "
    "sample, in contracts (base asset) and in the quote asset (the exchange's value, or "
    "the contracts at the bar's last mark price). Live samples are polled from Binance "
    "about once a minute; its history keeps 30 days only. " + _RANGE,
    responses={**HISTORY_ERRORS},
)
async def get_open_interest(
    store: StoreDep,
    _: EntitlementsDep,
    symbol: Symbol,
    exchange: Exchange = None,
    market: Market = "usdm",
    interval: Interval = "1m",
    start: Start = None,
    end: End = None,
    limit: Limit = DEFAULT_LIMIT,
) -> OpenInterestSeries:
    """Open interest per bar; an unknown perpetual is a 404, a bad parameter a 422."""
    return await _query(
        perps.open_interest, store, "open interest", exchange, market, symbol, interval,
        start, end, limit,
    )  # fmt: skip


@router.get(
    "/funding",
    response_model=FundingSeries,
    summary="Funding of a perpetual: settled rates and the estimate per bar",
    description="The funding rates settled in the range (one per funding time, the "
    "exchange's own rate where known), the estimate of each bar of `interval` (the last "
    "one the mark-price stream published in it) and `current`, the latest mark-price "
    "update before `end`: mark and index price, the estimate and the next funding time. "
    "Rates are fractions per funding interval (0.0001 = 0.01 %). " + _RANGE,
    responses={**HISTORY_ERRORS},
)
async def get_funding(
    store: StoreDep,
    _: EntitlementsDep,
    symbol: Symbol,
    exchange: Exchange = None,
    market: Market = "usdm",
    interval: Interval = "1m",
    start: Start = None,
    end: End = None,
    limit: Limit = DEFAULT_LIMIT,
) -> FundingSeries:
    """Funding per bar; an unknown perpetual is a 404, a bad parameter a 422."""
    return await _query(
        perps.funding, store, "funding", exchange, market, symbol, interval, start, end, limit
    )


@router.get(
    "/liquidations",
    response_model=LiquidationSeries,
    summary="Liquidations of a perpetual",
    description="Liquidation orders in the range: side (SELL liquidated a long, BUY a "
    "short), prices, filled quantity and quote volume. "
    + perps.UNDERCOUNT_NOTE
    + " "
    + _RANGE
    + " `interval` only names the chart the answer is for.",
    responses={**HISTORY_ERRORS},
)
async def get_liquidations(
    store: StoreDep,
    _: EntitlementsDep,
    symbol: Symbol,
    exchange: Exchange = None,
    market: Market = "usdm",
    interval: Interval = "1m",
    start: Start = None,
    end: End = None,
    limit: Limit = DEFAULT_LIMIT,
) -> LiquidationSeries:
    """Liquidations; an unknown perpetual is a 404, a bad parameter a 422."""
    return await _query(
        perps.liquidations, store, "liquidation", exchange, market, symbol, interval,
        start, end, limit,
    )  # fmt: skip
