"""`GET /api/v1/health`: is this API process able to serve?"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from api.deps import SourceDep, SourceKind, StoreDep
from api.live.deps import BoardDep, FeedDep
from api.services.warming import warming as warming_progress

router = APIRouter(prefix="/api/v1", tags=["health"])


class Warming(BaseModel):
    """The history fetched at start: symbols done of those that lacked it."""

    done: int
    total: int


class Health(BaseModel):
    """What the API depends on, and whether each answers."""

    status: Literal["ok", "degraded"]
    clickhouse: bool
    """ClickHouse answered a query."""
    live: bool
    """The live feed is consuming the live topics."""
    warming: Warming | None = None
    """Live ingest is still fetching the last day of candles the store lacked; null once
    the board has its history."""
    source: SourceKind | None = None
    """What feeds the board: `binance` (live), `sim` (the simulated market) or `replay`
    (files); null when this API serves a feed another process runs (`tickscan api`)."""
    simulated: bool = False
    """The board shows a simulated market (exchange `sim`), not an exchange's."""


@router.get(
    "/health",
    response_model=Health,
    summary="Health of this API process",
    responses={503: {"model": Health, "description": "Degraded: what does not answer"}},
)
async def health(
    response: Response,
    store: StoreDep,
    source: SourceDep,
    feed: FeedDep,
    board: BoardDep,
) -> Health:
    """`ok` when ClickHouse answers and the live feed runs; else `degraded` with a 503.

    Also says what feeds the board, and whether it is a simulated market."""
    clickhouse = await store.ping()
    live = bool(feed is not None and feed.running)
    ok = clickhouse and live
    if not ok:
        response.status_code = 503
    progress = await warming_progress(store) if clickhouse else None
    simulated = source == "sim" or (
        source is None and board is not None and any(k.startswith("sim:") for k in board.rows)
    )
    return Health(
        status="ok" if ok else "degraded",
        clickhouse=clickhouse,
        live=live,
        warming=Warming(done=progress[0], total=progress[1]) if progress else None,
        source=source,
        simulated=simulated,
    )
