"""`GET /api/v1/signals`: past signal occurrences from ClickHouse, newest first."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, Query

from api.accounts.entitlements import NOT_ENTITLED, SIGNALS, Entitled
from api.deps import StoreDep
from api.errors import Unavailable
from api.openapi import HISTORY_ERRORS, ExchangeQuery, MarketQuery, time_query
from api.services.signals import DEFAULT_LIMIT, MAX_LIMIT, SignalPage, signals
from api.services.times import TIME_FORMS, parse_time
from schemas.signals import Timeframe

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["history"])

_EXAMPLE = {
    "signals": [
        {
            "key": "binance:usdm:BTCUSDT",
            "exchange": "binance",
            "market": "usdm",
            "symbol": "BTCUSDT",
            "name": "volume_spike",
            "timeframe": "1m",
            "time_ms": 1723161480000,
            "direction": "down",
            "price": 61628.1,
            "value": 3.1,
            "details": {"volume": 607.148, "mean_volume": 195.9},
        }
    ],
    "more": False,
}


@router.get(
    "/signals",
    response_model=SignalPage,
    summary="Signal history",
    description="Signals that fired (volume spikes, breakouts, EMA crosses, ...), newest "
    "first, filtered by any of symbol, rule, timeframe, direction and time. `time_ms` is "
    "the close of the candle that fired it. For the live feed, see "
    "`/api/v1/stream/signals`. Needs the `signals` feature (a paid plan when billing is on).",
    dependencies=[Entitled(SIGNALS)],
    responses={
        **{status: HISTORY_ERRORS[status] for status in (422, 503)},
        **NOT_ENTITLED,
        200: {"content": {"application/json": {"example": _EXAMPLE}}},
    },
)
async def get_signals(
    store: StoreDep,
    symbol: Annotated[str | None, Query(description="Only this symbol.")] = None,
    exchange: ExchangeQuery = None,
    market: MarketQuery = None,
    name: Annotated[
        str | None, Query(description="Only this rule.", examples=["volume_spike"])
    ] = None,
    timeframe: Annotated[Timeframe | None, Query(description="Only this timeframe.")] = None,
    direction: Annotated[Literal["up", "down"] | None, Query(description="Only this way.")] = None,
    start: Annotated[str | None, time_query(f"At or after this ({TIME_FORMS}).")] = None,
    end: Annotated[str | None, time_query(f"Before this ({TIME_FORMS}).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many.")] = (
        DEFAULT_LIMIT
    ),
) -> SignalPage:
    """Past signals; a bad parameter is a 422."""
    try:
        return await signals(
            store,
            exchange=exchange,
            market=market,
            symbol=symbol,
            name=name,
            timeframe=timeframe,
            direction=direction,
            start_ms=parse_time("start", start) if start is not None else None,
            end_ms=parse_time("end", end) if end is not None else None,
            limit=limit,
        )
    except ClickHouseError as exc:
        logger.warning("signal history failed: %s", exc)
        raise Unavailable("signal history cannot be read now; try again") from exc
