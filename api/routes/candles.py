"""`GET /api/v1/candles`: one symbol's candle history, any interval from 1s to 1d, paged."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, Query, Response

from api.accounts.entitlements import NOT_ENTITLED, EntitlementsDep, require_interval
from api.deps import StoreDep
from api.errors import Unavailable
from api.openapi import HISTORY_ERRORS, SymbolExchangeQuery, SymbolQuery, time_query
from api.services.candles import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    CandlePage,
    HistoryInterval,
    candles,
    encode_page,
)
from api.services.times import TIME_FORMS, parse_time

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["history"])


# 23:55 UTC of the real capture in ../shared/data (Binance USDⓈ-M BTCUSDT, 2024-08-08).
_EXAMPLE = {
    "exchange": "binance",
    "market": "usdm",
    "symbol": "BTCUSDT",
    "interval": "1m",
    "candles": [
        {
            "open_time": 1723161300000,
            "close_time": 1723161359999,
            "open": "61807.7",
            "high": "61839.9",
            "low": "61760.3",
            "close": "61760.3",
            "volume": "136.45",
            "quote_volume": "8432904.6216",
            "count": 2005,
            "taker_buy_volume": "57.185",
            "taker_buy_quote_volume": "3534417.7022",
            "first_trade_id": 5266585686,
            "last_trade_id": 5266587690,
            "version": 1,
            "source": "trades",
        }
    ],
    "next_cursor": 1723161360000,
}


def schema_of(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON schema of a msgspec Struct with every reference inlined, for an OpenAPI
    response (FastAPI only collects pydantic models as components)."""
    (root,), components = msgspec.json.schema_components([struct], ref_template="{name}")

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(components[node["$ref"]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    result: dict[str, Any] = inline(root)
    return result


@router.get(
    "/candles",
    response_class=Response,
    summary="Candles of one symbol and interval",
    description="Candles (klines) of one symbol, oldest first, each at its latest version. "
    "1s and 1m are stored; 5m, 15m, 1h, 4h and 1d are rolled up from 1m when read (flat "
    "minutes skipped, 4h and 1d aligned to 00:00 UTC as on Binance). The candle of the "
    "interval still trading is included as it stands.\n\n"
    "Paging: with `start`, a page holds up to `limit` candles from `start` and "
    "`next_cursor` says where the next page starts (pass it as `cursor`, keeping the "
    "other parameters); it is null on the last page. A page may hold fewer than `limit` "
    "candles and still have a cursor (the symbol was halted). Without `start`, the page "
    "holds the latest candles before `end` (now by default); ask for earlier ones with "
    "`end` = the first `open_time` received.\n\n"
    "Prices and volumes are exact decimal strings. 1s candles need the `candles_1s` "
    "feature (a paid plan when billing is on).",
    responses={
        **HISTORY_ERRORS,
        **NOT_ENTITLED,
        200: {
            "description": "A page of candles",
            "content": {"application/json": {"schema": schema_of(CandlePage), "example": _EXAMPLE}},
        },
    },
)
async def get_candles(
    store: StoreDep,
    entitlements: EntitlementsDep,
    symbol: SymbolQuery,
    exchange: SymbolExchangeQuery = None,
    market: Annotated[str, Query(description="`spot` or `usdm`.")] = "spot",
    interval: Annotated[HistoryInterval, Query(description="Candle interval.")] = "1m",
    start: Annotated[
        str | None,
        time_query(
            f"First open time ({TIME_FORMS}), rounded up to the interval.", with_examples=True
        ),
    ] = None,
    end: Annotated[
        str | None, time_query(f"Only candles opening before this ({TIME_FORMS}).")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Candles per page.")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        int | None, Query(ge=0, description="`next_cursor` of the previous page.")
    ] = None,
) -> Response:
    """Candles of one symbol; an unknown symbol is a 404, a bad parameter a 422, 1s
    candles outside the plan a 403."""
    require_interval(entitlements, interval)
    start_ms = parse_time("start", start) if start is not None else None
    end_ms = parse_time("end", end) if end is not None else None
    try:
        page = await candles(
            store, exchange, market, symbol, interval, start_ms, end_ms, limit, cursor=cursor
        )
    except ClickHouseError as exc:
        logger.warning("candle history failed: %s", exc)
        raise Unavailable("candle history cannot be read now; try again") from exc
    return Response(encode_page(page), media_type="application/json")
