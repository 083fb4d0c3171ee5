"""TradePublisher against the real Kafka-protocol broker: every trade once, in order, ended."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import msgspec
import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from flows.ingest.delivery import DeliveryFailed, PublishReport
from flows.ingest.trades import TradePublisher
from flows.sources.files import Rejected
from flows.sources.simulator import SyntheticMarket
from runtime.broker import free_port
from runtime.kafka import consumer_config, ensure_topics
from schemas import topics
from schemas.deadletter import DeadLetter
from schemas.trades import Trade, trade_decoder

pytestmark = pytest.mark.integration

PARTITIONS = 6


@pytest.fixture
def fresh_topics(kafka_bootstrap: str, fresh_topic: Callable[[str], str]) -> tuple[str, str]:
    """A new trades topic and dead-letter topic, so runs never see each other's data."""
    trades, dead = fresh_topic(topics.TRADES), fresh_topic(topics.DEADLETTER)
    ensure_topics(kafka_bootstrap, [trades, dead], partitions=PARTITIONS)
    return trades, dead


def is_end_marker(msg: Message, run_id: str) -> bool:
    headers = dict(msg.headers() or [])
    return headers.get(topics.CONTROL_HEADER) == topics.END_OF_RUN and msg.value() == (
        run_id.encode()
    )


def trade_of(msg: Message) -> Trade:
    value = msg.value()
    assert value is not None
    return trade_decoder().decode(value)


def read_run(
    bootstrap: str, topic: str, report: PublishReport, run_id: str, timeout: float = 60.0
) -> tuple[dict[int, list[Message]], dict[int, Message]]:
    """Read one run exactly: each partition from the run's start to the run's end marker.

    Returns:
        The data records per partition, and the end marker per partition.
    """
    consumer = Consumer(consumer_config(bootstrap))
    try:
        starts = {p: span.start_offset for p, span in report.partitions.items()}
        assert None not in starts.values()
        consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items() if o is not None])
        data: dict[int, list[Message]] = collections.defaultdict(list)
        ends: dict[int, Message] = {}
        deadline = time.monotonic() + timeout
        while len(ends) < len(starts):
            assert time.monotonic() < deadline, f"end markers seen only in {sorted(ends)}"
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                assert msg.error() is None, msg.error()
                partition = msg.partition()
                assert partition is not None
                if partition in ends:
                    continue  # past this run's end: not ours
                if is_end_marker(msg, run_id):
                    ends[partition] = msg
                else:
                    data[partition].append(msg)
        return data, ends
    finally:
        consumer.close()


def publish_run(
    bootstrap: str, topic: str, dead: str, trades: list[Trade], run_id: str
) -> PublishReport:
    with TradePublisher(bootstrap, topic=topic, deadletter_topic=dead) as publisher:
        half = len(trades) // 2
        for trade in trades[:half]:
            publisher.publish(trade)
        assert publisher.publish_many(trades[half:]) == len(trades) - half
        publisher.mark_end(run_id)
        return publisher.report()


def test_every_trade_arrives_once_in_symbol_order_before_the_end_markers(
    kafka_bootstrap: str, fresh_topics: tuple[str, str]
) -> None:
    topic, dead = fresh_topics
    market = SyntheticMarket(50, 1_000.0, seed=42)
    trades = list(market.trades(10_000))
    assert len({t.symbol for t in trades}) == 50

    report = publish_run(kafka_bootstrap, topic, dead, trades, "run-1")

    assert report.published == 10_000
    assert report.delivery_failures == 0 and report.first_error is None
    assert sorted(report.partitions) == list(range(PARTITIONS))

    data, ends = read_run(kafka_bootstrap, topic, report, "run-1")
    received = [trade_of(m) for p in sorted(data) for m in data[p]]
    # Every trade exactly once (trades are unique: per-symbol ids never repeat).
    assert len(received) == 10_000
    assert collections.Counter(received) == collections.Counter(trades)

    partition_of: dict[str, set[int]] = collections.defaultdict(set)
    for partition, messages in data.items():
        for msg in messages:
            key = msg.key()
            assert key is not None
            partition_of[key.decode()].add(partition)
    assert all(len(parts) == 1 for parts in partition_of.values()), partition_of
    assert len(partition_of) == 50

    sent_order: dict[str, list[Trade]] = collections.defaultdict(list)
    for t in trades:
        sent_order[t.symbol].append(t)
    got_order: dict[str, list[Trade]] = collections.defaultdict(list)
    for partition in sorted(data):
        for msg in data[partition]:
            t = trade_of(msg)
            got_order[t.symbol].append(t)
    assert got_order == sent_order

    for partition, span in report.partitions.items():
        offsets = [m.offset() for m in data[partition]]
        assert offsets, f"partition {partition} got no trade"
        assert span.first_offset == offsets[0] == min(o for o in offsets if o is not None)
        assert span.last_offset == offsets[-1]
        assert span.end_offset == ends[partition].offset()
        assert span.last_offset is not None and span.end_offset is not None
        assert span.end_offset > span.last_offset
        assert ends[partition].key() is None


def test_a_second_run_reads_back_alone_and_rejects_go_to_the_dead_letter_topic(
    kafka_bootstrap: str, fresh_topics: tuple[str, str]
) -> None:
    topic, dead = fresh_topics
    market = SyntheticMarket(8, 100.0, seed=1)
    first = list(market.trades(500))
    second = list(market.trades(300))
    publish_run(kafka_bootstrap, topic, dead, first, "run-a")

    bad = Rejected("capture.gz:3", b'{"e":"trade","p":"NaN"', "bad_json", "truncated")
    with TradePublisher(kafka_bootstrap, topic=topic, deadletter_topic=dead) as publisher:
        publisher.publish_many(second)
        publisher.reject(bad)
        publisher.mark_end("run-b")
        report = publisher.report()
    assert (report.published, report.rejected) == (300, 1)

    data, _ = read_run(kafka_bootstrap, topic, report, "run-b")
    got = [trade_of(m) for msgs in data.values() for m in msgs]
    # Exactly the second run: none of the first run's 500 trades, none of the second lost.
    assert collections.Counter(got) == collections.Counter(second)

    consumer = Consumer(consumer_config(kafka_bootstrap))
    try:
        consumer.assign([TopicPartition(dead, p, 0) for p in range(PARTITIONS)])
        letters: list[Message] = []
        deadline = time.monotonic() + 30
        while not letters and time.monotonic() < deadline:
            letters = consumer.consume(num_messages=10, timeout=0.5)
    finally:
        consumer.close()
    assert len(letters) == 1
    assert letters[0].key() == b"ingest"
    letter = msgspec.json.decode(letters[0].value() or b"", type=DeadLetter)
    assert (letter.stage, letter.reason) == ("ingest", "bad_json")
    assert letter.value == bad.raw.decode() and "capture.gz:3" in letter.detail


def test_undeliverable_trades_fail_the_flush_with_a_count() -> None:
    # Nothing listens on this port: every delivery times out after 1 s.
    dead_end = f"127.0.0.1:{free_port()}"
    trades = list(SyntheticMarket(3, 10.0).trades(5))
    publisher = TradePublisher(dead_end, overrides={"message.timeout.ms": 1_000})
    with pytest.raises(DeliveryFailed) as failure, publisher:
        publisher.publish_many(trades)
    assert failure.value.count == 5
    assert publisher.report().published == 0
    assert publisher.report().delivery_failures == 5


def test_a_full_producer_queue_waits_instead_of_dropping(
    kafka_bootstrap: str, fresh_topics: tuple[str, str]
) -> None:
    topic, dead = fresh_topics
    trades = list(SyntheticMarket(10, 1_000.0, seed=9).trades(5_000))
    # A 20-message queue overflows on nearly every produce: each must wait, none vanish.
    tiny = {"queue.buffering.max.messages": 20, "linger.ms": 1}
    with TradePublisher(kafka_bootstrap, topic=topic, deadletter_topic=dead, overrides=tiny) as p:
        for trade in trades[:2_500]:
            p.publish(trade)
        p.publish_many(trades[2_500:])
        p.mark_end("tiny")
    report = p.report()
    assert report.published == 5_000 and report.delivery_failures == 0
    data, _ = read_run(kafka_bootstrap, topic, report, "tiny")
    assert collections.Counter(trade_of(m) for msgs in data.values() for m in msgs) == (
        collections.Counter(trades)
    )
