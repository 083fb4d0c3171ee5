"""Binance WebSocket connections: shard streams, subscribe, stay alive, rotate, reconnect.

`StreamPool` keeps a set of stream names (``btcusdt@trade``, ``btcusdt@bookTicker``, ...)
subscribed over as few combined-stream connections as the per-connection cap allows, and
hands every data message to one bounded `asyncio.Queue` as a `Frame`. What Binance asks
of a client, and how each is met here (developers.binance.com, WebSocket Streams pages):

- at most 1024 streams per connection: `WsPolicy.max_streams`, 200 on spot and 100 on
  USDⓈ-M by default, so a reconnect re-subscribes (and loses) little at a time;
- at most 5 (spot) or 10 (USDⓈ-M) incoming messages per second per connection, pings
  and pongs included on spot, or the connection is closed and the IP may be banned:
  SUBSCRIBE / UNSUBSCRIBE messages are paced two below the limit (3/s spot, 8/s USDⓈ-M),
  leaving room for a pong and for arrivals the network bunches together;
- the server pings (every 20 s spot, 3 min USDⓈ-M) and drops a client that does not
  pong: aiohttp answers ping frames itself (``autoping``); a text ``ping`` gets a text
  ``pong``;
- a connection lives at most 24 h: each is rotated before `WsPolicy.max_age_s` (23 h,
  jittered so shards do not rotate together) by opening the replacement first and
  closing the old one only once the replacement is subscribed and receiving, plus a short
  overlap. Both deliver meanwhile; `flows.ingest.sequence` drops the duplicates;
- ``serverShutdown`` (bare, or wrapped as stream ``!serverShutdown`` on a combined
  connection) announces a server going away: the connection is replaced at once,
  the same way as a rotation, instead of waiting to be cut off;
- USDⓈ-M split its URLs on 2026-03-06: ``aggTrade`` (and klines, mark price) are served
  under ``/market``, ``bookTicker`` and depth under ``/public``; an unrouted connection
  gets only the public streams. `route` maps each stream to its path.

A dropped connection is reopened with exponential backoff and full jitter (a delay drawn
uniformly from zero to a cap that doubles with each failure), so hundreds of sockets cut
at once do not reconnect in lockstep.

Memory stays flat under load. Frames go to one bounded queue; a reader whose put would
block waits (its socket is not read, aiohttp pauses the transport, TCP pushes back on
the server) rather than buffering without end or dropping frames. If a reader has waited
`WsPolicy.behind_s`, the consumer is hopelessly behind: the connection is closed (cause
``stall``) and reopened, and the ids it missed come back through gap repair. No frame is
ever dropped silently: the only frames not queued are those of a connection being
dropped, and the sequence tracker sees their ids missing.

Here: the pool and its shards (one connection slot each, rotating and reconnecting),
and `ws_policy`, a market's policy with the process's `IngestSettings` applied;
`flows.sources.binance.socket`: the socket itself, whose public names (`Frame`,
`WsError`, ...) are importable from here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import aiohttp

from flows.ingest.sequence import Cause, Origin
from flows.ingest.settings import IngestSettings
from flows.sources.binance.socket import (
    EndReason,
    Frame,
    Socket,
    SubscribeFailed,
    WsError,
)
from schemas.trades import Market

__all__ = [
    "SPOT_WS_BASE",
    "USDM_WS_BASE",
    "ConnectionStatus",
    "EndReason",
    "Frame",
    "PoolCounts",
    "StreamPool",
    "SubscribeFailed",
    "WsError",
    "WsPolicy",
    "default_ws_base",
    "route",
    "ws_policy",
]

logger = logging.getLogger(__name__)

SPOT_WS_BASE = "wss://stream.binance.com:9443"
USDM_WS_BASE = "wss://fstream.binance.com"


def default_ws_base(market: Market) -> str:
    """Binance's WebSocket base URL for a market."""
    return SPOT_WS_BASE if market == "spot" else USDM_WS_BASE


def route(market: Market) -> Callable[[str], str]:
    """The path each stream of a market is served under, below the base URL.

    Spot serves every stream at ``/stream``. USDⓈ-M serves ``aggTrade``, ``kline`` and
    ``markPrice`` at ``/market/stream`` and the high-frequency ``bookTicker``, ``depth``
    and ``trade`` at ``/public/stream`` (URL split of 2026-03-06).
    """
    if market == "spot":
        return lambda stream: "/stream"

    def usdm(stream: str) -> str:
        kind = stream.partition("@")[2]
        if kind.startswith(("aggTrade", "kline", "markPrice", "continuousKline")):
            return "/market/stream"
        return "/public/stream"

    return usdm


@dataclass(frozen=True, slots=True)
class WsPolicy:
    """How the pool uses connections; the defaults are for production.

    Attributes:
        max_streams: Streams per connection (Binance allows 1024).
        messages_per_s: The exchange's limit of messages a client may send per second
            per connection; subscriptions are paced two below it.
        streams_per_message: Streams named in one SUBSCRIBE / UNSUBSCRIBE.
        max_age_s: Rotate a connection before it is this old (Binance cuts at 24 h).
        age_jitter: Rotate up to this fraction earlier, at random per connection.
        overlap_s: Keep the old connection this long after its replacement receives.
        open_timeout_s: Connecting, each acknowledgement, and a replacement's first
            data message must come within this.
        stall_s: A connection with no message at all for this long is replaced.
        behind_s: A reader blocked this long on the full queue drops its connection.
        backoff_base_s: Cap of the first reconnect delay; it doubles per failure.
        backoff_max_s: Largest reconnect delay cap.
        queue_size: Frames the queue holds before readers wait.
    """

    max_streams: int = 200
    messages_per_s: float = 5.0
    streams_per_message: int = 100
    max_age_s: float = 23 * 3600.0
    age_jitter: float = 0.05
    overlap_s: float = 1.0
    open_timeout_s: float = 10.0
    stall_s: float = 60.0
    behind_s: float = 30.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    queue_size: int = 10_000

    @classmethod
    def for_market(cls, market: Market) -> WsPolicy:
        """The default policy of a market: spot 200 streams and 5 messages/s per
        connection, USDⓈ-M 100 streams and 10 messages/s (use `dataclasses.replace`
        to change any field)."""
        if market == "spot":
            return cls(max_streams=200, messages_per_s=5.0)
        return cls(max_streams=100, messages_per_s=10.0)

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Full-jitter delay before reconnect attempt number `failures` (0-based)."""
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** min(failures, 30)))
        return rng.uniform(0.0, cap)


def ws_policy(market: Market, ingest: IngestSettings) -> WsPolicy:
    """The connection policy of a market with the process's settings applied."""
    base = WsPolicy.for_market(market)
    return replace(
        base,
        max_streams=ingest.max_streams or base.max_streams,
        max_age_s=ingest.max_connection_age_s,
        overlap_s=ingest.rotation_overlap_s,
        open_timeout_s=ingest.open_timeout_s,
        stall_s=ingest.stall_s,
        behind_s=ingest.behind_s,
        queue_size=ingest.queue_size,
        backoff_base_s=ingest.backoff_base_s,
        backoff_max_s=ingest.backoff_max_s,
    )


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


@dataclass(slots=True)
class PoolCounts:
    """What the pool has done.

    Attributes:
        messages: Data messages queued.
        opened: Sockets opened, by cause (``initial`` for a shard's first).
        failed_opens: Attempts to open a socket that failed.
        dropped_behind: Connections dropped because the consumer was behind.
        subscribe_messages: SUBSCRIBE / UNSUBSCRIBE messages sent.
        control: Other non-data messages received, by kind.
    """

    messages: int = 0
    opened: Counter[str] = field(default_factory=Counter)
    failed_opens: int = 0
    dropped_behind: int = 0
    subscribe_messages: int = 0
    control: Counter[str] = field(default_factory=Counter)


class StreamPool:
    """Keeps a set of Binance streams subscribed over sharded, self-healing connections.

    Args:
        ws_base: Base URL, e.g. ``wss://fstream.binance.com`` (tests: the fake's).
        route: Maps a stream name to its URL path (see `route`).
        policy: Connection limits and timings.
        queue: Where frames go; its consumer must keep up or readers wait.
        session: aiohttp session to connect with; the pool makes (and closes) one if None.
        seed: Seeds the jitter, for reproducible tests.

    Example:
        >>> pool = StreamPool(USDM_WS_BASE, route("usdm"), WsPolicy.for_market("usdm"),
        ...                   asyncio.Queue(10_000))  # doctest: +SKIP
        >>> pool.set_streams(["btcusdt@aggTrade", "btcusdt@bookTicker"])  # doctest: +SKIP
        >>> frame = await pool.queue.get()  # doctest: +SKIP
    """

    def __init__(
        self,
        ws_base: str,
        route: Callable[[str], str],
        policy: WsPolicy,
        queue: asyncio.Queue[Frame],
        *,
        session: aiohttp.ClientSession | None = None,
        seed: int | None = None,
    ) -> None:
        self.ws_base = ws_base.rstrip("/")
        self.route = route
        self.policy = policy
        self.queue = queue
        self.counts = PoolCounts()
        self._session = session
        self._own_session = session is None
        self._rng = random.Random(seed)
        self._shards: list[_Shard] = []
        self._shard_of: dict[str, _Shard] = {}
        self._fresh: dict[str, float] = {}
        self._added: dict[str, float] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self._closed = False
        self.next_id: Callable[[], int] = itertools.count(1).__next__
        """Ids of this pool's shards, sockets and requests, each unique in the pool."""

    @property
    def streams(self) -> set[str]:
        """Every stream subscribed (or being subscribed)."""
        return set(self._shard_of)

    def set_streams(self, streams: Iterable[str]) -> tuple[set[str], set[str]]:
        """Make the subscribed set exactly `streams`: subscribe new ones, drop the rest.

        New streams fill shards of their path that have room, then new shards; a shard
        left with no stream is closed. Live sockets are told at once and send paced
        (UN)SUBSCRIBE messages; a socket opened later subscribes the shard's whole set.

        Args:
            streams: Stream names, lower-case symbol, e.g. ``ethusdt@aggTrade``.

        Returns:
            The streams added and the streams removed.
        """
        if self._closed:
            raise WsError("the pool is closed")
        wanted = set(streams)
        current = set(self._shard_of)
        added, removed = wanted - current, current - wanted
        touched: set[_Shard] = set()
        for stream in removed:
            shard = self._shard_of.pop(stream)
            shard.streams.discard(stream)
            self._fresh.pop(stream, None)
            self._added.pop(stream, None)
            touched.add(shard)
        now = time.monotonic()
        for stream in sorted(added):
            self._added[stream] = now
            path = self.route(stream)
            room = [
                s
                for s in self._shards
                if s.path == path and not s.closing and len(s.streams) < self.policy.max_streams
            ]
            target = room[0] if room else _Shard(self, path)
            if not room:
                self._shards.append(target)
            target.streams.add(stream)
            self._shard_of[stream] = target
            touched.add(target)
        for shard in touched:
            if not shard.streams:
                shard.close_soon()
                self._shards.remove(shard)
            elif shard.task is None:
                shard.start()
            else:
                shard.changed()
        if added or removed:
            logger.info(
                "streams: +%d -%d = %d over %d connections",
                len(added), len(removed), len(self._shard_of), len(self._shards),
            )  # fmt: skip
        return added, removed

    def freshness(self) -> dict[str, float]:
        """Seconds since each stream's last message (streams not heard from yet absent)."""
        now = time.monotonic()
        return {stream: now - at for stream, at in self._fresh.items()}

    def last_message_at(self, stream: str) -> float | None:
        """`time.monotonic()` of a stream's last message, None if none yet."""
        return self._fresh.get(stream)

    def silent(self, after_s: float) -> dict[str, float]:
        """Streams silent for longer than `after_s` while their connection is not.

        A stream counts as silent only over time its shard's current socket has been
        open (and the stream subscribed), and only while some other stream of that shard
        has had a message within `after_s`: a connection silent as a whole is a stall,
        which the shard handles itself, not a silent stream.

        Args:
            after_s: Seconds without a message.

        Returns:
            Each silent stream and the `time.monotonic()` it has been silent since: its
            last message, or when it began to be judged on this socket.
        """
        now = time.monotonic()
        fresh, added = self._fresh, self._added
        out: dict[str, float] = {}
        for shard in self._shards:
            sock = shard.current
            if sock is None or shard.state not in ("open", "rotating"):
                continue
            flowing = False
            quiet: dict[str, float] = {}
            for stream in shard.streams:
                heard = fresh.get(stream)
                if heard is not None and now - heard <= after_s:
                    flowing = True
                    continue
                since = max(heard or 0.0, added.get(stream, 0.0), sock.opened_at)
                if now - since > after_s:
                    quiet[stream] = since
            if flowing:
                out.update(quiet)
        return out

    def status(self) -> list[ConnectionStatus]:
        """One entry per shard."""
        return [shard.status() for shard in self._shards]

    async def session(self) -> aiohttp.ClientSession:
        """The aiohttp session sockets are opened with."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close every connection (and the session the pool made). Idempotent."""
        if self._closed:
            return
        self._closed = True
        shards, self._shards = self._shards, []
        await asyncio.gather(*(shard.close() for shard in shards), return_exceptions=True)
        await asyncio.gather(*self._closing, return_exceptions=True)
        self._shard_of.clear()
        self._added.clear()
        if self._own_session and self._session is not None:
            await self._session.close()

    # -- used by shards and sockets -------------------------------------------------

    def _touch(self, stream: str, now: float) -> None:
        self._fresh[stream] = now

    def _wanted(self, stream: str) -> bool:
        return stream in self._shard_of


class _Shard:
    """One slot of up to `max_streams` streams: one socket, two while rotating."""

    def __init__(self, pool: StreamPool, path: str) -> None:
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
        self.task = asyncio.create_task(self._run(), name=f"binance-ws-shard-{self.id}")

    def changed(self) -> None:
        """The stream set changed: every live socket re-syncs its subscriptions."""
        for sock in self.sockets:
            sock.kick()

    def close_soon(self) -> None:
        self.closing = True
        task = asyncio.ensure_future(self.close())
        # Keep a reference until done: a bare task may be garbage collected mid-way.
        self.pool._closing.add(task)
        task.add_done_callback(self.pool._closing.discard)

    async def close(self) -> None:
        self.closing = True
        self.state = "closed"
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for sock in list(self.sockets):
            await sock.close()

    def status(self) -> ConnectionStatus:
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
        rng = self.pool._rng
        failures = 0
        cause: Cause | None = None
        sock: Socket | None = None
        while not self.closing:
            if sock is None:
                self.state = "connecting"
                try:
                    sock = await self._open(cause, wait_for_data=False)
                except (aiohttp.ClientError, OSError, TimeoutError, WsError) as exc:
                    failures += 1
                    self.pool.counts.failed_opens += 1
                    delay = policy.backoff(failures, rng)
                    logger.warning(
                        "shard %d: cannot open %s (%s); retrying in %.2f s",
                        self.id, self.url, exc or type(exc).__name__, delay,
                    )  # fmt: skip
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
                except (aiohttp.ClientError, OSError, TimeoutError, WsError) as exc:
                    failures += 1
                    self.pool.counts.failed_opens += 1
                    delay = policy.backoff(failures, rng)
                    logger.warning(
                        "shard %d: replacement failed (%s); old socket kept, retry in %.2f s",
                        self.id, exc or type(exc).__name__, delay,
                    )  # fmt: skip
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
