"""Kafka input in micro-batches: one dataflow item per fetched batch of one partition.

Bytewax's own KafkaSource makes every message a dataflow item; at a few microseconds of
overhead per item that caps a flow far below the trade rate of a whole exchange. This
source hands each partition's fetched records to the next step as one `RecordBatch`, so
the per-item cost is paid once per few thousand trades.

Partitions are assigned explicitly (no consumer group): Bytewax keeps the offsets in its
own recovery state, and group joins are slow on Tansu. A finite run (a replay) gives the
source the offsets its records occupy (`RunBounds`), so the source knows its end without
trusting the broker's high watermark.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

logger = logging.getLogger(__name__)


class Record:
    """A fetched record, detached from librdkafka so it can be pickled between workers.

    Has the accessor methods of `confluent_kafka.Message` that the flows use, so either
    can sit in a `RecordBatch`.
    """

    __slots__ = ("_headers", "_key", "_offset", "_partition", "_topic", "_value")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._key = key
        self._value = value
        self._headers = headers

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            Record,
            (self._topic, self._partition, self._offset, self._key, self._value, self._headers),
        )


def detach(message: Any) -> Record:
    """Copy a `confluent_kafka.Message` (or a `Record`) into a picklable `Record`."""
    return Record(
        message.topic(),
        message.partition(),
        message.offset(),
        message.key(),
        message.value(),
        message.headers(),
    )


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Records of one partition, in offset order, as one dataflow item.

    Attributes:
        partition: The Kafka partition they came from.
        records: The records (`confluent_kafka.Message` or `Record`).
        wall_ms: Wall-clock time the source read them, in ms since the epoch.
        caught_up: The source had nothing more to read when it made this batch; an
            empty caught-up batch is a heartbeat saying the partition is idle.
        end: The finite run this source follows is complete in this partition.
    """

    partition: int
    records: Sequence[Any]
    wall_ms: int
    caught_up: bool = False
    end: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        # librdkafka messages cannot cross a process boundary; copies can.
        return (
            RecordBatch,
            (
                self.partition,
                [detach(r) for r in self.records],
                self.wall_ms,
                self.caught_up,
                self.end,
            ),
        )


@dataclass(frozen=True, slots=True)
class RunBounds:
    """Where one finite run's records are: per partition, `[start, end)` offsets.

    `end` is the offset of the run's end marker in that partition.
    """

    start: Mapping[int, int]
    end: Mapping[int, int]


StartAt = Literal["beginning", "end"]


class _PartitionReader(StatefulSourcePartition[tuple[str, RecordBatch], int]):
    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        partition: int,
        offset: int,
        stop: int | None,
        batch_size: int,
        heartbeat_ms: int,
        stop_event: threading.Event | None,
    ) -> None:
        self._consumer = Consumer(config)
        self._stop_event = stop_event
        self._consumer.assign([TopicPartition(topic, partition, offset)])
        self._partition = partition
        self._key = str(partition)
        self._next = offset
        self._stop = stop
        self._batch_size = batch_size
        self._heartbeat_ms = heartbeat_ms
        self._last_emit = 0.0
        self._done = stop is not None and offset >= stop
        self._sent_end = False

    def next_batch(self) -> list[tuple[str, RecordBatch]]:
        if self._stop_event is not None and self._stop_event.is_set():
            raise StopIteration
        if self._done:
            if self._sent_end:
                raise StopIteration
            self._sent_end = True
            return [(self._key, RecordBatch(self._partition, [], _now_ms(), True, True))]
        messages = self._consumer.consume(self._batch_size, 0)
        now = time.monotonic()
        if not messages:
            if (now - self._last_emit) * 1000 < self._heartbeat_ms:
                return []
            self._last_emit = now
            return [(self._key, RecordBatch(self._partition, [], _now_ms(), True))]
        for message in messages:
            if message.error() is not None:
                messages = _without_eof(messages)
                break
        end = False
        stop = self._stop
        if stop is not None and messages and _offset(messages[-1]) >= stop:
            messages = [m for m in messages if _offset(m) < stop]
            end = self._done = True
            self._sent_end = True
        if messages:
            self._next = _offset(messages[-1]) + 1
        self._last_emit = now
        caught_up = len(messages) < self._batch_size
        return [(self._key, RecordBatch(self._partition, messages, _now_ms(), caught_up, end))]

    def snapshot(self) -> int:
        return self._next

    def close(self) -> None:
        self._consumer.close()


def _offset(message: Any) -> int:
    offset = message.offset()
    assert offset is not None, "fetched records always have an offset"
    return int(offset)


def _without_eof(messages: list[Any]) -> list[Any]:
    """Drop end-of-partition events; any other error stops the flow loudly."""
    kept = []
    for message in messages:
        error = message.error()
        if error is None:
            kept.append(message)
        elif error.code() != KafkaError._PARTITION_EOF:
            raise KafkaException(error)
    return kept


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class KafkaBatchSource(FixedPartitionedSource[tuple[str, RecordBatch], int]):
    """Read a topic's partitions as `(partition, RecordBatch)` items.

    Args:
        config: confluent-kafka consumer configuration (see `runtime.kafka`).
        topic: Topic to read.
        partitions: Partition ids to read; all of the topic's when None.
        start: Where a partition with no recovery state starts: "beginning", "end", or
            the run's bounds, which also make the source finite.
        batch_size: Most records in one batch.
        heartbeat_ms: How often an idle partition sends an empty caught-up batch.
        stop: When set, every partition ends (a live flow's shutdown).
    """

    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        start: StartAt | RunBounds = "end",
        batch_size: int = 5_000,
        heartbeat_ms: int = 250,
        stop: threading.Event | None = None,
    ) -> None:
        self._config = config
        self._stop_event = stop
        self._topic = topic
        self._partitions = list(partitions) if partitions is not None else None
        self._start = start
        self._batch_size = batch_size
        self._heartbeat_ms = heartbeat_ms

    def list_parts(self) -> list[str]:
        if self._partitions is not None:
            return [str(p) for p in self._partitions]
        if isinstance(self._start, RunBounds):
            return [str(p) for p in sorted(self._start.end)]
        consumer = Consumer(self._config)
        try:
            metadata = consumer.list_topics(self._topic, timeout=30)
        finally:
            consumer.close()
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise KafkaException(f"topic {self._topic!r} not found or has no partitions")
        return [str(p) for p in sorted(topic.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _PartitionReader:
        partition = int(for_part)
        stop = None
        start = self._start
        if isinstance(start, RunBounds):
            stop = start.end[partition]
            offset = start.start.get(partition, stop)
        elif start == "beginning":
            offset = OFFSET_BEGINNING
        else:
            offset = OFFSET_END
        if resume_state is not None:
            offset = resume_state
        logger.debug("reading %s[%s] from %s (stop %s)", self._topic, partition, offset, stop)
        return _PartitionReader(
            self._config,
            self._topic,
            partition,
            offset,
            stop,
            self._batch_size,
            self._heartbeat_ms,
            self._stop_event,
        )
