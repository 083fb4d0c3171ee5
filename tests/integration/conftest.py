"""Session fixtures for integration tests: a real Kafka-protocol broker and a real ClickHouse.

`TICKSCAN_TEST_KAFKA=host:port` and `TICKSCAN_TEST_CLICKHOUSE=<dsn>` point the suite at
running services; otherwise it starts the embedded Tansu broker and a chdb engine in a
temporary directory. chdb allows one directory per process, so a test must use
`clickhouse_dsn` (or `ch`) and never open a chdb directory of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pgserver
import pytest
from clickhouse_connect.driver.client import Client

from runtime.broker import EmbeddedBroker
from runtime.clickhouse import connect
from tests.integration.databases import migrated_database
from tests.integration.live_run import live_settings
from tickscan.settings import Settings


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`host:port` of a Kafka-protocol broker for the whole session."""
    external = os.environ.get("TICKSCAN_TEST_KAFKA")
    if external:
        yield external
        return
    with EmbeddedBroker(log_dir=tmp_path_factory.mktemp("tansu")) as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def clickhouse_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """DSN of the ClickHouse for the whole session (chdb in a temporary directory)."""
    external = os.environ.get("TICKSCAN_TEST_CLICKHOUSE")
    if external:
        return external
    path: Path = tmp_path_factory.mktemp("chdb")
    return f"chdb://{path}"


@pytest.fixture(scope="session")
def ch_database(clickhouse_dsn: str) -> Iterator[str]:
    """A fresh, migrated database for this session (`tickscan_test_<random>`), then dropped."""
    with migrated_database(clickhouse_dsn, "tickscan_test") as name:
        yield name


@pytest.fixture(scope="module")
def database(clickhouse_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated database of the test module's own (`<module>_<random>`), then dropped.

    Every query of a module that asks for it names it, so the session's client serves them
    all, and other modules' rows (the same symbols, the same times) never reach it.
    """
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    with migrated_database(clickhouse_dsn, module) as name:
        yield name


@pytest.fixture(scope="session")
def ch(clickhouse_dsn: str, ch_database: str) -> Iterator[Client]:
    """A ClickHouse client whose default database is the session's migrated database."""
    with closing(connect(clickhouse_dsn, database=ch_database)) as client:
        yield client


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An asyncpg URL of a PostgreSQL server (the pgserver wheel) started for this module,
    reached through its unix socket."""
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        socket_dir = server.get_uri().split("host=", 1)[1]
        yield f"postgresql+asyncpg://postgres@/postgres?host={socket_dir}"
    finally:
        server.cleanup()


@pytest.fixture
def fresh_topic_prefix() -> str:
    """A prefix unique to this test, e.g. `t3f9a1c2b-`, for topics it creates."""
    return f"t{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def fresh_topic(fresh_topic_prefix: str) -> Callable[[str], str]:
    """Build unique topic names: `fresh_topic("md.trades.v1")` -> `t3f9a1c2b-md.trades.v1`."""
    return lambda name: f"{fresh_topic_prefix}{name}"


@pytest.fixture
def make_settings(
    kafka_bootstrap: str, clickhouse_dsn: str, ch_database: str
) -> Callable[..., Settings]:
    """Settings for a live ingest test: the session's broker and database, short timings;
    `make_settings(stall_s=1.0)` overrides an `IngestSettings` field."""
    return lambda **ingest: live_settings(kafka_bootstrap, clickhouse_dsn, ch_database, **ingest)
