"""The API application: `create_app(settings)` and the lifespan that opens its clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.accounts.billing import open_billing
from api.accounts.db import AccountsDb
from api.accounts.deps import Accounts
from api.accounts.tokens import TokenService, load_secret
from api.body_limit import BodyLimit
from api.deps import SourceKind, app_symbols
from api.docs import mount_docs
from api.errors import install_error_handlers
from api.live.hub import live_delivery
from api.live.trading import trading_delivery
from api.openapi import install_openapi
from api.routes import (
    auth,
    auth_oidc,
    auth_siwe,
    billing,
    candles,
    entitlements,
    health,
    me_state,
    metrics,
    paper,
    perps,
    scan,
    signals,
    stream,
    symbols,
    ws,
)
from api.security_headers import SecurityHeaders
from api.services.symbols import SymbolDirectory, run_refresher
from api.settings import ApiAppSettings
from api.store import Store
from api.ui import mount_ui
from runtime.clickhouse import connect

logger = logging.getLogger(__name__)

API_VERSION = "v1"


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@asynccontextmanager
async def open_accounts(settings: ApiAppSettings) -> AsyncIterator[Accounts]:
    """The accounts database (migrated to the newest schema) and token service."""
    db = AccountsDb(settings.accounts_url())
    try:
        await db.migrate()
        account = settings.accounts
        tokens = TokenService(load_secret(settings), account.access_ttl_s, account.refresh_ttl_s)
        yield Accounts(settings, db, tokens)
    finally:
        await db.aclose()


def create_app(
    settings: ApiAppSettings, *, store: Store | None = None, source: SourceKind | None = None
) -> FastAPI:
    """Build the API.

    Args:
        settings: The process's settings (ClickHouse, Kafka, API).
        store: A ClickHouse store to use instead of opening one (a process that already
            holds the chdb directory passes its own; chdb allows one per process).
        source: What feeds the board, when this process runs the flows too (`tickscan
            run`); `/api/v1/health` says it.

    Returns:
        The FastAPI app; its lifespan opens what it needs and closes it on shutdown.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # Each member is what api.deps, api.accounts.deps or api.live.deps hands to
            # the routes, set as soon as it is open (the live hub reads the symbols).
            state = app.state
            if store is None:
                client = connect(settings.clickhouse_dsn(), database=settings.clickhouse.database)
                stack.callback(client.close)
                state.store = Store(client, settings.clickhouse.database)
            else:
                state.store = store
            state.accounts = await stack.enter_async_context(open_accounts(settings))
            state.billing = await stack.enter_async_context(open_billing(settings))
            state.symbols = directory = SymbolDirectory()
            refresher = asyncio.create_task(
                run_refresher(directory, state.store, settings.api.symbols_refresh_s),
                name="api-symbols",
            )
            stack.push_async_callback(_cancel, refresher)
            hub, feed = await stack.enter_async_context(
                live_delivery(settings, state.store, lambda: app_symbols(app) or {})
            )
            state.board, state.hub, state.feed = hub.board, hub, feed
            await stack.enter_async_context(trading_delivery(settings, hub.trading))
            state.metrics = metrics.live_registry(hub, feed)
            yield

    app = FastAPI(
        title="tickscan",
        version=API_VERSION,
        summary="Real-time crypto market scanner: candles, ranks, signals, live streams.",
        lifespan=lifespan,
        docs_url=None,  # mount_docs serves them without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.source = source
    # Added before CORS, so its headers reach the 413s too.
    app.add_middleware(
        BodyLimit,
        default=settings.api.max_body_bytes,
        routes={billing.router.url_path_for("post_webhook"): settings.api.webhook_max_body_bytes},
    )
    app.add_middleware(
        SecurityHeaders, https=settings.accounts.public_url.lower().startswith("https://")
    )
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=True,
        )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(scan.router)
    app.include_router(stream.router)
    app.include_router(ws.router)
    app.include_router(metrics.router)
    app.include_router(symbols.router)
    app.include_router(candles.router)
    app.include_router(signals.router)
    app.include_router(perps.router)
    app.include_router(paper.router)
    app.include_router(auth.router)
    app.include_router(auth.me_router)
    app.include_router(auth_oidc.router)
    app.include_router(auth_siwe.router)
    app.include_router(billing.router)
    app.include_router(entitlements.router)
    app.include_router(me_state.router)
    install_openapi(app)
    mount_docs(app)
    mount_ui(app)  # last: the UI answers only paths no API route claims
    return app
