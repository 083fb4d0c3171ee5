"""Each trade counts once: the real 2024-08-08 capture delivered twice through the broker, to
the candle flow and the trade store, still gives Binance's own klines and each trade once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from bytewax.testing import run_main
from clickhouse_connect.driver.client import Client

from flows.candles.flow import FlowCounters
from flows.candles.trade_store import TradeStoreSettings
from flows.ingest.trades import TradePublisher
from flows.sources.files import read_trades
from flows.sources.kafka import RunBounds
from runtime.clickhouse import connect
from runtime.kafka import ensure_topics
from schemas.trades import Trade
from tests.capture import CAPTURE, COVERED, FIELDS, official_klines
from tests.integration.candle_flow import past_candle_flow
from tests.integration.databases import migrated_database
from tests.integration.replays import replay_quietly, replay_settings
from tickscan.replay import summary

pytestmark = pytest.mark.integration

TRADES = 21_313


def capture_trades() -> list[Trade]:
    if not CAPTURE.exists():
        pytest.fail(f"shared data missing: {CAPTURE}")
    return [t for t in read_trades(CAPTURE, market="usdm") if isinstance(t, Trade)]


@pytest.fixture
def database(clickhouse_dsn: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own (the candle flow's resume reads the
    newest stored candle of the whole database), dropped afterwards."""
    with migrated_database(clickhouse_dsn, "dup") as name:
        yield name


def minutes(client: Client, database: str) -> dict[int, dict[str, Decimal]]:
    rows = client.query(
        "SELECT toUnixTimestamp64Milli(open_time), open, high, low, close, volume,"
        " quote_volume, count, taker_buy_volume, taker_buy_quote_volume"
        " FROM {db:Identifier}.candles_1m FINAL WHERE symbol = 'BTCUSDT'",
        parameters={"db": database},
    ).result_rows
    return {r[0]: dict(zip(FIELDS, r[1:], strict=True)) for r in rows}


def assert_minutes_equal_the_klines(client: Client, database: str) -> None:
    got, klines = minutes(client, database), official_klines()
    for minute in COVERED:
        assert got[minute] == klines[minute], minute


def test_replaying_the_same_capture_twice_writes_each_trade_once(
    tmp_path: Path, kafka_bootstrap: str, clickhouse_dsn: str, database: str
) -> None:
    """`tickscan replay CAPTURE CAPTURE`: the candles equal the official klines (not twice
    their volume and count), `trades` holds each trade once even without FINAL, and the
    summary says how many copies were dropped."""
    capture_trades()
    settings = replay_settings(tmp_path, kafka_bootstrap, clickhouse_dsn, database)
    report = replay_quietly(
        [CAPTURE, CAPTURE],
        settings,
        kafka_bootstrap,
        # Inserts of 5,000 rows: a copy lands in another insert than its original.
        store_settings=TradeStoreSettings(clickhouse_max_rows=5_000),
    )
    client = connect(clickhouse_dsn)
    try:
        assert_minutes_equal_the_klines(client, database)
        stored = client.query(
            "SELECT count(), uniqExact(trade_id), sum(qty)"
            " FROM {db:Identifier}.trades WHERE symbol = 'BTCUSDT'",
            parameters={"db": database},
        ).result_rows[0]
    finally:
        client.close()
    assert stored[0] == stored[1] == TRADES
    assert report.trades == 2 * TRADES
    assert report.dead_letters == report.store_dead_letters == 0
    assert report.duplicates == report.store_duplicates == TRADES
    assert report.trades_stored == TRADES
    assert (
        "duplicate trades dropped (the same trade delivered again): 21,313 by the candle flow,"
        " 21,313 by the trade store"
    ) in summary(report).splitlines()


def publish(bootstrap: str, topic: str, dead: str, trades: list[Trade]) -> RunBounds:
    """Publish `trades` to `topic` and end the run; returns the offsets written."""
    with TradePublisher(bootstrap, topic=topic, deadletter_topic=dead) as publisher:
        publisher.publish_many(trades)
        publisher.mark_end(f"test-{uuid.uuid4()}")
        return publisher.report().bounds()


def run_candles(
    bootstrap: str,
    dsn: str,
    database: str,
    topics_: dict[str, str],
    bounds: RunBounds,
    *,
    resume: bool = False,
) -> FlowCounters:
    counters = FlowCounters()
    client = connect(dsn)
    try:
        names = (topics_["trades"], topics_["candles"], topics_["dead"])
        flow, _writer = past_candle_flow(
            bootstrap, client, database, bounds, names, counters, resume_from_store=resume
        )
        run_main(flow)
    finally:
        client.close()
    return counters


def test_trades_delivered_twice_through_kafka_count_once(
    kafka_bootstrap: str, clickhouse_dsn: str, database: str, fresh_topic
) -> None:
    """A producer that retries what it had sent (every 50th batch of trades twice) and an
    ingest that restarts and publishes its last 5,000 trades again: one topic, every copy
    in it, and the candle flow still equals the official klines."""
    trades = capture_trades()
    names = {k: fresh_topic(f"md.{k}.v1") for k in ("trades", "candles", "dead")}
    ensure_topics(kafka_bootstrap, list(names.values()), 3)
    delivered: list[Trade] = []
    for i in range(0, len(trades), 200):
        batch = trades[i : i + 200]
        delivered += batch + batch if i // 200 % 50 == 7 else batch
    cut = 14_000
    delivered = [t for t in delivered if t.trade_id < trades[cut].trade_id]
    delivered += trades[cut - 5_000 :]  # the restarted ingest: from 5,000 trades back
    bounds = publish(kafka_bootstrap, names["trades"], names["dead"], delivered)
    counters = run_candles(kafka_bootstrap, clickhouse_dsn, database, names, bounds)
    client = connect(clickhouse_dsn)
    try:
        assert_minutes_equal_the_klines(client, database)
    finally:
        client.close()
    assert counters.trades == len(delivered)
    assert counters.duplicates == len(delivered) - TRADES
    assert counters.dead_letters == 0


def test_after_a_resume_from_clickhouse_the_stored_trades_are_not_counted_again(
    kafka_bootstrap: str, clickhouse_dsn: str, database: str, fresh_topic
) -> None:
    """The candle flow stops after two thirds of the capture; it starts again from the
    stored candles on a topic that holds the last 4,000 trades it had already counted (an
    ingest restart republishing them) and the rest: each trade is still counted once."""
    trades = capture_trades()
    first = {k: fresh_topic(f"md.{k}.v1.a") for k in ("trades", "candles", "dead")}
    second = {k: fresh_topic(f"md.{k}.v1.b") for k in ("trades", "candles", "dead")}
    ensure_topics(kafka_bootstrap, [*first.values(), *second.values()], 3)
    cut = 2 * TRADES // 3
    bounds = publish(kafka_bootstrap, first["trades"], first["dead"], trades[:cut])
    run_candles(kafka_bootstrap, clickhouse_dsn, database, first, bounds)
    again = trades[cut - 4_000 :]
    bounds = publish(kafka_bootstrap, second["trades"], second["dead"], again)
    counters = run_candles(kafka_bootstrap, clickhouse_dsn, database, second, bounds, resume=True)
    client = connect(clickhouse_dsn)
    try:
        assert_minutes_equal_the_klines(client, database)
    finally:
        client.close()
    assert counters.duplicates == 4_000
    assert counters.dead_letters == 0
