"""The paper engine's start: symbols and the event log from ClickHouse, published seqs from Kafka.

ClickHouse is the durable record (the embedded broker forgets everything on restart, and
Kafka retention is finite), so every account comes back as the fold of its
``paper_events`` rows. The engine writes an event to ``paper_events`` before it publishes
it, so two gaps are closed here at start:

- events stored but never published (a crash between the insert and the publish):
  `published_seqs` reads the newest seq per account on ``tr.events.v1`` and the engine
  publishes the stored events after it (consumers skip a seq they have seen);
- events stored but without their ``paper_orders`` / ``paper_fills`` / ``paper_ledger``
  rows (a crash between those inserts): `underived` returns each account's events after
  its last ledger movement, whose rows the engine writes again (idempotent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaException, TopicPartition

from schemas.perps import MarkPrice
from schemas.symbols import SymbolInfo
from schemas.trading import AccountEvent, event_decoder

logger = logging.getLogger(__name__)

FILTER_COLUMNS = ("min_qty", "max_qty", "market_max_qty", "min_notional")
"""``symbols`` columns of the exchange's quantity and notional filters (015_symbol_filters.sql);
a store without them gives None (no filter)."""

_LAST_MARKS = """
SELECT exchange, symbol, toUnixTimestamp64Micro(max(time)),
       argMax(mark_price, time), argMax(index_price, time),
       argMax(estimated_settle_price, time), argMax(funding_rate, time),
       toUnixTimestamp64Micro(argMax(next_funding_time, time))
FROM {db:Identifier}.marks_1s
WHERE market = 'usdm' AND (exchange, symbol) IN {held:Array(Tuple(String, String))}
  AND time >= fromUnixTimestamp64Micro({since:Int64})
  AND time <= fromUnixTimestamp64Micro({until:Int64})
GROUP BY exchange, symbol
ORDER BY exchange, symbol
"""

_NO_END_US = 4_102_444_800_000_000
"""2100-01-01 in µs: no upper bound on a market time."""

_SYMBOL_COLUMNS = """
SELECT name FROM system.columns
WHERE database = {db:String} AND table = 'symbols'
"""

_SYMBOLS = """
SELECT exchange, market, symbol, base_asset, quote_asset, status, kind, tick_size,
       step_size, toUnixTimestamp64Milli(updated), __FILTERS__
FROM {db:Identifier}.symbols FINAL
ORDER BY exchange, market, symbol
"""

_EVENTS = """
SELECT payload FROM {db:Identifier}.paper_events FINAL
ORDER BY account_id, seq
"""

_LAST_SEQS = """
SELECT account_id, max(seq) FROM {db:Identifier}.paper_events GROUP BY account_id
"""

_AFTER_LEDGER = """
SELECT e.payload
FROM {db:Identifier}.paper_events AS e FINAL
LEFT JOIN (
    SELECT account_id, max(seq) AS last
    FROM {db:Identifier}.paper_ledger
    WHERE kind != 'valuation'
    GROUP BY account_id
) AS l ON l.account_id = e.account_id
WHERE e.seq > l.last
ORDER BY e.account_id, e.seq
"""


def load_symbols(client: Any, database: str) -> list[SymbolInfo]:
    """Every symbol of the ``symbols`` table, its latest description, with the filter
    columns when the store has them.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``symbols``.
    """
    present = {
        row[0] for row in client.query(_SYMBOL_COLUMNS, parameters={"db": database}).result_rows
    }
    filters = [c for c in FILTER_COLUMNS if c in present]
    # Only names of FILTER_COLUMNS the store has go into the statement (no outside text);
    # absent ones are None below.
    sql = _SYMBOLS.replace("__FILTERS__", ", ".join(filters) if filters else "NULL")
    out = []
    for row in client.query(sql, parameters={"db": database}).result_rows:
        exchange, market, symbol, base, quote, status, kind, tick, step, updated_ms = row[:10]
        values: dict[str, Decimal | None] = dict.fromkeys(FILTER_COLUMNS)
        values.update(zip(filters, row[10:], strict=False))
        info = SymbolInfo(
            exchange, market, symbol, base, quote, status, kind, tick, step, int(updated_ms),
            **values,
        )  # fmt: skip
        out.append(info)
    return out


def load_last_marks(
    client: Any,
    database: str,
    held: Iterable[tuple[str, str]],
    since_us: int,
    until_us: int = _NO_END_US,
) -> list[MarkPrice]:
    """The newest stored mark (``marks_1s``) of each held USDⓈ-M symbol from `since_us`
    to `until_us`: what the engine saw last before it stopped (at its market time), and
    the funding time it announced.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``marks_1s``.
        held: (exchange, symbol) of the USDⓈ-M positions the restored accounts hold.
        since_us: Marks older than this are not read (funding comes at most every 8 h).
        until_us: Marks after this (the engine's market time) are not read: the catch-up
            replays them.
    """
    pairs = sorted(set(held))
    if not pairs:
        return []
    result = client.query(
        _LAST_MARKS,
        parameters={"db": database, "held": pairs, "since": since_us, "until": until_us},
    )
    return [stored_mark(*row) for row in result.result_rows]


def stored_mark(
    exchange: str,
    symbol: str,
    time_us: int,
    mark: Decimal,
    index: Decimal,
    settle: Decimal,
    rate: Decimal | None,
    next_funding_us: int | None,
) -> MarkPrice:
    """A USDⓈ-M mark as a ``marks_1s`` row gives it (exchange, symbol, time in µs, mark,
    index and settle prices, funding rate, next funding time in µs or NULL)."""
    return MarkPrice(
        exchange=exchange, market="usdm", symbol=symbol, time_us=time_us, mark_price=mark,
        index_price=index, estimated_settle_price=settle,
        next_funding_time_us=next_funding_us or 0, received_us=time_us, funding_rate=rate,
    )  # fmt: skip


def load_events(client: Any, database: str) -> Iterator[AccountEvent]:
    """Every stored account event, per account in seq order (streamed in blocks).

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``paper_events``.
    """
    decode = event_decoder().decode
    with client.query_row_block_stream(_EVENTS, parameters={"db": database}) as blocks:
        for block in blocks:
            for (payload,) in block:
                yield decode(payload)


def stored_seqs(client: Any, database: str) -> dict[str, int]:
    """The highest seq ``paper_events`` holds per account.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``paper_events``.
    """
    rows = client.query(_LAST_SEQS, parameters={"db": database}).result_rows
    return {account_id: int(seq) for account_id, seq in rows}


def underived(client: Any, database: str) -> list[AccountEvent]:
    """The stored events after each account's last ledger movement (every event of an
    account without one): those whose derived rows a crash may have cut short.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``paper_events`` and ``paper_ledger``.
    """
    decode = event_decoder().decode
    rows = client.query(_AFTER_LEDGER, parameters={"db": database}).result_rows
    return [decode(payload) for (payload,) in rows]


class _Seq(msgspec.Struct):
    seq: int


def published_seqs(config: dict[str, Any], topic: str, timeout_s: float = 30.0) -> dict[str, int]:
    """The newest seq published per account on ``tr.events.v1``, read from what the topic
    holds now (to its high watermark).

    Args:
        config: confluent-kafka consumer configuration (`runtime.kafka.consumer_config`).
        topic: The events topic.
        timeout_s: Most seconds to spend reading.

    Returns:
        Account id → highest seq seen.

    Raises:
        KafkaException: The topic does not exist or cannot be read.
    """
    consumer = Consumer(config)
    newest: dict[str, int] = {}
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise KafkaException(f"topic {topic!r} not found")
        ends: dict[int, int] = {}
        starts = []
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            if high > low:
                ends[partition] = high
                starts.append(TopicPartition(topic, partition, low))
        if not starts:
            return newest
        consumer.assign(starts)
        decode = msgspec.json.Decoder(_Seq).decode
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(5_000, 0.2):
                if message.error() is not None:  # end-of-partition events are off
                    raise KafkaException(message.error())
                partition = message.partition()
                offset = message.offset()
                key = message.key()
                if key is not None:
                    try:
                        seq = decode(message.value() or b"").seq
                    except msgspec.DecodeError:
                        seq = 0
                    account = key.decode()
                    if seq > newest.get(account, 0):
                        newest[account] = seq
                if partition in ends and offset is not None and offset + 1 >= ends[partition]:
                    del ends[partition]
        if ends:
            logger.warning(
                "paper engine: %s not read to its end in %.0f s; events may be published again",
                topic,
                timeout_s,
            )
    finally:
        consumer.close()
    return newest
