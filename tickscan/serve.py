"""Serving the API: in a thread beside the flows (`tickscan run`) or as its own process."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import uvicorn
from fastapi import FastAPI

from api.deps import SourceKind
from api.main import create_app
from api.server import Server
from api.settings import ApiAppSettings
from tickscan.errors import TickscanError

logger = logging.getLogger(__name__)


class ApiServerError(TickscanError):
    """The API server could not start."""


class ApiServer:
    """The API on uvicorn in a background thread, for a process that runs flows too.

    uvicorn runs its own event loop in the thread; signal handling stays with the
    process's main thread, which stops the server through `stop`.

    Args:
        settings: Settings of the process (`api.host`, `api.port`; port 0 picks a free one).
        source: What feeds the board (`/api/v1/health` says it).
        app: The app to serve instead of the whole API of `settings` (tests serve a part).
    """

    def __init__(
        self,
        settings: ApiAppSettings,
        *,
        source: SourceKind | None = None,
        app: FastAPI | None = None,
    ) -> None:
        app = app if app is not None else create_app(settings, source=source)
        self._server = Server(server_config(app, settings, log_level="warning"))
        self._thread = threading.Thread(target=self._serve, name="api", daemon=True)
        self._failure: BaseException | None = None

    def _serve(self) -> None:
        try:
            self._server.run()
        except BaseException as exc:  # reported by start() or by the next stop()
            self._failure = exc
            logger.exception("the API server stopped")

    def start(self, timeout_s: float = 60.0) -> str:
        """Start serving and wait until the socket listens and the lifespan ran.

        Returns:
            The base URL, e.g. ``http://127.0.0.1:8000``.

        Raises:
            ApiServerError: The server failed to start (a port in use, ClickHouse
                unreachable) or did not start within `timeout_s`.
        """
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                why = self._failure or "it did not start in time (is the port in use?)"
                raise ApiServerError(f"the API server could not start: {why}")
            time.sleep(0.05)
        return self.url

    @property
    def url(self) -> str:
        """Where the server listens (the real port when 0 was asked for)."""
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask the server to finish its requests and stop; wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)


def server_config(app: FastAPI, settings: ApiAppSettings, *, log_level: str) -> uvicorn.Config:
    """How uvicorn serves the API, wherever it is started.

    Forwarding headers are believed only from `api.trusted_proxies`. uvicorn's own
    default believes them from 127.0.0.1, so any local client (or a proxy that passes the
    header through) could name itself another address on every request and never reach
    the per-address rate limits.
    """
    trusted = settings.api.trusted_proxies
    return uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        log_level=log_level,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=list(trusted),
        # Long-lived streams end promptly on stop.
        timeout_graceful_shutdown=5,
    )


def serve(settings: ApiAppSettings) -> None:
    """Serve the API in this process's main thread until SIGINT/SIGTERM.

    Raises:
        ApiServerError: The server did not start (a port in use, ClickHouse unreachable).
    """
    server = Server(server_config(create_app(settings), settings, log_level="info"))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the SIGINT it handled
        server.run()
    if not server.started:
        raise ApiServerError("the API server could not start (see the log above)")
