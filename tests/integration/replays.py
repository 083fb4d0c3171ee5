"""`tickscan replay` of Binance USD-M captures into the test broker and ClickHouse, quietly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from flows.candles.reports import ReplayReport
from runtime.settings import ClickHouseSettings, KafkaSettings
from tickscan.replay import replay
from tickscan.settings import Settings


def replay_settings(data_dir: Path, bootstrap: str, dsn: str, database: str) -> Settings:
    """The settings of a replay into the test broker (3 partitions) and one database.

    Args:
        data_dir: The replay's data directory.
        bootstrap: The test broker.
        dsn: The test ClickHouse.
        database: The migrated database written to.

    Returns:
        The settings to hand to `replay_quietly`.
    """
    return Settings(
        data_dir=data_dir,
        kafka=KafkaSettings(bootstrap=bootstrap, partitions=3),
        clickhouse=ClickHouseSettings(dsn=dsn, database=database),
    )


def replay_quietly(
    paths: Sequence[Path], settings: Settings, bootstrap: str, **options: Any
) -> ReplayReport:
    """Replay USD-M files as `tickscan replay` does, printing nothing.

    Args:
        paths: The captures or archives.
        settings: Where to (see `replay_settings`).
        bootstrap: The test broker.
        **options: More of `replay`'s arguments (`exchange`, `store_settings`).

    Returns:
        The replay's report.
    """
    return replay(
        paths,
        settings=settings,
        market="usdm",
        bootstrap=bootstrap,
        console=Console(quiet=True),
        **options,
    )
