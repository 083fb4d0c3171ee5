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
``<symbol>@bookTicker`` on ``/public``. Each trade passes `flows.sequence.TradeSequencer`:
duplicates from overlapping or replayed connections are dropped, and ids that never
came become gaps. Each gap is recorded in ClickHouse ``data_quality`` (``open``),
fetched from REST through a `GapFiller`, published like live trades (the candle flow
revises the candles they fall in; its revision horizon is 5 minutes), and recorded
again with a higher version as ``repaired`` or ``unrepairable``.

A restarted ingest resumes where the last one left off: each symbol's sequence is seeded
with its last id already published (`flows.resume`: the tail of md.trades.v1 and
ClickHouse ``trades``), so what was printed while ingest was down becomes a ``restart``
gap, repaired from REST up to `IngestSettings.max_restart_gap_trades` ids and
`max_restart_gap_s` back, and otherwise recorded ``unrepairable`` with the
``tickscan backfill`` to run. A symbol whose streams go silent while its connection
flows is recorded ``stale`` (`flows.staleness`).

With the cross-check on, it also follows ``<symbol>@kline_1m`` and compares each
closed kline with our candle of that minute from md.candles.v1 (`flows.crosscheck`),
recording mismatches in ``data_quality``.

The streams per market are in `flows.sources.binance_streams`, the reports in
`flows.live_status`, quote publishing in `flows.quote_publisher`; their public names are
importable from here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import aiohttp
import msgspec

from flows.crosscheck import CandleFeed, CrossChecker, LiveCrossCheck
from flows.data_quality import DataQualityLog
from flows.gaps import GapFiller, GapRepairer, RepairCounts, RestGapFiller
from flows.ingest import IngestError, TradePublisher
from flows.live_status import IngestCounts, IngestReport, LiveStatus
from flows.quote_publisher import QuotePublisher
from flows.resume import (
    LastTrade,
    last_trades_in_clickhouse,
    last_trades_in_topic,
    newest,
    restart_gap_refusal,
)
from flows.sequence import Gap, QuoteFilter, TradeSequencer
from flows.sources.binance import BinanceDecodeError, BinanceDecoder
from flows.sources.binance_book import BookTickerDecoder
from flows.sources.binance_rest import BinanceRest, BinanceRestError
from flows.sources.binance_streams import (
    KLINE_STREAM,
    streams_for,
    trade_stream_kind,
    trading_symbols,
)
from flows.sources.binance_ws import Frame, StreamPool, WsPolicy, default_ws_base, route
from flows.sources.files import Rejected
from flows.staleness import StaleMonitor
from runtime.clickhouse import connect
from runtime.kafka import ensure_topics
from runtime.migrate import migrate
from runtime.settings import IngestSettings, Settings
from schemas import topics
from schemas.trades import Market, Trade

__all__ = [
    "IngestCounts",
    "IngestReport",
    "LiveIngest",
    "LiveIngestError",
    "LiveStatus",
    "QuotePublisher",
    "ingest",
    "run_ingest",
    "streams_for",
    "trade_stream_kind",
    "trading_symbols",
    "ws_policy",
]

logger = logging.getLogger(__name__)

EXCHANGE = "binance"

_DRAIN_BATCH = 2_000  # frames handled between yields to the event loop
_GAP_CHECK_S = 0.25
_SHUTDOWN_REPAIR_S = 30.0


class LiveIngestError(IngestError):
    """Live ingestion cannot start or cannot go on."""


# -- pure logic ------------------------------------------------------------------------


def ws_policy(market: Market, ingest: IngestSettings) -> WsPolicy:
    """The connection policy of a market with the process's settings applied."""
    base = WsPolicy.for_market(market)
    return dataclasses.replace(
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


# -- the pipeline ----------------------------------------------------------------------------


ExchangeInfo = Callable[[], Awaitable[dict[str, Any]]]


class LiveIngest:
    """Follows one Binance market live and publishes its trades and quotes to Kafka.

    Build it, `run` it until a stop event, and ask `status` any time meanwhile.

    Args:
        settings: Process settings: Kafka (``kafka.bootstrap`` is required), ClickHouse
            (``data_quality``) and `IngestSettings`.
        market: ``spot`` or ``usdm``.
        rest_url: Binance REST base URL (tests: the fake's); production by default.
        ws_base: Binance WebSocket base URL (tests: the fake's); production by default.
        symbols: Follow only these symbols (still only while TRADING); None follows
            the whole exchange, new listings included.
        gap_filler: Where gaps are fetched from; REST through `BinanceRest` by default.
        trades_topic: Topic of the trades.
        quotes_topic: Topic of the quotes.
        deadletter_topic: Topic of the messages that could not be decoded.
        crosscheck: Also follow the exchange's closed 1m klines and check our candles
            (read from `candles_topic`) against them; mismatches go to ``data_quality``.
        candles_topic: Topic of our candles, for the cross-check.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        market: Market,
        rest_url: str | None = None,
        ws_base: str | None = None,
        symbols: Collection[str] | None = None,
        gap_filler: GapFiller | None = None,
        trades_topic: str = topics.TRADES,
        quotes_topic: str = topics.QUOTES,
        deadletter_topic: str = topics.DEADLETTER,
        crosscheck: bool = False,
        candles_topic: str = topics.CANDLES,
    ) -> None:
        if market not in ("spot", "usdm"):
            raise LiveIngestError(f"market must be spot or usdm, not {market!r}")
        self.settings = settings
        self.market: Market = market
        self.rest_url = rest_url
        self.ws_base = ws_base or default_ws_base(market)
        self.only = {s.upper() for s in symbols} if symbols is not None else None
        self.trades_topic = trades_topic
        self.quotes_topic = quotes_topic
        self.deadletter_topic = deadletter_topic
        self.crosscheck = crosscheck
        self.candles_topic = candles_topic
        self.counts = IngestCounts()
        self.symbols: set[str] = set()
        self._gap_filler = gap_filler
        self._opts = settings.ingest
        self._trade_kind = trade_stream_kind(market)
        self._sequencer = TradeSequencer(grace_s=self._opts.gap_grace_s)
        self._quote_filter = QuoteFilter()
        self._trades = BinanceDecoder(market, exchange=EXCHANGE)
        self._quotes = BookTickerDecoder(market, exchange=EXCHANGE)
        self._pool: StreamPool | None = None
        self._queue: asyncio.Queue[Frame] | None = None
        self._publisher: TradePublisher | None = None
        self._quote_producer: QuotePublisher | None = None
        self._repairer: GapRepairer | None = None
        self._checker: LiveCrossCheck | None = None
        self._log: DataQualityLog | None = None
        self._stale: StaleMonitor | None = None
        # Symbols seeded from an earlier run, until their first trade past the seed ...
        self._resume: dict[str, LastTrade] = {}
        # ... then that trade's time, until the restart gap it opened is reported.
        self._restarts: dict[str, tuple[LastTrade, int]] = {}

    # -- status --------------------------------------------------------------------------

    def status(self) -> LiveStatus:
        """A snapshot of connections, per-stream freshness and counters."""
        pool = self._pool
        return LiveStatus(
            market=self.market,
            symbols=len(self.symbols),
            connections=pool.status() if pool else [],
            freshness=pool.freshness() if pool else {},
            counts=dataclasses.replace(
                self.counts,
                skipped=Counter(self.counts.skipped),
                quotes_delivered=self._quote_producer.delivered
                if self._quote_producer
                else self.counts.quotes_delivered,
                stale=self._stale.found if self._stale else self.counts.stale,
            ),
            repairs=self._repairs().copy(),
            reconnects=self._reconnects(),
            open_holes=self._sequencer.open_holes(),
            repairs_running=self._repairer.running if self._repairer else 0,
            queued=self._queue.qsize() if self._queue else 0,
            crosscheck=self._checker.counts() if self._checker else None,
            stale_symbols=self._stale.watch.stale if self._stale else [],
        )

    @property
    def streams(self) -> set[str]:
        """The streams subscribed (or being subscribed) right now."""
        return self._pool.streams if self._pool else set()

    def last_trade_id(self, symbol: str) -> int | None:
        """The highest trade id received for `symbol` (repairs aside) or, before its first
        trade, the last one an earlier run published; None when neither is known."""
        return self._sequencer.last_id(symbol)

    def _repairs(self) -> RepairCounts:
        return self._repairer.counts if self._repairer else RepairCounts()

    def _reconnects(self) -> dict[str, int]:
        if self._pool is None:
            return {}
        return {k: v for k, v in self._pool.counts.opened.items() if k != "initial"}

    # -- run -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> IngestReport:
        """Ingest until `stop` is set, then drain, repair what is open and flush.

        Returns:
            What was published and repaired.

        Raises:
            LiveIngestError: No Kafka bootstrap, or the symbol universe cannot be read.
            flows.ingest.DeliveryFailed: Some trades were not delivered to Kafka.
        """
        started = time.monotonic()
        bootstrap = self.settings.kafka.bootstrap
        if not bootstrap:
            raise LiveIngestError("live ingest needs a Kafka cluster: set kafka.bootstrap")
        wanted = [self.trades_topic, self.quotes_topic, self.deadletter_topic]
        if self.crosscheck:
            wanted.append(self.candles_topic)
        partitions = await asyncio.to_thread(
            ensure_topics,
            bootstrap,
            wanted,
            self.settings.kafka.partitions,
            self.settings.kafka.replication_factor,
        )
        database = self.settings.clickhouse.database
        client = await asyncio.to_thread(connect, self.settings.clickhouse_dsn())
        try:
            await asyncio.to_thread(migrate, client, database)
            async with BinanceRest(self.market, self.rest_url) as rest:
                publisher = TradePublisher(
                    bootstrap, topic=self.trades_topic, deadletter_topic=self.deadletter_topic
                )
                with publisher:
                    self._publisher = publisher
                    log = self._log = DataQualityLog(client, database, self.market)
                    self._repairer = GapRepairer(
                        self._gap_filler or RestGapFiller(rest, self._trade_kind),
                        log,
                        publisher.publish,
                        market=self.market,
                        concurrency=self._opts.repair_concurrency,
                        attempts=self._opts.repair_attempts,
                        backoff_s=self._opts.backoff_base_s,
                    )
                    self._quote_producer = QuotePublisher(bootstrap, self.quotes_topic)
                    if self.crosscheck:
                        self._checker = self._cross_check(
                            bootstrap, partitions[self.candles_topic], log
                        )

                    async def seed(symbols: set[str]) -> None:
                        await self._seed(
                            bootstrap, partitions[self.trades_topic], client, database, symbols
                        )

                    try:
                        await self._follow(rest.exchange_info, seed, stop)
                    finally:
                        self._quote_producer.close()
                        if self._checker is not None:
                            self._checker.close()
                    self.counts.quotes_delivered = self._quote_producer.delivered
                    self.counts.stale = self._stale.found if self._stale else 0
                    await asyncio.to_thread(publisher.flush)
                report = publisher.report()
        finally:
            client.close()
        result = IngestReport(
            market=self.market,
            symbols=len(self.symbols),
            seconds=time.monotonic() - started,
            counts=self.counts,
            repairs=self._repairs(),
            reconnects=self._reconnects(),
            publish=report,
            crosscheck=self._checker.counts() if self._checker else None,
        )
        repairs = result.repairs
        logger.info(
            "ingest %s stopped after %.0f s: %d trades, %d quotes, %d duplicates, "
            "%d gaps (%d repaired, %d unrepairable, %d trades recovered)",
            self.market, result.seconds, self.counts.trades, self.counts.quotes,
            self.counts.duplicates, sum(repairs.gaps.values()), repairs.repaired,
            repairs.unrepairable, repairs.recovered,
        )  # fmt: skip
        if result.crosscheck is not None:
            checked = result.crosscheck
            logger.info(
                "cross-check %s: %d klines judged, %d mismatched (%d without our candle), "
                "%d recorded",
                self.market, checked.checked, checked.mismatched, checked.missing,
                checked.recorded,
            )  # fmt: skip
        return result

    def _cross_check(self, bootstrap: str, partitions: int, log: DataQualityLog) -> LiveCrossCheck:
        opts = self._opts
        feed = CandleFeed(bootstrap, self.candles_topic, partitions, EXCHANGE, self.market)
        checker = CrossChecker(
            EXCHANGE, self.market, settle_ms=int(opts.crosscheck_settle_s * 1000), followed={}
        )
        return LiveCrossCheck(checker, feed, log, opts.crosscheck_every_s)

    async def _seed(
        self, bootstrap: str, partitions: int, client: Any, database: str, symbols: set[str]
    ) -> None:
        """Seed each symbol's sequence with its last id already published (`flows.resume`)."""
        started = time.monotonic()
        in_topic = await asyncio.to_thread(
            last_trades_in_topic, bootstrap, self.trades_topic, partitions, EXCHANGE,
            self.market, symbols, max_records=self._opts.resume_scan_records,
        )  # fmt: skip
        stored = await asyncio.to_thread(
            last_trades_in_clickhouse, client, database, EXCHANGE, self.market, symbols
        )
        self._resume = newest(in_topic, stored)
        for symbol, last in self._resume.items():
            self._sequencer.seed(symbol, last.trade_id)
        logger.info(
            "%s: %d of %d symbols resume from their last published trade (%d found in %s, "
            "%d in ClickHouse trades) after %.1f s",
            self.market, len(self._resume), len(symbols), len(in_topic), self.trades_topic,
            len(stored), time.monotonic() - started,
        )  # fmt: skip

    async def _follow(
        self,
        exchange_info: ExchangeInfo,
        seed: Callable[[set[str]], Awaitable[None]],
        stop: asyncio.Event,
    ) -> None:
        """Subscribe the universe and run every task until `stop`, then wind down."""
        opts = self._opts
        policy = ws_policy(self.market, opts)
        self._queue = asyncio.Queue(policy.queue_size)
        self._pool = StreamPool(self.ws_base, route(self.market), policy, self._queue)
        try:
            symbols = await self._universe(exchange_info)
        except (BinanceRestError, aiohttp.ClientError, TimeoutError) as exc:
            await self._pool.close()
            raise LiveIngestError(f"cannot read the {self.market} symbol universe: {exc}") from exc
        try:
            await seed(symbols)
        except BaseException:
            await self._pool.close()
            raise
        assert self._log is not None
        self._stale = StaleMonitor(
            self._pool.silent,
            self._pool.last_message_at,
            self._log,
            market=self.market,
            after_s=opts.stale_after_s,
        )
        self._apply_universe(symbols)
        watching = asyncio.create_task(self._stale.run(), name="ingest-stale")
        tasks = [
            asyncio.create_task(self._consume(), name="ingest-consume"),
            asyncio.create_task(self._watch_gaps(), name="ingest-gaps"),
            asyncio.create_task(self._refresh(exchange_info), name="ingest-refresh"),
            asyncio.create_task(self._log_status(), name="ingest-status"),
            watching,
        ]
        checking = None
        if self._checker is not None:
            checking = asyncio.create_task(self._checker.run(), name="ingest-crosscheck")
            tasks.append(checking)
        stopper = asyncio.create_task(stop.wait(), name="ingest-stop")
        try:
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise LiveIngestError(f"{task.get_name()} failed") from task.exception()
        finally:
            stopper.cancel()
            await self._pool.close()
            consume = tasks[0]
            for task in tasks[1:]:
                if task is not checking and task is not watching:
                    task.cancel()
            # Not cancelled: a data_quality row being written is finished first.
            self._stale.stop()
            if self._checker is not None:
                # Not cancelled: it does a last round and leaves the candle topic.
                self._checker.stop()
            # Every frame read off a socket is handled: none is lost at shutdown.
            if not consume.done():
                consume.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
            self._drain()
            assert self._repairer is not None
            for gap in self._sequencer.flush():
                self._repair(gap)
            await self._repairer.wait(_SHUTDOWN_REPAIR_S)

    async def _universe(self, exchange_info: ExchangeInfo) -> set[str]:
        symbols = trading_symbols(await exchange_info())
        if self.only is not None:
            absent = self.only - symbols
            if absent:
                logger.warning("not TRADING on %s: %s", self.market, ", ".join(sorted(absent)))
            symbols &= self.only
        return symbols

    def _apply_universe(self, symbols: set[str]) -> None:
        assert self._pool is not None
        gone = self.symbols - symbols
        new = symbols - self.symbols
        self._pool.set_streams(streams_for(self.market, symbols, klines=self.crosscheck))
        self.symbols = set(symbols)
        if gone:
            self._sequencer.forget(gone)
            self._quote_filter.forget(gone)
            if self._stale is not None:
                self._stale.forget(gone)
            for symbol in gone:
                self._resume.pop(symbol, None)
                self._restarts.pop(symbol, None)
            if self._checker is not None:
                self._checker.checker.forget(gone)
            logger.info("%s: no longer trading, unsubscribed: %s", self.market, sorted(gone)[:20])
        if new:
            logger.info("%s: following %d new symbol(s)", self.market, len(new))

    async def _refresh(self, exchange_info: ExchangeInfo) -> None:
        while True:
            await asyncio.sleep(self._opts.refresh_s)
            try:
                symbols = await self._universe(exchange_info)
            except (BinanceRestError, aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("symbol refresh failed (%s); keeping %d", exc, len(self.symbols))
                continue
            if symbols != self.symbols:
                self._apply_universe(symbols)

    async def _log_status(self) -> None:
        while True:
            await asyncio.sleep(self._opts.status_every_s)
            s = self.status()
            logger.info(
                "%s: %d symbols, %d connections, %d trades, %d quotes, %d duplicates, "
                "gaps %s, %d repairing, %d queued, %d streams silent > %.0f s, "
                "%d symbols stale %s",
                self.market, s.symbols, len(s.connections), s.counts.trades, s.counts.quotes,
                s.counts.duplicates, dict(s.repairs.gaps), s.repairs_running, s.queued,
                len(s.stale(self._opts.stale_after_s)), self._opts.stale_after_s,
                len(s.stale_symbols), s.stale_symbols[:10],
            )  # fmt: skip
            if s.crosscheck is not None:
                logger.info(
                    "%s cross-check: %d klines judged, %d mismatched",
                    self.market, s.crosscheck.checked, s.crosscheck.mismatched,
                )  # fmt: skip

    # -- frames -----------------------------------------------------------------------------

    async def _consume(self) -> None:
        queue = self._queue
        assert queue is not None and self._publisher is not None
        assert self._quote_producer is not None
        publisher, quotes = self._publisher, self._quote_producer
        while True:
            self._handle(await queue.get())
            for _ in range(_DRAIN_BATCH):
                try:
                    frame = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                self._handle(frame)
            publisher.poll(0)
            quotes.poll()
            await asyncio.sleep(0)

    def _drain(self) -> None:
        """Handle every frame still queued (after the sockets closed)."""
        queue = self._queue
        assert queue is not None
        while True:
            try:
                self._handle(queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    def _handle(self, frame: Frame) -> None:
        kind = frame.stream.partition("@")[2]
        if kind == self._trade_kind:
            self._trade(frame)
        elif kind == "bookTicker":
            self._quote(frame)
        elif kind == KLINE_STREAM and self._checker is not None:
            self._kline(frame, self._checker)
        else:
            self.counts.skipped[kind] += 1

    def _trade(self, frame: Frame) -> None:
        assert self._publisher is not None
        try:
            trade = self._trades.decode(frame.raw)
        except BinanceDecodeError as exc:
            self._reject(frame, exc)
            return
        if trade is None:
            self.counts.skipped[self._trade_kind + ":not_a_trade"] += 1
            return
        if self._resume:
            self._resumed(trade)
        verdict = self._sequencer.accept(
            trade.symbol, trade.trade_id, frame.origin, time.monotonic()
        )
        if verdict.publish:
            self._publisher.publish(trade)
            self.counts.trades += 1
            if self._checker is not None:
                self._checker.trade(trade)
        else:
            self.counts.duplicates += 1
        for gap in verdict.gaps:
            self._repair(gap)

    def _resumed(self, trade: Trade) -> None:
        """Note when a seeded symbol's first trade past its seed came (for `_repair`)."""
        last = self._resume.get(trade.symbol)
        if last is not None and trade.trade_id > last.trade_id:
            del self._resume[trade.symbol]
            if trade.trade_id > last.trade_id + 1:
                self._restarts[trade.symbol] = (last, trade.time_us)

    def _quote(self, frame: Frame) -> None:
        assert self._quote_producer is not None
        try:
            quote = self._quotes.decode(frame.raw, frame.received_us)
        except BinanceDecodeError as exc:
            self._reject(frame, exc)
            return
        if self._quote_filter.accept(quote.symbol, quote.update_id):
            self._quote_producer.publish(quote)
            self.counts.quotes += 1
        else:
            self.counts.stale_quotes += 1

    def _kline(self, frame: Frame, checker: LiveCrossCheck) -> None:
        try:
            checker.kline(frame.raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._reject(frame, BinanceDecodeError("bad_kline", str(exc)))

    def _reject(self, frame: Frame, exc: BinanceDecodeError) -> None:
        assert self._publisher is not None
        self._publisher.reject(
            Rejected(f"ws:{frame.stream}", frame.raw.encode(), exc.reason, exc.detail)
        )
        self.counts.rejected += 1

    # -- gaps ---------------------------------------------------------------------------------

    async def _watch_gaps(self) -> None:
        while True:
            await asyncio.sleep(_GAP_CHECK_S)
            for gap in self._sequencer.due(time.monotonic()):
                self._repair(gap)

    def _repair(self, gap: Gap) -> None:
        """Repair a gap; a restart gap too large or too old is recorded, not fetched."""
        assert self._repairer is not None
        restart = self._restarts.pop(gap.symbol, None) if gap.cause == "restart" else None
        if restart is not None:
            last, resumed_us = restart
            reason = restart_gap_refusal(
                gap,
                last,
                resumed_us,
                market=self.market,
                max_trades=self._opts.max_restart_gap_trades,
                max_age_s=self._opts.max_restart_gap_s,
            )
            if reason:
                self._repairer.refuse(gap, reason)
                return
        self._repairer.repair(gap)


# -- entry points -------------------------------------------------------------------------------


async def ingest(
    settings: Settings,
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
    settings: Settings,
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
        flows.ingest.DeliveryFailed: Some trades were not delivered to Kafka.
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
