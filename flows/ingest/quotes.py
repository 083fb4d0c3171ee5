"""Publishing best bid/offer quotes to md.quotes.v1, keyed like the trades."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message, Producer

from runtime.kafka import flush_or_drop, produce_when_room, producer_config
from schemas import topics
from schemas.quotes import Quote, encode_quote

logger = logging.getLogger(__name__)


class QuotePublisher:
    """Publishes quotes; counts deliveries and failures.

    A quote superseded a moment later is worth little, so a failed delivery is counted
    and logged (once), never retried here; a full local buffer waits for room rather than
    dropping the quote.

    Args:
        bootstrap: Kafka bootstrap servers.
        topic: Topic of the quotes.
    """

    what = "quote"
    """What is published, for the log (a subclass publishing other records renames it)."""

    def __init__(self, bootstrap: str, topic: str = topics.QUOTES) -> None:
        self.topic = topic
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

    def publish(self, quote: Quote) -> None:
        """Queue one quote for delivery (waits while the local buffer is full)."""
        produce_when_room(
            self._producer, self.topic, encode_quote(quote), quote.key, self._on_delivery
        )

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
