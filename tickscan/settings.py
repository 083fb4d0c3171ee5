"""One settings object per process kind, combined from the sections each package owns.

Every section is read from the environment (prefix `TICKSCAN_`, `__` between nested
names): the plumbing (`runtime.settings`: `DATA_DIR`, `KAFKA__*`, `CLICKHOUSE__*`), the
API's (`api.settings`: `API__*`, `ACCOUNTS__*`), the live ingest's
(`flows.ingest.settings`: `INGEST__*`), the candle flow's (`flows.candles.settings`:
`CANDLES__*`), the signals flow's (`flows.signals.settings`: `SIGNALS__*`), the
perpetuals store's (`flows.perps.settings`: `PERPS__*`) and the paper engine's
(`flows.trading.settings`: `PAPER__*`).
"""

from __future__ import annotations

from pydantic import Field

from api.settings import ApiAppSettings
from flows.candles.settings import CandleFlowSettings
from flows.ingest.settings import LiveIngestSettings
from flows.perps.settings import PerpStoreSettings
from flows.signals.settings import SignalFlowSettings
from flows.trading.settings import PaperSettings
from runtime.settings import RuntimeSettings


class CandlesSettings(RuntimeSettings):
    """`tickscan candles`: the plumbing and the candle flow's `candles`."""

    candles: CandleFlowSettings = Field(default_factory=CandleFlowSettings)


class SignalsSettings(RuntimeSettings):
    """`tickscan signals`: the plumbing and the signals flow's `signals` (batching, rules),
    e.g. `TICKSCAN_SIGNALS__RULES__VOLUME_SPIKE_FACTOR=4`."""

    signals: SignalFlowSettings = Field(default_factory=SignalFlowSettings)


class PerpsSettings(RuntimeSettings):
    """`tickscan perps`: the plumbing and the perpetuals store's `perps` (batching, the
    marks TTL, funding derivation), e.g. `TICKSCAN_PERPS__MARKS_TTL_DAYS=7`."""

    perps: PerpStoreSettings = Field(default_factory=PerpStoreSettings)


class PaperProcessSettings(RuntimeSettings):
    """`tickscan paper`: the plumbing and the paper engine's `paper` (fees, leverage, margin
    tiers, book freshness), e.g. `TICKSCAN_PAPER__MAX_LEVERAGE=20`."""

    paper: PaperSettings = Field(default_factory=PaperSettings)


class Settings(
    ApiAppSettings,
    LiveIngestSettings,
    CandlesSettings,
    SignalsSettings,
    PerpsSettings,
    PaperProcessSettings,
):
    """`tickscan run` (and `replay`, `backfill`): every section, for a process that runs the
    API, the live ingest and every flow."""
