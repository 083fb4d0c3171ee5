"""The whole API on the session's broker and ClickHouse: its live topics and its settings."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from api.settings import AccountsSettings, ApiSettings
from runtime.kafka import ensure_topics
from runtime.settings import ClickHouseSettings, KafkaSettings
from schemas import topics
from tickscan.settings import Settings


def live_topics(bootstrap: str, partitions: int) -> str:
    """Create the topics the API reads live (ranks, signals, candles) under a fresh prefix.

    Returns:
        The prefix (`api.topic_prefix`).
    """
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    names = [prefix + t for t in (topics.RANKS, topics.SIGNALS, topics.CANDLES)]
    ensure_topics(bootstrap, names, partitions)
    return prefix


def live_api_settings(
    data_dir: Path,
    bootstrap: str,
    dsn: str,
    database: str,
    prefix: str,
    partitions: int,
    *,
    accounts: AccountsSettings | None = None,
    **api: Any,
) -> Settings:
    """Settings of an API reading `prefix`'s live topics and `database`.

    Args:
        data_dir: The API's data directory.
        bootstrap: The Kafka bootstrap servers.
        dsn: The ClickHouse DSN.
        database: The ClickHouse database.
        prefix: The live topics' prefix, from `live_topics`.
        partitions: The live topics' partitions.
        accounts: The accounts settings; the defaults when None.
        api: More `ApiSettings` fields.
    """
    parts: dict[str, Any] = {} if accounts is None else {"accounts": accounts}
    return Settings(
        data_dir=data_dir,
        kafka=KafkaSettings(bootstrap=bootstrap, partitions=partitions),
        clickhouse=ClickHouseSettings(dsn=dsn, database=database),
        api=ApiSettings(topic_prefix=prefix, **api),
        **parts,
    )
