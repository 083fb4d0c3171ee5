"""FastAPI dependencies: what a handler may ask for, as `Annotated` types."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Request

from api.store import Store
from runtime.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


SourceKind = Literal["binance", "sim", "replay"]
"""What feeds the board: live Binance, the simulated market, or a replay of files."""


def get_source(request: Request) -> SourceKind | None:
    """What feeds the board when this process runs the flows too (`tickscan run`); None
    for an API serving a feed it did not start (`tickscan api`)."""
    source: SourceKind | None = getattr(request.app.state, "source", None)
    return source


def get_store(request: Request) -> Store:
    """The process's ClickHouse store (opened by the app's lifespan)."""
    store: Store = request.app.state.store
    return store


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
SourceDep = Annotated[SourceKind | None, Depends(get_source)]
