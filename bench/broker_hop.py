"""One hop through the embedded broker: a record's delay from produce to a consumer, and
the broker's CPU, at a market's record rate, one run.

The paper engine's path from a trade to its fill crosses the broker twice (the trade in,
the fill out), so the delay of one hop at the same rate is the floor under the engine's
figures in `bench/paper.py`. Here one producer publishes `--rate` records a second
(130 bytes, 2,000 keys, over three topics of `--partitions` partitions each: quotes,
trades and marks, in 10 ms slices, as `bench/paper.py` does) and one consumer, configured
as the engine's (`runtime.kafka.consumer_config`, explicit assignment), reads them all.
Each record carries its produce time; the consumer's clock gives the delay.

Measured over `--seconds` after a 3 s warm-up, for the producer alone and then with the
consumer: the broker's CPU (cores) each way, and the delay's p50, p99 and max.

The last line is JSON: {"rate", "broker_cores_produce_only", "broker_cores",
"hop_p50_ms", "hop_p99_ms", "hop_max_ms", "records"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.broker import EmbeddedBroker
from runtime.figures import percentile
from runtime.kafka import consumer_config, ensure_topics, producer_config

TOPICS = ("bench.quotes", "bench.trades", "bench.marks")
KEYS = [f"bench:usdm:SYM{i:04d}USDT".encode() for i in range(2_000)]
PAD = b"x" * 110


def produce(bootstrap: str, rate: int, stop: threading.Event) -> None:
    """Publish `rate` records a second in 10 ms slices, each stamped with its produce
    time (µs, 16 digits) until `stop`."""
    producer = Producer(producer_config(bootstrap, **{"linger.ms": 2}))
    started = time.monotonic()
    sent = 0
    while not stop.is_set():
        due = int((time.monotonic() - started) * rate) - sent
        for k in range(sent, sent + due):
            stamp = b"%016d" % (time.time_ns() // 1000)
            producer.produce(TOPICS[k % 3], stamp + PAD, KEYS[k % len(KEYS)])
        sent += due
        producer.poll(0)
        time.sleep(0.01)
    producer.flush(10)


def consume(
    bootstrap: str, delays: list[float], stop: threading.Event, overrides: dict[str, str]
) -> None:
    """Read every partition from its end, as the paper engine does, noting each record's
    delay (ms)."""
    consumer = Consumer(consumer_config(bootstrap, **overrides))
    found = consumer.list_topics(timeout=30).topics
    assignment = []
    for topic in TOPICS:
        for partition in sorted(found[topic].partitions):
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            assignment.append(TopicPartition(topic, partition, high))
    consumer.assign(assignment)
    while not stop.is_set():
        messages = consumer.consume(10_000, 0) or consumer.consume(1, 0.05)
        now_us = time.time_ns() // 1000
        for message in messages:
            value = message.value()
            if message.error() is None and value:
                delays.append((now_us - int(value[:16])) / 1000)
    consumer.close()


def broker_cores(broker: psutil.Process, seconds: float) -> float:
    """The broker's CPU (cores) over the next `seconds`."""
    before = sum(broker.cpu_times()[:2])
    started = time.monotonic()
    time.sleep(seconds)
    return (sum(broker.cpu_times()[:2]) - before) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=30_000, help="records per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--consumer", action="append", default=[], metavar="KEY=VALUE",
        help="a librdkafka property of the consumer, over the engine's (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.consumer)
    with EmbeddedBroker(log_dir=Path(tempfile.mkdtemp(prefix="broker-hop-"))) as broker:
        ensure_topics(broker.bootstrap, TOPICS, args.partitions)
        assert broker.pid is not None
        tansu = psutil.Process(broker.pid)
        stop = threading.Event()
        delays: list[float] = []
        producer = threading.Thread(target=produce, args=(broker.bootstrap, args.rate, stop))
        producer.start()
        time.sleep(3)
        alone = broker_cores(tansu, args.seconds)
        consumer = threading.Thread(
            target=consume, args=(broker.bootstrap, delays, stop, overrides)
        )
        consumer.start()
        time.sleep(3)
        delays.clear()
        cores = broker_cores(tansu, args.seconds)
        measured = list(delays)
        stop.set()
        producer.join()
        consumer.join()
    result = {
        "rate": args.rate,
        "broker_cores_produce_only": round(alone, 3),
        "broker_cores": round(cores, 3),
        "hop_p50_ms": round(percentile(measured, 0.5), 2),
        "hop_p99_ms": round(percentile(measured, 0.99), 2),
        "hop_max_ms": round(max(measured, default=float("nan")), 2),
        "records": len(measured),
    }
    print(
        f"{args.rate:,} records/s: broker {result['broker_cores_produce_only']} cores producing "
        f"only, {result['broker_cores']} with one consumer; produce -> consume p50 "
        f"{result['hop_p50_ms']} ms, p99 {result['hop_p99_ms']} ms, max {result['hop_max_ms']} "
        f"ms over {len(measured):,} records"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
