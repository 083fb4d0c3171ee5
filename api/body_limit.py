"""A cap on request bodies, per route, enforced before they are read.

Starlette reads a body whole into memory when a handler asks for it (JSON bodies, and the
Stripe webhook's raw bytes): without a cap, one unauthenticated 200 MiB POST grew the
API by 1 GB. `BodyLimit` answers 413 in the API's error shape when the declared
`Content-Length` is too large, before reading a byte, and when a body sent without one
(chunked) or longer than it said grows past the limit, as soon as it does. The answer
closes the connection, so the server reads no more of it either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiPackageError, error_body

logger = logging.getLogger(__name__)

TOO_LARGE = 413
CODE = "content_too_large"


class BodyTooLarge(ApiPackageError):
    """A request body grew past its route's limit while the app read it."""


class BodyLimit:
    """ASGI middleware: request bodies of at most `default` bytes, or `routes[path]`.

    Args:
        app: The application.
        default: The limit of every route not in `routes` (the JSON routes).
        routes: Limits of particular paths (Stripe's webhook).
    """

    def __init__(self, app: ASGIApp, *, default: int, routes: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, limit)
            return

        received = 0
        exceeded = started = False

        async def limited() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def answering(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body it never got whole: the 413 replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, answering)
        except Exception:
            # The app may let BodyTooLarge (or what it made of it) out, or answer it:
            # either way the client hears the 413.
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        client = scope.get("client") or ("?", 0)
        logger.info(
            "%s %s refused: its body is over %d bytes (from %s)",
            scope["method"],
            scope["path"][:200],
            limit,
            client[0],
        )
        response = JSONResponse(
            error_body(CODE, f"the request body is larger than {limit} bytes"),
            status_code=TOO_LARGE,
            # The rest of the body is still on its way: reading it only to discard it
            # would let a client keep the server busy, so the connection ends here.
            headers={"Connection": "close"},
        )
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses such a request before it gets here
    return None
