"""The API application: `create_app(settings)` and the lifespan that opens its clients."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.errors import install_error_handlers
from api.routes import health
from api.store import Store
from runtime.clickhouse import connect
from runtime.settings import Settings

logger = logging.getLogger(__name__)

API_VERSION = "v1"


def create_app(settings: Settings, *, store: Store | None = None) -> FastAPI:
    """Build the API.

    Args:
        settings: The process's settings (ClickHouse, Kafka, API).
        store: A ClickHouse store to use instead of opening one (a process that already
            holds the chdb directory passes its own; chdb allows one per process).

    Returns:
        The FastAPI app; its lifespan opens what it needs and closes it on shutdown.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if store is None:
                client = connect(settings.clickhouse_dsn(), database=settings.clickhouse.database)
                stack.callback(client.close)
                app.state.store = Store(client, settings.clickhouse.database)
            else:
                app.state.store = store
            yield

    app = FastAPI(
        title="tickscan",
        version=API_VERSION,
        summary="Real-time crypto market scanner: candles, ranks, signals, live streams.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=True,
        )
    install_error_handlers(app)
    app.include_router(health.router)
    return app
