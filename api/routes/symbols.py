"""`GET /api/v1/symbols`: every symbol with its metadata (assets, status, tick and lot sizes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import SymbolsDep
from api.errors import Unavailable
from api.openapi import ExchangeQuery, MarketQuery
from api.services.symbols import SymbolOut

router = APIRouter(prefix="/api/v1", tags=["history"])


class SymbolsResponse(BaseModel):
    """The symbols that match, sorted by exchange, market and symbol."""

    symbols: list[SymbolOut]
    quote_assets: list[str] = Field(
        description="Quote assets of every known symbol (not only those returned): the "
        "choices of a quote-currency toggle."
    )


# Binance USDⓈ-M BTCUSDT as its exchangeInfo described it on 2022-02-19.
EXAMPLE = {
    "symbols": [
        {
            "key": "binance:usdm:BTCUSDT",
            "exchange": "binance",
            "market": "usdm",
            "symbol": "BTCUSDT",
            "base_asset": "BTC",
            "quote_asset": "USDT",
            "status": "TRADING",
            "kind": "perpetual",
            "tick_size": "0.1",
            "step_size": "0.001",
            "updated_ms": 1645233611962,
            "min_qty": "0.001",
            "max_qty": "1000",
            "market_max_qty": "120",
            "min_notional": "10",
        }
    ],
    "quote_assets": ["BTC", "USDC", "USDT"],
}


@router.get(
    "/symbols",
    response_model=SymbolsResponse,
    summary="Symbols with their metadata",
    description="Every symbol the exchanges list (as of the last refresh of this process's "
    "symbol directory from ClickHouse `symbols`), with base and quote asset, trading "
    "status, contract kind, exact tick and step sizes and the order filters (min/max "
    "quantity, max market-order quantity, min notional) an order ticket checks. Filters "
    "combine; values are matched without regard to case.",
    responses={
        200: {"content": {"application/json": {"example": EXAMPLE}}},
        503: {"description": "This process has no symbol directory"},
    },
)
async def get_symbols(
    directory: SymbolsDep,
    exchange: ExchangeQuery = None,
    market: MarketQuery = None,
    quote: Annotated[
        str | None, Query(description="Only this quote asset.", examples=["USDT"])
    ] = None,
    status: Annotated[
        str | None, Query(description="Only this status.", examples=["TRADING"])
    ] = None,
) -> SymbolsResponse:
    """The symbols matching every filter given."""
    if directory is None:
        raise Unavailable("this API process has no symbol directory")
    found = directory.find(
        exchange=exchange.lower() if exchange else None, market=market, quote=quote, status=status
    )
    return SymbolsResponse(
        symbols=[SymbolOut.of(info) for info in found], quote_assets=directory.quote_assets()
    )
