"""The signals flow's settings (`signals`): its batching and its rules' parameters."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from flows.batching import BatchSettings
from schemas.signals import Timeframe


class SignalParams(BaseModel):
    """Parameters of the built-in rules and how many bars each timeframe keeps."""

    volume_spike_factor: float = Field(default=3.0, gt=0)
    """A volume spike is a bar with at least this many times the mean volume before it."""

    volume_spike_bars: int = Field(default=20, ge=1)
    """Bars the volume spike's mean is taken over."""

    breakout_bars: int = Field(default=20, ge=1)
    """A breakout closes beyond the highest high / lowest low of this many bars."""

    ema_fast: int = Field(default=9, ge=1)
    ema_slow: int = Field(default=21, ge=2)
    """EMA lengths of the crossing (each seeded with the mean of its first closes)."""

    history_bars: int = Field(default=100, ge=6)
    """Closed bars kept per timeframe (at least the six 4h bars of a 1d bar). The EMAs
    are computed over them, so their seed weighs (1 - 2/(slow+1))^(history_bars - slow)
    in the last value: 8e-5 for 21/100."""

    timeframes: tuple[Timeframe, ...] = ("1m", "5m", "15m", "1h")
    """Timeframes evaluated (4h and 1d need days of history to fire)."""

    @model_validator(mode="after")
    def _check(self) -> SignalParams:
        if self.ema_fast >= self.ema_slow:
            raise ValueError("ema_fast must be shorter than ema_slow")
        longest = max(self.volume_spike_bars, self.breakout_bars, self.ema_slow)
        if self.history_bars <= longest:
            raise ValueError(f"history_bars must exceed the longest lookback ({longest})")
        return self


class SignalFlowSettings(BatchSettings):
    """How the signals flow batches, and its rules' parameters."""

    rules: SignalParams = Field(default_factory=SignalParams)
