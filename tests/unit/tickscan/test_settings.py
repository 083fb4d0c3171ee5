"""Each process kind reads every section it holds from TICKSCAN_* variables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from api.settings import ApiAppSettings
from flows.ingest.settings import LiveIngestSettings
from tickscan.settings import CandlesSettings, Settings, SignalsSettings

README = Path(__file__).resolve().parents[3] / "README.md"


pytestmark = pytest.mark.usefixtures("no_tickscan_env")


def test_the_candle_flow_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKSCAN_CANDLES__LATENESS_MS", "2500")
    monkeypatch.setenv("TICKSCAN_CANDLES__IDLE_CLOSE_MS", "4000")
    monkeypatch.setenv("TICKSCAN_CANDLES__BATCH_SIZE", "700")
    for settings in (CandlesSettings(), Settings()):
        assert settings.candles.lateness_ms == 2500
        assert settings.candles.idle_close_ms == 4000
        assert settings.candles.batch_size == 700
        assert settings.candles.horizon_ms == 300_000


def test_each_process_kind_reads_its_own_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKSCAN_KAFKA__BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("TICKSCAN_SIGNALS__RULES__VOLUME_SPIKE_FACTOR", "4")
    monkeypatch.setenv("TICKSCAN_INGEST__MAX_STREAMS", "50")
    monkeypatch.setenv("TICKSCAN_API__PORT", "8123")
    monkeypatch.setenv("TICKSCAN_ACCOUNTS__BILLING__STRIPE_API_KEY", "sk_test_1")
    everything = Settings()
    for signals in (SignalsSettings(), everything):
        assert signals.signals.rules.volume_spike_factor == 4.0
    for ingest in (LiveIngestSettings(), everything):
        assert ingest.ingest.max_streams == 50
    for api in (ApiAppSettings(), everything):
        assert api.api.port == 8123
        key = api.accounts.billing.stripe_api_key
        assert key is not None and key.get_secret_value() == "sk_test_1"
    for kind in (CandlesSettings(), SignalsSettings(), LiveIngestSettings(), everything):
        assert kind.kafka.bootstrap == "kafka:9092"


def test_a_section_another_process_kind_holds_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One environment serves every process of a deployment: the candle flow does not
    # judge the API's port, while the API still refuses it.
    monkeypatch.setenv("TICKSCAN_API__PORT", "not-a-port")
    assert CandlesSettings().candles.lateness_ms == 1_000
    with pytest.raises(ValueError, match="port"):
        ApiAppSettings()


def _field_path(model: type[BaseModel], names: list[str]) -> bool:
    field = model.model_fields.get(names[0])
    if field is None:
        return False
    if len(names) == 1:
        return True
    inner = field.annotation
    return (
        isinstance(inner, type) and issubclass(inner, BaseModel) and _field_path(inner, names[1:])
    )


def test_every_variable_the_readme_names_is_a_setting() -> None:
    text = README.read_text()
    named = set(re.findall(r"\bTICKSCAN_[A-Z0-9_]*[A-Z0-9]\b", text))
    # Not settings: the test suite's services and the UI dev server's API address.
    named -= {"TICKSCAN_TEST_KAFKA", "TICKSCAN_TEST_CLICKHOUSE", "TICKSCAN_API"}
    assert "TICKSCAN_KAFKA__EMBEDDED_MAX_MB" in named
    assert "TICKSCAN_API__TRUSTED_PROXIES" in named
    unknown = [
        name
        for name in sorted(named)
        if not _field_path(Settings, name.removeprefix("TICKSCAN_").lower().split("__"))
    ]
    assert unknown == []
