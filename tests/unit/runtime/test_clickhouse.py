"""DSN parsing for ClickHouse clients (no engine is opened here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.clickhouse import chdb_path, connect
from runtime.errors import ClickHouseSetupError


def test_chdb_paths_absolute_relative_and_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert chdb_path("chdb:///var/lib/tickscan/ch") == Path("/var/lib/tickscan/ch")
    assert chdb_path("chdb://data/clickhouse") == tmp_path.resolve() / "data" / "clickhouse"
    assert chdb_path("chdb://:memory:") is None
    assert chdb_path("http://localhost:8123") is None


@pytest.mark.parametrize(
    "dsn", ["clickhouse://localhost:9000", "localhost:8123", "http://", "tcp://ch:9000"]
)
def test_unsupported_dsns_are_refused(dsn: str) -> None:
    with pytest.raises(ClickHouseSetupError, match="unsupported ClickHouse DSN"):
        connect(dsn)


def test_a_refused_dsn_does_not_echo_its_password() -> None:
    with pytest.raises(ClickHouseSetupError) as raised:
        connect("clickhouse://user:hunter2@ch:9000")
    assert "hunter2" not in str(raised.value)
