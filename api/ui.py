"""The web UI (`ui/dist`, built by `make ui`) served at `/` beside the API.

A single-page app: Vite's content-hashed files under `assets/` are cached for good, and
every other path that is not a file (the app's own routes, e.g. the emailed
`/verify-email?token=...`) gets `index.html`, never cached, so a new build is picked up on
the next load. Source maps are not served. The API's paths are never answered here:
`/api/...`, `/metrics` and the OpenAPI documents keep their own 404 and 405 answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path, PurePosixPath

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

from api.docs import DOCS_URL, REDOC_URL

DIST = Path(__file__).resolve().parents[1] / "ui" / "dist"
"""Where `npm run build` (in `ui/`) writes the app."""

FAVICON = Path(__file__).resolve().parent / "static" / "favicon.ico"
"""The site's icon (16, 32 and 48 px), shipped with the package: browsers ask for
`/favicon.ico` on every page, the API's pages included, whether or not the UI is built."""

IMMUTABLE = "public, max-age=31536000, immutable"
"""Hashed assets: a new build has new names, so a browser never needs to ask again."""

REVALIDATE = "no-cache"
"""`index.html` and unhashed files: always asked again (a 200 of a few hundred bytes)."""

NOT_SERVED = frozenset({".map"})
"""Source maps: the UI's whole source, for anyone who asks. The build makes none
(ui/vite.config.ts); a dist built otherwise (`vite build --sourcemap`) still keeps its maps."""

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tickscan: the web UI is not built</title>
<style>body{background:#0b0e11;color:#d1d4dc;font:15px/1.5 system-ui,sans-serif;margin:4rem auto;
max-width:40rem}code{background:#1e222d;padding:.1rem .3rem}a{color:#4c9aff}</style></head>
<body><h1>The web UI is not built</h1>
<p>The API is running, but <code>ui/dist</code> does not exist. Build the UI with
<code>make ui</code> (Node.js 20.19 or newer: <code>npm ci</code> and
<code>npm run build</code> in <code>ui/</code>), then reload this page.</p>
<p>The API itself is at <a href="/api/v1/health">/api/v1</a>, documented at
<a href="/docs">/docs</a>.</p></body></html>
"""


class _UiRoute(Route):
    """A catch-all GET route that never claims a path the API owns, so a request for an
    unknown API path or with the wrong method still gets the API's 404 or 405."""

    def __init__(self, reserved: tuple[str, ...], dist: Path) -> None:
        super().__init__("/{path:path}", _endpoint(dist), methods=["GET", "HEAD"])
        self.reserved = reserved

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope.get("path", "")
        if any(path == prefix or path.startswith(prefix + "/") for prefix in self.reserved):
            return Match.NONE, {}
        return super().matches(scope)


def _endpoint(dist: Path) -> Callable[[Request], Awaitable[Response]]:
    root = dist.resolve()

    async def serve(request: Request) -> Response:
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
        relative = PurePosixPath(request.path_params["path"])
        if "\x00" in relative.as_posix() or relative.suffix in NOT_SERVED:
            # A NUL names no file (the file system would raise on it).
            return PlainTextResponse("not found", status_code=404)
        wanted = (root / relative).resolve()
        if wanted.is_relative_to(root) and wanted.is_file() and wanted != index:
            hashed = relative.parts[:1] == ("assets",)
            cache = IMMUTABLE if hashed else REVALIDATE
            return FileResponse(wanted, headers={"Cache-Control": cache})
        if relative.parts[:1] == ("assets",) or relative.suffix:
            # A missing file, not a page: answering with the app's HTML would surface as
            # a confusing MIME error in the browser instead of a 404.
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(index, headers={"Cache-Control": REVALIDATE})

    return serve


def mount_ui(app: FastAPI, dist: Path = DIST) -> None:
    """Serve the built UI at `/`; call it after every API router is included.

    Args:
        app: The API application.
        dist: The build output (`ui/dist`). It may appear after the app starts: until it
            does, pages answer a 503 that says how to build it.
    """
    reserved = tuple(
        path.rstrip("/")
        for path in ("/api", "/metrics", DOCS_URL, REDOC_URL, app.openapi_url)
        if path
    )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(
            FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
        )

    app.router.routes.append(_UiRoute(reserved, dist))
