"""A candle flow stopped midway and resumed from its recovery state loses and doubles nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from flows.candles.flow import FlowCounters
from flows.ingest.trades import TradePublisher
from flows.recovery import run_flow
from flows.sources.kafka import RunBounds
from flows.sources.simulator import SyntheticMarket
from runtime.clickhouse import connect
from runtime.kafka import ensure_topics
from runtime.migrate import migrate
from tests.integration.candle_flow import past_candle_flow

pytestmark = pytest.mark.integration

SUMS = (
    "SELECT symbol, count(), sum(volume), sum(quote_volume), sum(count), max(version)"
    " FROM {db:Identifier}.candles_1m FINAL GROUP BY symbol ORDER BY symbol"
)


def test_stop_and_resume_gives_the_candles_of_one_uninterrupted_run(
    tmp_path: Path, kafka_bootstrap: str, clickhouse_dsn: str, fresh_topic
) -> None:
    trades_topic = fresh_topic("md.trades.v1")
    candles_topic, dl_topic = fresh_topic("md.candles.v1"), fresh_topic("md.deadletter.v1")
    ensure_topics(kafka_bootstrap, [trades_topic, candles_topic, dl_topic], 2)
    trades = list(SyntheticMarket(30, 500, seed=3).trades(6_000))
    with TradePublisher(kafka_bootstrap, topic=trades_topic, deadletter_topic=dl_topic) as pub:
        pub.publish_many(trades)
        pub.mark_end("recovery-test")
        bounds = pub.report().bounds()
    start, end = dict(bounds.start), dict(bounds.end)
    middle = {p: start[p] + (end[p] - start[p]) // 2 for p in end}

    client: Client = connect(clickhouse_dsn)
    databases = {name: f"recovery_{name}_{uuid.uuid4().hex[:6]}" for name in ("once", "twice")}
    try:
        for database in databases.values():
            migrate(client, database)

        def execute(database: str, bounds: RunBounds, recovery: Path | None) -> FlowCounters:
            counters = FlowCounters()
            names = (trades_topic, candles_topic, dl_topic)
            flow, _ = past_candle_flow(kafka_bootstrap, client, database, bounds, names, counters)
            run_flow(flow, recovery)
            return counters

        once = execute(databases["once"], RunBounds(start, end), None)
        recovery_dir = tmp_path / "recovery"
        first = execute(databases["twice"], RunBounds(start, middle), recovery_dir)
        # Same start offsets: the recovery state, not the bounds, says where to go on.
        second = execute(databases["twice"], RunBounds(start, end), recovery_dir)

        assert once.trades == len(trades) == first.trades + second.trades
        assert 0 < first.trades < len(trades)
        whole = client.query(SUMS, parameters={"db": databases["once"]}).result_rows
        resumed = client.query(SUMS, parameters={"db": databases["twice"]}).result_rows
        assert [r[:5] for r in resumed] == [r[:5] for r in whole]
        total = sum((t.qty for t in trades), Decimal(0))
        assert sum((r[2] for r in resumed), Decimal(0)) == total
    finally:
        client.close()
