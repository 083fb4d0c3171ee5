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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from confluent_kafka import KafkaError, Message, Producer

from flows.gaps import DataQualityLog, GapFiller, GapRepairer, RepairCounts, RestGapFiller
from flows.ingest import IngestError, PublishReport, TradePublisher
from flows.sequence import QuoteFilter, TradeSequencer
from flows.sources.binance import BinanceDecodeError, BinanceDecoder
from flows.sources.binance_book import BookTickerDecoder
from flows.sources.binance_rest import BinanceRest, BinanceRestError, TradeKind
from flows.sources.binance_ws import (
    ConnectionStatus,
    Frame,
    StreamPool,
    WsPolicy,
    default_ws_base,
    route,
)
from flows.sources.files import Rejected
from runtime.clickhouse import connect
from runtime.kafka import ensure_topics, producer_config
from runtime.migrate import migrate
from runtime.settings import IngestSettings, Settings
from schemas import topics
from schemas.quotes import Quote, encode_quote
from schemas.trades import Market

logger = logging.getLogger(__name__)

EXCHANGE = "binance"

_DRAIN_BATCH = 2_000  # frames handled between yields to the event loop
_GAP_CHECK_S = 0.25
_SHUTDOWN_REPAIR_S = 30.0
_QUOTE_BUFFER_WAIT_S = 0.05


class LiveIngestError(IngestError):
    """Live ingestion cannot start or cannot go on."""


# -- pure logic ------------------------------------------------------------------------


def trading_symbols(exchange_info: dict[str, Any]) -> set[str]:
    """The symbols of an ``exchangeInfo`` response whose status is ``TRADING``.

    Args:
        exchange_info: The decoded response (spot or USDⓈ-M).

    Returns:
        Upper-case symbols, e.g. ``{"BTCUSDT", "ETHUSDT"}``.
    """
    return {
        s["symbol"]
        for s in exchange_info.get("symbols", [])
        if isinstance(s, dict) and s.get("status") == "TRADING" and isinstance(s.get("symbol"), str)
    }


def trade_stream_kind(market: Market) -> TradeKind:
    """The trade stream followed on a market: raw trades on spot, aggTrades on USDⓈ-M."""
    return "trade" if market == "spot" else "aggTrade"


def streams_for(market: Market, symbols: Iterable[str]) -> dict[str, str]:
    """The streams to follow for `symbols`, each mapped to its symbol.

    Args:
        market: ``spot`` (``@trade`` + ``@bookTicker``) or ``usdm`` (``@aggTrade`` +
            ``@bookTicker``).
        symbols: Upper-case symbols.

    Returns:
        ``{"btcusdt@trade": "BTCUSDT", "btcusdt@bookTicker": "BTCUSDT", ...}``.
    """
    kind = trade_stream_kind(market)
    out: dict[str, str] = {}
    for symbol in symbols:
        lower = symbol.lower()
        out[f"{lower}@{kind}"] = symbol
        out[f"{lower}@bookTicker"] = symbol
    return out


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


# -- reports -------------------------------------------------------------------------------


@dataclass(slots=True)
class IngestCounts:
    """Running counts of a live ingest (gap repair keeps its own: `RepairCounts`).

    Attributes:
        trades: Live trades handed to the publisher (duplicates excluded).
        quotes: Quotes handed to the quote producer.
        quotes_delivered: Quotes the broker acknowledged.
        duplicates: Trades dropped as already published.
        stale_quotes: Quotes dropped as not newer than the last one.
        rejected: Messages sent to the dead-letter topic.
        skipped: Non-trade messages on a trade stream, by kind.
    """

    trades: int = 0
    quotes: int = 0
    quotes_delivered: int = 0
    duplicates: int = 0
    stale_quotes: int = 0
    rejected: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """A snapshot of a running ingest, for operators and the CLI.

    Attributes:
        market: The market followed.
        symbols: Symbols followed.
        connections: One entry per shard (connection slot).
        freshness: Seconds since each stream's last message (streams heard from).
        counts: The running counts.
        repairs: Gaps found and repaired so far.
        reconnects: Sockets opened after a shard's first, by cause.
        open_holes: Holes waiting (within their grace) to be filled or reported.
        repairs_running: Gap repairs in flight.
        queued: Frames waiting between the sockets and the publisher.
    """

    market: Market
    symbols: int
    connections: list[ConnectionStatus]
    freshness: dict[str, float]
    counts: IngestCounts
    repairs: RepairCounts
    reconnects: dict[str, int]
    open_holes: int
    repairs_running: int
    queued: int

    def stale(self, older_than_s: float) -> list[str]:
        """Streams whose last message is older than `older_than_s`."""
        return sorted(s for s, age in self.freshness.items() if age > older_than_s)


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What a live ingest did, once stopped and flushed.

    Attributes:
        market: The market followed.
        symbols: Symbols followed at the end.
        seconds: Wall-clock run time.
        counts: Trades, quotes and duplicates.
        repairs: Gaps found, repaired, unrepairable; trades recovered.
        reconnects: Sockets opened after a shard's first, by cause.
        publish: The trade publisher's delivery report.
    """

    market: Market
    symbols: int
    seconds: float
    counts: IngestCounts
    repairs: RepairCounts
    reconnects: dict[str, int]
    publish: PublishReport


# -- side effects ---------------------------------------------------------------------------


class _QuoteProducer:
    """Publishes quotes keyed like the trades; counts deliveries and failures."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.delivered = 0
        self.failures = 0
        self.first_error: str | None = None
        self._producer = Producer(producer_config(bootstrap))

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered += 1
            return
        self.failures += 1
        if self.first_error is None:
            self.first_error = str(err)
            logger.error("quote delivery failed: %s", err)

    def publish(self, quote: Quote) -> None:
        value, key = encode_quote(quote), quote.key
        while True:
            try:
                self._producer.produce(self.topic, value, key, on_delivery=self._on_delivery)
                return
            except BufferError:
                self._producer.poll(_QUOTE_BUFFER_WAIT_S)

    def poll(self) -> None:
        self._producer.poll(0)

    def close(self, timeout: float = 30.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            logger.error("%d quote(s) undelivered after %.0f s", remaining, timeout)
            self._producer.purge()
        self._producer.close()


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
        self._quote_producer: _QuoteProducer | None = None
        self._repairer: GapRepairer | None = None

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
            ),
            repairs=self._repairs().copy(),
            reconnects=self._reconnects(),
            open_holes=self._sequencer.open_holes(),
            repairs_running=self._repairer.running if self._repairer else 0,
            queued=self._queue.qsize() if self._queue else 0,
        )

    @property
    def streams(self) -> set[str]:
        """The streams subscribed (or being subscribed) right now."""
        return self._pool.streams if self._pool else set()

    def last_trade_id(self, symbol: str) -> int | None:
        """The highest trade id received for `symbol` (repairs aside), None before one."""
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
        await asyncio.to_thread(
            ensure_topics,
            bootstrap,
            [self.trades_topic, self.quotes_topic, self.deadletter_topic],
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
                    self._repairer = GapRepairer(
                        self._gap_filler or RestGapFiller(rest, self._trade_kind),
                        DataQualityLog(client, database, self.market),
                        publisher.publish,
                        market=self.market,
                        concurrency=self._opts.repair_concurrency,
                        attempts=self._opts.repair_attempts,
                        backoff_s=self._opts.backoff_base_s,
                    )
                    self._quote_producer = _QuoteProducer(bootstrap, self.quotes_topic)
                    try:
                        await self._follow(rest.exchange_info, stop)
                    finally:
                        self._quote_producer.close()
                    self.counts.quotes_delivered = self._quote_producer.delivered
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
        )
        repairs = result.repairs
        logger.info(
            "ingest %s stopped after %.0f s: %d trades, %d quotes, %d duplicates, "
            "%d gaps (%d repaired, %d unrepairable, %d trades recovered)",
            self.market, result.seconds, self.counts.trades, self.counts.quotes,
            self.counts.duplicates, sum(repairs.gaps.values()), repairs.repaired,
            repairs.unrepairable, repairs.recovered,
        )  # fmt: skip
        return result

    async def _follow(self, exchange_info: ExchangeInfo, stop: asyncio.Event) -> None:
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
        self._apply_universe(symbols)
        tasks = [
            asyncio.create_task(self._consume(), name="ingest-consume"),
            asyncio.create_task(self._watch_gaps(), name="ingest-gaps"),
            asyncio.create_task(self._refresh(exchange_info), name="ingest-refresh"),
            asyncio.create_task(self._log_status(), name="ingest-status"),
        ]
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
                task.cancel()
            # Every frame read off a socket is handled: none is lost at shutdown.
            if not consume.done():
                consume.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
            self._drain()
            assert self._repairer is not None
            for gap in self._sequencer.flush():
                self._repairer.repair(gap)
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
        self._pool.set_streams(streams_for(self.market, symbols))
        self.symbols = set(symbols)
        if gone:
            self._sequencer.forget(gone)
            self._quote_filter.forget(gone)
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
                "gaps %s, %d repairing, %d queued, %d streams silent > 60 s",
                self.market, s.symbols, len(s.connections), s.counts.trades, s.counts.quotes,
                s.counts.duplicates, dict(s.repairs.gaps), s.repairs_running, s.queued,
                len(s.stale(60.0)),
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
        verdict = self._sequencer.accept(
            trade.symbol, trade.trade_id, frame.origin, time.monotonic()
        )
        if verdict.publish:
            self._publisher.publish(trade)
            self.counts.trades += 1
        else:
            self.counts.duplicates += 1
        if verdict.gaps:
            assert self._repairer is not None
            for gap in verdict.gaps:
                self._repairer.repair(gap)

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

    def _reject(self, frame: Frame, exc: BinanceDecodeError) -> None:
        assert self._publisher is not None
        self._publisher.reject(
            Rejected(f"ws:{frame.stream}", frame.raw.encode(), exc.reason, exc.detail)
        )
        self.counts.rejected += 1

    # -- gaps ---------------------------------------------------------------------------------

    async def _watch_gaps(self) -> None:
        assert self._repairer is not None
        while True:
            await asyncio.sleep(_GAP_CHECK_S)
            for gap in self._sequencer.due(time.monotonic()):
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
                symbols=symbols, stop=astop,
            )  # fmt: skip
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    return asyncio.run(main())
