"""`GET /api/v1/scan`: the scanner board, filtered and sorted, live or as of a past moment."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.accounts.deps import ListOwnerDep
from api.accounts.entitlements import NOT_ENTITLED, EntitlementsDep
from api.deps import BoardsDep
from api.openapi import time_query
from api.services.board import FILTER_QUERY_DOC, board_filter
from api.services.filters import ScanFilter
from api.services.times import TIME_FORMS
from schemas.ranks import METRIC_WARMUP, METRICS, Resolution

router = APIRouter(prefix="/api/v1", tags=["scanner"])

_EXAMPLES = """
Examples:

- top gainers over 5 minutes among USDT spot pairs:
  `/api/v1/scan?min_change_pct_5m=3&quote=USDT&market=spot&sort=-change_pct_5m&limit=50`
- perpetuals trading at least three times their usual 5m volume, biggest first:
  `/api/v1/scan?market=perpetual&min_rvol_5m=3&sort=-rvol_5m`
- oversold with real volume, never the stablecoins:
  `/api/v1/scan?max_rsi_14=30&min_volume=10M&ignore=USDCUSDT,FDUSDUSDT`
- above the 24h VWAP, and 5m change ahead of the 1h pace (5m change > 1h change / 12):
  `/api/v1/scan?where=price>vwap_24h&where=change_pct_5m>change_pct_1h/12`
- oversold or overbought, on volume: `/api/v1/scan?where=rsi_14<30|rsi_14>70&min_rvol_5m=2`
- the same board as JSON:
  `/api/v1/scan?filter={"conditions":[{"metric":"change_pct","window":"5m","op":">=","value":3}],"quotes":["USDT"]}`
- JSON with a metric on the right and an OR group:
  `/api/v1/scan?filter={"conditions":[{"metric":"price","op":">","value":{"metric":"vwap_24h"}}],"groups":[{"any":[{"metric":"rvol_5m","op":">=","value":3},{"metric":"change_pct_5m","op":">","value":2}]}]}`
- the board as it was: `/api/v1/scan?at=2024-08-08T23:55:00Z&min_change_pct_1h=5`
"""


class ScanResponse(BaseModel):
    """One board: the rows that satisfy the filter, in its order."""

    as_of_ms: int | None = Field(
        description="Live: exchange time of the board's latest update (null before any). "
        "History: the moment asked for (`at`); each row has its snapshot's `time_ms`."
    )
    source: Literal["live", "history"]
    filter: ScanFilter = Field(description="The filter as understood, normalised.")
    rows: list[dict[str, Any]] = Field(
        description="RankRow columns (schemas.ranks.RankRow) plus `base_asset` and "
        "`quote_asset` (null when the symbol's metadata is unknown)."
    )


class Warmup(BaseModel):
    """How much unbroken candle history a metric reads before it has a value."""

    resolution: Resolution = Field(
        description="The candles it reads: `1s` or `1m`; a row's `history_<resolution>_from_ms` "
        "is where its unbroken history of them begins."
    )
    history_ms: int = Field(description="How much of that history it needs, ms.")


class ScanColumn(BaseModel):
    """One metric column of the board."""

    name: str = Field(description="The RankRow field, also the `sort` and filter column.")
    warmup: Warmup | None = Field(
        description="Null for a metric that needs no history (`price`) or comes from book "
        "tickers (`bid`, `ask`, `spread_bps`)."
    )


class ScanColumnsResponse(BaseModel):
    """The board's metric columns, in display order, and when each fills."""

    columns: list[ScanColumn]


@router.get(
    "/scan/columns",
    response_model=ScanColumnsResponse,
    summary="The board's metric columns and the history each needs",
    description="Every metric column of `GET /api/v1/scan`, in display order. A row's metric is "
    "null until its symbol has `history_ms` of unbroken `resolution` candles: with the row's "
    "`history_1s_from_ms` / `history_1m_from_ms` this says when a null metric will have a "
    "value (at `history_<resolution>_from_ms + history_ms`, exchange time), so a board can "
    "show how long until then. A null history field means the row will not say.",
)
async def scan_columns() -> ScanColumnsResponse:
    """The metric columns with their warm-up (the same for every caller)."""
    return ScanColumnsResponse(
        columns=[
            ScanColumn(
                name=name,
                warmup=Warmup(resolution=need[0], history_ms=need[1])
                if (need := METRIC_WARMUP.get(name))
                else None,
            )
            for name in METRICS
        ]
    )


@router.get(
    "/scan",
    response_model=ScanResponse,
    summary="The scanner board, filtered and sorted",
    description="The live board, or with `at` the board as of a past moment (from the "
    "rank snapshots in ClickHouse, each symbol's last one up to 2 minutes before `at`).\n\n"
    "Without the `live_board` feature (the free tier when billing is on) the live board is "
    "the one of `delay_s` ago (see `GET /api/v1/me/entitlements`; `as_of_ms` says how old "
    "it is), and `at` must be at least that far in the past.\n" + FILTER_QUERY_DOC + _EXAMPLES,
    responses=NOT_ENTITLED,
)
async def scan(
    request: Request,
    boards: BoardsDep,
    entitlements: EntitlementsDep,
    owner: ListOwnerDep,
    at: Annotated[
        str | None,
        time_query(f"A past moment: {TIME_FORMS}. Without it, the live board.", with_examples=True),
    ] = None,
) -> ScanResponse:
    """The filtered board; a bad filter or `at` is a 422, no live board here a 503."""
    f = await board_filter(request.query_params, owner, exclude=("at",))
    board = await boards.scan(f, entitlements, at)
    return ScanResponse(as_of_ms=board.as_of_ms, source=board.source, filter=f, rows=board.rows)
