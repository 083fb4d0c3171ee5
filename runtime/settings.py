"""Plumbing settings every process shares: Kafka, ClickHouse, the data directory."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_PARTITIONS = 1
"""Partitions of a topic on the embedded broker. Every stage there is a thread of one
process, so more partitions parallelise nothing, and each costs the broker CPU on every
produce and fetch request: at 30,000 records/s over three topics, one partition rather
than six took the broker from ~1.1 to ~0.55 cores with one reader and a record's hop
from p99 ~95 to ~16 ms (`bench/broker_hop.py`); `make run` went from 0.86 to ~0.68 broker
cores (`bench/soak_run.py`)."""

CLUSTER_PARTITIONS = 6
"""Partitions of a topic on a Kafka cluster: room to run a stage as several processes."""


class KafkaSettings(BaseModel):
    """Where Kafka is and how we create topics."""

    bootstrap: str | None = None
    """`host:port[,host:port]` of a Kafka cluster; None starts the embedded broker."""

    partitions: int | None = Field(default=None, ge=1)
    """Partitions of each topic we create (existing topics are left as they are); None:
    `EMBEDDED_PARTITIONS` on the embedded broker, `CLUSTER_PARTITIONS` on a cluster
    (`topic_partitions`)."""

    replication_factor: int = Field(default=1, ge=1)
    """Replication factor of each topic we create."""

    retention_hours: float = Field(default=6.0, gt=0)
    """How long Kafka keeps a record of each topic we create (`retention.ms`).

    ClickHouse is the durable record and every stage rebuilds its state from it, so Kafka
    only has to hold what a stage that was down for a while still has to read. At a whole
    exchange's rate (~1 MB/s of trades) 6 h is ~20 GB a replica."""

    embedded_max_mb: int = Field(default=1024, ge=32)
    """The embedded broker's memory bound (MB). Its memory storage keeps every record and
    honours no retention, so once it holds this much, `tickscan run` restarts its pipeline
    on a fresh broker: every stage resumes from ClickHouse, the API comes back on the
    same port and browsers reconnect. No effect with an external Kafka (`bootstrap`)."""

    def topic_partitions(self) -> int:
        """Partitions of each topic we create: `partitions`, else the default for where
        the topics live (no `bootstrap`: the embedded broker)."""
        if self.partitions is not None:
            return self.partitions
        return EMBEDDED_PARTITIONS if self.bootstrap is None else CLUSTER_PARTITIONS


class ClickHouseSettings(BaseModel):
    """Where ClickHouse is and which database holds our tables."""

    dsn: str | None = None
    """`chdb://<dir>` (embedded engine) or `http(s)://user:password@host:port`; None means
    `chdb://<data_dir>/clickhouse`."""

    database: str = "tickscan"
    """Database holding every tickscan table."""


class RuntimeSettings(BaseSettings):
    """The plumbing every tickscan process shares, e.g. `TICKSCAN_KAFKA__BOOTSTRAP=kafka:9092`.

    Each package adds its own section by subclassing this (`api.settings`,
    `flows.ingest.settings`, ...); `tickscan.settings` combines them into one object per
    process kind, and each reads every section it holds from the environment. Variables
    of sections a process does not hold are ignored.
    """

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
