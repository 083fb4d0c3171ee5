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
``<symbol>@bookTicker`` on ``/public``. Each trade passes `flows.ingest.sequence.TradeSequencer`:
duplicates from overlapping or replayed connections are dropped, and ids that never
came become gaps. Each gap is recorded in ClickHouse ``data_quality`` (``open``),
fetched from REST through a `GapFiller`, published like live trades (the candle flow
revises the candles they fall in; its revision horizon is 5 minutes), and recorded
again with a higher version as ``repaired`` or ``unrepairable``.

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

Here: `ingest` and `run_ingest`, which run one market. `flows.ingest.market.LiveIngest`
holds the lifecycle (the symbol universe, the tasks, the shutdown) and composes
`flows.ingest.frames.FrameHandler` (frames decoded, sequenced and published) and
`flows.ingest.gaps.GapWatch` (gaps repaired or refused). The streams per market are in
`flows.sources.binance.streams`, the reports in `flows.ingest.status`, quote publishing in
`flows.ingest.quotes`. `LiveIngest`, `LiveIngestError`, `ws_policy`, the reports and
the stream helpers are importable from here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Collection

from flows.ingest.gaps import GapFiller
from flows.ingest.market import LiveIngest, LiveIngestError
from flows.ingest.settings import LiveIngestSettings
from flows.ingest.status import IngestReport, LiveStatus
from flows.sources.binance.streams import streams_for, trading_symbols
from flows.sources.binance.ws import ws_policy
from schemas import topics
from schemas.trades import Market

__all__ = [
    "IngestReport",
    "LiveIngest",
    "LiveIngestError",
    "LiveStatus",
    "ingest",
    "run_ingest",
    "streams_for",
    "trading_symbols",
    "ws_policy",
]


async def ingest(
    settings: LiveIngestSettings,
    *,
    market: Market,
    rest_url: str | None = None,
    ws_base: str | None = None,
    symbols: Collection[str] | None = None,
    stop: asyncio.Event,
    gap_filler: GapFiller | None = None,
    trades_topic: str = topics.TRADES,
    quotes_topic: str = topics.QUOTES,
    deadletter_topic: str = topics.DEADLETTER,
    crosscheck: bool = False,
    candles_topic: str = topics.CANDLES,
    on_start: Callable[[LiveIngest], None] | None = None,
) -> IngestReport:
    """Follow a Binance market live until `stop` is set (see `LiveIngest`).

    Args:
        settings: Process settings (``kafka.bootstrap`` required).
        market: ``spot`` or ``usdm``.
        rest_url: Binance REST base URL; production by default.
        ws_base: Binance WebSocket base URL; production by default.
        symbols: Only these symbols; None follows the whole exchange.
        stop: Set it to stop: the queue is drained, open gaps repaired, Kafka flushed.
        gap_filler: Where gaps are fetched from; Binance REST by default.
        trades_topic: Topic of the trades.
        quotes_topic: Topic of the quotes.
        deadletter_topic: Topic of undecodable messages.
        crosscheck: Check our 1m candles against the exchange's closed klines.
        candles_topic: Topic of our candles, for the cross-check.
        on_start: Called with the running ingest (e.g. to poll `LiveIngest.status`).

    Returns:
        What was published and repaired.
    """
    live = LiveIngest(
        settings,
        market=market,
        rest_url=rest_url,
        ws_base=ws_base,
        symbols=symbols,
        gap_filler=gap_filler,
        trades_topic=trades_topic,
        quotes_topic=quotes_topic,
        deadletter_topic=deadletter_topic,
        crosscheck=crosscheck,
        candles_topic=candles_topic,
    )
    if on_start is not None:
        on_start(live)
    return await live.run(stop)


def run_ingest(
    settings: LiveIngestSettings,
    *,
    market: Market,
    rest_url: str | None = None,
    ws_base: str | None = None,
    symbols: Collection[str] | None = None,
    stop: threading.Event | None = None,
    crosscheck: bool = False,
) -> IngestReport:
    """`ingest` for synchronous callers (the CLI): runs its own event loop.

    Args:
        settings: Process settings (``kafka.bootstrap`` required).
        market: ``spot`` or ``usdm``.
        rest_url: Binance REST base URL; production by default.
        ws_base: Binance WebSocket base URL; production by default.
        symbols: Only these symbols; None follows the whole exchange.
        stop: Set it from any thread (e.g. a signal handler) to stop cleanly; None runs
            until the process is interrupted.
        crosscheck: Check our 1m candles (md.candles.v1) against the exchange's closed
            klines and record mismatches in ``data_quality``.

    Returns:
        What was published and repaired.

    Raises:
        flows.ingest.trades.DeliveryFailed: Some trades were not delivered to Kafka.
        LiveIngestError: Ingest could not start or could not go on.
    """

    async def main() -> IngestReport:
        astop = asyncio.Event()
        watcher: asyncio.Task[None] | None = None
        if stop is not None:

            async def watch() -> None:
                while not stop.is_set():
                    await asyncio.sleep(0.1)
                astop.set()

            watcher = asyncio.create_task(watch())
        try:
            return await ingest(
                settings, market=market, rest_url=rest_url, ws_base=ws_base,
                symbols=symbols, stop=astop, crosscheck=crosscheck,
            )  # fmt: skip
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    return asyncio.run(main())
