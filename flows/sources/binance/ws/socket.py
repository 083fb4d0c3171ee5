"""One Binance WebSocket: read its frames, keep its subscriptions in step, see its end.

A `Socket` belongs to a shard of a `flows.sources.binance.ws.StreamPool`, which decides
when it is opened, rotated and replaced; the socket itself reads data messages into the
pool's queue (waiting, not dropping, while the queue is full), answers text pings, sends
paced SUBSCRIBE / UNSUBSCRIBE messages, matches their replies, and reports why it should
be replaced: its age, a ``serverShutdown`` notice, silence, a consumer hopelessly behind,
or the peer closing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Literal, NamedTuple, Protocol

import aiohttp
import msgspec

from flows.errors import FlowError
from flows.ingest.sequence import Origin
from flows.sources.binance.ws.policy import PoolCounts, WsPolicy

logger = logging.getLogger(__name__)

_STREAM_PREFIX = '{"stream":"'


class WsError(FlowError):
    """Base of every error this module raises."""


class SubscribeFailed(WsError):
    """The server refused or never acknowledged a SUBSCRIBE / UNSUBSCRIBE."""


class Frame(NamedTuple):
    """One data message off a socket.

    Attributes:
        stream: The stream it belongs to, e.g. ``btcusdt@trade``.
        raw: The message exactly as received (combined-stream wrapper included).
        received_us: Wall-clock time it was read, µs since the epoch.
        origin: The socket that read it and why that socket was opened.
    """

    stream: str
    raw: str
    received_us: int
    origin: Origin


EndReason = Literal["rotation", "server_shutdown", "stall", "reconnect"]


class _EventType(msgspec.Struct):
    """Only the event type of a wrapped payload."""

    e: str = ""


class _Control(msgspec.Struct):
    """A non-data message: a request's reply, an error, or a connection event."""

    id: int | None = None
    result: msgspec.Raw | None = None
    error: msgspec.Raw | None = None
    e: str = ""
    event: dict[str, object] | None = None
    stream: str = ""
    data: _EventType | None = None


class SocketPool(Protocol):
    """What a socket uses of its pool: where frames go, the policy, the counts."""

    @property
    def policy(self) -> WsPolicy: ...

    @property
    def queue(self) -> asyncio.Queue[Frame]: ...

    @property
    def counts(self) -> PoolCounts: ...

    def heard(self, stream: str, now: float) -> None:
        """A message of `stream` arrived at `time.monotonic()` `now`."""

    def wants(self, stream: str) -> bool:
        """Whether `stream` is still subscribed in the pool (else its frames are dropped)."""

    def next_id(self) -> int:
        """A new id for a shard, socket or request, unique in the pool."""


class SocketShard(Protocol):
    """What a socket uses of the shard that opened it."""

    messages: int

    @property
    def pool(self) -> SocketPool: ...

    @property
    def streams(self) -> set[str]:
        """The streams the shard carries: what its sockets subscribe."""
        ...

    @property
    def sockets(self) -> set[Socket]:
        """The shard's live sockets; a socket leaves it when closed."""
        ...


class Socket:
    """One WebSocket: reads frames, keeps its subscriptions in step with its shard."""

    def __init__(
        self, shard: SocketShard, ws: aiohttp.ClientWebSocketResponse, origin: Origin
    ) -> None:
        self.shard = shard
        self.pool = shard.pool
        self.ws = ws
        self.origin = origin
        self.opened_at = time.monotonic()
        self.subscribed: set[str] = set()
        self.receiving = asyncio.Event()
        self.healthy = False
        self.alive = True
        self.notice: EndReason | None = None
        self._verdict: asyncio.Future[EndReason] = asyncio.get_running_loop().create_future()
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._next_send = 0.0
        self._kicked = asyncio.Event()
        self._control = msgspec.json.Decoder(_Control)
        self._reader = asyncio.create_task(self._read(), name=f"binance-ws-{origin.connection}")
        self._syncer: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """The shard's streams changed: send the (UN)SUBSCRIBE messages that follow."""
        self._kicked.set()

    def rearm(self) -> None:
        """Keep serving after a failed replacement: wait for the next reason to go."""
        if self.alive:
            self._verdict = asyncio.get_running_loop().create_future()

    async def until_replaced(self, max_age_s: float) -> EndReason:
        """Wait until this socket should be replaced, and say why."""
        remaining = max_age_s - (time.monotonic() - self.opened_at)
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                return await asyncio.shield(self._verdict)
        except TimeoutError:
            return "rotation"

    async def subscribe_all(self) -> None:
        """Subscribe the shard's streams, then keep following its changes."""
        await self._sync()
        self._syncer = asyncio.create_task(
            self._follow(), name=f"binance-ws-sub-{self.origin.connection}"
        )

    async def close(self) -> None:
        self.alive = False
        self.shard.sockets.discard(self)
        for task in (self._syncer, self._reader):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.close()
        for ack in self._acks.values():
            if not ack.done():
                ack.set_exception(SubscribeFailed("socket closed"))
                ack.exception()  # retrieved: nobody else may be waiting
        self._end("reconnect")

    def _end(self, reason: EndReason) -> None:
        if not self._verdict.done():
            self._verdict.set_result(reason)

    async def _follow(self) -> None:
        try:
            while True:
                await self._kicked.wait()
                self._kicked.clear()
                await self._sync()
        except WsError as exc:
            logger.warning("socket %d: %s; replacing it", self.origin.connection, exc)
            self.alive = False
            self._end("reconnect")

    async def _sync(self) -> None:
        """Send the (UN)SUBSCRIBE messages that make `subscribed` equal the shard's set."""
        step = self.pool.policy.streams_per_message
        while True:
            wanted = self.shard.streams
            remove = sorted(self.subscribed - wanted)
            add = sorted(wanted - self.subscribed)
            if not remove and not add:
                return
            if remove:
                batch = remove[:step]
                await self._request("UNSUBSCRIBE", batch)
                self.subscribed.difference_update(batch)
            else:
                batch = add[:step]
                await self._request("SUBSCRIBE", batch)
                self.subscribed.update(batch)

    async def _request(self, method: str, params: list[str]) -> None:
        policy = self.pool.policy
        # Two slots below the limit: one for a pong, one for frames that the network
        # bunches together (the server counts arrivals in a sliding second).
        interval = 1.0 / max(1.0, policy.messages_per_s - 2.0)
        now = time.monotonic()
        if self._next_send > now:
            await asyncio.sleep(self._next_send - now)
        self._next_send = max(now, self._next_send) + interval
        request_id = self.pool.next_id()
        ack = asyncio.get_running_loop().create_future()
        self._acks[request_id] = ack
        try:
            await self.ws.send_json({"method": method, "params": params, "id": request_id})
            self.pool.counts.subscribe_messages += 1
            async with asyncio.timeout(policy.open_timeout_s):
                await ack
        except TimeoutError:
            raise SubscribeFailed(f"{method} {len(params)} streams: no reply") from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise SubscribeFailed(f"{method}: {exc}") from exc
        finally:
            self._acks.pop(request_id, None)

    async def _read(self) -> None:
        policy = self.pool.policy
        ws = self.ws
        queue = self.pool.queue
        shard = self.shard
        counts = self.pool.counts
        origin = self.origin
        prefix_len = len(_STREAM_PREFIX)
        reason: EndReason = "reconnect"
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=policy.stall_s)
                except TimeoutError:
                    logger.warning(
                        "socket %d: nothing for %.1f s; replacing it",
                        origin.connection,
                        policy.stall_s,
                    )
                    reason = "stall"
                    return
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    if msg.type in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.ERROR,
                    ):
                        logger.info(
                            "socket %d closed by peer (%s %s)",
                            origin.connection,
                            msg.type.name,
                            msg.data,
                        )
                        return
                    counts.control[msg.type.name.lower()] += 1
                    continue
                data: str = msg.data
                if data.startswith(_STREAM_PREFIX) and not data.startswith("!", prefix_len):
                    stream = data[prefix_len : data.find('"', prefix_len)]
                elif data == "ping":
                    await ws.send_str("pong")
                    counts.control["text_ping"] += 1
                    continue
                else:
                    wrapped = self._on_control(data)
                    if wrapped is None:
                        continue
                    stream = wrapped
                if not self.pool.wants(stream):
                    counts.control["unsubscribed_stream"] += 1
                    continue
                self.pool.heard(stream, time.monotonic())
                frame = Frame(stream, data, time.time_ns() // 1_000, origin)
                if queue.full():
                    try:
                        async with asyncio.timeout(policy.behind_s):
                            await queue.put(frame)
                    except TimeoutError:
                        counts.dropped_behind += 1
                        logger.warning(
                            "socket %d: consumer %.0f s behind; dropping the connection",
                            origin.connection, policy.behind_s,
                        )  # fmt: skip
                        reason = "stall"
                        return
                else:
                    queue.put_nowait(frame)
                counts.messages += 1
                shard.messages += 1
                if not self.healthy:
                    self.healthy = True
                    self.receiving.set()
        except (aiohttp.ClientError, ConnectionError) as exc:
            logger.info("socket %d: %s", origin.connection, exc)
        finally:
            self.alive = False
            self._end(reason)

    def _on_control(self, data: str) -> str | None:
        """Handle a message that is not in Binance's compact data form.

        Returns:
            The stream name when it is a data message after all (a combined-stream
            wrapper written with other spacing), else None.
        """
        counts = self.pool.counts
        try:
            msg = self._control.decode(data)
        except msgspec.DecodeError:
            counts.control["unparsed"] += 1
            logger.warning("socket %d: unreadable message %.200s", self.origin.connection, data)
            return None
        kind = msg.e or (str(msg.event.get("e", "")) if msg.event else "")
        if not kind and msg.data is not None:
            kind = msg.data.e
        if kind == "serverShutdown":
            counts.control["server_shutdown"] += 1
            logger.info("socket %d: serverShutdown; replacing it now", self.origin.connection)
            self.notice = "server_shutdown"
            self._end("server_shutdown")
            return None
        if msg.stream:
            return msg.stream
        if msg.id is not None and msg.id in self._acks:
            ack = self._acks[msg.id]
            if ack.done():
                pass
            elif msg.error is not None:
                ack.set_exception(SubscribeFailed(f"refused: {bytes(msg.error).decode()}"))
            else:
                ack.set_result(None)
            counts.control["reply"] += 1
            return None
        counts.control[kind or "other"] += 1
        logger.debug("socket %d: unhandled message %.200s", self.origin.connection, data)
        return None
