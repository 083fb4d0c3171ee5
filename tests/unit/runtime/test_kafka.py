"""Client configurations: the defaults that matter, and overrides that win."""

from __future__ import annotations

from runtime.kafka import consumer_config, producer_config


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
