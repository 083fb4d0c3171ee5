"""Kafka output: candles and dead letters produced keyed, flushed at every epoch end."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import KafkaError, Producer

from flows.errors import FlowError
from runtime.kafka import produce_when_room

logger = logging.getLogger(__name__)

Encoded = tuple[bytes | str, bytes]
"""A message ready to produce: key and value."""


class KafkaSinkError(FlowError):
    """Messages could not be delivered; the flow stops rather than lose them."""


class _ProducerPartition(StatefulSinkPartition[list[Any], None]):
    def __init__(self, producer: Producer, topic: str, encode: Callable[[Any], Encoded]) -> None:
        self._producer = producer
        self._topic = topic
        self._encode = encode
        self._failed: list[KafkaError] = []
        self.produced = 0

    def _on_delivery(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self._failed.append(error)

    def write_batch(self, values: list[list[Any]]) -> None:
        produce = self._producer.produce
        topic = self._topic
        encode = self._encode
        on_delivery = self._on_delivery
        for items in values:
            for item in items:
                key, value = encode(item)
                try:
                    produce(topic, value, key, on_delivery=on_delivery)
                except BufferError:
                    # librdkafka's queue is full: serve deliveries, then try again.
                    produce_when_room(self._producer, topic, value, key, on_delivery)
                self.produced += 1
        self._producer.poll(0)
        self._raise_failures()

    def _raise_failures(self) -> None:
        if self._failed:
            first = self._failed[0]
            count = len(self._failed)
            self._failed.clear()
            raise KafkaSinkError(f"{count} message(s) to {self._topic} failed: {first}")

    def snapshot(self) -> None:
        # The epoch is committed after this returns: every message must be acknowledged.
        self._flush()

    def _flush(self) -> None:
        remaining = self._producer.flush(60)
        if remaining:
            raise KafkaSinkError(f"{remaining} message(s) to {self._topic} not delivered in 60 s")
        self._raise_failures()

    def close(self) -> None:
        self._flush()


class KafkaListSink(FixedPartitionedSink[list[Any], None]):
    """Produces every element of `(key, [item, ...])` values to one topic.

    Args:
        config: confluent-kafka producer configuration (see `runtime.kafka`).
        topic: Destination topic.
        encode: Turns an item into its Kafka key and value.
    """

    def __init__(
        self, config: dict[str, Any], topic: str, encode: Callable[[Any], Encoded]
    ) -> None:
        self._config = config
        self._topic = topic
        self._encode = encode

    def list_parts(self) -> list[str]:
        return ["0"]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _ProducerPartition:
        return _ProducerPartition(Producer(self._config), self._topic, self._encode)
