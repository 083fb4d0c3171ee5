"""The fake Binance's WebSocket server: connections, the control protocol, pings and closes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

logger = logging.getLogger(__name__)

_ALL_INTERVALS = (
    "1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M"  # every kline interval Binance knows
)
# What a market-data stream name may look like; anything else is "invalid stream".
_STREAM_RE = re.compile(
    r"^[A-Za-z0-9_]{1,30}@(?:trade|aggTrade|bookTicker|ticker|miniTicker|avgPrice"
    r"|markPrice(?:@1s)?|forceOrder|depth(?:5|10|20)?(?:@(?:0|100|250|500|1000)ms)?"
    rf"|kline_(?:{_ALL_INTERVALS})|continuousKline_\w+)$"
    r"|^!forceOrder@arr$"  # every symbol's liquidations
)
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_OUTBOX_LIMIT = 200_000  # frames queued for one client before it counts as too slow

encode = msgspec.json.Encoder().encode


@dataclass(eq=False)
class Conn:
    """One client WebSocket and what the server knows about it."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    combined: bool
    serves: frozenset[str] | None  # stream kinds this URL path delivers; None = all
    opened: float
    subs: dict[str, None] = field(default_factory=dict)  # ordered set, as LIST_SUBSCRIPTIONS shows
    outbox: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    incoming: deque[float] = field(default_factory=deque)
    stalled_until: float = 0.0
    shutdown_at: float | None = None
    closing: bool = False
    last_ping: float = 0.0
    ping_due: bool = False
    ping_payloads: deque[bytes] = field(default_factory=lambda: deque(maxlen=4))
    unanswered_since: float | None = None

    def push(self, frame: str) -> None:
        self.outbox.append(frame)


class _ControlError(Exception):
    """A WebSocket control request rejected with Binance's ``{"error": {code, msg}}``."""

    def __init__(self, code: int, msg: str):
        super().__init__(msg)
        self.code, self.msg = code, msg


class WebSocketServer:
    """FakeBinance's market-data sockets (a part of it: it reads the exchange's state)."""

    def _housekeep(self, mono: float) -> None:
        for conn in list(self._conns):
            if conn.closing:
                continue
            if len(conn.outbox) > _OUTBOX_LIMIT:
                logger.warning("fake Binance: client too slow, %d frames queued", len(conn.outbox))
                self._begin_close(conn, 1008, b"Client too slow")
            elif self.max_connection_s is not None and mono - conn.opened >= self.max_connection_s:
                self._begin_close(conn, 1000, b"")
            elif conn.shutdown_at is not None and mono >= conn.shutdown_at:
                self._begin_close(conn, 1001, b"Server shutdown")
            elif (
                conn.unanswered_since is not None
                and mono - conn.unanswered_since > self.pong_timeout_s
            ):
                self._begin_close(conn, 1008, b"Pong timeout")
            elif conn.stalled_until <= mono and mono - conn.last_ping >= self.ping_interval_s:
                conn.last_ping = mono
                conn.ping_due = True
                if conn.unanswered_since is None:
                    conn.unanswered_since = mono

    def _ws_handler(
        self, combined: bool, serves: frozenset[str] | None
    ) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._serve_ws(request, combined, serves)

        return handler

    async def _serve_ws(
        self, request: web.Request, combined: bool, serves: frozenset[str] | None
    ) -> web.StreamResponse:
        if combined:
            initial = [s for s in request.query.get("streams", "").split("/") if s]
        else:
            initial = [request.match_info["stream"]] if "stream" in request.match_info else []
        if any(not _STREAM_RE.match(s) for s in initial):
            return web.json_response(
                {"code": 2, "msg": "Invalid request: invalid stream"}, status=400
            )
        if len(set(initial)) > self._spec.max_streams:
            return web.json_response(
                {"code": 2, "msg": f"Invalid request: more than {self._spec.max_streams} streams"},
                status=400,
            )
        ws = web.WebSocketResponse(
            autoping=False, timeout=self.close_timeout_s, max_msg_size=1 << 22
        )
        await ws.prepare(request)
        assert self._loop is not None
        mono = self._loop.time()
        conn = Conn(ws=ws, transport=request.transport, combined=combined, serves=serves,
                     opened=mono, last_ping=mono)  # fmt: skip
        self._conns.add(conn)
        for stream in initial:
            self._subscribe(conn, stream)
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for msg in ws:
                if self._too_many(conn):
                    # Answer what came within the limit, then hang up like Binance does.
                    conn.closing = True
                    await self._flush(conn)
                    await ws.close(code=1008, message=b"Too many requests")
                    break
                if msg.type is WSMsgType.TEXT:
                    self._control(conn, msg.data)
                elif msg.type is WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    if not self._spot or msg.data in conn.ping_payloads:
                        conn.unanswered_since = None
                elif msg.type is WSMsgType.BINARY:
                    self._reply(conn, None, _ControlError(3, "Invalid JSON: binary frame"))
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            self._conns.discard(conn)
            for stream in conn.subs:
                self._unindex(conn, stream)
            writer.cancel()
        return ws

    def _too_many(self, conn: Conn) -> bool:
        assert self._loop is not None
        now = self._loop.time()
        window = conn.incoming
        window.append(now)
        while window and window[0] <= now - 1.0:
            window.popleft()
        return len(window) > self._spec.incoming_per_s

    async def _writer(self, conn: Conn) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not conn.ws.closed:
                await conn.wake.wait()
                conn.wake.clear()
                await self._flush(conn)

    async def _flush(self, conn: Conn) -> None:
        """Send what is queued for `conn`, in order, whoever calls (writer or closer)."""
        ws = conn.ws
        async with conn.send_lock:
            if conn.ping_due:
                conn.ping_due = False
                payload = str(self.now_ms()).encode()
                conn.ping_payloads.append(payload)
                await ws.ping(payload)
            batch, conn.outbox = conn.outbox, []
            for frame in batch:
                await ws.send_str(frame)

    def _begin_close(self, conn: Conn, code: int, message: bytes) -> None:
        conn.closing = True
        task = asyncio.create_task(self._close(conn, code, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, conn: Conn, code: int, message: bytes) -> None:
        conn.closing = True
        try:
            await asyncio.wait_for(self._flush(conn), self.close_timeout_s)
            await asyncio.wait_for(conn.ws.close(code=code, message=message), self.close_timeout_s)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            if conn in self._conns and conn.transport is not None:
                conn.transport.abort()

    def _subscribe(self, conn: Conn, stream: str) -> None:
        conn.subs[stream] = None
        kind = stream.partition("@")[2]
        if conn.serves is None or kind in conn.serves or stream in conn.serves:
            self._subs.setdefault(stream, set()).add(conn)

    def _unindex(self, conn: Conn, stream: str) -> None:
        conns = self._subs.get(stream)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._subs[stream]

    def _reply(self, conn: Conn, rid: Any, result: Any) -> None:
        if isinstance(result, _ControlError):
            body = {"error": {"code": result.code, "msg": result.msg}, "id": rid}
        else:
            body = {"result": result, "id": rid}
        conn.push(encode(body).decode())
        conn.wake.set()

    def _control(self, conn: Conn, text: str) -> None:
        try:
            req = json.loads(text)
        except json.JSONDecodeError as exc:
            self.subscribe_messages.append(text)
            detail = f"{exc.msg.lower()} at line {exc.lineno} column {exc.colno}"
            self._reply(conn, None, _ControlError(3, f"Invalid JSON: {detail}"))
            return
        self.subscribe_messages.append(req)
        rid = req.get("id") if isinstance(req, dict) else None
        try:
            result = self._execute(conn, req)
        except _ControlError as exc:
            self._reply(conn, rid if _valid_id(rid) else None, exc)
        else:
            self._reply(conn, rid, result)

    def _execute(self, conn: Conn, req: Any) -> Any:
        if not isinstance(req, dict):
            raise _ControlError(2, "Invalid request: expected a JSON object")
        if not _valid_id(req.get("id")):
            raise _ControlError(2, "Invalid request: request ID must be an unsigned integer")
        method = req.get("method")
        if method is None:
            raise _ControlError(2, "Invalid request: missing field `method`")
        if method not in _METHODS:
            expected = ", ".join(f"`{m}`" for m in _METHODS)
            raise _ControlError(
                2, f"Invalid request: unknown variant `{method}`, expected one of {expected}"
            )
        params = req.get("params", [])
        if not isinstance(params, list):
            raise _ControlError(2, "Invalid request: params must be an array")
        if method == "LIST_SUBSCRIPTIONS":
            return list(conn.subs)
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(conn, method, params)
        if not all(isinstance(s, str) and _STREAM_RE.match(s) for s in params):
            raise _ControlError(2, "Invalid request: invalid stream")
        if method == "SUBSCRIBE":
            new = [s for s in dict.fromkeys(params) if s not in conn.subs]
            if len(conn.subs) + len(new) > self._spec.max_streams:
                raise _ControlError(
                    2, f"Invalid request: more than {self._spec.max_streams} streams"
                )
            for stream in new:
                self._subscribe(conn, stream)
        else:
            for stream in params:
                if conn.subs.pop(stream, False) is None:
                    self._unindex(conn, stream)
        return None

    def _property(self, conn: Conn, method: str, params: list[Any]) -> Any:
        if not params or not isinstance(params[0], str):
            raise _ControlError(2, "Invalid request: property name must be a string")
        if params[0] != "combined":
            raise _ControlError(0, "Unknown property")
        if method == "GET_PROPERTY":
            return conn.combined
        if len(params) != 2:
            raise _ControlError(2, "Invalid request: too many parameters")
        if not isinstance(params[1], bool):
            raise _ControlError(1, "Invalid value type: expected Boolean")
        conn.combined = params[1]
        return None


def _valid_id(rid: Any) -> bool:
    """Binance takes an unsigned int, a string of up to 36 characters, or null as `id`."""
    if rid is None:
        return True
    if isinstance(rid, bool):
        return False
    if isinstance(rid, int):
        return 0 <= rid < 2**63
    return isinstance(rid, str) and 0 < len(rid) <= 36 and rid.isalnum()
