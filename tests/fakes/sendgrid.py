"""A fake SendGrid API on a loopback port: `POST /v3/mail/send` as the official client sends it.

Point `accounts.email.sendgrid_host` at `start()`'s URL and the API's account emails
(verification, password reset) land in `bodies`, where a test reads the links they carry.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class FakeSendGrid:
    """SendGrid's `POST /v3/mail/send`: checks the Bearer key, keeps each request's body.

    Args:
        api_key: The key a request must carry; any other gets SendGrid's 401.
    """

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.bodies: list[dict[str, Any]] = []
        app = Starlette(routes=[Route("/v3/mail/send", self.send, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def send(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            message = "The provided authorization grant is invalid, expired, or revoked"
            return JSONResponse({"errors": [{"message": message}]}, status_code=401)
        self.bodies.append(await request.json())
        return Response(status_code=202)

    def start(self) -> str:
        """Serve in a daemon thread; the base URL once it listens."""
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the fake SendGrid did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def content(body: dict[str, Any], kind: str) -> str:
    """The part of a sent email of one MIME type (`text/plain`, `text/html`)."""
    return next(c["value"] for c in body["content"] if c["type"] == kind)


def link(body: dict[str, Any], prefix: str) -> str:
    """The first link in a sent email's text that starts with `prefix`."""
    return next(word for word in content(body, "text/plain").split() if word.startswith(prefix))
