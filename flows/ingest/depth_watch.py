"""The depth watch sets of one exchange, read live from ``md.depth_watch.v1``.

The paper engine publishes, per (exchange, market), the symbols whose 20-level depth it
needs now (those with open orders): each record is the whole set, repeated every
`schemas.depth.DEPTH_WATCH_EVERY_S`. Whatever publishes depth (the live Binance ingest,
the simulated market) follows the latest record of its markets through a
`DepthWatchFeed` and publishes depth for those symbols only.
"""

from __future__ import annotations

import logging
import threading

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.depth import DepthWatch, watch_decoder
from schemas.trades import Market

logger = logging.getLogger(__name__)


class DepthWatchFeed:
    """The latest watch set of each market of one exchange, from the topic's beginning.

    Partitions are assigned explicitly (no consumer group) from their first offset, so a
    process that starts after the engine last published still learns the current set
    (the latest record read wins; the engine repeats it anyway). Reading is guarded by a
    lock, so a poll in a worker thread and a final one never overlap.

    Args:
        consumer: A fresh consumer of the cluster (no group, nothing assigned); the feed
            assigns the partitions and closes it.
        topic: The watch topic (``md.depth_watch.v1``).
        partitions: Its partition count.
        exchange: Keep only the records of this exchange (``binance``, ``sim``).
    """

    def __init__(self, consumer: Consumer, topic: str, partitions: int, exchange: str) -> None:
        self.topic = topic
        self.exchange = exchange
        self.undecodable = 0
        self._prefix = f"{exchange}:".encode()
        self._decode = watch_decoder().decode
        self._lock = threading.Lock()
        self._consumer = consumer
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        self._closed = False

    def poll(self, batch: int = 1_000) -> dict[Market, DepthWatch]:
        """The latest watch record of each market read since the last poll; never waits.

        Returns:
            By market, the last record of this exchange that arrived (markets with no new
            record are absent). An undecodable record is logged, counted and skipped.
        """
        out: dict[Market, DepthWatch] = {}
        with self._lock:
            while not self._closed:
                messages = self._consumer.consume(num_messages=batch, timeout=0)
                for msg in messages:
                    if msg.error() is not None:
                        logger.warning("%s: %s", self.topic, msg.error())
                        continue
                    key, value = msg.key(), msg.value()
                    if not key or not key.startswith(self._prefix) or not value:
                        continue
                    try:
                        watch = self._decode(value)
                    except (msgspec.DecodeError, TypeError) as exc:
                        self.undecodable += 1
                        logger.warning("%s: undecodable watch record: %s", self.topic, exc)
                        continue
                    if watch.exchange == self.exchange:
                        out[watch.market] = watch
                if len(messages) < batch:
                    break
        return out

    def close(self) -> None:
        """Leave the topic. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._consumer.close()
