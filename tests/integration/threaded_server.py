"""uvicorn serving an app in a thread of the test process, on a free loopback port.

A thread, not a process: chDB opens a directory in one process at a time, and the tests
read the same store the app serves.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

DEADLINE_S = 30.0


class ThreadedServer:
    """An app under uvicorn (or a subclass of its `Server`) in a daemon thread.

    Args:
        app: The ASGI app.
        server_class: uvicorn's `Server` or a subclass of it.
        config: More of `uvicorn.Config`'s arguments; `timeout_graceful_shutdown` is 2 s
            unless given.
    """

    def __init__(
        self, app: Any, *, server_class: type[uvicorn.Server] = uvicorn.Server, **config: Any
    ) -> None:
        config.setdefault("timeout_graceful_shutdown", 2)
        self.server = server_class(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **config)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.port = 0

    def start(self) -> int:
        """Start serving; fail the test if it does not within `DEADLINE_S`.

        Returns:
            The port it listens on.
        """
        self.thread.start()
        deadline = time.monotonic() + DEADLINE_S
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self.port

    def stop(self) -> None:
        """Ask uvicorn to finish and wait (15 s at most) for its thread."""
        self.server.should_exit = True
        self.thread.join(15)
