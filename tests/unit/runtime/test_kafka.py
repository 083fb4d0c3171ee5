"""Client configurations: the defaults that matter, and overrides that win."""

from __future__ import annotations

from typing import Any

from runtime.kafka import (
    BUFFER_FULL_WAIT_S,
    BULK_PRODUCER,
    consumer_config,
    flush_or_drop,
    produce_when_room,
    producer_config,
    topic_config,
)


def test_producer_defaults_are_durable_and_never_create_topics() -> None:
    config = producer_config("b:9092")
    assert config["bootstrap.servers"] == "b:9092"
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert config["allow.auto.create.topics"] is False


def test_consumer_defaults_suit_explicit_assignment() -> None:
    config = consumer_config("b:9092")
    assert config["group.id"]
    assert config["enable.auto.commit"] is False
    assert config["enable.partition.eof"] is False
    assert config["fetch.queue.backoff.ms"] == 5


def test_overrides_win_including_dotted_names() -> None:
    assert producer_config("b", **{"linger.ms": 50})["linger.ms"] == 50
    assert producer_config("b", **{"compression.type": "lz4"})["compression.type"] == "lz4"
    assert consumer_config("b", **{"group.id": "mine"})["group.id"] == "mine"


def test_topics_are_created_with_time_retention_and_segments_that_roll_within_it() -> None:
    six_hours = 6 * 3_600_000
    assert topic_config(six_hours) == {
        "cleanup.policy": "delete",
        "retention.ms": str(six_hours),
        # Kafka deletes closed segments only: the default 7-day segment.ms would keep a
        # quiet topic's records for 7 days whatever retention.ms says.
        "segment.ms": "3600000",
    }
    assert topic_config(600_000)["segment.ms"] == "600000"


def test_bulk_producer_batches_and_compresses_over_the_defaults() -> None:
    config = producer_config("b", **BULK_PRODUCER)
    assert config["linger.ms"] > producer_config("b")["linger.ms"]
    assert config["compression.type"] == "lz4"
    assert config["enable.idempotence"] is True


class _Queued:
    """A producer stand-in that still holds `left` messages when its flush times out."""

    def __init__(self, left: int) -> None:
        self.left = left
        self.purged = False
        self.waited: float | None = None

    def flush(self, timeout: float) -> int:
        self.waited = timeout
        return self.left

    def purge(self) -> None:
        self.purged = True


def test_flush_or_drop_drops_only_what_the_wait_did_not_deliver() -> None:
    delivered = _Queued(left=0)
    assert flush_or_drop(delivered, 2.5) == 0  # type: ignore[arg-type]
    assert delivered.waited == 2.5 and not delivered.purged

    stuck = _Queued(left=7)
    assert flush_or_drop(stuck, 1.0) == 7  # type: ignore[arg-type]
    assert stuck.purged


class FullQueue:
    """A producer whose queue is full for its first `full` produce calls."""

    def __init__(self, full: int) -> None:
        self.full = full
        self.calls: list[tuple[Any, ...]] = []

    def produce(self, topic: str, value: bytes, key: Any, **kwargs: Any) -> None:
        self.calls.append(("produce", topic, value, key, kwargs))
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")

    def poll(self, timeout: float) -> int:
        self.calls.append(("poll", timeout))
        return 0


def test_a_full_queue_is_served_until_the_message_goes_in_once() -> None:
    producer = FullQueue(full=2)

    def report(err: Any, msg: Any) -> None:
        pass

    produce_when_room(producer, "t", b"v", None, report, partition=3)  # type: ignore[arg-type]
    sent = ("produce", "t", b"v", None, {"on_delivery": report, "partition": 3})
    wait = ("poll", BUFFER_FULL_WAIT_S)
    assert producer.calls == [sent, wait, sent, wait, sent]
