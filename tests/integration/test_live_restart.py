"""A restarted live ingest resumes where the last one left off: nothing printed meanwhile is lost.

Each scenario runs one ingest, stops it while the fake exchange trades on, and starts a
new one on the same topics: the new one seeds each symbol from the tail of the trades
topic (and ClickHouse ``trades``), so its first trade of each symbol reveals a
``restart`` gap, repaired from REST and recorded in ``data_quality`` - or, past the
cap, recorded ``unrepairable`` with the ``tickscan backfill`` to run.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer

from flows.ingest.resume import LastTrade, last_trades_in_clickhouse, last_trades_in_topic, newest
from flows.ingest.run import IngestReport
from flows.ingest.trades import TradePublisher
from runtime.kafka import consumer_config, ensure_topics
from schemas import topics
from schemas.trades import Market, Trade
from tests.fakes.binance import FakeBinance
from tests.integration import live_run
from tests.integration.live_run import Run, gap_rows, live_ingest, truth_ids
from tickscan.settings import Settings

pytestmark = pytest.mark.integration


async def traded_on(fake: FakeBinance, left_off: dict[str, int], trades: int) -> None:
    """Wait until the exchange has made `trades` more trades of each symbol."""
    deadline = time.monotonic() + 15
    while not all(truth_ids(fake, s)[-1] >= last + trades for s, last in left_off.items()):
        assert time.monotonic() < deadline, "the exchange stopped trading"
        await asyncio.sleep(0.05)


async def run_then_stop(settings: Settings, fake: FakeBinance, topic: Callable[[str], str]) -> Run:
    """An ingest that sees the exchange open, publishes a while, and is stopped."""
    run = Run(live_ingest(settings, fake, topic))
    await live_run.open_market(fake, run)
    await run.until(lambda: run.live.counts.trades > 100, 15, "trades")
    run.stop.set()
    await asyncio.wait_for(run.task, 60)
    return run


def test_trades_printed_while_ingest_was_down_are_repaired(
    make_settings: Callable[..., Settings], ch: Client, fresh_topic: Callable[[str], str]
) -> None:
    # Symbols of its own: ClickHouse `trades` is shared by the session's tests.
    symbols = ["RSTAUSDT", "RSTBUSDT", "RSTCUSDT"]
    settings = make_settings()

    async def scenario(fake: FakeBinance) -> tuple[IngestReport, IngestReport, dict[str, int]]:
        first = await run_then_stop(settings, fake, fresh_topic)
        left_off = {s: first.live.last_trade_id(s) or 0 for s in symbols}
        await traded_on(fake, left_off, 20)
        second = Run(live_ingest(settings, fake, fresh_topic))
        await second.until(
            lambda: second.live.status().repairs.repaired >= len(symbols), 20, "restart repairs"
        )
        return first.task.result(), await second.finish(fake), left_off

    with FakeBinance("spot", symbols=symbols, rate=0.0, seed=21) as fake:
        one, two, left_off = asyncio.run(scenario(fake))
        bootstrap = settings.kafka.bootstrap
        assert bootstrap is not None
        consumed = live_run.consume_trades(bootstrap, fresh_topic(topics.TRADES), one, two)
        # Every id from the first run's first trade to the exchange's last, exactly once,
        # and the candles as if ingest had never stopped.
        live_run.assert_no_trade_missing(consumed, fake)
        live_run.assert_candles_as_uninterrupted(consumed, fake)

    assert two.repairs.gaps["restart"] == len(symbols) and two.repairs.unrepairable == 0
    rows = [r for r in gap_rows(ch, "spot") if r["symbol"] in symbols]
    assert sorted(r["symbol"] for r in rows if r["cause"] == "restart") == symbols
    for row in (r for r in rows if r["cause"] == "restart"):
        assert (row["status"], row["version"]) == ("repaired", 2)
        assert row["first_id"] == left_off[row["symbol"]] + 1
        assert row["recovered"] == row["missing"] >= 20


def test_a_restart_gap_over_the_cap_is_left_to_backfill(
    make_settings: Callable[..., Settings], ch: Client, fresh_topic: Callable[[str], str]
) -> None:
    symbols = ["RSTDUSDT", "RSTEUSDT"]
    settings, capped = make_settings(), make_settings(max_restart_gap_trades=10)

    async def scenario(fake: FakeBinance) -> tuple[IngestReport, dict[str, int], int]:
        first = await run_then_stop(settings, fake, fresh_topic)
        left_off = {s: first.live.last_trade_id(s) or 0 for s in symbols}
        await traded_on(fake, left_off, 20)
        fetched_before = len(fake.rest_requests)
        second = Run(live_ingest(capped, fake, fresh_topic))
        await second.until(
            lambda: second.live.status().repairs.unrepairable >= len(symbols), 20, "refusals"
        )
        report = await second.finish(fake)
        trade_fetches = sum(
            1 for path, _, _ in fake.rest_requests[fetched_before:] if "Trades" in path
        )
        return report, left_off, trade_fetches

    with FakeBinance("spot", symbols=symbols, rate=0.0, seed=22) as fake:
        report, left_off, trade_fetches = asyncio.run(scenario(fake))

    assert trade_fetches == 0, "a restart gap over the cap was fetched"
    assert report.repairs.gaps["restart"] == len(symbols) == report.repairs.unrepairable
    rows = [r for r in gap_rows(ch, "spot") if r["symbol"] in symbols]
    assert sorted(r["symbol"] for r in rows) == symbols
    for row in rows:
        assert (row["status"], row["cause"], row["recovered"]) == ("unrepairable", "restart", 0)
        assert row["first_id"] == left_off[row["symbol"]] + 1 and row["missing"] >= 20
        assert "more than max_restart_gap_trades (10)" in row["detail"]
        assert (
            f"tickscan backfill --market spot --symbols {row['symbol']} --from 20"
            in (row["detail"])
        )


def test_the_last_published_ids_come_from_the_topic_tail_and_clickhouse(
    kafka_bootstrap: str, ch_database: str, ch: Client, fresh_topic: Callable[[str], str]
) -> None:
    topic = fresh_topic(topics.TRADES)
    ensure_topics(kafka_bootstrap, [topic], 1)  # one partition: the order below is its order

    def trade(symbol: str, trade_id: int, market: Market = "spot") -> Trade:
        at = 1_700_000_000_000_000 + trade_id
        return Trade("binance", market, symbol, trade_id, Decimal(1), Decimal(1), at, False)

    published = [trade("TAILBUSDT", 500), trade("TAILBUSDT", 90)]  # a repair after a live id
    published += [trade("TAILAUSDT", i) for i in range(1, 30_001)]  # three chunks
    published += [trade("TAILAUSDT", 99_999, "usdm")]  # another market
    with TradePublisher(kafka_bootstrap, topic=topic) as publisher:
        for t in published:
            publisher.publish(t)
        publisher.flush()
    ch.command(
        "INSERT INTO trades (exchange, market, symbol, trade_id, price, qty, quote_qty, time,"
        " buyer_is_maker) VALUES ('binance', 'spot', 'TAILBUSDT', 400, 1, 1, 1, now64(6), 0),"
        " ('binance', 'spot', 'TAILCUSDT', 7, 1, 1, 1, '2024-01-02 03:04:05.000006', 0)"
    )
    wanted = ["TAILAUSDT", "TAILBUSDT", "TAILCUSDT", "TAILDUSDT"]

    consumers = functools.partial(Consumer, consumer_config(kafka_bootstrap))
    whole = last_trades_in_topic(
        consumers, topic, 1, "binance", "spot", wanted, max_records=100_000
    )
    assert whole == {
        "TAILAUSDT": LastTrade(30_000, 1_700_000_000_030_000),
        "TAILBUSDT": LastTrade(500, 1_700_000_000_000_500),
    }
    # Bounded: the newest chunk only, where TAILBUSDT is not.
    tail = last_trades_in_topic(consumers, topic, 1, "binance", "spot", wanted, max_records=1)
    assert tail == {"TAILAUSDT": LastTrade(30_000, 1_700_000_000_030_000)}
    stored = last_trades_in_clickhouse(ch, ch_database, "binance", "spot", wanted)
    assert stored["TAILCUSDT"] == LastTrade(7, 1_704_164_645_000_006)
    assert stored["TAILBUSDT"].trade_id == 400 and "TAILDUSDT" not in stored
    # ClickHouse covers what the tail did not reach; the larger id wins where both know.
    ids = {s: last.trade_id for s, last in newest(tail, stored).items()}
    assert ids == {"TAILAUSDT": 30_000, "TAILBUSDT": 400, "TAILCUSDT": 7}
    assert newest(whole, stored)["TAILBUSDT"].trade_id == 500
