"""Delivery accounting of a trade publisher: what the broker acknowledged, per partition.

Kept apart from the producer (`flows.ingest.trades.TradePublisher`) so the accounting is
plain code, testable without a broker. `IngestError` is the base of every error of the
ingest's publishing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message

from flows.errors import FlowError
from flows.sources.kafka import RunBounds

logger = logging.getLogger(__name__)


class IngestError(FlowError):
    """Base of every error of publishing (here and in `flows.ingest.trades`)."""


class DeliveryFailed(IngestError):
    """Some messages were not delivered: the run is incomplete.

    Attributes:
        count: How many deliveries failed.
        first_error: The first failure, as librdkafka described it.
    """

    def __init__(self, count: int, first_error: str) -> None:
        super().__init__(f"{count} message(s) failed delivery; first error: {first_error}")
        self.count = count
        self.first_error = first_error


@dataclass(frozen=True, slots=True)
class PartitionSpan:
    """Where one run's records landed in one partition of the trades topic.

    A consumer reads exactly this run by starting at `first_offset` and stopping at the
    end-of-run marker (`end_offset`).

    Attributes:
        first_offset: Offset of the run's first trade here, None if it sent none here.
        last_offset: Offset of the run's last trade here, None if it sent none here.
        end_offset: Offset of the run's end marker here, None until one is delivered.
    """

    first_offset: int | None
    last_offset: int | None
    end_offset: int | None

    @property
    def start_offset(self) -> int | None:
        """Where a reader of this run starts: the first trade, else the end marker."""
        return self.first_offset if self.first_offset is not None else self.end_offset


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What a publisher has delivered so far.

    Attributes:
        topic: The trades topic.
        published: Trades the broker acknowledged.
        rejected: Dead letters the broker acknowledged.
        delivery_failures: Messages (trades, dead letters or markers) that failed.
        first_error: The first delivery failure, None if there was none.
        partitions: Per partition of `topic` that received a trade or a marker.
    """

    topic: str
    published: int
    rejected: int
    delivery_failures: int
    first_error: str | None
    partitions: dict[int, PartitionSpan]

    def bounds(self) -> RunBounds:
        """The offsets of this finite run, for a source that must read exactly it.

        Raises:
            IngestError: A partition has no delivered end marker (the run did not end).
        """
        start: dict[int, int] = {}
        end: dict[int, int] = {}
        for partition, span in self.partitions.items():
            if span.start_offset is None or span.end_offset is None:
                raise IngestError(f"no end marker was delivered to {self.topic}[{partition}]")
            start[partition], end[partition] = span.start_offset, span.end_offset
        return RunBounds(start=start, end=end)


class DeliveryLedger:
    """Book-keeping of delivery reports; its `on_*` methods are producer callbacks.

    Kept apart from the producer so the accounting is plain code, testable without a
    broker.
    """

    def __init__(self) -> None:
        self.published = 0
        self.rejected = 0
        self.failures = 0
        self.first_error: str | None = None
        self._first: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._end: dict[int, int] = {}

    def _failed(self, err: KafkaError | None, msg: Message) -> None:
        self.failures += 1
        if self.first_error is None:
            # No error but no offset either: librdkafka never reports that, but if it
            # did we could not account for the message, so it counts as lost.
            reason = err if err is not None else "delivered without an offset"
            self.first_error = f"{msg.topic()}[{msg.partition()}]: {reason}"
            logger.error("delivery failed: %s", self.first_error)

    def on_trade(self, err: KafkaError | None, msg: Message) -> None:
        """Record the delivery report of one trade."""
        partition, offset = msg.partition(), msg.offset()
        if err is not None or partition is None or offset is None:
            self._failed(err, msg)
            return
        self.published += 1
        last = self._last.get(partition)
        if last is None:
            self._first[partition] = self._last[partition] = offset
        elif offset > last:
            self._last[partition] = offset
        elif offset < self._first[partition]:
            # Only reachable if a retry reordered a partition (no idempotence).
            self._first[partition] = offset

    def on_dead_letter(self, err: KafkaError | None, msg: Message) -> None:
        """Record the delivery report of one dead letter."""
        if err is not None:
            self._failed(err, msg)
        else:
            self.rejected += 1

    def on_end_marker(self, err: KafkaError | None, msg: Message) -> None:
        """Record the delivery report of one end-of-run marker."""
        partition, offset = msg.partition(), msg.offset()
        if err is not None or partition is None or offset is None:
            self._failed(err, msg)
        else:
            self._end[partition] = offset

    def report(self, topic: str) -> PublishReport:
        """A snapshot of the deliveries so far.

        Args:
            topic: The trades topic the spans refer to.

        Returns:
            The counts and per-partition spans.
        """
        partitions = {
            p: PartitionSpan(self._first.get(p), self._last.get(p), self._end.get(p))
            for p in sorted(self._last.keys() | self._end.keys())
        }
        return PublishReport(
            topic=topic,
            published=self.published,
            rejected=self.rejected,
            delivery_failures=self.failures,
            first_error=self.first_error,
            partitions=partitions,
        )
