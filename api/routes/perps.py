"""`GET /api/v1/perps/...`: a perpetual's open interest, funding and liquidations, for charts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.accounts.entitlements import EntitlementsDep
from api.deps import StoreDep
from api.errors import Unavailable
from api.openapi import HISTORY_ERRORS, SymbolExchangeQuery, SymbolQuery, time_query
from api.services import perps
from api.services.candles import HistoryInterval
from api.services.perps import PerpQuery
from api.services.times import MAX_TIME_MS, TIME_FORMS, parse_time
from api.store import Store

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/perps", tags=["history"])

_RANGE = (
    "The latest points of the range come, oldest first; `more` says earlier ones were left "
    "out (ask again with `end` = the first time received)."
)


def perp_query(
    symbol: SymbolQuery,
    exchange: SymbolExchangeQuery = None,
    market: Annotated[str, Query(description="`usdm`: the only market with perpetuals.")] = (
        "usdm"
    ),
    interval: Annotated[
        HistoryInterval, Query(description="The chart's bars: one point per bar.")
    ] = "1m",
    start: Annotated[
        str | None, time_query(f"At or after this ({TIME_FORMS}).", with_examples=True)
    ] = None,
    end: Annotated[str | None, time_query(f"Before this ({TIME_FORMS}); now by default.")] = None,
    limit: Annotated[
        int, Query(ge=1, le=perps.MAX_LIMIT, description="At most this many points.")
    ] = (perps.DEFAULT_LIMIT),
) -> PerpQuery:
    """The query parameters every perpetuals route takes, checked (a FastAPI dependency).

    Raises:
        InvalidRequest: For a bad parameter (see `PerpQuery`).
    """
    return PerpQuery(
        symbol,
        exchange,
        market,
        interval,
        parse_time("start", start) if start is not None else 0,
        parse_time("end", end) if end is not None else MAX_TIME_MS,
        limit,
    )


PerpQueryDep = Annotated[PerpQuery, Depends(perp_query)]


def _route(
    path: str,
    read: Callable[[Store, PerpQuery], Awaitable[BaseModel]],
    model: type[BaseModel],
    what: str,
    summary: str,
    description: str,
) -> None:
    """Add the GET route at `path` answering `read`'s series (the same parameters, sign-in
    and errors for every perpetuals route)."""

    async def endpoint(store: StoreDep, _: EntitlementsDep, query: PerpQueryDep) -> BaseModel:
        try:
            return await read(store, query)
        except ClickHouseError as exc:
            logger.warning("%s history failed: %s", what, exc)
            raise Unavailable(f"{what} history cannot be read now; try again") from exc

    endpoint.__doc__ = f"{summary}; an unknown perpetual is a 404, a bad parameter a 422."
    router.add_api_route(
        path,
        endpoint,
        methods=["GET"],
        name=f"get_{path.strip('/')}",
        response_model=model,
        summary=summary,
        description=f"{description} {_RANGE}",
        responses={**HISTORY_ERRORS},
    )


_route(
    "/open_interest",
    perps.open_interest,
    perps.OpenInterestSeries,
    "open interest",
    "Open interest of a perpetual, per bar",
    "The open interest of each bar of `interval` that has samples: its last sample, in "
    "contracts (base asset) and in the quote asset (the exchange's value, or the contracts "
    "at the bar's last mark price). Live samples are polled from Binance about once a "
    "minute; its history keeps 30 days only.",
)
_route(
    "/funding",
    perps.funding,
    perps.FundingSeries,
    "funding",
    "Funding of a perpetual: settled rates and the estimate per bar",
    "The funding rates settled in the range (one per funding time, the exchange's own rate "
    "where known), the estimate of each bar of `interval` (the last one the mark-price "
    "stream published in it) and `current`, the latest mark-price update before `end`: "
    "mark and index price, the estimate and the next funding time. Rates are fractions per "
    "funding interval (0.0001 = 0.01 %).",
)
_route(
    "/liquidations",
    perps.liquidations,
    perps.LiquidationSeries,
    "liquidation",
    "Liquidations of a perpetual",
    "Liquidation orders in the range: side (SELL liquidated a long, BUY a short), prices, "
    f"filled quantity and quote volume. {perps.UNDERCOUNT_NOTE} `interval` only names the "
    "chart the answer is for.",
)
_route(
    "/marks",
    perps.marks,
    perps.MarkSeries,
    "mark price",
    "Mark price of a perpetual, per bar",
    "The mark price's open, high, low and close in each bar of `interval`: from the live "
    "mark-price stream's seconds (kept 30 days) where there are any, else from Binance's "
    "1m mark-price klines that `tickscan backfill` fetched (bars of 1m and longer).",
)
