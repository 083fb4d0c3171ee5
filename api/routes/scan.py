"""`GET /api/v1/scan`: the scanner board, filtered and sorted, live or as of a past moment."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

import msgspec
from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.accounts.entitlements import NOT_ENTITLED, Entitlements, EntitlementsDep
from api.deps import StoreDep
from api.errors import Forbidden, Unavailable
from api.live.board import Board
from api.routes.me_state import LIST_PARAMS_DOC, board_filter
from api.services.candles import TIME_FORMS, TIME_SCHEMA
from api.services.filter_eval import compile_filter
from api.services.filter_sql import history_rows, history_sql, parse_at
from api.services.filters import (
    MAX_CONDITIONS,
    MAX_GROUP_CONDITIONS,
    MAX_GROUPS,
    MAX_LIMIT,
    SORT_COLUMNS,
    ScanFilter,
)
from schemas.ranks import METRIC_WARMUP, METRICS, RankRow, Resolution

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["scanner"])

FILTER_QUERY_DOC = f"""
A filter is written either as simple parameters a trader can type, or as one `filter`
parameter holding a whole filter as JSON (the `filter` object of the response, e.g.
from the UI). All parts must hold; every list is comma-separated or repeated.

- `min_<column>`, `max_<column>`: inclusive thresholds on a metric column:
  `min_change_pct_5m=3`, `max_rsi_14=30`, `min_quote_volume_24h=5M` (numbers may end in
  k, M or B)
- `where`: a column compared with a number or with another column times a factor plus
  an offset: `where=price>vwap_24h`, `where=change_pct_5m>change_pct_1h/12`,
  `where=price>=1.02*vwap_24h`, `where=rsi_14 between 30 and 70` (`>`, `>=`, `<`, `<=`,
  `between ... and ...`; `/n` is `* (1/n)`). Clauses joined by `|` (or ` or `) form
  a group of which any one must hold: `where=rvol_5m>=3|change_pct_5m>2`; repeated
  `where` parameters must all hold. URL-encode it (`curl -G --data-urlencode`), or at
  least `+` as `%2B`; `curl -g` sends `>` and `|` as they are
- `quote`: quote assets, `quote=USDT,USDC` (default: all)
- `market`: `spot`, `usdm` or its alias `perpetual` (default: both)
- `exchange`: exchanges, `exchange=binance` (default: all)
- `watch`: only these symbols, `watch=BTCUSDT,binance:usdm:ETHUSDT` (a bare symbol
  means every market listing it)
- `ignore`: never these symbols (same form as `watch`)
- `new_high`, `new_low`: `true` for only symbols at a new 24h high (low), `false` for
  none of them
- `min_volume`, `max_volume`, `volume_window`: a band of quote volume over a window
  (default 24h)
- `sort`: a column, `-` first for descending: `sort=-change_pct_5m` (default
  `-change_pct_24h`); rows without a value come last either way, ties go by symbol key
- `limit`: rows, 1 to {MAX_LIMIT} (default 100)
- `filter`: the whole filter as JSON, instead of the parameters above{LIST_PARAMS_DOC}

In JSON a condition's `value` (and between's `value2`) is a number or another metric,
`{{"metric": "change_pct_1h", "factor": 0.0833, "offset": 0}}`, and `groups` holds OR groups,
`[{{"any": [condition, ...]}}]` (at most {MAX_GROUPS} groups of up to {MAX_GROUP_CONDITIONS}
conditions, {MAX_CONDITIONS} conditions in all). A condition with no value on either side
(a metric still null) is false, in a group too.

Columns: {", ".join(f"`{c}`" for c in SORT_COLUMNS)}.
An unknown parameter, column, window or symbol form, a value that is not a number, or a
list longer than its cap is a 422 saying what to change.
"""
"""How a filter is written in a query string; the live ranks stream takes the same."""

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


def _row(row: RankRow, base_asset: str | None, quote_asset: str | None) -> dict[str, Any]:
    record = msgspec.structs.asdict(row)
    record["base_asset"], record["quote_asset"] = base_asset, quote_asset
    return record


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
    store: StoreDep,
    entitlements: EntitlementsDep,
    at: Annotated[
        str | None,
        Query(
            json_schema_extra=TIME_SCHEMA,
            description=f"A past moment: {TIME_FORMS}. Without it, the live board.",
            examples=["2024-08-08T23:55:00Z", "1723161300000"],
        ),
    ] = None,
) -> ScanResponse:
    """The filtered board; a bad filter or `at` is a 422, no live board here a 503."""
    f = await board_filter(request, exclude=("at",))
    if at is not None:
        now_ms = time.time_ns() // 1_000_000
        at_ms = parse_at(at, now_ms)
        if not entitlements.live_board and at_ms > now_ms - entitlements.delay_s * 1000:
            raise Forbidden(
                f"the board of the last {entitlements.delay_s} s is not in the "
                f"{entitlements.plan} plan: ask for an earlier at=, or a paid plan unlocks "
                "'live_board'",
                code="not_entitled",
            )
        sql, params = history_sql(f, at_ms, store.database)
        try:
            columns, result = await store.query(sql, params)
        except ClickHouseError as exc:
            logger.warning("historical scan failed: %s", exc)
            raise Unavailable("the board history cannot be read now; try again") from exc
        rows = [_row(*found) for found in history_rows(columns, result)]
        return ScanResponse(as_of_ms=at_ms, source="history", filter=f, rows=rows)
    board = _live_board(request, entitlements)
    symbols = getattr(request.app.state, "symbols", None)
    if board is None or symbols is None:
        raise Unavailable("this API process has no live board; ask for a past one with at=")
    chosen = compile_filter(f).select(board.rows.values(), symbols)
    rows = []
    for row in chosen:
        info = symbols.get(row.key)
        rows.append(_row(row, *((info.base_asset, info.quote_asset) if info else (None, None))))
    return ScanResponse(as_of_ms=board.as_of_ms, source="live", filter=f, rows=rows)


def _live_board(request: Request, entitlements: Entitlements) -> Board | None:
    """The live board, or the delayed one for a caller without `live_board` (never the
    live one instead: without a delayed board there is none)."""
    state = request.app.state
    if entitlements.live_board:
        board: Board | None = getattr(state, "board", None)
        return board
    hub = getattr(state, "hub", None)
    delayed = getattr(hub, "delayed", None)
    return None if delayed is None else delayed.board
