"""The perpetuals store on the real broker and ClickHouse: every record in its table, the
last mark of each second, one funding row per funding time, identical rows on a rerun and
after a restart on an empty broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bytewax.testing import run_main
from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer

from flows.dead_letters import dead_letter_offsets, read_dead_letters
from flows.perps.retention import apply_marks_ttl, marks_ttl_days
from flows.perps.settings import PerpStoreSettings
from flows.perps.store import PerpStoreCounters, build_kafka_flow
from runtime.broker import EmbeddedBroker
from runtime.clickhouse import connect
from runtime.kafka import ensure_topics, producer_config
from runtime.settings import ClickHouseSettings
from schemas import topics
from schemas.perps import (
    FundingEvent,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    encode_perp,
)
from schemas.topics import PerpTopics
from tickscan.banner import Endpoints
from tickscan.run import run
from tickscan.run_options import RunOptions
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

S = 1_000_000
PARTITIONS = 3
# A funding time a few minutes ago (whole minute): the state rebuilt at start reads the
# marks of the last hour.
T = (time.time_ns() // 1000 // (60 * S) - 5) * 60 * S
NEXT = T + 8 * 3600 * S


def mark(symbol: str, at_ms: int, price: str, rate: str, due: int = T) -> MarkPrice:
    time_us = T + at_ms * 1000
    return MarkPrice(
        "binance", "usdm", symbol, time_us, Decimal(price), Decimal("100.1"),
        Decimal("100.2"), due, time_us + 1_500, Decimal(rate),
    )  # fmt: skip


# Several marks a second on both sides of the funding time T.
BTC_MARKS = [
    mark("BTCUSDT", -2_900, "100.01", "0.00010000"),
    mark("BTCUSDT", -2_100, "100.02", "0.00011000"),
    mark("BTCUSDT", -1_700, "100.03", "0.00012000"),
    mark("BTCUSDT", -1_050, "100.04", "0.00013000"),  # the last of its second
    mark("BTCUSDT", -600, "100.05", "0.00014000"),
    mark("BTCUSDT", -350, "100.06", "0.00015000"),  # the last estimate before T
    mark("BTCUSDT", 150, "100.07", "0.00001000", due=NEXT),
    mark("BTCUSDT", 700, "100.08", "0.00002000", due=NEXT),
    mark("BTCUSDT", 1_250, "100.09", "0.00003000", due=NEXT),
]
ETH_MARKS = [mark("ETHUSDT", ms, f"3000.{i}", "-0.00005000") for i, ms in enumerate((-900, 100))]
SIDES: tuple[tuple[int, Side], ...] = ((400, "SELL"), (1_400, "BUY"))
LIQUIDATIONS = [
    Liquidation(
        "binance",
        "usdm",
        "BTCUSDT",
        T + at * 1000,
        side,
        Decimal("99.5"),
        Decimal("99.61"),
        Decimal("0.5"),
        Decimal("0.5"),
        Decimal("0.5"),
        "FILLED",
        "LIMIT",
        "IOC",
        T + at * 1000 + 7,
        T + at * 1000 + 900,
    )
    for at, side in SIDES
]
OPEN_INTEREST = [
    OpenInterest("binance", "usdm", "BTCUSDT", T + 2 * S, Decimal("81234.567"), "poll"),
    OpenInterest("binance", "usdm", "ETHUSDT", T + 2 * S, Decimal("500100.1"), "poll"),
]
SIM_FUNDING = FundingEvent(
    "sim", "usdm", "SIMUSDT", T, Decimal("-0.00002500"), "sim", Decimal("12.5")
)


@dataclass(frozen=True)
class Topics:
    names: PerpTopics
    deadletter: str


@pytest.fixture
def fresh(kafka_bootstrap: str, fresh_topic: Callable[[str], str]) -> Topics:
    names = PerpTopics(
        fresh_topic(topics.MARKS),
        fresh_topic(topics.LIQUIDATIONS),
        fresh_topic(topics.OPEN_INTEREST),
        fresh_topic(topics.FUNDING),
    )
    deadletter = fresh_topic(topics.DEADLETTER)
    ensure_topics(
        kafka_bootstrap,
        [names.marks, names.liquidations, names.open_interest, names.funding, deadletter],
        PARTITIONS,
    )
    return Topics(names, deadletter)


def publish(bootstrap: str, items: list[tuple[str, bytes, bytes]]) -> None:
    producer = Producer(producer_config(bootstrap))
    for topic, key, value in items:
        producer.produce(topic, value, key)
    assert producer.flush(30) == 0


def records(
    names: PerpTopics, marks: list[MarkPrice], *others: Any
) -> list[tuple[str, bytes, bytes]]:
    topic_of: dict[type, str] = {
        Liquidation: names.liquidations,
        OpenInterest: names.open_interest,
        FundingEvent: names.funding,
    }
    return [(names.marks, m.key.encode(), encode_perp(m)) for m in marks] + [
        (topic_of[type(o)], o.key.encode(), encode_perp(o)) for o in others
    ]


def run_store(
    bootstrap: str, database: str, client: Client, fresh: Topics, want: int
) -> PerpStoreCounters:
    """Run the store from the topics' beginning until it has read `want` records."""
    counters = PerpStoreCounters()
    stop = threading.Event()
    flow, _writer = build_kafka_flow(
        PerpStoreSettings(clickhouse_flush_ms=100),
        bootstrap=bootstrap,
        clickhouse=lambda: client,
        database=database,
        start="beginning",
        names=fresh.names,
        dead_letter_topic=fresh.deadletter,
        counters=counters,
        stop=stop,
    )
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_main(flow)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=target, name="perp-store")
    thread.start()
    deadline = time.monotonic() + 60
    while counters.records < want and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    stop.set()
    thread.join(30)
    assert not thread.is_alive() and errors == []
    assert counters.records == want
    return counters


TABLE_KEYS = {
    "marks_1s": "symbol, time",
    "funding": "exchange, symbol, funding_time",
    "open_interest": "symbol, time",
    "liquidations": "symbol, time, side",
}


def tables(
    client: Client, database: str, exchanges: tuple[str, ...]
) -> dict[str, Sequence[Sequence[Any]]]:
    """Every table's rows (FINAL, without `ingested_at`) of these exchanges."""
    return {
        table: client.query(
            f"SELECT * EXCEPT ingested_at FROM {{db:Identifier}}.{table} FINAL "
            f"WHERE exchange IN {{exchanges:Array(String)}} ORDER BY {order}",
            parameters={"db": database, "exchanges": list(exchanges)},
        ).result_rows
        for table, order in TABLE_KEYS.items()
    }


def funding_rows(client: Client, database: str, symbol: str) -> Sequence[Sequence[Any]]:
    """The `funding` rows of a symbol as written (no FINAL): how many times it was written."""
    return client.query(
        "SELECT toUnixTimestamp64Micro(funding_time), funding_rate, mark_price, source, version "
        "FROM {db:Identifier}.funding WHERE symbol = {s:String} ORDER BY funding_time",
        parameters={"db": database, "s": symbol},
    ).result_rows


@pytest.fixture
def clean(ch: Client, ch_database: str) -> Iterator[None]:
    yield
    for table in TABLE_KEYS:
        ch.command(
            "TRUNCATE TABLE {db:Identifier}.{t:Identifier}",
            parameters={"db": ch_database, "t": table},
        )


def test_the_tables_hold_each_record_once_and_a_rerun_writes_identical_rows(
    kafka_bootstrap: str, ch: Client, ch_database: str, fresh: Topics, clean: None
) -> None:
    items = records(fresh.names, BTC_MARKS + ETH_MARKS, *LIQUIDATIONS, *OPEN_INTEREST, SIM_FUNDING)
    items.append((fresh.names.marks, b"binance:usdm:BTCUSDT", b'{"not": "a mark"}'))
    since = dead_letter_offsets(kafka_bootstrap, fresh.deadletter)
    publish(kafka_bootstrap, items)

    first = run_store(kafka_bootstrap, ch_database, ch, fresh, len(items))
    assert (first.funding_derived, first.dead_letters) == (1, 1)
    stored = tables(ch, ch_database, ("binance", "sim"))

    # The last mark of each second, by its event time.
    last_of_second = {}
    for m in BTC_MARKS + ETH_MARKS:
        last_of_second[(m.symbol, m.time_us // S)] = m
    assert [(r[2], r[3].timestamp(), r[5]) for r in stored["marks_1s"]] == [
        (m.symbol, float(second), m.mark_price)
        for (_symbol, second), m in sorted(last_of_second.items())
    ]
    # One funding row per funding time: the last estimate before T, and the sim's own.
    assert funding_rows(ch, ch_database, "BTCUSDT") == [
        (T, Decimal("0.00015000"), Decimal("100.06"), "stream", 1)
    ]
    assert funding_rows(ch, ch_database, "SIMUSDT") == [
        (T, Decimal("-0.00002500"), Decimal("12.5"), "sim", 2)
    ]
    assert funding_rows(ch, ch_database, "ETHUSDT") == []
    assert [(r[2], r[4]) for r in stored["open_interest"]] == [
        ("BTCUSDT", Decimal("81234.567")),
        ("ETHUSDT", Decimal("500100.1")),
    ]
    assert [(r[4], r[10]) for r in stored["liquidations"]] == [
        ("SELL", Decimal("49.805")),
        ("BUY", Decimal("49.805")),
    ]
    [letter] = read_dead_letters(
        kafka_bootstrap, fresh.deadletter, since, want=1, keep=lambda d: d.stage == "perp_store"
    )
    assert (letter.reason, letter.source_topic) == ("undecodable", fresh.names.marks)

    # The same topics again, from their beginning: the same rows, no funding row twice.
    again = run_store(kafka_bootstrap, ch_database, ch, fresh, len(items))
    assert again.funding_derived == 0
    assert tables(ch, ch_database, ("binance", "sim")) == stored
    assert len(funding_rows(ch, ch_database, "BTCUSDT")) == 1


def test_a_restart_on_an_empty_broker_settles_the_crossed_funding_time_once(
    kafka_bootstrap: str,
    ch: Client,
    ch_database: str,
    fresh_topic: Callable[[str], str],
    clean: None,
) -> None:
    """The embedded broker comes back empty: the mark that stood for T is only in
    ClickHouse, and the store settles T from it when the next marks cross T."""
    before, after = BTC_MARKS[:6], BTC_MARKS[6:]
    first, second = (
        Topics(
            PerpTopics(*(fresh_topic(f"{life}-{t}") for t in ("m", "l", "o", "f"))),
            fresh_topic(f"{life}-dl"),
        )
        for life in ("a", "b")
    )
    for life in (first, second):
        names = life.names
        ensure_topics(
            kafka_bootstrap,
            [names.marks, names.liquidations, names.open_interest, names.funding, life.deadletter],
            PARTITIONS,
        )
    publish(kafka_bootstrap, records(first.names, before))
    assert run_store(kafka_bootstrap, ch_database, ch, first, len(before)).funding_derived == 0
    assert funding_rows(ch, ch_database, "BTCUSDT") == []

    publish(kafka_bootstrap, records(second.names, after))
    restarted = run_store(kafka_bootstrap, ch_database, ch, second, len(after))
    assert restarted.funding_derived == 1
    assert funding_rows(ch, ch_database, "BTCUSDT") == [
        (T, Decimal("0.00015000"), Decimal("100.06"), "stream", 1)
    ]
    # A second restart over the same marks settles nothing again.
    assert run_store(kafka_bootstrap, ch_database, ch, second, len(after)).funding_derived == 0
    assert len(funding_rows(ch, ch_database, "BTCUSDT")) == 1


def test_the_marks_ttl_is_changed_only_when_it_differs(ch: Client, ch_database: str) -> None:
    assert marks_ttl_days(ch, ch_database) == 30
    assert apply_marks_ttl(ch, ch_database, 30) is False
    try:
        assert apply_marks_ttl(ch, ch_database, 7) is True
        assert marks_ttl_days(ch, ch_database) == 7
        assert apply_marks_ttl(ch, ch_database, 7) is False
    finally:
        apply_marks_ttl(ch, ch_database, 30)
    assert marks_ttl_days(ch, ch_database) == 30


def test_tickscan_run_stores_the_perpetuals_topics_of_its_broker(
    tmp_path: Path, clickhouse_dsn: str
) -> None:
    """`tickscan run` runs the store for any source (here the simulated market) and sets
    the marks TTL from its settings."""
    database = f"tickscan_perps_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path,  # its own embedded broker
        clickhouse=ClickHouseSettings(dsn=clickhouse_dsn, database=database),
        perps=PerpStoreSettings(marks_ttl_days=9),
    )
    stop = threading.Event()
    ready: list[Endpoints] = []
    result: list[object] = []

    def target() -> None:
        try:
            result.append(
                run(
                    settings,
                    RunOptions(source="sim", symbols=5, rate=50, api=False),
                    stop,
                    on_ready=ready.append,
                )
            )
        except BaseException as exc:  # reported by the test
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    client = connect(clickhouse_dsn)
    try:
        deadline = time.monotonic() + 60
        while not ready and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready, result
        publish(ready[0].kafka, records(PerpTopics(), BTC_MARKS[:2]))

        def stored() -> list[Any]:
            return list(
                client.query(
                    "SELECT symbol, mark_price FROM {db:Identifier}.marks_1s FINAL "
                    "WHERE exchange = 'binance'",
                    parameters={"db": database},
                ).result_rows
            )

        while not stored() and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stored() == [("BTCUSDT", Decimal("100.02"))], result
        assert marks_ttl_days(client, database) == 9
    finally:
        stop.set()
        thread.join(60)
        client.close()
    assert not thread.is_alive()
    assert not isinstance(result[0], BaseException), result


def test_tickscan_perps_runs_the_store_alone_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """The separate process of a split pipeline: its own TTL setting, the records of its
    cluster stored, and a clean stop on SIGINT that flushes what it read."""
    with EmbeddedBroker(tmp_path / "tansu") as broker:
        ensure_topics(broker.bootstrap, topics.ALL, PARTITIONS)
        publish(broker.bootstrap, records(PerpTopics(), BTC_MARKS))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSCAN_")}
        env.update(TICKSCAN_DATA_DIR=str(tmp_path / "data"), TICKSCAN_PERPS__MARKS_TTL_DAYS="5")
        err_path = tmp_path / "stderr.log"
        with err_path.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "tickscan", "perps", "--kafka", broker.bootstrap,
                 "--start", "beginning"],
                env=env, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        try:
            # Logged as the first marks are read: all of them are in that one batch.
            deadline = time.monotonic() + 120
            while "funding state of" not in err_path.read_text():
                assert process.poll() is None, err_path.read_text()[-3000:]
                assert time.monotonic() < deadline, err_path.read_text()[-3000:]
                time.sleep(0.2)
            process.send_signal(signal.SIGINT)
            stdout, _ = process.communicate(timeout=60)
        except BaseException:
            process.kill()  # a failed wait leaves no process behind
            process.wait()
            raise
    stderr = err_path.read_text()
    assert process.returncode == 0, stderr[-3000:]
    assert "marks_1s: TTL changed from 30 to 5 days" in stderr
    assert stdout.strip() == (
        f"stopped: {len(BTC_MARKS)} records ({len(BTC_MARKS)} {topics.MARKS}), 1 funding times "
        "settled from marks, 0 dead letters"
    )
    assert "Traceback" not in stderr, stderr[-3000:]
