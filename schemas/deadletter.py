"""Dead letters: a message a stage could not use, kept whole with the reason."""

from __future__ import annotations

import msgspec


class DeadLetter(msgspec.Struct, frozen=True):
    """A rejected message and why.

    `value` is the original bytes (as text when they were UTF-8, else base64 with
    `value_encoding="base64"`), so the message can be inspected and replayed.
    """

    stage: str
    reason: str
    detail: str
    source_topic: str | None
    partition: int | None
    offset: int | None
    key: str | None
    value: str
    value_encoding: str = "utf-8"
    at_ms: int = 0


_encoder = msgspec.json.Encoder()
encode_deadletter = _encoder.encode
"""Encode a dead letter to JSON."""
