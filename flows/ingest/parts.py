"""What a live ingest runs on: the clients and publishers its process opens and hands down.

`tickscan.ingest` opens them for the `flows.ingest.market.LiveIngest` of one market, and
closes them after; nothing in `flows.ingest` opens a client of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer

from flows.ingest.history import HistoryPublisher
from flows.ingest.perps import PerpPublisher
from flows.ingest.quotes import DepthPublisher, QuotePublisher
from flows.ingest.trades import TradePublisher
from flows.sources.binance.rest import BinanceRest

ConsumerFactory = Callable[[], Consumer]
"""Opens a Kafka consumer of the cluster: `functools.partial(Consumer, config)`."""


@dataclass(frozen=True)
class IngestParts:
    """What a live ingest runs on, opened (and closed after) by the process that runs it.

    Attributes:
        partitions: The partitions of each of `LiveIngest.topics`, which exist.
        consumers: Opens a consumer of the cluster (no group; its caller assigns the
            partitions and closes it): the resume scan reads the trades topic's tail and
            the cross-check our candles through one each.
        clickhouse: The migrated store: the data-quality log and the resume scan use it.
        symbols: A client of its own for symbol metadata, written from a worker thread
            while `clickhouse` may be busy (a clickhouse-connect client runs one query at
            a time).
        history: A client of its own for the history fetch (another worker thread); None
            when `LiveIngest.fetches_history` is off.
        rest: The market's Binance REST client, open: gaps and history come through it.
        trades: The publisher of `LiveIngest.trades_topic` (and of its dead letters).
            The ingest flushes it before it reports; the process closes it.
        quotes: The publisher of `LiveIngest.quotes_topic`; the ingest flushes it when it
            stops (its report counts what was delivered), the process closes it.
        history_out: The publisher of the history's candles and tickers; None when
            `history` is.
        perps: The publisher of the mark prices, liquidations and open interest (flushed
            by the ingest when it stops, closed by the process); None when
            `LiveIngest.follows_perpetuals` is off (spot): then none are followed.
        depth: The publisher of `LiveIngest.depth_topic` (flushed by the ingest when it
            stops, closed by the process); None: no depth is followed, whatever
            ``md.depth_watch.v1`` says.
    """

    partitions: Mapping[str, int]
    consumers: ConsumerFactory
    clickhouse: Client
    symbols: Client
    history: Client | None
    rest: BinanceRest
    trades: TradePublisher
    quotes: QuotePublisher
    history_out: HistoryPublisher | None
    perps: PerpPublisher | None = None
    depth: DepthPublisher | None = None
