"""Binance WebSocket connections: shard streams, subscribe, stay alive, rotate, reconnect.

`StreamPool` keeps a set of stream names (``btcusdt@trade``, ``btcusdt@bookTicker``, ...)
subscribed over as few combined-stream connections as the per-connection cap allows, and
hands every data message to one bounded `asyncio.Queue` as a `Frame`. What Binance asks
of a client, and how each is met here (developers.binance.com, WebSocket Streams pages):

- at most 1024 streams per connection: `WsPolicy.max_streams`, by default the market's
  ``ws_max_streams`` (200 on spot, 100 on USDⓈ-M), so a reconnect re-subscribes (and
  loses) little at a time;
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
  gets only the public streams. The market's ``stream_path``
  (`flows.sources.binance.markets`) maps each stream to its path.

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

- `pool`: `StreamPool`, the set of streams over its shards;
- `shard`: one connection slot, its socket opened, rotated and reopened;
- `socket`: one WebSocket, its frames read and its subscriptions kept in step;
- `policy`: `WsPolicy`, the limits and timings, and `PoolCounts`, what the pool did.

Their public names are importable from here.
"""

from flows.sources.binance.ws.policy import PoolCounts, WsPolicy, ws_policy
from flows.sources.binance.ws.pool import StreamPool
from flows.sources.binance.ws.shard import ConnectionStatus
from flows.sources.binance.ws.socket import EndReason, Frame, SubscribeFailed, WsError

__all__ = [
    "ConnectionStatus",
    "EndReason",
    "Frame",
    "PoolCounts",
    "StreamPool",
    "SubscribeFailed",
    "WsError",
    "WsPolicy",
    "ws_policy",
]
