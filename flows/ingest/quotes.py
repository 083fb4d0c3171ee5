"""Publishing samples of the market's state (quotes, depth, perpetuals data) keyed like trades.

`SamplePublisher` is the producer of records that a later one of the same symbol soon
supersedes or that the exchange itself only samples: a failed delivery is counted and
logged, never retried. `QuotePublisher` publishes best bid/offer quotes to md.quotes.v1,
`DepthPublisher` 20-level books to md.depth.v1; `flows.ingest.perps.PerpPublisher` the
mark prices, liquidations and open interest.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message, Producer

from runtime.kafka import flush_or_drop, produce_when_room, producer_config
from schemas import topics
from schemas.depth import BookDepth, encode_depth
from schemas.quotes import Quote, encode_quote

logger = logging.getLogger(__name__)


class SamplePublisher:
    """A producer of sampled records; counts deliveries and failures.

    A failed delivery is counted and logged (once), never retried here; a full local
    buffer waits for room rather than dropping the record.

    Args:
        bootstrap: Kafka bootstrap servers.
        what: What it publishes, for log lines (``quote``, ``perpetuals record``).
    """

    def __init__(self, bootstrap: str, what: str) -> None:
        self.what = what
        self.delivered = 0
        self.failures = 0
        self.first_error: str | None = None
        self._producer = Producer(producer_config(bootstrap))

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered += 1
            return
        self.failures += 1
        if self.first_error is None:
            self.first_error = str(err)
            logger.error("%s delivery failed: %s", self.what, err)

    def produce(self, topic: str, value: bytes, key: str) -> None:
        """Queue one encoded record for delivery (waits while the local buffer is full)."""
        produce_when_room(self._producer, topic, value, key, self._on_delivery)

    def poll(self) -> None:
        """Serve delivery reports without waiting."""
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Deliver what is queued, for up to `timeout` seconds; drop what is left then."""
        if dropped := flush_or_drop(self._producer, timeout):
            logger.error("%d %s(s) undelivered after %.0f s", dropped, self.what, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued (for up to `timeout` seconds), then close."""
        self.flush(timeout)
        self._producer.close()


class QuotePublisher(SamplePublisher):
    """Publishes quotes; a quote superseded a moment later is worth little.

    Args:
        bootstrap: Kafka bootstrap servers.
        topic: Topic of the quotes.
    """

    def __init__(self, bootstrap: str, topic: str = topics.QUOTES) -> None:
        super().__init__(bootstrap, "quote")
        self.topic = topic

    def publish(self, quote: Quote) -> None:
        """Queue one quote for delivery (waits while the local buffer is full)."""
        self.produce(self.topic, encode_quote(quote), quote.key)


class DepthPublisher(SamplePublisher):
    """Publishes 20-level books; each replaces the one before (100 ms later).

    Args:
        bootstrap: Kafka bootstrap servers.
        topic: Topic of the depth records.
    """

    def __init__(self, bootstrap: str, topic: str = topics.DEPTH) -> None:
        super().__init__(bootstrap, "depth record")
        self.topic = topic

    def publish(self, depth: BookDepth) -> None:
        """Queue one depth record for delivery (waits while the local buffer is full)."""
        self.produce(self.topic, encode_depth(depth), depth.key)
