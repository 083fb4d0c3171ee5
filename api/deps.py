"""FastAPI dependencies: what a handler may ask for, as `Annotated` types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.store import Store
from runtime.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    """The process's ClickHouse store (opened by the app's lifespan)."""
    store: Store = request.app.state.store
    return store


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
