"""Process settings read from the environment (prefix TICKSCAN_, nested with __)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    """Where Kafka is and how we create topics."""

    bootstrap: str | None = None
    """`host:port[,host:port]` of a Kafka cluster; None starts the embedded broker."""

    partitions: int = Field(default=6, ge=1)
    """Partitions of each topic we create (existing topics are left as they are)."""

    replication_factor: int = Field(default=1, ge=1)
    """Replication factor of each topic we create."""


class ClickHouseSettings(BaseModel):
    """Where ClickHouse is and which database holds our tables."""

    dsn: str | None = None
    """`chdb://<dir>` (embedded engine) or `http(s)://user:password@host:port`; None means
    `chdb://<data_dir>/clickhouse`."""

    database: str = "tickscan"
    """Database holding every tickscan table."""


class Settings(BaseSettings):
    """Settings of a tickscan process, e.g. `TICKSCAN_KAFKA__BOOTSTRAP=kafka:9092`."""

    model_config = SettingsConfigDict(
        env_prefix="TICKSCAN_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Path("data")
    """Directory for local state: the embedded ClickHouse data and the broker's log."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    clickhouse: ClickHouseSettings = Field(default_factory=ClickHouseSettings)

    def clickhouse_dsn(self) -> str:
        """The ClickHouse DSN to use.

        Returns:
            `clickhouse.dsn` when set, else `chdb://` plus the absolute path of
            `<data_dir>/clickhouse` (absolute, so a later change of working directory
            cannot point the same process at a second chdb directory).
        """
        if self.clickhouse.dsn:
            return self.clickhouse.dsn
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"
