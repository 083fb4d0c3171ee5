"""Producer throughput against the embedded broker: idempotence and compression, one run."""

from __future__ import annotations

import argparse
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from runtime.broker import EmbeddedBroker
from runtime.kafka import consumer_config, ensure_topics, producer_config

# One real Binance trade (2024-08-08 capture), the size of what ingest writes.
PAYLOAD = (
    b'{"e":"trade","E":1723161256323,"T":1723161256322,"s":"BTCUSDT","t":5266583935,'
    b'"p":"61234.50","q":"0.010","X":"MARKET","m":true}'
)
PARTITIONS = 6


def produce(bootstrap: str, topic: str, count: int, **overrides: Any) -> float:
    """Produce `count` keyed messages and wait for every delivery; return messages/s."""
    producer = Producer(producer_config(bootstrap, **overrides))
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    keys = [f"binance:usdm:SYM{i}".encode() for i in range(200)]
    start = time.perf_counter()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, PAYLOAD, key=keys[i % len(keys)], on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.005)
        if i % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(60)
    elapsed = time.perf_counter() - start
    if remaining or failures:
        raise SystemExit(f"{topic}: {remaining} undelivered, {len(failures)} failed")
    return count / elapsed


def consumed(bootstrap: str, topic: str, expect: int) -> int:
    """Read the topic back with explicit assignment; return how many records it holds."""
    consumer = Consumer(consumer_config(bootstrap))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    total, idle_since = 0, time.monotonic()
    while total < expect or time.monotonic() - idle_since < 0.5:
        batch = consumer.consume(10_000, 0.2)
        if batch:
            total += len(batch)
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > 10:
            break
    consumer.close()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200_000, help="messages per variant")
    args = parser.parse_args()
    variants: list[tuple[str, dict[str, Any]]] = [
        ("default (idempotent, acks=all, no compression)", {}),
        ("idempotent + lz4", {"compression.type": "lz4"}),
        ("not idempotent", {"enable.idempotence": False}),
        ("not idempotent, linger.ms=50", {"enable.idempotence": False, "linger.ms": 50}),
    ]
    with EmbeddedBroker() as broker:
        baseline = None
        for number, (name, overrides) in enumerate(variants):
            topic = f"bench-producer-{number}"
            ensure_topics(broker.bootstrap, [topic], PARTITIONS)
            rate = produce(broker.bootstrap, topic, args.count, **overrides)
            stored = consumed(broker.bootstrap, topic, args.count)
            baseline = baseline or rate
            print(
                f"{name:50s} {rate:>10,.0f} msg/s  x{rate / baseline:4.2f}"
                f"  stored {stored:,} of {args.count:,}"
            )


if __name__ == "__main__":
    main()
