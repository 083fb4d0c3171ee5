"""One connection slot of a Binance WebSocket pool: its socket opened, rotated, reopened.

A `Shard` carries up to `WsPolicy.max_streams` streams of one URL path. It keeps one
socket open, replaces it before Binance's 24 h cut (opening the replacement first), on
``serverShutdown``, on silence or when the consumer is hopelessly behind, and reopens a
dropped one with full-jitter backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from flows.ingest.sequence import Cause, Origin
from flows.sources.binance.ws.socket import Socket, SocketPool, WsError

logger = logging.getLogger(__name__)

_OPEN_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, WsError)
"""What opening a socket may fail with, short of a bug: each is retried after a backoff."""


class ShardPool(SocketPool, Protocol):
    """What a shard uses of its pool, beyond what its sockets use."""

    @property
    def ws_base(self) -> str: ...

    @property
    def rng(self) -> random.Random:
        """The pool's jitter, seeded once for reproducible tests."""
        ...

    @property
    def closing_shards(self) -> set[asyncio.Future[None]]:
        """Shards still closing: the pool holds them until they are done."""
        ...

    async def session(self) -> aiohttp.ClientSession:
        """The aiohttp session sockets are opened with."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """One shard's connection, for the live status.

    Attributes:
        shard: Shard id (stable while the process runs).
        path: URL path, e.g. ``/market/stream``.
        streams: Streams the shard carries.
        state: ``connecting``, ``open``, ``rotating``, ``backoff`` or ``closed``.
        connection: Id of the current socket (changes on every reconnect / rotation).
        cause: Why the current socket was opened (None: the shard's first).
        age_s: Seconds since the current socket opened.
        messages: Data messages the shard has read.
        reconnects: Sockets the shard opened after its first.
    """

    shard: int
    path: str
    streams: int
    state: str
    connection: int | None
    cause: Cause | None
    age_s: float
    messages: int
    reconnects: int


class Shard:
    """One slot of up to `max_streams` streams: one socket, two while rotating."""

    def __init__(self, pool: ShardPool, path: str) -> None:
        self.pool = pool
        self.id = pool.next_id()
        self.path = path
        self.url = pool.ws_base + path
        self.streams: set[str] = set()
        self.state = "connecting"
        self.current: Socket | None = None
        self.sockets: set[Socket] = set()
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self.messages = 0
        self.reconnects = 0

    def start(self) -> None:
        """Open the first socket and keep one open until closed, in a task of its own."""
        self.task = asyncio.create_task(self._run(), name=f"binance-ws-shard-{self.id}")

    def changed(self) -> None:
        """The stream set changed: every live socket re-syncs its subscriptions."""
        for sock in self.sockets:
            sock.kick()

    def close_soon(self) -> None:
        """Close in the background (the shard lost its last stream); the pool keeps the task."""
        self.closing = True
        task = asyncio.ensure_future(self.close())
        # Keep a reference until done: a bare task may be garbage collected mid-way.
        self.pool.closing_shards.add(task)
        task.add_done_callback(self.pool.closing_shards.discard)

    async def close(self) -> None:
        """Stop the shard's task and close its sockets."""
        self.closing = True
        self.state = "closed"
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for sock in list(self.sockets):
            await sock.close()

    def status(self) -> ConnectionStatus:
        """The shard and its current socket, for the live status."""
        sock = self.current
        return ConnectionStatus(
            shard=self.id,
            path=self.path,
            streams=len(self.streams),
            state=self.state,
            connection=None if sock is None else sock.origin.connection,
            cause=None if sock is None else sock.origin.cause,
            age_s=0.0 if sock is None else time.monotonic() - sock.opened_at,
            messages=self.messages,
            reconnects=self.reconnects,
        )

    async def _run(self) -> None:
        policy = self.pool.policy
        rng = self.pool.rng
        failures = 0
        cause: Cause | None = None
        sock: Socket | None = None
        while not self.closing:
            if sock is None:
                self.state = "connecting"
                try:
                    sock = await self._open(cause, wait_for_data=False)
                except _OPEN_ERRORS as exc:
                    failures += 1
                    delay = self._open_failed(failures, f"cannot open {self.url}", exc)
                    self.state = "backoff"
                    await asyncio.sleep(delay)
                    continue
            self.current = sock
            self.state = "open"
            max_age = policy.max_age_s * (1.0 - policy.age_jitter * rng.random())
            reason = await sock.until_replaced(max_age)
            if sock.healthy:
                failures = 0
            if reason in ("rotation", "server_shutdown") and sock.alive:
                self.state = "rotating"
                try:
                    new = await self._open(reason, wait_for_data=True)
                except _OPEN_ERRORS as exc:
                    failures += 1
                    delay = self._open_failed(failures, "replacement failed, old socket kept", exc)
                    await asyncio.sleep(delay)
                    sock.rearm()
                    continue
                # Both sockets deliver for a moment: nothing falls between them.
                await asyncio.sleep(policy.overlap_s)
                await sock.close()
                sock = new
                continue
            await sock.close()
            # A socket that announced serverShutdown and then died was shut down.
            cause = sock.notice or ("reconnect" if reason == "rotation" else reason)
            sock = None
            delay = policy.backoff(failures, rng)
            failures += 1
            self.state = "backoff"
            logger.info(
                "shard %d: connection ended (%s); reopening in %.2f s", self.id, reason, delay
            )
            await asyncio.sleep(delay)

    def _open_failed(self, failures: int, what: str, exc: BaseException) -> float:
        """Count and log a socket that could not be opened; the delay before the next try."""
        self.pool.counts.failed_opens += 1
        delay = self.pool.policy.backoff(failures, self.pool.rng)
        logger.warning(
            "shard %d: %s (%s); retrying in %.2f s", self.id, what, exc or type(exc).__name__, delay
        )
        return delay

    async def _open(self, cause: Cause | None, *, wait_for_data: bool) -> Socket:
        policy = self.pool.policy
        session = await self.pool.session()
        async with asyncio.timeout(policy.open_timeout_s):
            ws = await session.ws_connect(
                self.url,
                autoping=True,
                heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
            )
        sock = Socket(self, ws, Origin(self.pool.next_id(), cause))
        self.sockets.add(sock)
        try:
            await sock.subscribe_all()
            if wait_for_data:
                # A replacement counts as up once data flows; a shard of quiet streams
                # may send nothing for a while, so after the timeout its acks suffice.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(policy.open_timeout_s):
                        await sock.receiving.wait()
        except BaseException:
            await sock.close()
            raise
        self.pool.counts.opened[cause or "initial"] += 1
        if cause is not None:
            self.reconnects += 1
        logger.info(
            "shard %d: socket %d open on %s with %d streams (%s)",
            self.id, sock.origin.connection, self.path, len(self.streams), cause or "initial",
        )  # fmt: skip
        return sock
