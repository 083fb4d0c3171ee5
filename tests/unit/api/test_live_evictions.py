"""Clients that stop taking data (cut off by the send timeout, counted as evictions), and
SSE streams at a shutdown signal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import generate_latest
from sse_starlette.sse import AppStatus
from starlette.types import Message as ASGIMessage

from api.live.board import Board
from api.live.clients import control
from api.live.hub import Hub
from api.routes import stream, ws
from api.routes.metrics import live_registry
from api.settings import ApiSettings


class StuckSocket:
    """A WebSocket whose peer reads nothing: a send never completes."""

    def __init__(self) -> None:
        self.closed: tuple[int, str] | None = None

    async def send_text(self, text: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def evictions(hub: Hub) -> float:
    for line in generate_latest(live_registry(hub, None)).decode().splitlines():
        if line.startswith("tickscan_live_evictions_total "):
            return float(line.split()[1])
    raise AssertionError("no tickscan_live_evictions_total")


def test_a_websocket_stuck_in_a_send_is_evicted_and_counted() -> None:
    hub = Hub(ApiSettings(), Board())
    client = hub.connect("ws")
    client.put(None, control("signal", n=1))
    socket = StuckSocket()
    asyncio.run(asyncio.wait_for(ws._write(socket, client, 0.05), 5))  # type: ignore[arg-type]
    assert socket.closed is not None and socket.closed[0] == 1008
    assert "too slow" in socket.closed[1]
    assert evictions(hub) == 1


def test_an_sse_stream_stuck_in_a_send_is_evicted_and_counted_once() -> None:
    hub = Hub(ApiSettings(), Board())
    client = hub.connect("sse")
    client.put(None, control("signal", n=1))

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    async def send(message: ASGIMessage) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            await asyncio.Event().wait()  # the peer reads nothing

    response = stream._Stream(hub, client, stream._events(hub, client), ping=60, send_timeout=0.05)
    scope = {"type": "http", "method": "GET", "path": "/api/v1/stream/ranks"}
    asyncio.run(asyncio.wait_for(response(scope, receive, send), 5))
    assert evictions(hub) == 1
    assert client not in hub.clients


def test_an_sse_stream_ends_with_its_shutdown_event_when_sse_starlette_sees_the_signal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # uvicorn's signal handler, as sse-starlette patches it, sets this flag for the process
    monkeypatch.setattr(AppStatus, "should_exit", True)
    hub = Hub(ApiSettings(), Board())
    client = hub.connect("sse")
    sent: list[ASGIMessage] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    async def send(message: ASGIMessage) -> None:
        sent.append(message)

    response = stream._Stream(hub, client, stream._events(hub, client), ping=60)
    scope = {"type": "http", "method": "GET", "path": "/api/v1/stream/ranks"}
    asyncio.run(asyncio.wait_for(response(scope, receive, send), 5))
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert bodies[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    last = bodies[-2]["body"]
    assert last.startswith(b"event: error\r\n") and b'"code":"shutdown"' in last
    assert client not in hub.clients
