"""`LiveIngest`: one Binance market followed live, from its symbol universe to shutdown.

The lifecycle lives here, on the `flows.ingest.parts.IngestParts` the process opens for
it (its topics, ClickHouse migrated, the REST client, the publishers and a consumer
factory; `tickscan.ingest`): the symbols TRADING read and refreshed, each symbol resumed
after its last published trade, the tasks run until a stop and wound down in an order
that loses no frame. The work at
the socket is composed in: `flows.ingest.frames.FrameHandler` decodes, sequences and
publishes each frame, `flows.ingest.gaps.GapWatch` sees each gap repaired or refused,
`flows.ingest.staleness.StaleMonitor` watches for silent symbols, `flows.ingest.history.History`
fetches the day of 1m candles the store lacks (behind gap repair in the REST budget) and,
when on, `flows.ingest.crosscheck.LiveCrossCheck` checks our candles. On USDⓈ-M each
TRADING perpetual's mark price and the market's liquidations are followed too (published
by `flows.ingest.perps.PerpPublisher`), a perpetual without mark price is watched for
like a stale symbol, and `flows.ingest.open_interest.OpenInterestPoller` polls open
interest behind gap repair. The 20-level depth (``@depth20@100ms``) of the symbols the
latest ``md.depth_watch.v1`` record of its market names (the paper engine's, those with
open orders) is followed too, subscribed and unsubscribed as that set changes, and
published to ``md.depth.v1``. Its status and report are built and logged by
`flows.ingest.status`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import aiohttp

from flows.ingest.candle_feed import CandleFeed
from flows.ingest.crosscheck import CrossChecker, LiveCrossCheck
from flows.ingest.data_quality import DataQualityLog
from flows.ingest.depth_watch import DepthWatchFeed
from flows.ingest.frames import FrameHandler
from flows.ingest.gaps import GapFiller, GapRepairer, GapWatch, RestGapFiller
from flows.ingest.history import History, HistoryReport
from flows.ingest.open_interest import (
    OPEN_INTEREST_ENDPOINT,
    OpenInterestPoller,
    OpenInterestSchedule,
)
from flows.ingest.parts import ConsumerFactory, IngestParts
from flows.ingest.perps import PerpPublisher
from flows.ingest.quotes import QuotePublisher
from flows.ingest.resume import last_published
from flows.ingest.sequence import TradeSequencer
from flows.ingest.settings import LiveIngestSettings
from flows.ingest.staleness import MARK_PRICE_WATCH, StaleMonitor
from flows.ingest.status import (
    IngestCounts,
    IngestReport,
    LiveStatus,
    final_report,
    log_report,
    log_status,
    snapshot,
)
from flows.ingest.trades import IngestError
from flows.sinks.symbols import SymbolWriter
from flows.sources.binance.depth import depth_stream
from flows.sources.binance.markets import binance_market
from flows.sources.binance.rest import BinanceRest, BinanceRestError
from flows.sources.binance.streams import perpetual_symbols, streams_for, trading_symbols
from flows.sources.binance.symbols import symbol_infos
from flows.sources.binance.ws import Frame, StreamPool, ws_policy
from runtime.process import release_memory
from schemas import topics
from schemas.perps import OpenInterest
from schemas.trades import Market

logger = logging.getLogger(__name__)

EXCHANGE = "binance"


class LiveIngestError(IngestError):
    """Live ingestion cannot start or cannot go on."""


ExchangeInfo = Callable[[], Awaitable[dict[str, Any]]]


class LiveIngest:
    """Follows one Binance market live and publishes its trades and quotes to Kafka.

    Build it, `follow` until a stop event on the `IngestParts` of its `topics`, and ask
    `status` any time meanwhile.

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
        candles_topic: Topic of our candles, for the cross-check, and of the history's.
        tickers_topic: Topic of the exchange's 24h tickers, published with the history.
        marks_topic: Topic of the mark prices (USDⓈ-M).
        liquidations_topic: Topic of the liquidations (USDⓈ-M).
        open_interest_topic: Topic of the open-interest samples (USDⓈ-M).
        depth_topic: Topic of the 20-level books of the watched symbols.
        watch_topic: Topic naming the symbols to watch (``md.depth_watch.v1``).

    With ``ingest.history_h`` above 0, the 1m candles of that many hours the store lacks
    are fetched at start (`flows.ingest.history`); `history` reports how far it is.
    """

    def __init__(
        self,
        settings: LiveIngestSettings,
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
        tickers_topic: str = topics.TICKERS,
        marks_topic: str = topics.MARKS,
        liquidations_topic: str = topics.LIQUIDATIONS,
        open_interest_topic: str = topics.OPEN_INTEREST,
        depth_topic: str = topics.DEPTH,
        watch_topic: str = topics.DEPTH_WATCH,
    ) -> None:
        if market not in ("spot", "usdm"):
            raise LiveIngestError(f"market must be spot or usdm, not {market!r}")
        self.settings = settings
        self.market: Market = market
        self.rest_url = rest_url
        self.ws_base = ws_base or binance_market(market).ws_url
        self.only = {s.upper() for s in symbols} if symbols is not None else None
        self.trades_topic = trades_topic
        self.quotes_topic = quotes_topic
        self.deadletter_topic = deadletter_topic
        self.crosscheck = crosscheck
        self.candles_topic = candles_topic
        self.tickers_topic = tickers_topic
        self.marks_topic = marks_topic
        self.liquidations_topic = liquidations_topic
        self.open_interest_topic = open_interest_topic
        self.depth_topic = depth_topic
        self.watch_topic = watch_topic
        self.counts = IngestCounts()
        self.symbols: set[str] = set()
        self.perpetuals: set[str] = set()
        """The followed symbols that are perpetual contracts (USDⓈ-M)."""
        self.depth_wanted: set[str] = set()
        """The symbols the latest watch record names; depth is followed for those of
        them that are followed (TRADING)."""
        self._gap_filler = gap_filler
        self._opts = settings.ingest
        self._sequencer = TradeSequencer(grace_s=self._opts.gap_grace_s)
        # Built by `follow`, once the publishers exist:
        self._pool: StreamPool | None = None
        self._queue: asyncio.Queue[Frame] | None = None
        self._frames: FrameHandler | None = None
        self._gaps: GapWatch | None = None
        self._quote_producer: QuotePublisher | None = None
        self._checker: LiveCrossCheck | None = None
        self._log: DataQualityLog | None = None
        self._stale: StaleMonitor | None = None
        self._symbol_writer: SymbolWriter | None = None
        self._history: History | None = None
        self._perps: PerpPublisher | None = None
        self._marks: StaleMonitor | None = None
        self._poller: OpenInterestPoller | None = None

    # -- status --------------------------------------------------------------------------

    def status(self) -> LiveStatus:
        """A snapshot of connections, per-stream freshness and counters."""
        return snapshot(
            self.market,
            symbols=len(self.symbols),
            counts=self.counts,
            sequencer=self._sequencer,
            pool=self._pool,
            queue=self._queue,
            gaps=self._gaps,
            quotes=self._quote_producer,
            stale=self._stale,
            checker=self._checker,
            marks=self._marks,
            poller=self._poller,
        )

    @property
    def history(self) -> HistoryReport | None:
        """What the history fetch has found and done so far; None when it is off."""
        return self._history.report if self._history is not None else None

    @property
    def streams(self) -> set[str]:
        """The streams subscribed (or being subscribed) right now."""
        return self._pool.streams if self._pool else set()

    def last_trade_id(self, symbol: str) -> int | None:
        """The highest trade id received for `symbol` (repairs aside) or, before its first
        trade, the last one an earlier run published; None when neither is known."""
        return self._sequencer.last_id(symbol)

    # -- run -------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """The Kafka cluster it publishes to.

        Raises:
            LiveIngestError: The settings name none.
        """
        bootstrap = self.settings.kafka.bootstrap
        if not bootstrap:
            raise LiveIngestError("live ingest needs a Kafka cluster: set kafka.bootstrap")
        return bootstrap

    @property
    def fetches_history(self) -> bool:
        """Whether it fetches the history the store lacks at start (``ingest.history_h``)."""
        return self._opts.history_h > 0

    @property
    def topics(self) -> list[str]:
        """The Kafka topics it reads or writes: what must exist before `follow`."""
        wanted = [self.trades_topic, self.quotes_topic, self.deadletter_topic]
        if self.crosscheck or self.fetches_history:
            wanted.append(self.candles_topic)
        if self.fetches_history:
            wanted.append(self.tickers_topic)
        if self.follows_perpetuals:
            wanted += [self.marks_topic, self.liquidations_topic, self.open_interest_topic]
        return [*wanted, self.depth_topic, self.watch_topic]

    @property
    def follows_perpetuals(self) -> bool:
        """Whether it follows perpetuals data: mark prices, liquidations, open interest."""
        return self.market == "usdm"

    async def follow(self, stop: asyncio.Event, parts: IngestParts) -> IngestReport:
        """Ingest until `stop` is set, then drain, repair what is open and flush.

        Args:
            stop: Set it to stop.
            parts: What it runs on, opened by the process (closed by it after).

        Returns:
            What was published and repaired.

        Raises:
            LiveIngestError: The symbol universe cannot be read.
            flows.ingest.trades.DeliveryFailed: Some trades were not delivered to Kafka.
        """
        started = time.monotonic()
        database = self.settings.clickhouse.database
        client, partitions, rest = parts.clickhouse, parts.partitions, parts.rest
        publisher = parts.trades
        self._symbol_writer = SymbolWriter(lambda: parts.symbols, database)
        log = self._log = DataQualityLog(client, database, self.market)
        repairer = GapRepairer(
            self._gap_filler or RestGapFiller(rest, rest.facts.trade_kind),
            log,
            publisher.publish,
            market=self.market,
            concurrency=self._opts.repair_concurrency,
            attempts=self._opts.repair_attempts,
            backoff_s=self._opts.backoff_base_s,
        )
        gaps = self._gaps = GapWatch(
            self._sequencer,
            repairer,
            market=self.market,
            max_restart_gap_trades=self._opts.max_restart_gap_trades,
            max_restart_gap_s=self._opts.max_restart_gap_s,
        )
        self._quote_producer = parts.quotes
        if parts.history is not None and parts.history_out is not None:
            self._history = History(
                rest.background(),
                parts.history,
                database,
                parts.history_out,
                hours=self._opts.history_h,
                concurrency=self._opts.history_concurrency,
                progress_every_s=self._opts.history_progress_every_s,
            )
        if self.crosscheck:
            self._checker = self._cross_check(parts.consumers, partitions[self.candles_topic], log)
        self._frames = FrameHandler(
            self.market,
            exchange=EXCHANGE,
            sequencer=self._sequencer,
            gaps=gaps,
            publisher=publisher,
            quotes=parts.quotes,
            counts=self.counts,
            checker=self._checker,
            perps=parts.perps,
            depth=parts.depth,
        )
        self._perps = parts.perps
        watch = None
        if parts.depth is not None:
            watch = DepthWatchFeed(
                parts.consumers(), self.watch_topic, partitions[self.watch_topic], EXCHANGE
            )
        if parts.perps is not None and self._opts.open_interest:
            self._poller = self._open_interest_poller(rest.background(), parts.perps.open_interest)

        async def seed(symbols: set[str]) -> None:
            published = await last_published(
                parts.consumers, self.trades_topic, partitions[self.trades_topic],
                client, database, EXCHANGE, self.market, symbols,
                max_records=self._opts.resume_scan_records,
            )  # fmt: skip
            gaps.seed(published)

        try:
            await self._follow(rest.exchange_info, seed, stop, watch)
        finally:
            if watch is not None:
                watch.close()
            parts.quotes.flush()
            if parts.perps is not None:
                parts.perps.flush()
            if parts.depth is not None:
                parts.depth.flush()
            if self._checker is not None:
                self._checker.close()
        self.counts.quotes_delivered = parts.quotes.delivered
        self.counts.stale = self._stale.found if self._stale else 0
        self.counts.no_mark = self._marks.found if self._marks else 0
        await asyncio.to_thread(publisher.flush)
        report = publisher.report()
        result = final_report(
            self.market,
            symbols=len(self.symbols),
            seconds=time.monotonic() - started,
            counts=self.counts,
            pool=self._pool,
            gaps=self._gaps,
            publish=report,
            checker=self._checker,
            poller=self._poller,
        )
        log_report(result)
        return result

    def _open_interest_poller(
        self, rest: BinanceRest, publish: Callable[[OpenInterest], None]
    ) -> OpenInterestPoller:
        """Polls the followed perpetuals' open interest through a background client.

        Its share of the weight cap is ``ingest.open_interest_share``; the weight of a
        poll is the market's (`flows.sources.binance.markets`).
        """
        opts = self._opts
        schedule = OpenInterestSchedule(
            every_s=opts.open_interest_every_s,
            weight=rest.facts.weights[OPEN_INTEREST_ENDPOINT],
            weight_per_minute=rest.budget.cap * opts.open_interest_share,
        )
        return OpenInterestPoller(
            rest.open_interest,
            publish,
            lambda: self.perpetuals,
            schedule,
            spent=lambda: rest.stats.weight,
        )

    def _cross_check(
        self, consumers: ConsumerFactory, partitions: int, log: DataQualityLog
    ) -> LiveCrossCheck:
        opts = self._opts
        feed = CandleFeed(consumers(), self.candles_topic, partitions, EXCHANGE, self.market)
        checker = CrossChecker(
            EXCHANGE, self.market, settle_ms=int(opts.crosscheck_settle_s * 1000), followed={}
        )
        return LiveCrossCheck(checker, feed, log, opts.crosscheck_every_s)

    async def _follow(
        self,
        exchange_info: ExchangeInfo,
        seed: Callable[[set[str]], Awaitable[None]],
        stop: asyncio.Event,
        watch: DepthWatchFeed | None = None,
    ) -> None:
        """Subscribe the universe and run every task until `stop`, then wind down."""
        opts = self._opts
        policy = ws_policy(self.market, opts)
        self._queue = asyncio.Queue(policy.queue_size)
        self._pool = StreamPool(
            self.ws_base, binance_market(self.market).stream_path, policy, self._queue
        )
        try:
            symbols, perpetuals = await self._universe(exchange_info)
        except (BinanceRestError, aiohttp.ClientError, TimeoutError) as exc:
            await self._pool.close()
            raise LiveIngestError(f"cannot read the {self.market} symbol universe: {exc}") from exc
        try:
            await seed(symbols)
        except BaseException:
            await self._pool.close()
            raise
        assert self._log is not None and self._frames is not None and self._gaps is not None
        frames, gaps = self._frames, self._gaps
        pool, log = self._pool, self._log
        self._stale = StaleMonitor(
            pool.silent, pool.last_message_at, log, market=self.market, after_s=opts.stale_after_s
        )
        if self._perps is not None:
            self._marks = StaleMonitor(
                pool.silent, pool.last_message_at, log, market=self.market,
                after_s=opts.mark_missing_after_s, watched=MARK_PRICE_WATCH,
            )  # fmt: skip
        self._apply_universe(symbols, perpetuals)
        watching = asyncio.create_task(self._stale.run(), name="ingest-stale")
        tasks = [
            asyncio.create_task(frames.consume(self._queue), name="ingest-consume"),
            asyncio.create_task(gaps.run(), name="ingest-gaps"),
            asyncio.create_task(self._refresh(exchange_info), name="ingest-refresh"),
            asyncio.create_task(self._log_status(), name="ingest-status"),
            asyncio.create_task(self._release_memory(), name="ingest-memory"),
            watching,
        ]
        checking = None
        if self._checker is not None:
            checking = asyncio.create_task(self._checker.run(), name="ingest-crosscheck")
            tasks.append(checking)
        # The mark-price watch is stopped, not cancelled, like the stale watch: a row being
        # written is finished. The poller is cancelled: a poll held by a 429 may take long.
        stoppable = [watching]
        if self._marks is not None:
            stoppable.append(asyncio.create_task(self._marks.run(), name="ingest-marks"))
            tasks.append(stoppable[-1])
        if self._poller is not None:
            tasks.append(asyncio.create_task(self._poller.run(), name="ingest-open-interest"))
        if watch is not None:
            tasks.append(asyncio.create_task(self._follow_watch(watch), name="ingest-depth-watch"))
        # Not among `tasks`: its end (done, or failed) does not end the ingest.
        fetching = (
            asyncio.create_task(self._fetch_history(symbols), name="ingest-history")
            if self._history is not None
            else None
        )
        stopper = asyncio.create_task(stop.wait(), name="ingest-stop")
        try:
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise LiveIngestError(f"{task.get_name()} failed") from task.exception()
        finally:
            stopper.cancel()
            if fetching is not None:
                fetching.cancel()  # after the write in flight; a restart fetches the rest
            await self._pool.close()
            consume = tasks[0]
            for task in tasks[1:]:
                if task is not checking and task not in stoppable:
                    task.cancel()
            # Not cancelled: a data_quality row being written is finished first.
            self._stale.stop()
            if self._marks is not None:
                self._marks.stop()
            if self._checker is not None:
                # Not cancelled: it does a last round and leaves the candle topic.
                self._checker.stop()
            # Every frame read off a socket is handled: none is lost at shutdown.
            if not consume.done():
                consume.cancel()
            others = [fetching] if fetching is not None else []
            await asyncio.gather(*tasks, *others, stopper, return_exceptions=True)
            frames.drain(self._queue)
            await gaps.finish()

    async def _fetch_history(self, symbols: set[str]) -> None:
        """Fetch the history the store lacks; a failure is logged, live ingest goes on."""
        assert self._history is not None
        try:
            await self._history.run(symbols)
        except Exception:
            logger.exception("%s: fetching history failed; live ingest goes on", self.market)

    async def _universe(self, exchange_info: ExchangeInfo) -> tuple[set[str], set[str]]:
        """The symbols to follow, and those of them that are perpetuals (USDⓈ-M only)."""
        info = await exchange_info()
        await self._record_symbols(info)
        symbols = trading_symbols(info)
        if self.only is not None:
            absent = self.only - symbols
            if absent:
                logger.warning("not TRADING on %s: %s", self.market, ", ".join(sorted(absent)))
            symbols &= self.only
        perpetuals = perpetual_symbols(info) & symbols if self._perps is not None else set()
        return symbols, perpetuals

    async def _record_symbols(self, info: dict[str, Any]) -> None:
        """Write every listed symbol's metadata (delisted ones too, with their status)."""
        if self._symbol_writer is None:
            return
        infos = symbol_infos(EXCHANGE, self.market, info)
        try:
            await asyncio.to_thread(self._symbol_writer.write, infos)
        except Exception as exc:  # metadata must never stop the trades
            logger.warning("%s: could not write symbol metadata (%s); will retry", self.market, exc)

    def _streams(self) -> dict[str, str]:
        """Every stream to follow now: the universe's, and the watched symbols' depth."""
        streams = streams_for(
            self.market, self.symbols, klines=self.crosscheck, perpetuals=self.perpetuals
        )
        for symbol in self.depth_wanted & self.symbols:
            streams[depth_stream(symbol)] = symbol
        return streams

    def watch_depth(self, symbols: Collection[str]) -> None:
        """Follow the 20-level depth of exactly these symbols (those of them followed).

        Streams are subscribed and unsubscribed on the live connections (paced within
        Binance's message-rate limit); a symbol that starts TRADING later gets its depth
        then.

        Args:
            symbols: Upper-case symbols, the whole set (a ``md.depth_watch.v1`` record's).
        """
        wanted = {s.upper() for s in symbols}
        if wanted == self.depth_wanted:
            return
        before = self.depth_wanted & self.symbols
        self.depth_wanted = wanted
        now = wanted & self.symbols
        if self._pool is not None:
            self._pool.set_streams(self._streams())
        logger.info(
            "%s: depth for %d symbol(s) (+%d -%d): %s",
            self.market, len(now), len(now - before), len(before - now), sorted(now)[:20],
        )  # fmt: skip

    async def _follow_watch(self, watch: DepthWatchFeed) -> None:
        """Read the watch topic every ``ingest.depth_watch_poll_s`` and follow its latest
        record for this market."""
        while True:
            records = await asyncio.to_thread(watch.poll)
            record = records.get(self.market)
            if record is not None:
                self.watch_depth(record.symbols)
            await asyncio.sleep(self._opts.depth_watch_poll_s)

    def _apply_universe(self, symbols: set[str], perpetuals: set[str]) -> None:
        assert self._pool is not None and self._frames is not None and self._gaps is not None
        gone = self.symbols - symbols
        new = symbols - self.symbols
        lost_perpetuals = self.perpetuals - perpetuals
        self.symbols = set(symbols)
        self.perpetuals = set(perpetuals)
        self._pool.set_streams(self._streams())
        if self._marks is not None and lost_perpetuals:
            self._marks.forget(lost_perpetuals)
        if gone:
            self._sequencer.forget(gone)
            self._frames.forget(gone)
            self._gaps.forget(gone)
            if self._stale is not None:
                self._stale.forget(gone)
            if self._checker is not None:
                self._checker.checker.forget(gone)
            logger.info("%s: no longer trading, unsubscribed: %s", self.market, sorted(gone)[:20])
        if new:
            logger.info("%s: following %d new symbol(s)", self.market, len(new))

    async def _refresh(self, exchange_info: ExchangeInfo) -> None:
        while True:
            await asyncio.sleep(self._opts.refresh_s)
            try:
                symbols, perpetuals = await self._universe(exchange_info)
            except (BinanceRestError, aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("symbol refresh failed (%s); keeping %d", exc, len(self.symbols))
                continue
            if symbols != self.symbols or perpetuals != self.perpetuals:
                self._apply_universe(symbols, perpetuals)

    async def _release_memory(self) -> None:
        while True:
            await asyncio.sleep(self._opts.release_memory_every_s)
            started = time.perf_counter()
            found = release_memory()
            logger.debug(
                "%s: released memory (%d unreachable objects) in %.0f ms",
                self.market, found, (time.perf_counter() - started) * 1000,
            )  # fmt: skip

    async def _log_status(self) -> None:
        while True:
            await asyncio.sleep(self._opts.status_every_s)
            log_status(self.status(), self._opts.stale_after_s)
