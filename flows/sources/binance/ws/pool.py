"""A pool of Binance WebSockets: a set of streams kept subscribed over sharded connections.

`StreamPool` places each stream on a `Shard` of its URL path with room, opens shards as
needed and closes empty ones; every data message of every socket goes to its one bounded
queue as a `Frame`. See `flows.sources.binance.ws` for what Binance asks of a client.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable

import aiohttp

from flows.sources.binance.ws.policy import PoolCounts, WsPolicy
from flows.sources.binance.ws.shard import ConnectionStatus, Shard
from flows.sources.binance.ws.socket import Frame, WsError

logger = logging.getLogger(__name__)


class StreamPool:
    """Keeps a set of Binance streams subscribed over sharded, self-healing connections.

    Args:
        ws_base: Base URL, e.g. ``wss://fstream.binance.com`` (tests: the fake's).
        route: Maps a stream name to its URL path: the market's ``stream_path``
            (`flows.sources.binance.markets`).
        policy: Connection limits and timings.
        queue: Where frames go; its consumer must keep up or readers wait.
        session: aiohttp session to connect with; the pool makes (and closes) one if None.
        seed: Seeds the jitter, for reproducible tests.

    Example:
        >>> pool = StreamPool(USDM.ws_url, USDM.stream_path, WsPolicy.for_market("usdm"),
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
        self.rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._shards: list[Shard] = []
        self._shard_of: dict[str, Shard] = {}
        self._fresh: dict[str, float] = {}
        self._added: dict[str, float] = {}
        self.closing_shards: set[asyncio.Future[None]] = set()
        self._closed = False

    def next_id(self) -> int:
        """A new id for a shard, socket or request, unique in this pool.

        Only connections of one market's pool are ever compared (the sequencer's
        origins), so ids need not be unique across pools or processes.
        """
        return next(self._ids)

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
        touched: set[Shard] = set()
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
            target = room[0] if room else Shard(self, path)
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
        await asyncio.gather(*self.closing_shards, return_exceptions=True)
        self._shard_of.clear()
        self._added.clear()
        if self._own_session and self._session is not None:
            await self._session.close()

    # -- used by shards and sockets -------------------------------------------------

    def heard(self, stream: str, now: float) -> None:
        """A message of `stream` arrived at `time.monotonic()` `now`."""
        self._fresh[stream] = now

    def wants(self, stream: str) -> bool:
        """Whether `stream` is subscribed (or being subscribed)."""
        return stream in self._shard_of
