"""1s and 1m candles from normalised trades: md.trades.v1 -> candles_1s/1m + md.candles.v1.

The kline rules live in `flows.candles.engine`; this module adapts them to Bytewax. Each
Kafka partition is one keyed state (a `PartitionCandles` holding all of its symbols),
fed whole fetched batches, so the per-item cost of the dataflow is paid per batch, not
per trade, and a symbol's trades stay in order in one state.

A live flow that starts without a Bytewax snapshot resumes from ClickHouse
(`flows.candles.resume.StoreResume`): every symbol's series go on where the stored
candles end and the minute it had open rolls up its stored seconds with the new ones, so
a 1m candle equals the roll-up of its stored 1s candles across a crash too.

Each trade counts once: the engine drops a trade whose raw ids it has folded already (a
copy delivered again: Kafka is at least once), including those of the stored candles it
resumed from. `FlowCounters.duplicates` counts them, and each partition logs them at INFO
every `DUPLICATES_LOG_EVERY_S` while they come and once more when its run ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Context, localcontext
from typing import Any

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from flows.candles.engine import EngineStats, PartitionCandles
from flows.candles.resume import PartitionResume, StoreResume
from flows.candles.settings import CandleFlowSettings
from flows.count_log import CountLog
from flows.dead_letters import dead_letter_message, record_dead_letter
from flows.sinks.clickhouse import CandleWriter, ClickHouseSink
from flows.sinks.kafka import KafkaListSink
from flows.sources.kafka import KafkaBatchSource, RecordBatch, RunBounds, StartAt
from runtime.kafka import consumer_config, partition_count, producer_config
from schemas import topics
from schemas.candles import Candle, encode_candle
from schemas.deadletter import DeadLetter
from schemas.trades import trade_decoder

logger = logging.getLogger(__name__)

STAGE = "candles"

DUPLICATES_LOG_EVERY_S = 60.0
"""A partition that drops duplicate trades says so at INFO at most this often."""

# Sums of 8- and 16-decimal values never come near 60 significant digits, so no
# arithmetic in this flow ever rounds.
_EXACT = Context(prec=60)


@dataclass
class FlowCounters:
    """Live counts of a running candle flow, for progress reports (read from any thread)."""

    trades: int = 0
    dead_letters: int = 0
    candles: int = 0
    revisions: int = 0
    partitions_done: int = 0
    engines: list[EngineStats] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """Trades dropped because they had been folded already (delivered twice)."""
        return sum(stats.duplicates for stats in self.engines)


@dataclass(frozen=True, slots=True)
class CandleOutput:
    """What one batch of trades produced."""

    candles: list[Candle]
    dead_letters: list[DeadLetter]


class CandleLogic(StatefulLogic[RecordBatch, CandleOutput, PartitionCandles]):
    """Bytewax adaptor: record batches of one partition in, candles out."""

    def __init__(
        self,
        settings: CandleFlowSettings,
        resume: PartitionCandles | None,
        counters: FlowCounters,
        store: StoreResume | None = None,
    ) -> None:
        self._settings = settings
        self._engine = resume or PartitionCandles(settings.lateness_ms, settings.horizon_ms)
        # Without a snapshot, the stored state of this partition's symbols is taken in at
        # the first item, which names the partition.
        self._store = store if resume is None else None
        self._decode = trade_decoder().decode
        self._counters = counters
        counters.engines.append(self._engine.stats)
        self._last_trade_wall_ms: int | None = None
        self._partition: int | None = None
        self._ended = False
        self._duplicates_log = CountLog()
        self._duplicates_log.said_all(self._engine.stats.duplicates)

    def on_item(self, value: RecordBatch) -> tuple[Iterable[CandleOutput], bool]:
        engine = self._engine
        candles: list[Candle] = []
        dead: list[DeadLetter] = []
        self._partition = value.partition
        if self._store is not None:
            self._resume(self._store.take(value.partition), candles)
            self._store = None
        if value.records:
            self._counters.trades += len(value.records)

            def reject(record: Any, reason: str, detail: str) -> None:
                # A control record (an end-of-run marker) is not a trade and not an error.
                if reason != "undecodable" or not topics.is_control(record.headers()):
                    dead.append(record_dead_letter(STAGE, record, reason, detail))

            with localcontext(_EXACT):
                engine.fold(value.records, self._decode, candles, reject)
                engine.advance(candles)
            self._last_trade_wall_ms = value.wall_ms
        elif value.caught_up and not value.end:
            self._maybe_idle(value.wall_ms, candles)
        if value.end:
            with localcontext(_EXACT):
                engine.flush(candles)
            self._counters.partitions_done += 1
            self._log_end()
        else:
            self._log_duplicates()
        return self._emit(candles, dead), StatefulLogic.RETAIN

    def _log_duplicates(self) -> None:
        """At most every `DUPLICATES_LOG_EVERY_S`: the duplicates dropped since the last line."""
        stats = self._engine.stats
        due = self._duplicates_log.due(stats.duplicates, DUPLICATES_LOG_EVERY_S)
        if due is None:
            return
        grown, seconds = due
        logger.info(
            "candle flow, partition %s: %d duplicate trades dropped in the last %.0f s "
            "(%d since start; %d trades folded)",
            self._partition,
            grown,
            seconds,
            stats.duplicates,
            stats.trades,
        )

    def _log_end(self) -> None:
        self._ended = True
        stats = self._engine.stats
        if not (stats.trades or stats.duplicates or stats.overlapping or stats.too_late):
            return  # a partition that had no trade has nothing to say
        logger.info(
            "candle flow, partition %s done: %d trades folded, %d duplicate trades dropped, "
            "%d overlapping and %d too late sent to the dead letters",
            self._partition,
            stats.trades,
            stats.duplicates,
            stats.overlapping,
            stats.too_late,
        )
        self._duplicates_log.said_all(stats.duplicates)

    def _resume(self, stored: PartitionResume, candles: list[Candle]) -> None:
        engine = self._engine
        engine.resume(stored.symbols)
        with localcontext(_EXACT):
            for key, trade in stored.trades:
                engine.add(key, trade, candles)
        self._counters.trades += len(stored.trades)

    def _maybe_idle(self, wall_ms: int, candles: list[Candle]) -> None:
        idle = self._settings.idle_close_ms
        last = self._last_trade_wall_ms
        if idle is None or last is None:
            return
        quiet = wall_ms - last
        if quiet >= idle:
            with localcontext(_EXACT):
                self._engine.advance_idle(quiet, candles)

    def _emit(self, candles: list[Candle], dead: list[DeadLetter]) -> list[CandleOutput]:
        if not candles and not dead:
            return []
        counters = self._counters
        counters.candles += len(candles)
        counters.dead_letters += len(dead)
        return [CandleOutput(candles, dead)]

    def on_eof(self) -> tuple[Iterable[CandleOutput], bool]:
        candles: list[Candle] = []
        with localcontext(_EXACT):
            self._engine.flush(candles)
        if not self._ended:  # a live flow stopping: its partition's summary, once
            self._log_end()
        return self._emit(candles, []), StatefulLogic.RETAIN

    def notify_at(self) -> None:
        return None

    def snapshot(self) -> PartitionCandles:
        return self._engine


def candle_message(candle: Candle) -> tuple[str, bytes]:
    """Kafka key and value of a candle."""
    return candle.key, encode_candle(candle)


def build_flow(
    settings: CandleFlowSettings,
    source: Source[tuple[str, RecordBatch]],
    candle_sinks: Mapping[str, Sink[tuple[str, list[Candle]]]],
    dead_letter_sink: Sink[tuple[str, list[DeadLetter]]],
    counters: FlowCounters | None = None,
    flow_id: str = "candles",
    store: StoreResume | None = None,
) -> Dataflow:
    """Wire the candle flow.

    Args:
        settings: Time and batching rules.
        source: `(partition, RecordBatch)` items, e.g. `flows.sources.kafka.KafkaBatchSource`.
        candle_sinks: By name (it names the output step `candles_to_<name>`); each
            receives `(partition, [Candle, ...])` items.
        dead_letter_sink: Receives `(partition, [DeadLetter, ...])` items.
        counters: Filled with live counts, for progress reports.
        flow_id: The dataflow's id (it names recovery state).
        store: Where a partition without a snapshot takes its symbols' state from.

    Returns:
        The dataflow, ready for `bytewax.run` or `bytewax.testing.run_main`.
    """
    counters = counters if counters is not None else FlowCounters()
    flow = Dataflow(flow_id)
    batches = op.input("trades_in", flow, source)

    def builder(resume: PartitionCandles | None) -> CandleLogic:
        return CandleLogic(settings, resume, counters, store)

    outputs = op.stateful("candles", batches, builder)
    candles = op.filter_map_value("candles_only", outputs, lambda out: out.candles or None)
    for name, sink in candle_sinks.items():
        op.output(f"candles_to_{name}", candles, sink)
    dead = op.filter_map_value("dead_letters_only", outputs, lambda out: out.dead_letters or None)
    op.output("dead_letters_to_kafka", dead, dead_letter_sink)
    return flow


def build_kafka_flow(
    settings: CandleFlowSettings,
    *,
    bootstrap: str,
    clickhouse: Callable[[], Any],
    database: str,
    start: StartAt | RunBounds = "end",
    trades_topic: str = topics.TRADES,
    candles_topic: str = topics.CANDLES,
    dead_letter_topic: str = topics.DEADLETTER,
    counters: FlowCounters | None = None,
    stop: threading.Event | None = None,
    resume_from_store: bool = False,
) -> tuple[Dataflow, CandleWriter]:
    """The production wiring: Kafka trades in; ClickHouse, candle topic and dead letters out.

    Args:
        settings: Time and batching rules.
        bootstrap: Kafka bootstrap servers.
        clickhouse: Returns the ClickHouse client to insert with (called on first insert).
        database: Database holding candles_1s and candles_1m.
        start: Where to start reading, or a finite run's bounds.
        trades_topic: Topic to read trades from.
        candles_topic: Topic to write candles to.
        dead_letter_topic: Topic to write rejected messages to.
        counters: Filled with live counts, for progress reports.
        stop: Set it to end a live flow (open windows are flushed on the way out).
        resume_from_store: Without a Bytewax snapshot, resume each symbol from the stored
            candles (see `StoreResume`); only where the topic starts about where they end.

    Returns:
        The dataflow and its ClickHouse writer (whose `written` counts rows inserted).
    """
    source = KafkaBatchSource(
        consumer_config(bootstrap),
        trades_topic,
        start=start,
        batch_size=settings.batch_size,
        stop=stop,
    )
    writer = CandleWriter(clickhouse, database, max_age_ms=settings.clickhouse_flush_ms)
    producer = producer_config(bootstrap)
    flow = build_flow(
        settings,
        source,
        {
            "clickhouse": ClickHouseSink(writer),
            "kafka": KafkaListSink(producer, candles_topic, candle_message),
        },
        KafkaListSink(producer, dead_letter_topic, dead_letter_message),
        counters,
        store=StoreResume(
            clickhouse,
            database,
            settings.horizon_ms,
            lambda: partition_count(bootstrap, trades_topic),
        )
        if resume_from_store
        else None,
    )
    return flow, writer
