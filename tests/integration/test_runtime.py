"""The runtime plumbing against the real broker and ClickHouse: no mocks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource
from typer.testing import CliRunner

from runtime import broker as broker_module
from runtime.broker import EmbeddedBroker
from runtime.clickhouse import CHDB_CACHES, connect
from runtime.errors import BrokerStartError, MigrationError, TopicSetupError
from runtime.kafka import (
    admin_client,
    consumer_config,
    ensure_configured_topics,
    ensure_topics,
    partition_count,
    producer_config,
)
from runtime.migrate import DEFAULT_DIRECTORY, migrate
from runtime.settings import KafkaSettings
from tickscan.cli import app

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

TABLES = ("trades", "candles_1s", "candles_1m", "schema_migrations")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0) until reaped; it is dead for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def _consume(consumer: Consumer, want: int, timeout: float = 20) -> list:
    messages: list = []
    deadline = time.monotonic() + timeout
    while len(messages) < want and time.monotonic() < deadline:
        for message in consumer.consume(10_000, 0.2):
            assert message.error() is None, message.error()
            messages.append(message)
    return messages


# --- broker -----------------------------------------------------------------------------


def test_embedded_broker_starts_answers_and_stops(tmp_path: Path) -> None:
    with EmbeddedBroker(log_dir=tmp_path) as broker:
        pid = broker.pid
        assert pid is not None
        host, port = broker.bootstrap.split(":")
        assert host == "127.0.0.1"
        metadata = admin_client(broker.bootstrap).list_topics(timeout=5)
        assert [b.port for b in metadata.brokers.values()] == [int(port)]
        assert (tmp_path / "tansu.log").read_text().strip()
        rss = broker.rss_bytes()
        assert rss is not None and rss > 1_000_000
    assert not _alive(pid)
    assert broker.rss_bytes() is None
    with pytest.raises(BrokerStartError):
        _ = broker.bootstrap


def test_embedded_broker_retries_when_its_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real_free_port = broker_module.free_port
        monkeypatch.setattr(
            broker_module, "free_port", lambda: next(ports, None) or real_free_port()
        )
        with EmbeddedBroker(log_dir=tmp_path) as broker:
            assert broker.bootstrap != f"127.0.0.1:{taken}"
            assert admin_client(broker.bootstrap).list_topics(timeout=5).brokers


def test_embedded_broker_failure_reports_the_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'fatal: cannot open storage' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(broker_module, "tansu_binary", lambda: fake)
    with pytest.raises(BrokerStartError, match=r"(?s)exited with code 3.*cannot open storage"):
        EmbeddedBroker(log_dir=tmp_path / "log", startup_timeout=5).start()


def test_embedded_broker_dies_with_its_parent(tmp_path: Path) -> None:
    # A parent that is SIGKILLed cannot run its __exit__: the broker must go anyway.
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from runtime.broker import EmbeddedBroker
        broker = EmbeddedBroker(log_dir=Path({str(tmp_path)!r})).start()
        print(broker.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    parent = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert parent.returncode == -9, parent.stderr
    broker_pid = int(parent.stdout.strip())
    deadline = time.monotonic() + 10  # SIGTERM: Tansu may take its 5 s drain
    while _alive(broker_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(broker_pid)


# --- kafka ------------------------------------------------------------------------------


def test_produce_consume_round_trip_with_explicit_assign(
    kafka_bootstrap: str, fresh_topic: Callable[[str], str]
) -> None:
    topic = fresh_topic("roundtrip")
    ensure_topics(kafka_bootstrap, [topic], partitions=6)
    producer = Producer(producer_config(kafka_bootstrap))
    keys = [f"binance:spot:SYM{i}".encode() for i in range(20)]
    sent = [(keys[i % len(keys)], f"{i}".encode()) for i in range(2_000)]
    errors: list = []
    for key, value in sent:
        producer.produce(topic, value, key=key, on_delivery=lambda e, _m: e and errors.append(e))
    assert producer.flush(30) == 0
    assert errors == []

    consumer = Consumer(consumer_config(kafka_bootstrap))
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(6)])
        received = _consume(consumer, len(sent))
    finally:
        consumer.close()

    assert len(received) == len(sent)
    # One key stays in one partition, in the order produced.
    by_key: dict[bytes, list[bytes]] = {}
    partitions_of: dict[bytes, set[int]] = {}
    for message in received:
        by_key.setdefault(message.key(), []).append(message.value())
        partitions_of.setdefault(message.key(), set()).add(message.partition())
    for key in keys:
        assert by_key[key] == [v for k, v in sent if k == key]
        assert len(partitions_of[key]) == 1
    assert len({p for ps in partitions_of.values() for p in ps}) > 1


def test_ensure_topics_is_idempotent(
    kafka_bootstrap: str, fresh_topic: Callable[[str], str]
) -> None:
    topics = [fresh_topic("a"), fresh_topic("b")]
    assert ensure_topics(kafka_bootstrap, topics, partitions=3) == {t: 3 for t in topics}
    # Again, plus a new one, with another count: existing topics are kept as they are.
    more = [*topics, fresh_topic("c")]
    assert ensure_topics(kafka_bootstrap, more, partitions=5) == {
        topics[0]: 3,
        topics[1]: 3,
        more[2]: 5,
    }
    assert partition_count(kafka_bootstrap, topics[0]) == 3


def _topic_configs(bootstrap: str, topic: str) -> dict[str, str | None]:
    admin = admin_client(bootstrap)  # kept alive until the answer is in
    (future,) = admin.describe_configs([ConfigResource("topic", topic)]).values()
    return {name: entry.value for name, entry in future.result(timeout=10).items()}


def test_topics_are_created_with_the_settings_retention_and_existing_ones_are_kept(
    kafka_bootstrap: str, fresh_topic: Callable[[str], str]
) -> None:
    old, new = fresh_topic("kept"), fresh_topic("retained")
    ensure_topics(kafka_bootstrap, [old], partitions=2)
    before = _topic_configs(kafka_bootstrap, old)
    settings = KafkaSettings(partitions=3, retention_hours=2)

    counts = ensure_configured_topics(kafka_bootstrap, [old, new], settings)

    assert counts == {old: 2, new: 3}
    created = _topic_configs(kafka_bootstrap, new)
    assert created["retention.ms"] == str(2 * 3_600_000)
    assert created["segment.ms"] == "3600000"
    assert created["cleanup.policy"] == "delete"
    assert _topic_configs(kafka_bootstrap, old) == before


def test_missing_topics_are_not_created_as_a_side_effect(
    kafka_bootstrap: str, fresh_topic: Callable[[str], str]
) -> None:
    # Tansu creates a 4-partition topic for any metadata request naming it; our clients
    # must not, or a typo would become a topic of the wrong shape.
    topic = fresh_topic("typo")
    with pytest.raises(TopicSetupError):
        partition_count(kafka_bootstrap, topic)
    producer = Producer(producer_config(kafka_bootstrap, **{"message.timeout.ms": 1_000}))
    producer.produce(topic, b"x")
    producer.flush(3)
    with pytest.raises(TopicSetupError):
        partition_count(kafka_bootstrap, topic)


# --- clickhouse -------------------------------------------------------------------------


def test_migrate_again_is_a_no_op_and_every_table_and_column_has_a_comment(
    ch: Client, ch_database: str
) -> None:
    assert migrate(ch, ch_database) == []
    tables = dict(
        ch.query(
            "SELECT name, comment FROM system.tables WHERE database = {db:String}",
            parameters={"db": ch_database},
        ).result_rows
    )
    assert set(TABLES) <= set(tables)
    assert all(tables[t].strip() for t in TABLES)
    uncommented = ch.query(
        "SELECT table, name FROM system.columns WHERE database = {db:String} AND comment = ''",
        parameters={"db": ch_database},
    ).result_rows
    assert uncommented == []
    applied = ch.query(
        "SELECT name FROM {db:Identifier}.schema_migrations FINAL ORDER BY name",
        parameters={"db": ch_database},
    ).result_rows
    assert [name for (name,) in applied] == sorted(p.name for p in DEFAULT_DIRECTORY.glob("*.sql"))


def test_migrate_refuses_an_applied_file_that_was_edited(
    clickhouse_dsn: str, tmp_path: Path
) -> None:
    database = f"tickscan_edit_{uuid.uuid4().hex[:8]}"
    directory = tmp_path / "ddl"
    directory.mkdir()
    for path in DEFAULT_DIRECTORY.glob("00[01]_*.sql"):
        (directory / path.name).write_text(path.read_text())
    client = connect(clickhouse_dsn)
    try:
        assert migrate(client, database, directory) == [
            "000_schema_migrations.sql",
            "001_trades.sql",
        ]
        trades = directory / "001_trades.sql"
        trades.write_text(trades.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match=r"001_trades\.sql changed"):
            migrate(client, database, directory)
    finally:
        client.command("DROP DATABASE IF EXISTS {db:Identifier}", parameters={"db": database})
        client.close()


def test_migrate_rejects_a_database_name_that_is_not_an_identifier(ch: Client) -> None:
    with pytest.raises(MigrationError, match="invalid ClickHouse identifier"):
        migrate(ch, "tickscan; DROP DATABASE system")


def test_candles_1m_round_trip_decimals_and_millisecond_ints_exactly(ch: Client) -> None:
    open_ms = 1_723_161_240_000  # 2024-08-08 23:54:00 UTC
    row = {
        "exchange": "binance",
        "market": "usdm",
        "symbol": f"RT{uuid.uuid4().hex[:6].upper()}",
        # ints are taken as raw DateTime64(3) ticks: milliseconds since the epoch
        "open_time": open_ms,
        "open": Decimal("61234.56000000"),
        "high": Decimal("99999999999999999999999999999.99999999"),
        "low": Decimal("0.00000001"),
        "close": Decimal("61240.10000000"),
        "volume": Decimal("123.45600000"),
        "close_time": open_ms + 59_999,
        "quote_volume": Decimal("7561234.1234567812345678"),
        "count": 2**63 + 5,
        "taker_buy_volume": Decimal("61.72800000"),
        "taker_buy_quote_volume": Decimal("0.0000000000000001"),
        "first_trade_id": 5_266_583_935,
        "last_trade_id": None,
        "version": 4_000_000_000,
    }
    ch.insert("candles_1m", [list(row.values())], column_names=list(row))
    got = ch.query(
        "SELECT *, toUnixTimestamp64Milli(open_time) AS open_ms,"
        " toUnixTimestamp64Milli(close_time) AS close_ms"
        " FROM candles_1m FINAL WHERE symbol = {symbol:String}",
        parameters={"symbol": row["symbol"]},
    ).named_results()
    (stored,) = list(got)
    for name in row:
        if name not in ("open_time", "close_time"):
            assert stored[name] == row[name], name
    assert (stored["open_ms"], stored["close_ms"]) == (open_ms, open_ms + 59_999)
    assert stored["open_time"] == datetime(2024, 8, 8, 23, 54, tzinfo=UTC)
    assert stored["source"] == "trades"


def test_a_higher_candle_version_replaces_the_lower(ch: Client) -> None:
    symbol = f"RV{uuid.uuid4().hex[:6].upper()}"
    columns = ["exchange", "market", "symbol", "open_time", "open", "high", "low", "close",
               "volume", "close_time", "quote_volume", "count", "taker_buy_volume",
               "taker_buy_quote_volume", "first_trade_id", "last_trade_id", "version"]  # fmt: skip
    base = ["binance", "spot", symbol, 1_723_161_241_000, Decimal("1"), Decimal("2"),
            Decimal("1"), Decimal("2"), Decimal("3"), 1_723_161_241_999, Decimal("4.5"), 2,
            Decimal("0"), Decimal("0"), 10, 11]  # fmt: skip
    ch.insert("candles_1s", [[*base, 2]], column_names=columns)
    ch.insert("candles_1s", [[*base[:11], 3, *base[12:], 3]], column_names=columns)
    ch.insert("candles_1s", [[*base, 1]], column_names=columns)  # a stale rerun, inserted last
    rows = ch.query(
        "SELECT count, version FROM candles_1s FINAL WHERE symbol = {s:String}",
        parameters={"s": symbol},
    ).result_rows
    assert rows == [(3, 3)]


def test_cli_migrate_creates_and_then_reports_up_to_date(clickhouse_dsn: str) -> None:
    database = f"tickscan_cli_{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    try:
        first = runner.invoke(
            app, ["migrate", "--clickhouse", clickhouse_dsn, "--database", database]
        )
        assert first.exit_code == 0, first.output
        assert "applied 002_candles.sql" in first.output
        second = runner.invoke(
            app, ["migrate", "--clickhouse", clickhouse_dsn, "--database", database]
        )
        assert second.exit_code == 0, second.output
        assert f"{database} is up to date" in second.output
        bad = runner.invoke(app, ["migrate", "--clickhouse", clickhouse_dsn, "--database", "1x"])
        assert bad.exit_code == 1
    finally:
        client = connect(clickhouse_dsn)
        client.command("DROP DATABASE IF EXISTS {db:Identifier}", parameters={"db": database})
        client.close()


def test_the_embedded_engine_s_caches_are_bounded(tmp_path: Path) -> None:
    # A process of its own: the caches are sized when the process's engine starts.
    script = (
        "import json, sys\n"
        "from runtime.clickhouse import connect\n"
        "client = connect(sys.argv[1])\n"
        "rows = client.query('SELECT name, value FROM system.server_settings').result_rows\n"
        "print(json.dumps(dict(rows)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, f"chdb://{tmp_path / 'store'}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    settings = json.loads(done.stdout.strip().splitlines()[-1])
    assert {name: int(settings[name]) for name in CHDB_CACHES} == CHDB_CACHES
    assert sum(CHDB_CACHES.values()) <= 512 << 20
