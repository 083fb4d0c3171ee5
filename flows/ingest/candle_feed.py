"""Our 1m candles of one exchange and market, read live from md.candles.v1 for the cross-check."""

from __future__ import annotations

import logging
import threading

import msgspec
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from schemas.candles import Candle, candle_decoder

logger = logging.getLogger(__name__)

_ONE_MINUTE = b'"interval":"1m"'


class CandleFeed:
    """Our 1m candles of one exchange and market from the candle topic, from its end.

    Partitions are assigned explicitly (no consumer group) at their end offset: what
    was published before is of minutes ingest was not following. Reading is guarded by
    a lock, so a poll left running in a worker thread and a final poll never overlap.

    Args:
        consumer: A consumer of the cluster, fresh (no group, nothing assigned); the
            feed assigns the partitions and closes it.
        topic: The candle topic (md.candles.v1).
        partitions: Its partition count.
        exchange: Keep only candles of this exchange ...
        market: ... and market.
    """

    def __init__(
        self, consumer: Consumer, topic: str, partitions: int, exchange: str, market: str
    ) -> None:
        self.topic = topic
        self.undecodable = 0
        self._prefix = f"{exchange}:{market}:".encode()
        self._decode = candle_decoder().decode
        self._lock = threading.Lock()
        self._consumer = consumer
        self._consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(partitions)])
        self._closed = False

    def poll(self, batch: int = 10_000) -> list[Candle]:
        """Every 1m candle of ours that has arrived since the last poll; never waits."""
        out: list[Candle] = []
        with self._lock:
            while not self._closed:
                messages = self._consumer.consume(num_messages=batch, timeout=0)
                for msg in messages:
                    if msg.error() is not None:
                        logger.warning("%s: %s", self.topic, msg.error())
                        continue
                    key, value = msg.key(), msg.value()
                    # Cheap filters first: the topic carries every market's 1s candles too.
                    if not key or not key.startswith(self._prefix) or not value:
                        continue
                    if _ONE_MINUTE not in value:
                        continue
                    try:
                        out.append(self._decode(value))
                    except (msgspec.DecodeError, TypeError) as exc:
                        self.undecodable += 1
                        logger.warning("%s: undecodable candle: %s", self.topic, exc)
                if len(messages) < batch:
                    break
        return out

    def close(self) -> None:
        """Leave the topic. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._consumer.close()
