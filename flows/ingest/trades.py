"""Ingest: publish normalised trades to Kafka, rejects to the dead-letter topic.

What the broker acknowledged is kept by `flows.ingest.delivery.DeliveryLedger`.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, Self

from confluent_kafka import KafkaException, Producer

from flows.ingest.delivery import DeliveryFailed, DeliveryLedger, IngestError, PublishReport
from runtime.kafka import BULK_PRODUCER, produce_when_room, producer_config
from schemas import topics
from schemas.deadletter import DeadLetter, encode_deadletter
from schemas.trades import Trade, encode_trade

logger = logging.getLogger(__name__)

STAGE = "ingest"
"""The `stage` of every dead letter this module writes, and their Kafka key."""

# Serve delivery reports every so many produces: often enough that librdkafka's queue
# never fills in steady state, rarely enough that poll() costs nothing per trade.
_POLL_EVERY_MASK = 1023
_METADATA_TIMEOUT_S = 10.0


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

    def __exit__(self, *exc_info: object) -> None:
        raising = exc_info[1]
        if raising is None:
            self.close()
            return
        # Already failing: deliver what we can, report losses, keep the original error.
        try:
            self.close()
        except IngestError as flush_error:
            logger.error("while handling %r: %s", raising, flush_error)

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
            produce_when_room(self._producer, self.topic, value, key, self._ledger.on_trade)
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
                    produce_when_room(self._producer, topic, value, key, on_trade)
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
        produce_when_room(
            self._producer,
            self.deadletter_topic,
            encode_deadletter(letter),
            STAGE,
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
            produce_when_room(
                self._producer,
                self.topic,
                value,
                None,
                self._ledger.on_end_marker,
                partition=partition,
                headers=headers,
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
