"""Which browser origins may use a signed-in user's cookie: the site's own and the
configured CORS origins.

Browsers attach cookies to a WebSocket handshake whatever page opens it, and no CORS rule
applies to WebSockets: the `Origin` header is the only thing that tells the site's own
pages from another site's. (SameSite=Lax does not help between sites that share a
registrable domain, e.g. two subdomains, or two ports of one host.)
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from api.accounts.deps import ACCESS_COOKIE
from api.settings import ApiAppSettings

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HTTP_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def normal_origin(url: str) -> str | None:
    """An origin as `scheme://host[:port]`, lower case, without its scheme's default port.

    Args:
        url: An origin or a URL (`HTTPS://Scan.Example.com:443/path`).

    Returns:
        `https://scan.example.com`; None for what is not an http(s) origin (`null`, a
        `file:` page, garbage).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}"


class SiteOrigins:
    """The origins whose pages are the site's: `public_url`, the host a request came to,
    and `api.cors_origins` (`*` there allows every origin, as it does for CORS)."""

    def __init__(self, public_url: str, cors_origins: Iterable[str]) -> None:
        configured = [public_url, *cors_origins]
        self.any = "*" in configured
        self.origins = {o for o in map(normal_origin, configured) if o is not None}

    @classmethod
    def of(cls, settings: ApiAppSettings) -> SiteOrigins:
        """The site's origins as `settings` configure them."""
        return cls(settings.accounts.public_url, settings.api.cors_origins)

    def allows(self, origin: str, connection: HTTPConnection) -> bool:
        """Whether a page of `origin` is the site's own (or a configured CORS origin's).

        Args:
            origin: The request's `Origin` header.
            connection: The request: its `Host` and scheme name the origin it was sent to.
        """
        if self.any:
            return True
        wanted = normal_origin(origin)
        if wanted is None:
            return False
        if wanted in self.origins:
            return True
        scheme = _HTTP_SCHEMES.get(connection.url.scheme, "http")
        host = connection.headers.get("host")
        return host is not None and wanted == normal_origin(f"{scheme}://{host}")


def foreign_cookie_origin(connection: HTTPConnection, origins: SiteOrigins) -> str | None:
    """The `Origin` of a request that would be signed in by the session cookie from a page
    that is not the site's: what a cross-site request forgery looks like.

    A request without `Origin` comes from a program, not a page; one that carries
    `Authorization` signs in with it (a page on another site cannot set that header), so
    the cookie it may also carry is not used.

    Returns:
        The foreign origin (to refuse and log), or None.
    """
    origin = connection.headers.get("origin")
    if origin is None or ACCESS_COOKIE not in connection.cookies:
        return None
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return None
    return None if origins.allows(origin, connection) else origin
