"""How a Kafka -> ClickHouse flow batches: records per dataflow item, age of buffered rows."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BatchSettings(BaseModel):
    """The batching every flow from Kafka batches to ClickHouse inserts shares."""

    batch_size: int = Field(default=5_000, ge=1)
    """Most records fetched from one partition per dataflow item."""

    clickhouse_flush_ms: int = Field(default=1_000, ge=0)
    """Oldest a buffered row may get before it is inserted."""
