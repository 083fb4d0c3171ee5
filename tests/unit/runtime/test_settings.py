"""Settings come from TICKSCAN_* variables, nested with __."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickscan.settings import Settings

pytestmark = pytest.mark.usefixtures("no_tickscan_env")


def test_defaults_mean_embedded_broker_and_chdb_under_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.kafka.bootstrap is None
    # One partition a topic on the embedded broker: every stage is a thread of one
    # process there, and each partition costs the broker CPU on every request.
    assert (settings.kafka.topic_partitions(), settings.kafka.replication_factor) == (1, 1)
    assert settings.clickhouse.database == "tickscan"
    assert settings.clickhouse_dsn() == f"chdb://{tmp_path.resolve()}/data/clickhouse"


def test_nested_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TICKSCAN_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TICKSCAN_KAFKA__BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("TICKSCAN_KAFKA__PARTITIONS", "12")
    monkeypatch.setenv("TICKSCAN_CLICKHOUSE__DATABASE", "md")
    settings = Settings()
    assert settings.data_dir == tmp_path / "state"
    assert settings.kafka.bootstrap == "kafka:9092"
    assert settings.kafka.topic_partitions() == 12
    assert settings.clickhouse.database == "md"
    assert settings.clickhouse_dsn() == f"chdb://{tmp_path / 'state' / 'clickhouse'}"


def test_an_explicit_clickhouse_dsn_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKSCAN_CLICKHOUSE__DSN", "http://default:secret@clickhouse:8123")
    assert Settings().clickhouse_dsn() == "http://default:secret@clickhouse:8123"


def test_invalid_partition_count_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKSCAN_KAFKA__PARTITIONS", "0")
    with pytest.raises(ValueError, match="partitions"):
        Settings()


def test_a_cluster_gets_six_partitions_a_topic_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKSCAN_KAFKA__BOOTSTRAP", "kafka:9092")
    assert Settings().kafka.topic_partitions() == 6
    monkeypatch.setenv("TICKSCAN_KAFKA__PARTITIONS", "3")
    assert Settings().kafka.topic_partitions() == 3
