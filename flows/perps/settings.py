"""The perpetuals store's settings (`perps`): batching, the marks TTL, funding derivation."""

from __future__ import annotations

from pydantic import Field

from flows.batching import BatchSettings


class PerpStoreSettings(BatchSettings):
    """How the perpetuals store batches, how long ``marks_1s`` keeps rows, and how it
    derives funding from the mark stream.

    Environment: ``TICKSCAN_PERPS__MARKS_TTL_DAYS=7`` and so on.
    """

    marks_ttl_days: int = Field(default=30, ge=1, le=36_500)
    """Days ``marks_1s`` keeps a row (its TTL, applied to the table at start when it
    differs; one row per symbol per second is 173 M rows a day for 2,000 perpetuals)."""

    funding_max_gap_s: float = Field(default=60.0, gt=0)
    """A live funding estimate stands for the rate that applied only when it was seen at
    most this long before the funding time; otherwise only the backfill records that rate."""

    resume_lookback_s: int = Field(default=3_600, ge=0)
    """At start the funding state is rebuilt from each symbol's newest mark in
    ``marks_1s`` within this many seconds (and the latest settled time in ``funding``)."""

    clickhouse_max_rows: int = Field(default=100_000, ge=1)
    """Insert as soon as this many records are buffered."""
