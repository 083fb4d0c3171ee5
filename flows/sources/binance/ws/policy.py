"""How a pool of Binance WebSockets uses its connections, and what it counts.

`WsPolicy` holds the limits and timings every shard and socket of a pool follows;
`ws_policy` is a market's policy with the process's `IngestSettings` applied;
`PoolCounts` is what the pool's sockets have done, for the live status.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace

from flows.ingest.settings import IngestSettings
from flows.sources.binance.markets import SPOT, binance_market
from schemas.trades import Market


@dataclass(frozen=True, slots=True)
class WsPolicy:
    """How the pool uses connections; the defaults are for production on spot.

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

    max_streams: int = SPOT.ws_max_streams
    messages_per_s: float = SPOT.ws_messages_per_s
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
        """The default policy of a market: its ``ws_max_streams`` and
        ``ws_messages_per_s`` (spot 200 streams and 5 messages/s per connection,
        USDⓈ-M 100 streams and 10 messages/s); use `dataclasses.replace` to change any
        field."""
        facts = binance_market(market)
        return cls(max_streams=facts.ws_max_streams, messages_per_s=facts.ws_messages_per_s)

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
