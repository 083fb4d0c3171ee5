"""An API app is freed once its server is gone.

`tickscan run` builds a new app each time it starts its pipeline on a fresh embedded
broker; an app that outlives its server keeps its store, live feed and board, and the
process grows with every restart. FastAPI caches facts about each endpoint callable it
has called, so no endpoint may hold its app.
"""

from __future__ import annotations

import gc
import weakref

from fastapi.testclient import TestClient

from api.main import create_app
from tickscan.settings import Settings


def test_an_app_whose_pages_were_served_is_freed_when_dropped() -> None:
    app = create_app(Settings())
    client = TestClient(app)  # no lifespan: these pages need neither ClickHouse nor Kafka
    for page in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/favicon.ico"):
        assert client.get(page).status_code == 200, page
    freed = weakref.ref(app)
    del app, client
    gc.collect()
    assert freed() is None, [type(r).__name__ for r in gc.get_referrers(freed())]
