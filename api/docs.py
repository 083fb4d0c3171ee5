"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc` (ReDoc), served with
their JavaScript and CSS from the installation, so they work on a machine without internet.

FastAPI's own pages load both from a CDN. The files come from the `fastapi-offline` wheel
(Swagger UI 5 and ReDoc 2 standalone builds, refreshed with their upstream releases);
only its files are used, not its app factory: `create_app` builds its own FastAPI.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
"""Where the pages' scripts and styles are served (under /docs, which the UI never claims)."""

ASSETS = Path(str(files("fastapi_offline") / "static"))
"""swagger-ui-bundle.js, swagger-ui.css and redoc.standalone.js, as installed."""

FAVICON_URL = "/favicon.ico"


def docs_csp(script_hashes: list[str]) -> str:
    """The pages' policy: nothing but this server, and of inline scripts only the page's
    own (by hash).

    Args:
        script_hashes: CSP sources (`'sha256-...'`) of the page's inline scripts.
    """
    return "; ".join(
        [
            "default-src 'self'",
            # Swagger UI starts from an inline script: that one, and no other.
            " ".join(["script-src 'self'", *script_hashes]),
            # Both inject styles (ReDoc's styled-components, Swagger UI's highlighter).
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "worker-src 'self' blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def mount_docs(app: FastAPI) -> None:
    """Add `/docs`, its OAuth2 redirect page, `/redoc`, and their files to an app built
    with ``docs_url=None, redoc_url=None``.

    Args:
        app: The API application (its `openapi_url` and `title` are used).
    """
    assert app.openapi_url is not None
    # The pages close over these values, never over `app`: FastAPI caches facts about
    # every endpoint callable it has seen, and an endpoint holding its app would keep each
    # app (its store, live feed, board) alive after its server stopped.
    openapi_url = app.openapi_url
    title = f"{app.title} API"
    redirect_url = f"{DOCS_URL}/oauth2-redirect"
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    # Swagger UI would send the document to its public validator for a badge.
    parameters = {**(app.swagger_ui_parameters or {}), "validatorUrl": None}

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _own_only(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=title,
                oauth2_redirect_url=redirect_url,
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=FAVICON_URL,
                swagger_ui_parameters=parameters,
            )
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _own_only(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _own_only(
            get_redoc_html(
                openapi_url=openapi_url,
                title=title,
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=FAVICON_URL,
                with_google_fonts=False,  # ReDoc falls back to the system's fonts
            )
        )


def _own_only(page: HTMLResponse) -> HTMLResponse:
    """Set the page's policy (ReDoc's sidebar links a logo from its vendor's CDN, hidden
    when it fails to load, which the browser then never asks for)."""
    scripts = _INLINE_SCRIPT.findall(bytes(page.body).decode())
    hashes = [f"'sha256-{_sha256(script)}'" for script in scripts]
    page.headers["Content-Security-Policy"] = docs_csp(hashes)
    return page


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
