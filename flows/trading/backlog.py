"""Where a start's catch-up reads the market the paper engine missed: the topics while
they hold it, else ClickHouse (``trades``, ``marks_1s``), the durable record; and where it
begins, the engine's stored market time (``paper_clock``). `flows.trading.catchup` says
how the two sources are joined and the records replayed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaException, TopicPartition

from flows.trading.resume import stored_mark
from schemas import topics
from schemas.perps import MarkPrice
from schemas.trades import Trade

logger = logging.getLogger(__name__)

QUIET_S = 0.3
"""Past a partition's high watermark, its catch-up read ends after this long without a
record."""

SEEK_SLACK_MS = 60_000
"""A partition is read from the first record stamped this long before the window's start:
Kafka's timestamps are the producer's clock, an exchange's times its own."""

_CLOCK = "SELECT toUnixTimestamp64Micro(max(time)) FROM {db:Identifier}.paper_clock"

_TRADES = """
SELECT exchange, market, symbol, trade_id, price, qty, toUnixTimestamp64Micro(time),
       buyer_is_maker, first_trade_id, last_trade_id
FROM {db:Identifier}.trades FINAL
WHERE (exchange, market, symbol) IN {keys:Array(Tuple(String, String, String))}
  AND time > fromUnixTimestamp64Micro({since:Int64})
  AND time < fromUnixTimestamp64Micro({until:Int64})
ORDER BY time, exchange, market, symbol, trade_id
"""

_MARKS = """
SELECT exchange, symbol, toUnixTimestamp64Micro(event_time), mark_price, index_price,
       estimated_settle_price, funding_rate, toUnixTimestamp64Micro(next_funding_time)
FROM {db:Identifier}.marks_1s FINAL
WHERE market = 'usdm' AND (exchange, symbol) IN {keys:Array(Tuple(String, String))}
  AND event_time > fromUnixTimestamp64Micro({since:Int64})
  AND event_time < fromUnixTimestamp64Micro({until:Int64})
ORDER BY event_time, exchange, symbol
"""


Record = Trade | MarkPrice


def start_time(client: Any, database: str, log_time_us: int) -> int:
    """Where a catch-up begins: the stored market time (``paper_clock``) or the log's
    latest event time, whichever is later.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``paper_clock``.
        log_time_us: The restored engine's `now_us` (its latest event's time).
    """
    rows = client.query(_CLOCK, parameters={"db": database}).result_rows
    stored = rows[0][0] if rows and rows[0][0] is not None else 0
    return max(int(stored), log_time_us)


def store_bound(firsts: Sequence[int | None], since_us: int, until_us: int) -> int | None:
    """Up to which time (exclusive) ClickHouse must give a topic's records, or None when
    the topic holds the whole window.

    Args:
        firsts: Per partition, the time of the first record it holds (None: it holds
            none).
        since_us: The window's start (exclusive).
        until_us: The window's end when no partition bounds it.
    """
    if firsts and all(t is not None and t <= since_us for t in firsts):
        return None
    held = [t for t in firsts if t is not None]
    if len(held) < len(firsts) or not held:
        return until_us  # an empty partition: its symbols' records are all in the store
    return max(held)


@dataclass
class TopicRead:
    """What one topic gave a catch-up.

    Attributes:
        records: Its records of the window's symbols after the window's start.
        ends: Partition → the offset it ended at (where live reading begins).
        store_until_us: Up to which time ClickHouse gives the rest (None: no need).
    """

    records: list[Record]
    ends: dict[int, int]
    store_until_us: int | None


def read_topic(
    config: dict[str, Any],
    topic: str,
    keys: frozenset[str],
    decode: Callable[[bytes], Record],
    since_us: int,
    until_us: int,
    keep: Callable[[Record], bool] = lambda _: True,
    timeout_s: float = 60.0,
) -> TopicRead:
    """Read a market topic's records of `keys` after the window's start, to where each
    partition ends now (its high watermark, then on while records come, up to one stamped
    at or after the window's end).

    Args:
        config: confluent-kafka consumer configuration.
        topic: The topic.
        keys: The symbol keys wanted.
        decode: Its records' decoder.
        since_us: The window's start (exclusive).
        until_us: The window's end (where live reading begins, in wall time): the bound
            of a ClickHouse read when the topic holds nothing to bound it.
        keep: Which of those records to return (the others are read past).
        timeout_s: Most seconds for each broker call, and for the read.

    Raises:
        KafkaException: The topic is missing, or was not read to its end in time.
    """
    consumer = Consumer(config)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise KafkaException(f"topic {topic!r} not found")
        ends: dict[int, int] = {}
        lows: dict[int, int] = {}
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            ends[partition] = high
            lows[partition] = low
        if not keys:
            return TopicRead([], ends, None)
        wanted = [
            TopicPartition(topic, p, since_us // 1000 - SEEK_SLACK_MS)
            for p in sorted(ends)
            if ends[p] > lows[p]
        ]
        starts = {
            tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition]
            for tp in (consumer.offsets_for_times(wanted, timeout=timeout_s) if wanted else [])
        }
        # A partition read from its first offset holds the window only if that first
        # record is not younger than the window's start; one read from later does.
        firsts: dict[int, int | None] = {p: None for p in ends}
        for partition, start in starts.items():
            if start > lows[partition]:
                firsts[partition] = since_us
        records: list[Record] = []
        starts.update((p, ends[p]) for p in ends if p not in starts)
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in sorted(starts)])
        raw_keys = {k.encode() for k in keys}
        # Where each partition's catch-up ends: after its last record read, or at the first
        # record stamped at or after the window's end (left to the live reading).
        position = dict(starts)
        stopped: set[int] = set()
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        while True:
            now = time.monotonic()
            if now > deadline:
                raise KafkaException(f"topic {topic!r} not read to its end in {timeout_s:.0f} s")
            # consume(n, timeout) waits for n records or the whole timeout: a short one
            messages: list[Any] = consumer.consume(5_000, 0.1)
            if not messages:
                # The high watermark may lag the true end (Tansu's counts a produced batch
                # as one record): past it, read on until the topic is quiet.
                if all(position[p] >= ends[p] or p in stopped for p in position):
                    quiet_since = quiet_since if quiet_since is not None else now
                    if now - quiet_since >= QUIET_S:
                        break
                continue
            quiet_since = None
            for message in messages:
                if message.error() is not None:
                    raise KafkaException(message.error())
                partition, offset = message.partition(), message.offset()
                if partition in stopped or offset < position[partition]:
                    continue
                past = offset >= ends[partition]
                first = firsts[partition] is None
                if not (first or past) and message.key() not in raw_keys:
                    position[partition] = offset + 1
                    continue
                headers = message.headers()
                try:
                    record = None if headers and topics.is_control(headers) else (
                        decode(message.value())
                    )  # fmt: skip
                except (msgspec.DecodeError, msgspec.ValidationError):
                    record = None  # the live loop sends it to the dead letters when read
                if record is not None and past and record.time_us >= until_us:
                    stopped.add(partition)
                    consumer.pause([TopicPartition(topic, partition)])
                    continue
                position[partition] = offset + 1
                if record is None:
                    continue
                if first:
                    firsts[partition] = record.time_us
                if record.key in keys and record.time_us > since_us and keep(record):
                    records.append(record)
        bound = store_bound([firsts[p] for p in sorted(firsts)], since_us, until_us)
        return TopicRead(records, position, bound)
    finally:
        consumer.close()


def _split(key: str) -> tuple[str, str, str]:
    exchange, market, symbol = key.split(":", 2)
    return exchange, market, symbol


def _trade(
    exchange: str, market: Any, symbol: str, trade_id: int, price: Decimal, qty: Decimal,
    time_us: int, maker: bool, first: int | None, last: int | None,
) -> Trade:  # fmt: skip
    return Trade(
        exchange=exchange, market=market, symbol=symbol, trade_id=trade_id, price=price,
        qty=qty, time_us=time_us, buyer_is_maker=bool(maker), first_trade_id=first,
        last_trade_id=last,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stored:
    """A table a catch-up reads what the topics no longer hold from.

    Attributes:
        sql: The query (parameters ``db``, ``keys``, ``since``, ``until`` in µs).
        keys: The ``keys`` parameter for a set of symbol keys (empty: nothing to read).
        build: A record from a row.
    """

    sql: str
    keys: Callable[[Iterable[str]], list[tuple[str, ...]]]
    build: Callable[..., Record]

    def load(
        self,
        client: Any,
        database: str,
        keys: Iterable[str],
        since_us: int,
        until_us: int,
        keep: Callable[[Record], bool] = lambda _: True,
    ) -> list[Record]:
        """The stored records of the symbol keys after `since_us`, before `until_us`, in
        time order, those `keep` keeps (read in blocks: only what is kept is held).

        Args:
            client: A clickhouse-connect client.
            database: Database holding the table.
            keys: Symbol keys (`schemas.topics.symbol_key`).
            since_us: Exclusive start (exchange time).
            until_us: Exclusive end.
            keep: Which records to return.
        """
        wanted = self.keys(keys)
        if not wanted or until_us <= since_us:
            return []
        params = {"db": database, "keys": wanted, "since": since_us, "until": until_us}
        out = []
        with client.query_row_block_stream(self.sql, parameters=params) as blocks:
            for block in blocks:
                for row in block:
                    record = self.build(*row)
                    if keep(record):
                        out.append(record)
        return out


TRADES = Stored(_TRADES, lambda keys: sorted(_split(k) for k in keys), _trade)
"""Stored trades (``trades``)."""

MARKS = Stored(
    _MARKS,
    lambda keys: sorted((e, s) for e, m, s in map(_split, keys) if m == "usdm"),
    stored_mark,
)
"""Stored marks of USDⓈ-M symbols (``marks_1s``: the last of each second, at its event
time)."""
