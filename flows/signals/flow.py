"""Scanner metrics, signals and ranks: md.candles.v1 + md.quotes.v1 + md.tickers.v1 (+ the
perpetuals' md.marks.v1, md.open_interest.v1, md.liquidations.v1, md.funding.v1) ->
md.ranks.v1, md.signals.v1, ClickHouse `signals` and `rank_snapshots`.

Each Kafka partition is one keyed state (a `flows.signals.scanner.PartitionScanner`
holding all of its symbols), fed whole fetched batches of both topics. Candles and quotes
are keyed by symbol, so with the same partition count a symbol sits in the same partition
number of both topics, and the two inputs keyed by partition number meet in one state.
The perpetuals topics are keyed the same way, so a perpetual's marks, open interest,
liquidations and funding meet its candles in that state too
(`flows.signals.perps`).

Per symbol, every new 1s candle yields a `RankRow` as of its close (`flows.signals.metrics`): it
is published to md.ranks.v1 when it differs from the symbol's last published row (so at
most once a second per symbol), and written to `rank_snapshots` when it is as of a whole
minute. Every 1m candle feeds the symbol's bars (`flows.signals.bars`), whose rules
(`flows.signals.rules`) fire once per closed bar. A replay of the same candles gives the
same rows and signals; only the bid and ask depend on how the two topics interleave,
since a row takes the newest quote the flow has read.

Warm start: a partition state that starts without a recovery snapshot takes each symbol's
history and signal bars from ClickHouse (`flows.signals.warm_start`,
`flows.signals.warm_bars`) when the symbol's first message arrives, and the topic's
candles apply on top by key and version: the bars that closed before the start fire
nothing again, the first one after it fires as in a run that never stopped. 24h tickers
(one per symbol at a fresh start) stand in for the 24h figures until the symbol's own
minutes cover the day.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from flows.dead_letters import dead_letter_message, record_dead_letter
from flows.signals.rules import Registry, default_rules
from flows.signals.scanner import (
    DEFAULT_PERP_TOPICS,
    PartitionScanner,
    ScanContext,
    ScannerOutput,
)
from flows.signals.settings import SignalFlowSettings
from flows.signals.warm_start import WarmStart
from flows.sinks.clickhouse import ClickHouseSink
from flows.sinks.kafka import KafkaListSink
from flows.sinks.scanner_tables import ScannerWriter, scanner_writer
from flows.sources.kafka import KafkaBatchSource, RecordBatch, RunBounds, StartAt
from runtime.kafka import consumer_config, producer_config
from schemas import topics
from schemas.deadletter import DeadLetter
from schemas.ranks import RankRow, encode_rank
from schemas.signals import Signal, encode_signal
from schemas.topics import PerpTopics

logger = logging.getLogger(__name__)

STAGE = "signals"


@dataclass
class SignalCounters:
    """Live counts of a running signals flow, for progress reports (read from any thread)."""

    candles: int = 0
    quotes: int = 0
    tickers: int = 0
    perps: int = 0
    """Perpetuals records: marks, open interest, liquidations and funding."""
    warm_symbols: int = 0
    """Symbols whose history came from ClickHouse."""
    rows: int = 0
    """Rank rows computed (one per new 1s candle)."""
    ranks: int = 0
    """Rows published (those that changed)."""
    snapshots: int = 0
    signals: int = 0
    dead_letters: int = 0
    ends: int = 0
    """Partitions (of either topic) whose finite run is complete."""


class SignalLogic(StatefulLogic[RecordBatch, ScannerOutput, PartitionScanner]):
    """Bytewax adaptor: record batches of one partition (both topics) in, outputs out."""

    def __init__(
        self, context: ScanContext, resume: PartitionScanner | None, counters: SignalCounters
    ) -> None:
        self._context = context
        if resume is None:
            # No snapshot: start from the history ClickHouse holds, read before any
            # live candle is applied.
            resume = PartitionScanner(from_store=context.warm is not None)
            if context.warm is not None:
                context.warm.load(context.params)
        elif not hasattr(resume, "tickers"):  # a snapshot from before tickers
            resume.tickers, resume.from_store, resume._warmed = {}, False, 0
        self._scanner = resume
        self._counters = counters

    def on_item(self, value: RecordBatch) -> tuple[Iterable[ScannerOutput], bool]:
        counters = self._counters
        if value.end:
            counters.ends += 1
        if not value.records:
            return [], StatefulLogic.RETAIN
        out = ScannerOutput()

        def reject(record: Any, reason: str, detail: str) -> None:
            out.dead_letters.append(record_dead_letter(STAGE, record, reason, detail))

        folded = self._scanner.fold(value.records, self._context, out, reject)
        counters.candles += folded.candles
        counters.quotes += folded.quotes
        counters.tickers += folded.tickers
        counters.perps += folded.perps
        counters.warm_symbols += folded.warm_symbols
        counters.rows += folded.rows
        counters.ranks += len(out.ranks)
        counters.snapshots += len(out.snapshots)
        counters.signals += len(out.signals)
        counters.dead_letters += len(out.dead_letters)
        return ([out] if out else []), StatefulLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[ScannerOutput], bool]:
        # The end of a finite run: rows still owed to perpetuals data read after their
        # symbol's last candle.
        out = ScannerOutput()
        self._scanner.flush(out)
        self._counters.ranks += len(out.ranks)
        return ([out] if out else []), StatefulLogic.RETAIN

    def notify_at(self) -> None:
        return None

    def snapshot(self) -> PartitionScanner:
        return self._scanner


def rank_message(row: RankRow) -> tuple[str, bytes]:
    """Kafka key and value of a rank row."""
    return row.key, encode_rank(row)


def signal_message(signal: Signal) -> tuple[str, bytes]:
    """Kafka key and value of a signal."""
    return signal.key, encode_signal(signal)


@dataclass(frozen=True)
class ScannerSinks:
    """Where the signals flow's outputs go; each receives `(partition, [item, ...])`."""

    ranks: Sink[tuple[str, list[RankRow]]]
    signals: Sink[tuple[str, list[Signal]]]
    tables: Sink[tuple[str, list[Signal | RankRow]]]
    """Rank snapshots and signals, for ClickHouse."""
    dead_letters: Sink[tuple[str, list[DeadLetter]]]


def _table_rows(out: ScannerOutput) -> list[Signal | RankRow] | None:
    rows: list[Signal | RankRow] = [*out.snapshots, *out.signals]
    return rows or None


def build_flow(
    settings: SignalFlowSettings,
    candles: Source[tuple[str, RecordBatch]],
    quotes: Source[tuple[str, RecordBatch]] | None,
    sinks: ScannerSinks,
    *,
    tickers: Source[tuple[str, RecordBatch]] | None = None,
    perps: Sequence[Source[tuple[str, RecordBatch]]] = (),
    warm: WarmStart | None = None,
    counters: SignalCounters | None = None,
    registry: Registry | None = None,
    quotes_topic: str = topics.QUOTES,
    tickers_topic: str = topics.TICKERS,
    perp_topics: PerpTopics = DEFAULT_PERP_TOPICS,
    flow_id: str = "signals",
) -> Dataflow:
    """Wire the signals flow.

    Args:
        settings: Batching and rule parameters.
        candles: `(partition, RecordBatch)` items of the candle topic.
        quotes: The same of the quote topic, or None to run without quotes.
        sinks: Where ranks, signals, ClickHouse rows and dead letters go.
        tickers: The same of the 24h ticker topic, or None.
        perps: The same of the perpetuals topics (marks, open interest, liquidations,
            funding: any of them, each its own input).
        warm: Where a state without a snapshot finds its symbols' history, or None to
            start empty.
        counters: Filled with live counts, for progress reports.
        registry: The signal rules to run; None: the built-in ones (`default_rules()`).
        quotes_topic: Records of this topic are quotes.
        tickers_topic: Records of this topic are 24h tickers; every other record is a
            candle, unless of one of `perp_topics`.
        perp_topics: Which topics hold perpetuals records.
        flow_id: The dataflow's id (it names recovery state).

    Returns:
        The dataflow, ready for `bytewax.run` or `bytewax.testing.run_main`.
    """
    counters = counters if counters is not None else SignalCounters()
    rules = registry if registry is not None else default_rules()
    context = ScanContext(settings.rules, rules, quotes_topic, tickers_topic, warm, perp_topics)
    flow = Dataflow(flow_id)
    batches = op.input("candles_in", flow, candles)
    if quotes is not None:
        batches = op.merge("inputs", batches, op.input("quotes_in", flow, quotes))
    if tickers is not None:
        batches = op.merge("with_tickers", batches, op.input("tickers_in", flow, tickers))
    if perps:
        perp_inputs = [op.input(f"perps_in_{i}", flow, src) for i, src in enumerate(perps)]
        batches = op.merge("with_perps", batches, *perp_inputs)

    def builder(resume: PartitionScanner | None) -> SignalLogic:
        return SignalLogic(context, resume, counters)

    outputs = op.stateful("scanner", batches, builder)
    ranks = op.filter_map_value("ranks_only", outputs, lambda out: out.ranks or None)
    op.output("ranks_out", ranks, sinks.ranks)
    signals = op.filter_map_value("signals_only", outputs, lambda out: out.signals or None)
    op.output("signals_out", signals, sinks.signals)
    tables = op.filter_map_value("tables_only", outputs, _table_rows)
    op.output("tables_out", tables, sinks.tables)
    dead = op.filter_map_value("dead_letters_only", outputs, lambda out: out.dead_letters or None)
    op.output("dead_letters_out", dead, sinks.dead_letters)
    return flow


def build_kafka_flow(
    settings: SignalFlowSettings,
    *,
    bootstrap: str,
    clickhouse: Callable[[], Any],
    database: str,
    start: StartAt | RunBounds = "end",
    quotes_start: StartAt | RunBounds | None = "end",
    tickers_start: StartAt | RunBounds | None = None,
    perps_start: dict[str, StartAt | RunBounds] | None = None,
    warm: WarmStart | None = None,
    candles_topic: str = topics.CANDLES,
    quotes_topic: str = topics.QUOTES,
    tickers_topic: str = topics.TICKERS,
    ranks_topic: str = topics.RANKS,
    signals_topic: str = topics.SIGNALS,
    dead_letter_topic: str = topics.DEADLETTER,
    counters: SignalCounters | None = None,
    registry: Registry | None = None,
    partitions: Sequence[int] | None = None,
    stop: threading.Event | None = None,
    perp_topics: PerpTopics = DEFAULT_PERP_TOPICS,
) -> tuple[Dataflow, ScannerWriter]:
    """The production wiring: Kafka candles and quotes in; Kafka and ClickHouse out.

    Args:
        settings: Batching and rule parameters.
        bootstrap: Kafka bootstrap servers.
        clickhouse: Returns the ClickHouse client to insert with (called on first insert).
        database: Database holding `signals` and `rank_snapshots`.
        start: Where to start reading candles, or a finite run's bounds.
        quotes_start: Where to start reading quotes, or their run's bounds; None reads
            no quotes (bid and ask stay None).
        tickers_start: Where to start reading 24h tickers, or their run's bounds; None
            reads none.
        perps_start: Per perpetuals topic to read (`topics.MARKS`, `OPEN_INTEREST`,
            `LIQUIDATIONS`, `FUNDING`, or the names `perp_topics` gives), where to start or
            its run's bounds; None or empty reads none.
        warm: Where a state without a snapshot finds its symbols' history (see
            `flows.signals.warm_start.WarmStart`), or None to start empty.
        candles_topic: Topic to read candles from.
        quotes_topic: Topic to read quotes from.
        tickers_topic: Topic to read 24h tickers from.
        ranks_topic: Topic to write changed rank rows to.
        signals_topic: Topic to write signals to.
        dead_letter_topic: Topic to write rejected messages to.
        counters: Filled with live counts, for progress reports.
        registry: The signal rules to run; None: the built-in ones (`default_rules()`).
        partitions: Partitions to read (the same of both topics); all by default.
        stop: Set it to end a live flow.
        perp_topics: Which topics hold perpetuals records.

    Returns:
        The dataflow and its ClickHouse writer (whose `written` counts rows inserted).

    Raises:
        ValueError: A finite run of candles with quotes or tickers that follow a live
            topic (the flow would never end).
    """
    perps_start = perps_start or {}
    if isinstance(start, RunBounds) and not (
        isinstance(quotes_start, RunBounds | None)
        and isinstance(tickers_start, RunBounds | None)
        and all(isinstance(where, RunBounds) for where in perps_start.values())
    ):
        raise ValueError(
            "a finite run of candles needs the quotes', tickers' and perpetuals' run bounds"
        )
    consumer = consumer_config(bootstrap)

    def source(topic: str, where: StartAt | RunBounds) -> KafkaBatchSource:
        return KafkaBatchSource(
            consumer,
            topic,
            partitions=partitions,
            start=where,
            batch_size=settings.batch_size,
            stop=stop,
        )

    writer = scanner_writer(clickhouse, database, max_age_ms=settings.clickhouse_flush_ms)
    producer = producer_config(bootstrap)
    sinks = ScannerSinks(
        ranks=KafkaListSink(producer, ranks_topic, rank_message),
        signals=KafkaListSink(producer, signals_topic, signal_message),
        tables=ClickHouseSink(writer),
        dead_letters=KafkaListSink(producer, dead_letter_topic, dead_letter_message),
    )
    flow = build_flow(
        settings,
        source(candles_topic, start),
        None if quotes_start is None else source(quotes_topic, quotes_start),
        sinks,
        tickers=None if tickers_start is None else source(tickers_topic, tickers_start),
        perps=[source(topic, where) for topic, where in perps_start.items()],
        warm=warm,
        counters=counters,
        registry=registry,
        quotes_topic=quotes_topic,
        tickers_topic=tickers_topic,
        perp_topics=perp_topics,
    )
    return flow, writer
