"""Dead letters for Kafka records a flow rejects, their Kafka form (keyed by stage), and
reading them back off the dead-letter topic."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaException, TopicPartition

from runtime.kafka import consumer_config
from schemas.deadletter import DeadLetter, encode_deadletter

logger = logging.getLogger(__name__)

_METADATA_TIMEOUT_S = 10.0
_decode = msgspec.json.Decoder(DeadLetter).decode


def record_dead_letter(stage: str, record: Any, reason: str, detail: str) -> DeadLetter:
    """The dead letter for a Kafka record a stage could not use.

    Args:
        stage: The rejecting stage, e.g. `candles`.
        record: The record (`confluent_kafka.Message` or `flows.sources.kafka.Record`).
        reason: A short machine reason, e.g. `undecodable`.
        detail: What exactly was wrong, for a human.

    Returns:
        A `DeadLetter` naming where the record was and keeping its value whole: as text
        when it is UTF-8, else base64.
    """
    value = record.value() or b""
    try:
        text, encoding = value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(value).decode("ascii"), "base64"
    key = record.key()
    return DeadLetter(
        stage=stage,
        reason=reason,
        detail=detail,
        source_topic=record.topic(),
        partition=record.partition(),
        offset=record.offset(),
        key=key.decode("utf-8", "replace") if key is not None else None,
        value=text,
        value_encoding=encoding,
        at_ms=time.time_ns() // 1_000_000,
    )


def dead_letter_message(letter: DeadLetter) -> tuple[str, bytes]:
    """Kafka key and value of a dead letter (keyed by stage)."""
    return letter.stage, encode_deadletter(letter)


def dead_letter_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Where the next dead letter will land in each partition of `topic` (its high watermarks).

    Read before a run, they are where `read_dead_letters` starts to find that run's letters.
    """
    consumer = Consumer(consumer_config(bootstrap))
    try:
        partitions = consumer.list_topics(topic, timeout=_METADATA_TIMEOUT_S).topics[topic]
        return {
            p: consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=_METADATA_TIMEOUT_S
            )[1]
            for p in partitions.partitions
        }
    finally:
        consumer.close()


def read_dead_letters(
    bootstrap: str,
    topic: str,
    since: dict[int, int],
    *,
    want: int,
    keep: Callable[[DeadLetter], bool],
    timeout_s: float = 30.0,
) -> list[DeadLetter]:
    """The dead letters on `topic` after `since` that `keep` accepts, until `want` are found.

    Args:
        bootstrap: Kafka bootstrap servers.
        topic: The dead-letter topic.
        since: Per partition, the offset to start at (from `dead_letter_offsets`).
        want: How many letters to find; reading stops then or after `timeout_s`.
        keep: Which letters are wanted (a topic holds every process's letters).
        timeout_s: Seconds to wait at most for letters still on their way.

    Returns:
        The letters found, fewer than `want` when the time ran out.
    """
    consumer = Consumer(consumer_config(bootstrap))
    found: list[DeadLetter] = []
    deadline = time.monotonic() + timeout_s
    try:
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in since.items()])
        while len(found) < want and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                try:
                    letter = _decode(message.value() or b"")
                except msgspec.DecodeError as exc:
                    logger.warning("skipping an undecodable dead letter on %s: %s", topic, exc)
                    continue
                if keep(letter):
                    found.append(letter)
    except KafkaException as exc:
        logger.error("reading dead letters from %s failed: %s", topic, exc)
    finally:
        consumer.close()
    return found
