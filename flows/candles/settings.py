"""The candle flow's settings (`candles`): how it treats time and batches."""

from __future__ import annotations

from pydantic import Field

from flows.batching import BatchSettings


class CandleFlowSettings(BatchSettings):
    """How the candle flow treats time and batches."""

    lateness_ms: int = Field(default=1_000, ge=0)
    """A window stays open this long after the newest trade time of its partition passes
    its end, for stragglers from other symbols' connections."""

    horizon_ms: int = Field(default=300_000, ge=60_000)
    """Emitted candles stay revisable this long; an older late trade is dead-lettered."""

    idle_close_ms: int | None = Field(default=2_000, ge=0)
    """Live only: when a partition has been read to its end and this much wall time has
    passed since its newest trade, let its event time run on with wall time so quiet
    windows close. None for replays, which end with an end marker instead."""
