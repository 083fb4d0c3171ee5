"""The trade store: md.trades.v1 -> the ClickHouse `trades` table, one row per exchange trade.

Trades need no state (each is its own row), so every fetched batch of records is decoded,
checked and encoded to TabSeparated lines in one stateless step, and the lines are
inserted in large batches by `flows.sinks.clickhouse.TsvWriter`. A record that is not a
valid trade, or that the table's column types cannot hold exactly, goes to the
dead-letter topic; control records (end-of-run markers) are skipped.

Each trade is written once. Kafka delivers at least once, so the step keeps, per Kafka
partition, the raw trade ids of each symbol it has written (`flows.candles.trade_ids.TradeIds`,
bounded per symbol) and skips a trade delivered again (counted in
`TradeStoreCounters.duplicates`); an aggTrade that only partly overlaps trades written
already goes to the dead letters (`overlapping_trade`). What a restarted store writes
again, or a second replay of the same files, collapses in `trades` itself: a
ReplacingMergeTree on (exchange, market, symbol, trade_id), read with FINAL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

import msgspec
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink
from pydantic import Field

from flows.batching import BatchSettings
from flows.candles.trade_ids import Seen, TradeIds, raw_ids
from flows.count_log import CountLog
from flows.dead_letters import dead_letter_message, record_dead_letter
from flows.errors import FlowError
from flows.sinks.clickhouse import NULL, ClickHouseSink, TsvTable, TsvWriter, tsv_escape
from flows.sinks.kafka import KafkaListSink
from flows.sources.kafka import KafkaBatchSource, RecordBatch, RunBounds, StartAt
from runtime.kafka import consumer_config, producer_config
from schemas import topics
from schemas.deadletter import DeadLetter
from schemas.trades import InvalidTrade, Trade, check_trade, trade_decoder

logger = logging.getLogger(__name__)

STAGE = "trade_store"
"""The `stage` of every dead letter this flow writes, and their Kafka key."""

DUPLICATES_LOG_EVERY_S = 60.0
"""While duplicate trades come, the store says so at INFO at most this often."""

TABLE = "trades"

TRADE_COLUMNS = (
    "exchange",
    "market",
    "symbol",
    "trade_id",
    "price",
    "qty",
    "quote_qty",
    "time",
    "buyer_is_maker",
    "first_trade_id",
    "last_trade_id",
)
"""Columns we write, in `trade_row` order; `ingested_at` takes its default."""

# Column limits of infra/clickhouse/001_trades.sql: Decimal(38, 8) price and qty,
# Decimal(38, 16) quote_qty, Int64 ids, DateTime64(6) up to 2299-12-31 23:59:59.999999.
# ClickHouse truncates surplus decimals and wraps out-of-range integers without a word,
# so a value outside them is rejected here rather than stored wrong.
_PRICE_SCALE, _PRICE_DIGITS = 8, 30
_QUOTE_SCALE, _QUOTE_DIGITS = 16, 22
_INT64_MAX = 2**63 - 1
_MAX_TIME_US = 10_413_791_999_999_999

# price and qty have at most 38 significant digits once checked, so their product has at
# most 76: this context never rounds it.
_exact_multiply = Context(prec=76).multiply


class Unstorable(FlowError, ValueError):
    """A valid trade that the `trades` table cannot hold exactly."""


def _decimal_text(value: Decimal, scale: int, integer_digits: int, name: str) -> str:
    text = str(value)
    if "E" in text:  # str() writes very small and very large values in exponent form
        text = format(value, "f")
    dot = text.find(".")
    if dot >= 0 and len(text) - dot - 1 > scale and text[dot + 1 + scale :].strip("0"):
        raise Unstorable(f"{name} {value} has more than {scale} decimals")
    if value.adjusted() >= integer_digits:
        raise Unstorable(f"{name} {value} has more than {integer_digits} integer digits")
    return text


def _nullable_int64(value: int | None, name: str) -> int | str:
    if value is None:
        return NULL
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise Unstorable(f"{name} {value} does not fit Int64")
    return value


def trade_row(trade: Trade, escaped: dict[str, str] | None = None) -> str:
    """A trade as one TabSeparated line in `TRADE_COLUMNS` order.

    `quote_qty` is `price * qty`, exact; `time` is `time_us`, which DateTime64(6) reads
    as its ticks; a plain trade's first and last trade ids are NULL.

    Args:
        trade: A trade that passed `schemas.trades.check_trade`.
        escaped: Cache of escaped exchange and symbol names, shared by calls on one batch.

    Returns:
        The line, ending in a newline.

    Raises:
        Unstorable: A value is outside its column's type: more decimals or integer digits
            than the column holds, an id beyond Int64, a time beyond DateTime64(6).
    """
    if escaped is None:
        escaped = {}
    exchange = escaped.get(trade.exchange)
    if exchange is None:
        exchange = escaped[trade.exchange] = tsv_escape(trade.exchange)
    symbol = escaped.get(trade.symbol)
    if symbol is None:
        symbol = escaped[trade.symbol] = tsv_escape(trade.symbol)
    price = _decimal_text(trade.price, _PRICE_SCALE, _PRICE_DIGITS, "price")
    qty = _decimal_text(trade.qty, _PRICE_SCALE, _PRICE_DIGITS, "qty")
    quote = _decimal_text(
        _exact_multiply(trade.price, trade.qty), _QUOTE_SCALE, _QUOTE_DIGITS, "quote_qty"
    )
    if not -_INT64_MAX - 1 <= trade.trade_id <= _INT64_MAX:
        raise Unstorable(f"trade_id {trade.trade_id} does not fit Int64")
    if not 0 <= trade.time_us <= _MAX_TIME_US:
        raise Unstorable(f"time_us {trade.time_us} is outside DateTime64(6) (1970..2299)")
    first: int | str = NULL
    last: int | str = NULL
    if trade.first_trade_id is not None or trade.last_trade_id is not None:
        first = _nullable_int64(trade.first_trade_id, "first_trade_id")
        last = _nullable_int64(trade.last_trade_id, "last_trade_id")
    return (
        f"{exchange}\t{trade.market}\t{symbol}\t{trade.trade_id}\t"
        f"{price}\t{qty}\t{quote}\t{trade.time_us}\t"
        f"{'true' if trade.buyer_is_maker else 'false'}\t{first}\t{last}\n"
    )


def encode_rows(rows: list[str]) -> bytes:
    """Lines made by `trade_row` as the body of one insert."""
    return "".join(rows).encode()


@dataclass(frozen=True, slots=True)
class TradeRows:
    """What one batch of records produced.

    Attributes:
        rows: Lines for the `trades` table (see `trade_row`).
        dead_letters: Records that were no trade, an invalid one, an unstorable one, or
            an aggTrade partly overlapping trades written already.
        trades: Records that were data (every record but the control records).
        duplicates: Trades skipped because they had been written already.
    """

    rows: list[str]
    dead_letters: list[DeadLetter]
    trades: int
    duplicates: int = 0


def trade_rows(
    records: Iterable[Any],
    decode: Callable[[bytes], Trade],
    written: dict[Any, TradeIds] | None = None,
) -> TradeRows:
    """Decode, check and encode a batch of Kafka records: the hot path of the trade store.

    Args:
        records: Objects with the accessors of `confluent_kafka.Message` (`value()`,
            `key()`, `headers()`, ...), e.g. a `RecordBatch`'s records.
        decode: Turns a value into a `Trade`; raises `msgspec.DecodeError` or `TypeError`
            on a bad one.
        written: By Kafka key, the raw trade ids written already (updated here); a trade
            all of whose ids are in it is skipped as a duplicate. None: no such check.

    Returns:
        The rows and dead letters of the batch (reasons `undecodable`, `invalid_trade`,
        `unstorable`, `overlapping_trade`); control records are skipped without a trace.
    """
    rows: list[str] = []
    dead: list[DeadLetter] = []
    escaped: dict[str, str] = {}
    is_control = topics.is_control
    trades = 0
    duplicates = 0
    for record in records:
        headers = record.headers()
        if headers and is_control(headers):
            continue
        trades += 1
        try:
            trade = check_trade(decode(record.value()))
            row = trade_row(trade, escaped)
        except (msgspec.DecodeError, TypeError) as exc:
            dead.append(record_dead_letter(STAGE, record, "undecodable", str(exc)))
            continue
        except InvalidTrade as exc:
            dead.append(record_dead_letter(STAGE, record, "invalid_trade", str(exc)))
            continue
        except Unstorable as exc:
            dead.append(record_dead_letter(STAGE, record, "unstorable", str(exc)))
            continue
        if written is not None:
            ids = written.get(record.key())
            if ids is None:
                ids = written[record.key()] = TradeIds()
            first, last = raw_ids(trade.trade_id, trade.first_trade_id, trade.last_trade_id)
            seen = ids.take(first, last)
            if seen is Seen.DUPLICATE:
                duplicates += 1
                continue
            if seen is Seen.OVERLAP:
                dead.append(
                    record_dead_letter(
                        STAGE,
                        record,
                        "overlapping_trade",
                        f"raw trade ids {first}..{last} are partly in trades written already",
                    )
                )
                continue
        rows.append(row)
    return TradeRows(rows, dead, trades, duplicates)


# ---------------------------------------------------------------------------------------
# Bytewax wiring


class PartitionWritten:
    """The trade store's state of one partition: each symbol's written raw trade ids (by
    Kafka key), and what it wrote and skipped."""

    __slots__ = ("duplicates", "ids", "rows")

    def __init__(self) -> None:
        self.ids: dict[Any, TradeIds] = {}
        self.rows = 0
        self.duplicates = 0


class TradeStoreSettings(BatchSettings):
    """How the trade store batches its reads and inserts."""

    clickhouse_max_rows: int = Field(default=200_000, ge=1)
    """Insert as soon as this many rows are buffered."""


@dataclass
class TradeStoreCounters:
    """Live counts of a running trade store, for progress reports (read from any thread)."""

    trades: int = 0
    rows: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    """Trades not written again because they had been (delivered twice)."""
    partitions_done: int = 0


def build_flow(
    settings: TradeStoreSettings,
    source: Source[tuple[str, RecordBatch]],
    sink: Sink[tuple[str, list[str]]],
    dead_letter_sink: Sink[tuple[str, list[DeadLetter]]],
    counters: TradeStoreCounters | None = None,
    flow_id: str = "trade_store",
) -> Dataflow:
    """Wire the trade store.

    Args:
        settings: Batching rules (they act in the source and the writer, which the
            caller builds; `build_kafka_flow` applies them).
        source: `(partition, RecordBatch)` items, e.g. `flows.sources.kafka.KafkaBatchSource`.
        sink: Receives `(partition, [line, ...])` items of `trade_row` lines, e.g. a
            `ClickHouseSink` over `trade_writer`.
        dead_letter_sink: Receives `(partition, [DeadLetter, ...])` items.
        counters: Filled with live counts, for progress reports.
        flow_id: The dataflow's id (it names recovery state).

    Returns:
        The dataflow, ready for `bytewax.run` or `bytewax.testing.run_main`.
    """
    del settings  # nothing in the dataflow itself depends on them
    counters = counters if counters is not None else TradeStoreCounters()
    flow = Dataflow(flow_id)
    duplicates_log = CountLog()

    def log_duplicates() -> None:
        due = duplicates_log.due(counters.duplicates, DUPLICATES_LOG_EVERY_S)
        if due is not None:
            logger.info(
                "trade store: %d duplicate trades skipped in the last %.0f s (%d since start; "
                "%d trades written)",
                *due,
                counters.duplicates,
                counters.rows,
            )

    batches = op.input("trades_in", flow, source)

    def store(
        written: PartitionWritten | None, batch: RecordBatch
    ) -> tuple[PartitionWritten, list[TradeRows]]:
        # State per partition (the stream is keyed by it).
        written = PartitionWritten() if written is None else written
        outputs: list[TradeRows] = []
        if batch.records:
            # A decoder per batch: building one costs under a microsecond, and decoders
            # are not shared between the worker threads that may run this step.
            out = trade_rows(batch.records, trade_decoder().decode, written.ids)
            counters.trades += out.trades
            counters.rows += len(out.rows)
            counters.dead_letters += len(out.dead_letters)
            counters.duplicates += out.duplicates
            written.rows += len(out.rows)
            written.duplicates += out.duplicates
            outputs.append(out)
            log_duplicates()
        if batch.end:
            counters.partitions_done += 1
            if written.rows or written.duplicates:
                logger.info(
                    "trade store, partition %s done: %d trades written, %d duplicate trades "
                    "skipped",
                    batch.partition,
                    written.rows,
                    written.duplicates,
                )
        return written, outputs

    outputs = op.stateful_flat_map("trade_rows", batches, store)
    rows = op.filter_map_value("rows_only", outputs, lambda out: out.rows or None)
    op.output("rows_to_clickhouse", rows, sink)
    dead = op.filter_map_value("dead_letters_only", outputs, lambda out: out.dead_letters or None)
    op.output("dead_letters_to_kafka", dead, dead_letter_sink)
    return flow


def trade_writer(
    client_factory: Callable[[], Any],
    database: str,
    *,
    max_rows: int = 200_000,
    max_age_ms: int = 1_000,
) -> TsvWriter[str]:
    """A writer of `trade_row` lines to `<database>.trades`; `written["trades"]` counts them.

    Args:
        client_factory: Returns the clickhouse-connect client to insert with.
        database: Database holding the `trades` table.
        max_rows: Insert when this many rows are buffered.
        max_age_ms: Insert when the oldest buffered row is this old.
    """
    return TsvWriter(
        client_factory,
        database,
        {TABLE: TsvTable(TABLE, TRADE_COLUMNS, encode_rows)},
        max_rows=max_rows,
        max_age_ms=max_age_ms,
    )


def build_kafka_flow(
    settings: TradeStoreSettings,
    *,
    bootstrap: str,
    clickhouse: Callable[[], Any],
    database: str,
    start: StartAt | RunBounds = "end",
    trades_topic: str = topics.TRADES,
    dead_letter_topic: str = topics.DEADLETTER,
    counters: TradeStoreCounters | None = None,
    stop: threading.Event | None = None,
) -> tuple[Dataflow, TsvWriter[str]]:
    """The production wiring: Kafka trades in; the `trades` table and dead letters out.

    Args:
        settings: Batching rules.
        bootstrap: Kafka bootstrap servers.
        clickhouse: Returns the ClickHouse client to insert with (called on first insert).
        database: Database holding the `trades` table.
        start: Where to start reading, or a finite run's bounds.
        trades_topic: Topic to read trades from.
        dead_letter_topic: Topic to write rejected messages to.
        counters: Filled with live counts, for progress reports.
        stop: Set it to end a live flow.

    Returns:
        The dataflow and its ClickHouse writer (whose `written["trades"]` counts rows
        inserted).
    """
    source = KafkaBatchSource(
        consumer_config(bootstrap),
        trades_topic,
        start=start,
        batch_size=settings.batch_size,
        stop=stop,
    )
    writer = trade_writer(
        clickhouse,
        database,
        max_rows=settings.clickhouse_max_rows,
        max_age_ms=settings.clickhouse_flush_ms,
    )
    flow = build_flow(
        settings,
        source,
        ClickHouseSink(writer),
        KafkaListSink(producer_config(bootstrap), dead_letter_topic, dead_letter_message),
        counters,
    )
    return flow, writer
