"""Live ingestion: Binance WebSocket trades and quotes to Kafka, gaps repaired from REST.

One asyncio process per market follows every TRADING symbol of the exchange: hundreds
of WebSocket connections, each answering pings, rotating before Binance's 24 h cut-off
and reconnecting with backoff, are I/O waits on timers, which is what asyncio is for; a
thread per socket would spend the machine on stacks and context switches. The process
does only what must happen at the socket (decode, de-duplicate, find gaps, repair them)
and publishes to Kafka, which stays the spine: the candle flow consumes md.trades.v1 at
its own pace and restarts, reruns and scales on its own, and an ingest restart never
stalls it.

Per market: spot follows ``<symbol>@trade`` (raw trade ids) and ``<symbol>@bookTicker``;
USDⓈ-M follows ``<symbol>@aggTrade`` on ``/market`` (aggregate ids) and
``<symbol>@bookTicker`` on ``/public``, and for its perpetuals ``<symbol>@markPrice@1s``
and ``!forceOrder@arr`` on ``/market`` (md.marks.v1, md.liquidations.v1) and the open
interest polled from REST (md.open_interest.v1, `flows.ingest.open_interest`). Each
trade passes `flows.ingest.sequence.TradeSequencer`: duplicates from overlapping or
replayed connections are dropped, and ids that never came become gaps. Each gap is
recorded in ClickHouse ``data_quality`` (``open``), fetched from REST through a
`GapFiller`, published like live trades (the candle flow revises the candles they fall
in; its revision horizon is 5 minutes), and recorded again with a higher version as
``repaired`` or ``unrepairable``.

A restarted ingest resumes where the last one left off: each symbol's sequence is seeded
with its last id already published (`flows.ingest.resume`: the tail of md.trades.v1 and
ClickHouse ``trades``), so what was printed while ingest was down becomes a ``restart``
gap, repaired from REST up to `IngestSettings.max_restart_gap_trades` ids and
`max_restart_gap_s` back, and otherwise recorded ``unrepairable`` with the
``tickscan backfill`` to run. A symbol whose streams go silent while its connection
flows is recorded ``stale`` (`flows.ingest.staleness`).

With the cross-check on, it also follows ``<symbol>@kline_1m`` and compares each
closed kline with our candle of that minute from md.candles.v1 (`flows.ingest.crosscheck`),
recording mismatches in ``data_quality``.

Here: what the ingest is, and its public names. `flows.ingest.market.LiveIngest` holds
the lifecycle (the symbol universe, the tasks, the shutdown) on the `IngestParts` the
process hands it (`tickscan.ingest` opens them and runs a market), and composes
`flows.ingest.frames.FrameHandler` (frames decoded, sequenced and published) and
`flows.ingest.gaps.GapWatch` (gaps repaired or refused). The streams per market are in
`flows.sources.binance.streams`, the reports in `flows.ingest.status`, quote publishing in
`flows.ingest.quotes`.
"""

from __future__ import annotations

from flows.ingest.market import LiveIngest, LiveIngestError
from flows.ingest.parts import IngestParts
from flows.ingest.status import IngestReport, LiveStatus
from flows.sources.binance.streams import streams_for, trading_symbols
from flows.sources.binance.ws import ws_policy

__all__ = [
    "IngestParts",
    "IngestReport",
    "LiveIngest",
    "LiveIngestError",
    "LiveStatus",
    "streams_for",
    "trading_symbols",
    "ws_policy",
]
