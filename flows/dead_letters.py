"""Dead letters for Kafka records a flow rejects, and their Kafka form (keyed by stage)."""

from __future__ import annotations

import base64
import time
from typing import Any

from schemas.deadletter import DeadLetter, encode_deadletter


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
