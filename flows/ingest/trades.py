"""Ingest: publish normalised trades to Kafka, rejects to the dead-letter topic."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from flows.errors import FlowError
from flows.sources.kafka import RunBounds
from runtime.kafka import BULK_PRODUCER, producer_config
from schemas import topics
from schemas.deadletter import DeadLetter, encode_deadletter
from schemas.trades import Trade, encode_trade

logger = logging.getLogger(__name__)

STAGE = "ingest"
"""The `stage` of every dead letter this module writes, and their Kafka key."""

# Serve delivery reports every so many produces: often enough that librdkafka's queue
# never fills in steady state, rarely enough that poll() costs nothing per trade.
_POLL_EVERY_MASK = 1023
_BUFFER_FULL_WAIT_S = 0.05
_METADATA_TIMEOUT_S = 10.0


class IngestError(FlowError):
    """Base of every error this module raises."""


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


class Rejection(Protocol):
    """What a source hands over for a message it could not turn into a trade.

    `flows.sources.files.Rejected` is one; any object with these attributes will do.
    """

    @property
    def source(self) -> str:
        """Where the message came from, e.g. `<path>:<line>`."""
        ...

    @property
    def raw(self) -> bytes:
        """The message exactly as received."""
        ...

    @property
    def reason(self) -> str:
        """A short machine reason, e.g. `bad_json`."""
        ...

    @property
    def detail(self) -> str:
        """What exactly was wrong, for a human."""
        ...


def dead_letter(rejected: Rejection, *, at_ms: int) -> DeadLetter:
    """The dead letter for a rejected input message.

    Args:
        rejected: The message and why it was rejected.
        at_ms: When it was rejected, in ms since the epoch.

    Returns:
        A `DeadLetter` of stage `ingest` keeping the raw bytes whole: as text when they
        are UTF-8, else base64.
    """
    try:
        value, encoding = rejected.raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        value, encoding = base64.b64encode(rejected.raw).decode("ascii"), "base64"
    return DeadLetter(
        stage=STAGE,
        reason=rejected.reason,
        detail=f"{rejected.detail} (at {rejected.source})",
        source_topic=None,
        partition=None,
        offset=None,
        key=None,
        value=value,
        value_encoding=encoding,
        at_ms=at_ms,
    )


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


class TradePublisher:
    """Publishes trades keyed by symbol, so one symbol's trades stay ordered in one partition.

    Use it as a context manager: leaving the block flushes, and raises `DeliveryFailed`
    if any message was lost (unless the block is already raising). A finite run ends
    with `mark_end`, which writes an end-of-run marker after the data in every partition.

    Args:
        bootstrap: Kafka bootstrap servers, `host:port[,host:port]`.
        topic: The trades topic (tests pass a fresh one).
        deadletter_topic: Where rejected input goes.
        overrides: librdkafka settings over `runtime.kafka.producer_config`'s and
            `BULK_PRODUCER`'s.

    Example:
        >>> with TradePublisher("127.0.0.1:9092") as publisher:  # doctest: +SKIP
        ...     publisher.publish_many(trades)
        ...     publisher.mark_end(run_id)
        ...     report = publisher.report()
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        topic: str = topics.TRADES,
        deadletter_topic: str = topics.DEADLETTER,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.deadletter_topic = deadletter_topic
        self.sent = 0
        self._ledger = DeliveryLedger()
        self._producer = Producer(
            producer_config(bootstrap, **{**BULK_PRODUCER, **(overrides or {})})
        )
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # Already failing: deliver what we can, report losses, keep the original error.
        try:
            self.close()
        except IngestError as flush_error:
            logger.error("while handling %r: %s", exc, flush_error)

    def publish(self, trade: Trade) -> None:
        """Queue one trade for delivery; never drops it.

        Args:
            trade: The trade, keyed by `trade.key`.
        """
        value = encode_trade(trade)
        key = trade.key
        try:
            self._producer.produce(self.topic, value, key, on_delivery=self._ledger.on_trade)
        except BufferError:
            self._produce_when_room(self.topic, value, key, None, self._ledger.on_trade)
        self.sent += 1
        if not self.sent & _POLL_EVERY_MASK:
            self._producer.poll(0)

    def publish_many(self, trades: Iterable[Trade]) -> int:
        """Queue every trade of an iterable, the fast way for replays and benchmarks.

        Args:
            trades: Trades in the order they should land per symbol.

        Returns:
            How many were queued.
        """
        # Locals: this loop runs millions of times per replay.
        produce = self._producer.produce
        poll = self._producer.poll
        topic = self.topic
        on_trade = self._ledger.on_trade
        encode = encode_trade
        sent = self.sent
        start = sent
        try:
            for trade in trades:
                value = encode(trade)
                key = trade.key
                try:
                    produce(topic, value, key, on_delivery=on_trade)
                except BufferError:
                    self._produce_when_room(topic, value, key, None, on_trade)
                sent += 1
                if not sent & _POLL_EVERY_MASK:
                    poll(0)
        finally:
            self.sent = sent
        return sent - start

    def reject(self, rejected: Rejection) -> None:
        """Send a message that could not become a trade to the dead-letter topic.

        Args:
            rejected: The raw message and why it was rejected.
        """
        letter = dead_letter(rejected, at_ms=time.time_ns() // 1_000_000)
        self._produce_when_room(
            self.deadletter_topic,
            encode_deadletter(letter),
            STAGE,
            None,
            self._ledger.on_dead_letter,
        )

    def mark_end(self, run_id: str) -> None:
        """End a finite run: an end-of-run marker in every partition, after the data.

        Flushes the trades first, so each marker lands after every trade of the run in
        its partition whatever the producer's retry settings, then writes one control
        record per partition (header `CONTROL_HEADER: END_OF_RUN`, value `run_id`) and
        flushes again so `report()` shows the markers' offsets.

        Args:
            run_id: Names the run; consumers following it stop a partition at its marker.

        Raises:
            DeliveryFailed: If any message of the run was not delivered (no marker is
                written then: an incomplete run must not look complete).
            IngestError: If the topic's partitions cannot be listed.
        """
        self.flush()
        partitions = self.partitions()
        headers = [(topics.CONTROL_HEADER, topics.END_OF_RUN)]
        value = run_id.encode()
        for partition in partitions:
            self._produce_when_room(
                self.topic, value, None, partition, self._ledger.on_end_marker, headers
            )
        self.flush()
        logger.info("run %s ended in %d partitions of %s", run_id, len(partitions), self.topic)

    def partitions(self) -> list[int]:
        """The partition ids of the trades topic, from the broker's metadata.

        Raises:
            IngestError: If the topic does not exist or its metadata is incomplete.
        """
        # Ask for every topic's metadata: naming one makes Tansu create it if missing.
        try:
            metadata = self._producer.list_topics(timeout=_METADATA_TIMEOUT_S)
        except KafkaException as exc:
            raise IngestError(f"cannot read metadata of {self.topic}: {exc}") from exc
        described = metadata.topics.get(self.topic)
        if described is None or described.error is not None or not described.partitions:
            error = None if described is None else described.error
            raise IngestError(f"cannot list partitions of {self.topic}: {error}")
        return sorted(described.partitions)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every queued message is delivered or has failed.

        Args:
            timeout: Seconds to wait at most.

        Raises:
            IngestError: If messages are still queued after `timeout`.
            DeliveryFailed: If any delivery so far has failed.
        """
        remaining = self._producer.flush(timeout)
        if remaining:
            raise IngestError(f"{remaining} message(s) still undelivered after {timeout}s")
        if self._ledger.failures:
            raise DeliveryFailed(self._ledger.failures, self._ledger.first_error or "")

    def close(self) -> None:
        """Flush, then release the producer. Idempotent.

        Raises:
            DeliveryFailed: As `flush`.
        """
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            if len(self._producer):
                # flush timed out and raised: don't let close() block on the same messages.
                self._producer.purge()
            self._producer.close()

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports, waiting up to `timeout` seconds for one.

        A paced producer calls this while it waits, so the report stays current.
        """
        self._producer.poll(timeout)

    def report(self) -> PublishReport:
        """What has been delivered so far (call after `flush` for the whole run)."""
        return self._ledger.report(self.topic)

    def _produce_when_room(
        self,
        topic: str,
        value: bytes,
        key: str | None,
        partition: int | None,
        on_delivery: Any,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Produce, waiting for room in librdkafka's queue as long as it takes."""
        kwargs: dict[str, Any] = {"on_delivery": on_delivery}
        if partition is not None:
            kwargs["partition"] = partition
        if headers is not None:
            kwargs["headers"] = headers
        while True:
            try:
                self._producer.produce(topic, value, key, **kwargs)
                return
            except BufferError:
                # Deliveries free the queue; serving them is how we make room.
                self._producer.poll(_BUFFER_FULL_WAIT_S)
