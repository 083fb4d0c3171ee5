"""The perpetuals store: md.marks.v1, md.liquidations.v1, md.open_interest.v1 and md.funding.v1
-> ClickHouse ``marks_1s``, ``liquidations``, ``open_interest`` and ``funding``.

Each fetched batch of records is decoded, checked and routed by its topic in one step per
Kafka partition; `flows.sinks.perps.PerpWriter` inserts them in large batches, one per
table. Every table is a ReplacingMergeTree on the record's natural key, so what a restart
or a rerun writes again merges into the same rows (``marks_1s`` keeps the last mark of
each second by its event time).

The step also derives settled funding from the marks (`flows.perps.funding`): when a
symbol's next funding time advances, its last estimate before that time becomes a
``funding`` row of source ``stream``. Funding events arriving on md.funding.v1 (the
simulated market's, source ``sim``) are stored as they are. A record that is no valid
perpetuals record, or holds a value its column cannot keep exactly, goes to the
dead-letter topic; control records (end-of-run markers) are skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple

import msgspec
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from flows.dead_letters import dead_letter_message, record_dead_letter
from flows.perps.funding import SymbolFunding
from flows.perps.resume import FundingSeeds
from flows.perps.settings import PerpStoreSettings
from flows.sinks.clickhouse import ClickHouseSink
from flows.sinks.kafka import KafkaListSink
from flows.sinks.perps import PerpRecord, PerpWriter
from flows.sources.kafka import KafkaBatchSource, RecordBatch, StartAt
from runtime.kafka import consumer_config, producer_config
from schemas import perps, topics
from schemas.deadletter import DeadLetter
from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest
from schemas.topics import PerpTopics

logger = logging.getLogger(__name__)

STAGE = "perp_store"
"""The `stage` of every dead letter this flow writes, and their Kafka key."""

# Column limits of infra/clickhouse/012_perps.sql: Decimal(38, 8) prices, quantities and
# rates, Decimal(38, 16) values in the quote asset, DateTime64(3) up to 2299-12-31.
# ClickHouse truncates surplus decimals without a word, so such a value is rejected here.
_MAX_TIME_US = 10_413_791_999_999_999


def _too_fine(value: Decimal | None, scale: int) -> bool:
    """Whether a decimal has non-zero digits past `scale` or too many integer digits."""
    if value is None:
        return False
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "checked records hold finite decimals only"
    if exponent < -scale and any(digits[max(0, len(digits) + exponent + scale) :]):
        return True
    return value.adjusted() >= 38 - scale


def _unstorable(
    decimals: Iterable[Decimal | None], times_us: Iterable[int], scale: int = 8
) -> str | None:
    for value in decimals:
        if _too_fine(value, scale):
            return f"{value} does not fit Decimal(38, {scale})"
    for time_us in times_us:
        if time_us > _MAX_TIME_US:
            return f"time {time_us} us is past DateTime64(3)'s range (2299)"
    return None


def unstorable(record: PerpRecord) -> str | None:
    """Why a checked record cannot be stored exactly, or None when it can.

    Prices, quantities and rates hold 8 decimals, values in the quote asset 16; times end
    in 2299.
    """
    if isinstance(record, MarkPrice):
        return _unstorable(
            (record.mark_price, record.index_price, record.estimated_settle_price,
             record.funding_rate),
            (record.time_us, record.next_funding_time_us),
        )  # fmt: skip
    if isinstance(record, Liquidation):
        return _unstorable(
            (record.price, record.avg_price, record.qty, record.filled_qty,
             record.last_filled_qty),
            (record.time_us, record.event_time_us),
        ) or _unstorable((record.quote_volume,), (), 16)  # fmt: skip
    if isinstance(record, OpenInterest):
        return _unstorable((record.open_interest,), (record.time_us,)) or _unstorable(
            (record.open_interest_value,), (), 16
        )
    if isinstance(record, FundingEvent):
        return _unstorable((record.funding_rate, record.mark_price), (record.funding_time_us,))
    raise TypeError(f"not a record of the perpetuals store: {type(record).__name__}")


class Reader(NamedTuple):
    """How the records of one topic are decoded and checked."""

    decode: Callable[[bytes], Any]
    check: Callable[[Any], PerpRecord]


def readers(names: PerpTopics) -> dict[str, Reader]:
    """A reader per topic, with decoders of their own (one set per thread)."""
    return {
        names.marks: Reader(perps.mark_decoder().decode, perps.check_mark),
        names.liquidations: Reader(perps.liquidation_decoder().decode, perps.check_liquidation),
        names.open_interest: Reader(
            perps.open_interest_decoder().decode, perps.check_open_interest
        ),
        names.funding: Reader(perps.funding_decoder().decode, perps.check_funding),
    }


class PartitionFunding:
    """The funding state of the symbols of one Kafka partition, by Kafka key.

    Args:
        seeds: Where a symbol met for the first time finds its stored state; None starts
            every symbol fresh.
    """

    __slots__ = ("seeds", "symbols")

    def __init__(self, seeds: FundingSeeds | None = None) -> None:
        self.symbols: dict[str, SymbolFunding] = {}
        self.seeds = seeds

    def symbol(self, key: str) -> SymbolFunding:
        """The state of one symbol, taken from the seeds the first time."""
        found = self.symbols.get(key)
        if found is None:
            found = self.seeds.take(key) if self.seeds is not None else SymbolFunding()
            self.symbols[key] = found
        return found

    def __getstate__(self) -> dict[str, SymbolFunding]:
        # Recovery snapshots keep the symbols; the seeds are ClickHouse's, read again.
        return self.symbols

    def __setstate__(self, state: dict[str, SymbolFunding]) -> None:
        self.symbols = state
        self.seeds = None


@dataclass(frozen=True, slots=True)
class PerpRows:
    """What one batch of records produced.

    Attributes:
        records: Checked records to store, and the funding events derived from marks.
        dead_letters: Records that were undecodable, invalid or unstorable.
        read: Records that were data (every record but the control records).
        derived: Funding events derived from the marks of this batch.
    """

    records: list[PerpRecord]
    dead_letters: list[DeadLetter]
    read: int
    derived: int = 0


def perp_rows(
    records: Iterable[Any],
    by_topic: Mapping[str, Reader],
    funding: PartitionFunding,
    max_gap_us: int,
) -> PerpRows:
    """Decode, check and route a batch of Kafka records; derive funding from the marks.

    Args:
        records: Objects with the accessors of `confluent_kafka.Message` (`value()`,
            `topic()`, `headers()`, ...), e.g. a `RecordBatch`'s records.
        by_topic: The reader of each topic (`readers`).
        funding: The funding state of the partition (updated here).
        max_gap_us: See `SymbolFunding.observe`.

    Returns:
        The records to store and the dead letters of the batch (reasons `undecodable`,
        `invalid_perp`, `unstorable`); control records are skipped without a trace.
    """
    out: list[PerpRecord] = []
    dead: list[DeadLetter] = []
    is_control = topics.is_control
    read = derived = 0
    for record in records:
        headers = record.headers()
        if headers and is_control(headers):
            continue
        read += 1
        reader = by_topic[record.topic()]
        try:
            item = reader.check(reader.decode(record.value()))
        except (msgspec.DecodeError, TypeError) as exc:
            dead.append(record_dead_letter(STAGE, record, "undecodable", str(exc)))
            continue
        except perps.InvalidPerpData as exc:
            dead.append(record_dead_letter(STAGE, record, "invalid_perp", str(exc)))
            continue
        problem = unstorable(item)
        if problem is not None:
            dead.append(record_dead_letter(STAGE, record, "unstorable", problem))
            continue
        out.append(item)
        if type(item) is MarkPrice:
            event = funding.symbol(item.key).observe(item, max_gap_us)
            if event is not None:
                out.append(event)
                derived += 1
        elif type(item) is FundingEvent:
            funding.symbol(item.key).settled(item.funding_time_us)
    return PerpRows(out, dead, read, derived)


# ---------------------------------------------------------------------------------------
# Bytewax wiring


@dataclass
class PerpStoreCounters:
    """Live counts of a running perpetuals store, for progress reports (read from any thread).

    Attributes:
        records: Records read (control records aside).
        stored: Records handed to the writer, derived funding events included.
        funding_derived: Funding times settled from the marks (`flows.perps.funding`).
        dead_letters: Records rejected.
        by_topic: Records read per topic.
    """

    records: int = 0
    stored: int = 0
    funding_derived: int = 0
    dead_letters: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """The counts in a line, e.g. for a status log."""
        topics_read = ", ".join(f"{n:,} {t}" for t, n in sorted(self.by_topic.items()))
        return (
            f"{self.records:,} records ({topics_read or 'none'}), {self.funding_derived:,} "
            f"funding times settled from marks, {self.dead_letters:,} dead letters"
        )


def _part(name: str, out: PerpRows) -> list[Any] | None:
    """One part of a batch's output (`records` or `dead_letters`), None when empty."""
    return getattr(out, name) or None


def build_flow(
    settings: PerpStoreSettings,
    sources: Mapping[str, Source[tuple[str, RecordBatch]]],
    sink: Sink[tuple[str, list[PerpRecord]]],
    dead_letter_sink: Sink[tuple[str, list[DeadLetter]]],
    *,
    names: PerpTopics | None = None,
    seeds: FundingSeeds | None = None,
    counters: PerpStoreCounters | None = None,
    flow_id: str = "perp_store",
) -> Dataflow:
    """Wire the perpetuals store.

    Args:
        settings: Funding derivation rules (batching acts in the source and the writer,
            which the caller builds; `build_kafka_flow` applies it).
        sources: `(partition, RecordBatch)` items by topic (e.g.
            `flows.sources.kafka.KafkaBatchSource`), the topics of `names`; a topic left
            out is not read.
        sink: Receives `(partition, [record, ...])` items, e.g. a `ClickHouseSink` over a
            `PerpWriter`.
        dead_letter_sink: Receives `(partition, [DeadLetter, ...])` items.
        names: The topics' names, which say how each topic's records are read.
        seeds: The funding state ClickHouse holds (`FundingSeeds`); None starts empty.
        counters: Filled with live counts, for progress reports.
        flow_id: The dataflow's id (it names recovery state).

    Returns:
        The dataflow, ready for `bytewax.run` or `bytewax.testing.run_main`.
    """
    names = names if names is not None else PerpTopics()
    counters = counters if counters is not None else PerpStoreCounters()
    max_gap_us = round(settings.funding_max_gap_s * 1_000_000)
    step = {
        names.marks: "marks_in",
        names.liquidations: "liquidations_in",
        names.open_interest: "open_interest_in",
        names.funding: "funding_in",
    }
    unknown = set(sources) - set(step)
    if unknown or not sources:
        raise ValueError(f"sources must be some of {sorted(step)}, got {sorted(sources)}")
    flow = Dataflow(flow_id)
    streams = [op.input(step[topic], flow, source) for topic, source in sources.items()]
    batches = streams[0] if len(streams) == 1 else op.merge("inputs", *streams)

    def store(
        state: PartitionFunding | None, batch: RecordBatch
    ) -> tuple[PartitionFunding, list[PerpRows]]:
        # State per partition number: a symbol's records share it on every topic.
        state = PartitionFunding(seeds) if state is None else state
        if not batch.records:
            return state, []
        # Readers per batch: decoders are not shared between worker threads.
        out = perp_rows(batch.records, readers(names), state, max_gap_us)
        counters.records += out.read
        counters.stored += len(out.records)
        counters.funding_derived += out.derived
        counters.dead_letters += len(out.dead_letters)
        topic = batch.records[0].topic()
        counters.by_topic[topic] = counters.by_topic.get(topic, 0) + out.read
        return state, [out]

    outputs = op.stateful_flat_map("perp_rows", batches, store)
    # Each batch's output is split between the two sinks; an empty list is not sent.
    targets: tuple[tuple[str, str, Sink[tuple[str, list[Any]]]], ...] = (
        ("records_to_clickhouse", "records", sink),
        ("dead_letters_to_kafka", "dead_letters", dead_letter_sink),
    )
    for step_id, part, target in targets:
        op.output(
            step_id, op.filter_map_value(f"{step_id}_only", outputs, partial(_part, part)), target
        )
    return flow


def build_kafka_flow(
    settings: PerpStoreSettings,
    *,
    bootstrap: str,
    start: StartAt = "end",
    names: PerpTopics | None = None,
    database: str,
    clickhouse: Callable[[], Any],
    dead_letter_topic: str = topics.DEADLETTER,
    resume_from_store: bool = True,
    counters: PerpStoreCounters | None = None,
    stop: threading.Event | None = None,
) -> tuple[Dataflow, PerpWriter]:
    """The production wiring: the four perpetuals topics in; their tables and dead letters out.

    Args:
        settings: Batching and funding derivation rules.
        bootstrap: Kafka bootstrap servers.
        start: Where to start reading every topic (a live flow), "beginning" or "end".
        names: The topics to read.
        database: Database holding the perpetuals tables.
        clickhouse: Returns the ClickHouse client to read the funding state and insert
            with (called on first use).
        dead_letter_topic: Topic to write rejected messages to.
        resume_from_store: Rebuild the funding state from ClickHouse (`FundingSeeds`).
        counters: Filled with live counts, for progress reports.
        stop: Set it to end a live flow.

    Returns:
        The dataflow and its ClickHouse writer (whose `written` counts rows by record type).
    """
    names = names if names is not None else PerpTopics()
    consumer = consumer_config(bootstrap)
    sources = {
        topic: KafkaBatchSource(
            consumer, topic, start=start, batch_size=settings.batch_size, stop=stop
        )
        for topic in (names.marks, names.liquidations, names.open_interest, names.funding)
    }
    writer = PerpWriter(
        clickhouse,
        database,
        max_rows=settings.clickhouse_max_rows,
        max_age_ms=settings.clickhouse_flush_ms,
    )
    seeds = (
        FundingSeeds(clickhouse, database, settings.resume_lookback_s)
        if resume_from_store
        else None
    )
    flow = build_flow(
        settings,
        sources,
        ClickHouseSink(writer),
        KafkaListSink(producer_config(bootstrap), dead_letter_topic, dead_letter_message),
        names=names,
        seeds=seeds,
        counters=counters,
    )
    return flow, writer
