"""One exchange's records read live off a topic by ingest: assigned partitions, no group."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec
from confluent_kafka import Consumer, TopicPartition

logger = logging.getLogger(__name__)

T = TypeVar("T")


class TopicFeed(Generic[T]):
    """The records of a topic whose keys start with a prefix, decoded as they arrive.

    Partitions are assigned explicitly (no consumer group) at `start`: their end for what
    only matters from now on, their beginning for state a later record replaces. Reading
    is guarded by a lock, so a read left running in a worker thread and a final one never
    overlap. An undecodable record is logged, counted and skipped.

    Args:
        consumer: A consumer of the cluster, fresh (no group, nothing assigned); the feed
            assigns the partitions and closes it.
        topic: The topic.
        partitions: Its partition count.
        prefix: Keep only records whose key starts with it (``binance:spot:``).
        start: Offset each partition is read from (``OFFSET_END``, ``OFFSET_BEGINNING``).
        decode: Decodes a record's value.
        what: What a record is, for log lines (``candle``).
    """

    def __init__(
        self,
        consumer: Consumer,
        topic: str,
        partitions: int,
        prefix: str,
        start: int,
        decode: Callable[[bytes], T],
        what: str,
    ) -> None:
        self.topic = topic
        self.undecodable = 0
        self._prefix = prefix.encode()
        self._decode = decode
        self._what = what
        self._lock = threading.Lock()
        self._consumer = consumer
        self._consumer.assign([TopicPartition(topic, p, start) for p in range(partitions)])
        self._closed = False

    def read(self, batch: int, wanted: Callable[[bytes], bool] | None = None) -> list[T]:
        """Every record of the prefix (and `wanted`, on its raw value) that arrived since
        the last read, decoded, in arrival order; never waits."""
        out: list[T] = []
        with self._lock:
            while not self._closed:
                messages = self._consumer.consume(num_messages=batch, timeout=0)
                for msg in messages:
                    if msg.error() is not None:
                        logger.warning("%s: %s", self.topic, msg.error())
                        continue
                    key, value = msg.key(), msg.value()
                    # Cheap filters first: the topic may carry every market's records.
                    if not key or not key.startswith(self._prefix) or not value:
                        continue
                    if wanted is not None and not wanted(value):
                        continue
                    try:
                        out.append(self._decode(value))
                    except (msgspec.DecodeError, TypeError) as exc:
                        self.undecodable += 1
                        logger.warning("%s: undecodable %s: %s", self.topic, self._what, exc)
                if len(messages) < batch:
                    break
        return out

    def close(self) -> None:
        """Leave the topic. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._consumer.close()
