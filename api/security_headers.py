"""The headers that tell a browser what the site's pages may do, on every answer: the UI,
the API and the documentation.

- `Content-Security-Policy`: scripts, styles, images, fonts and connections from this
  server only (the UI bundles lightweight-charts and everything else; nothing comes from
  a CDN), no plugins, no `<base>` elsewhere, and no framing by any page (clickjacking). A
  response that sets its own policy keeps it (`/docs` and `/redoc`: see `api.docs`).
- `X-Frame-Options: DENY` for browsers older than `frame-ancestors`.
- `X-Content-Type-Options: nosniff`: a file is what its Content-Type says, never a script
  guessed from its bytes.
- `Referrer-Policy: same-origin`: the site's URLs (a `/verify-email?token=...` link among
  them) never leave it in a `Referer`; same-origin requests keep their `Origin`.
- `Strict-Transport-Security` only when the site is https (`public_url`): over plain http
  a browser ignores it, and a site reached by http must not promise https.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SITE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",  # fetch, EventSource, and the same host's ws:/wss:
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""What the UI needs, checked in chromium (tests/e2e/test_csp.py): its scripts and style
sheet are files of ui/dist; React and lightweight-charts set styles through the DOM, which
a policy does not restrict."""

HSTS = "max-age=31536000"
"""A year; without `includeSubDomains`, which would bind the operator's other hosts too."""


def security_headers(*, https: bool) -> list[tuple[str, str]]:
    """The headers `SecurityHeaders` adds.

    Args:
        https: Whether the site is served over https (its `public_url`).
    """
    headers = [
        ("content-security-policy", SITE_CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
    ]
    if https:
        headers.append(("strict-transport-security", HSTS))
    return headers


class SecurityHeaders:
    """ASGI middleware: every HTTP response gets `security_headers`, unless it set one of
    them itself.

    Args:
        app: The application.
        https: Whether the site is served over https (adds HSTS).
    """

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
