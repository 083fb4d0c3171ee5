"""A Binance market followed live, composed: `tickscan ingest` and the live source of `run`.

`flows.ingest.market.LiveIngest` holds the ingest's rules and lifecycle and opens nothing
itself. Here it is handed what it runs on: its Kafka topics made sure of, ClickHouse
opened and migrated (a client per thread that queries), the market's REST client and its
publishers open; all closed again once it has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Collection

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer

from flows.ingest import market
from flows.ingest.history import HistoryPublisher
from flows.ingest.parts import IngestParts
from flows.ingest.perps import PerpPublisher
from flows.ingest.quotes import DepthPublisher, QuotePublisher
from flows.ingest.settings import LiveIngestSettings
from flows.ingest.status import IngestReport
from flows.ingest.trades import TradePublisher
from flows.sources.binance.rest import BinanceRest
from runtime.clickhouse import connect
from runtime.kafka import consumer_config, ensure_topics
from runtime.migrate import migrate
from runtime.supervisor import relayed
from schemas.topics import PerpTopics
from schemas.trades import Market


@contextlib.asynccontextmanager
async def ingest_parts(live: market.LiveIngest) -> AsyncIterator[IngestParts]:
    """Open what `live` runs on, and close it when the block ends.

    Raises:
        flows.ingest.market.LiveIngestError: Its settings name no Kafka cluster.
        runtime.errors.RuntimeSetupError: A topic, ClickHouse or a migration failed.
    """
    settings = live.settings
    partitions = await asyncio.to_thread(
        ensure_topics,
        live.bootstrap,
        live.topics,
        settings.kafka.topic_partitions(),
        settings.kafka.replication_factor,
    )
    dsn = settings.clickhouse_dsn()
    async with contextlib.AsyncExitStack() as stack:

        async def client() -> Client:
            opened = await asyncio.to_thread(connect, dsn)
            stack.callback(opened.close)
            return opened

        store = await client()
        symbols = await client()
        history = await client() if live.fetches_history else None
        await asyncio.to_thread(migrate, store, settings.clickhouse.database)
        rest = await stack.enter_async_context(
            BinanceRest(
                live.market, live.rest_url, background_reserve=settings.ingest.history_reserve
            )
        )
        bootstrap = live.bootstrap
        trades = stack.enter_context(
            TradePublisher(
                bootstrap, topic=live.trades_topic, deadletter_topic=live.deadletter_topic
            )
        )
        quotes = QuotePublisher(bootstrap, live.quotes_topic)
        stack.callback(quotes.close)
        depth = DepthPublisher(bootstrap, live.depth_topic)
        stack.callback(depth.close)
        perps = None
        if live.follows_perpetuals:
            perps = PerpPublisher(
                bootstrap,
                PerpTopics(
                    marks=live.marks_topic,
                    liquidations=live.liquidations_topic,
                    open_interest=live.open_interest_topic,
                ),
            )
            stack.callback(perps.close)
        history_out = None
        if history is not None:
            history_out = HistoryPublisher(bootstrap, live.candles_topic, live.tickers_topic)
            stack.push_async_callback(asyncio.to_thread, history_out.close)
        yield IngestParts(
            partitions=partitions,
            consumers=functools.partial(Consumer, consumer_config(bootstrap)),
            clickhouse=store,
            symbols=symbols,
            history=history,
            rest=rest,
            trades=trades,
            quotes=quotes,
            history_out=history_out,
            perps=perps,
            depth=depth,
        )


class LiveIngest(market.LiveIngest):
    """A `flows.ingest.market.LiveIngest` that opens its parts for each run (`ingest_parts`).

    Built like its base; the process, a test or a benchmark then only calls `run`.
    """

    async def run(self, stop: asyncio.Event) -> IngestReport:
        """Open the parts, ingest until `stop` is set, then drain, repair, flush and close.

        Returns:
            What was published and repaired.

        Raises:
            flows.ingest.market.LiveIngestError: No Kafka bootstrap, or the symbol universe
                cannot be read.
            flows.ingest.trades.DeliveryFailed: Some trades were not delivered to Kafka.
        """
        async with ingest_parts(self) as parts:
            return await self.follow(stop, parts)


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
    """Follow a Binance market live on an event loop of its own until `stop` is set.

    Args:
        settings: Process settings (``kafka.bootstrap`` required).
        market: ``spot`` or ``usdm``.
        rest_url: Binance REST base URL; production by default.
        ws_base: Binance WebSocket base URL; production by default.
        symbols: Only these symbols; None follows the whole exchange.
        stop: Set it from any thread (e.g. a signal handler, a supervisor) to stop: the
            queue is drained, open gaps repaired, Kafka flushed. None runs until the
            process is interrupted.
        crosscheck: Check our 1m candles (md.candles.v1) against the exchange's closed
            klines and record mismatches in ``data_quality``.

    Returns:
        What was published and repaired.

    Raises:
        flows.ingest.trades.DeliveryFailed: Some trades were not delivered to Kafka.
        flows.ingest.market.LiveIngestError: Ingest could not start or could not go on.
    """

    async def main() -> IngestReport:
        live = LiveIngest(
            settings,
            market=market,
            rest_url=rest_url,
            ws_base=ws_base,
            symbols=symbols,
            crosscheck=crosscheck,
        )
        async with relayed(stop) as stopping:
            return await live.run(stopping)

    return asyncio.run(main())
