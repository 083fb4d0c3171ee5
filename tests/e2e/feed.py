"""A stand-in for the server's end of the board's live socket, for rows a test controls.

The page's WebSocket to `/api/v1/ws` is routed here (Playwright's `route_web_socket`):
every ranks subscription (and filter change) is answered with a snapshot of the test's
rows, the test sends diffs as the server would, and can drop the connection and refuse
new ones, as a server that is gone does. Everything else of the page (REST, the account)
still talks to the real tickscan.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from playwright.sync_api import Page, WebSocketRoute

from schemas.ranks import RankRow


def wire(row: RankRow) -> dict[str, Any]:
    """A row as the server sends it."""
    return msgspec.structs.asdict(row)


class FakeFeed:
    """The ranks channel of one page, fed by the test."""

    def __init__(self, page: Page, rows: list[RankRow], as_of_ms: int) -> None:
        self.rows = [wire(row) for row in rows]
        self.as_of_ms = as_of_ms
        self.requests: list[dict[str, Any]] = []
        """Every ranks subscribe or filter op the page sent, in order."""
        self.down = False
        self._sockets: list[WebSocketRoute] = []
        self._current: tuple[WebSocketRoute, str] | None = None
        self._seq = 0
        page.route_web_socket("**/api/v1/ws", self._connect)

    def _connect(self, socket: WebSocketRoute) -> None:
        if self.down:
            socket.close(code=1011, reason="server gone")
            return
        self._sockets.append(socket)
        socket.on_message(lambda message: self._receive(socket, message))

    def _receive(self, socket: WebSocketRoute, message: str | bytes) -> None:
        op = json.loads(message)
        ranks = op.get("op") == "subscribe" and op.get("channel") == "ranks"
        if not (ranks or op.get("op") == "filter"):
            return
        self.requests.append(op)
        self._current, self._seq = (socket, op["id"]), 0
        keys = [f"{r['exchange']}:{r['market']}:{r['symbol']}" for r in self.rows]
        snapshot = {
            "type": "snapshot",
            "id": op["id"],
            "seq": 0,
            "rows": self.rows,
            "order": keys,
            "as_of_ms": self.as_of_ms,
        }
        socket.send(json.dumps(snapshot))

    def diff(self, as_of_ms: int, **changes: dict[str, Any]) -> None:
        """Send an update as of `as_of_ms`: `changes` are each row's changed fields, by
        symbol (the rows of a test are unique by symbol)."""
        assert self._current is not None, "the page has not subscribed yet"
        socket, sub = self._current
        upsert = []
        for row in self.rows:
            fields = changes.get(row["symbol"])
            if fields:
                row.update(fields)
                upsert.append(
                    {"key": f"{row['exchange']}:{row['market']}:{row['symbol']}", **fields}
                )
        self._seq += 1
        self.as_of_ms = as_of_ms
        message = {
            "type": "diff",
            "id": sub,
            "seq": self._seq,
            "upsert": upsert,
            "remove": [],
            "as_of_ms": as_of_ms,
        }
        socket.send(json.dumps(message))

    def go_down(self) -> None:
        """Close every connection and refuse new ones, as a stopped server does."""
        self.down = True
        for socket in self._sockets:
            socket.close(code=1001, reason="server gone")
        self._sockets.clear()

    def come_back(self) -> None:
        """Accept connections again: the page's next reconnect gets a fresh snapshot."""
        self.down = False
