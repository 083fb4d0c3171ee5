"""`GET /api/v1/health`: is this API process able to serve?"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from api.deps import StoreDep

router = APIRouter(prefix="/api/v1", tags=["health"])


class Health(BaseModel):
    """What the API depends on, and whether each answers."""

    status: Literal["ok", "degraded"]
    clickhouse: bool
    """ClickHouse answered a query."""
    live: bool
    """The live feed is consuming the live topics."""


@router.get("/health", response_model=Health, summary="Health of this API process")
async def health(request: Request, response: Response, store: StoreDep) -> Health:
    """`ok` when ClickHouse answers and the live feed runs; else `degraded` with a 503."""
    clickhouse = await store.ping()
    feed = getattr(request.app.state, "feed", None)
    live = bool(feed is not None and feed.running)
    ok = clickhouse and live
    if not ok:
        response.status_code = 503
    return Health(status="ok" if ok else "degraded", clickhouse=clickhouse, live=live)
