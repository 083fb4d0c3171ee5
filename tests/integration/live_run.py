"""Running `flows.ingest.run.LiveIngest` against the fake Binance inside an integration test,
and reading back what it published to check it against the fake's ground truth."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Iterable
from decimal import Context, localcontext
from typing import Any

import msgspec
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, TopicPartition

from flows.candles.engine import PartitionCandles
from flows.ingest.run import IngestReport
from flows.ingest.settings import IngestSettings
from flows.sources.binance.rest import parse_agg_trades, parse_trades
from runtime.kafka import consumer_config
from runtime.settings import ClickHouseSettings, KafkaSettings
from schemas import topics
from schemas.candles import Candle
from schemas.trades import Market, Trade, trade_decoder
from tests.fakes.binance import FakeBinance
from tickscan.ingest import LiveIngest
from tickscan.settings import Settings

PARTITIONS = 3
RATE = 40.0
"""Trades per second per symbol once the fake exchange opens."""


def live_settings(bootstrap: str, dsn: str, database: str, **ingest: Any) -> Settings:
    """Settings for a test: the session's broker and database, short ingest timings."""
    timings: dict[str, Any] = {
        "open_timeout_s": 5.0,
        "stall_s": 5.0,
        "backoff_base_s": 0.1,
        "backoff_max_s": 1.0,
        "gap_grace_s": 0.3,
        "rotation_overlap_s": 0.3,
        "status_every_s": 5.0,
        # These tests follow trades; history at start has its own (test_history.py).
        "history_h": 0.0,
    }
    timings.update(ingest)
    return Settings(
        kafka=KafkaSettings(bootstrap=bootstrap, partitions=PARTITIONS),
        clickhouse=ClickHouseSettings(dsn=dsn, database=database),
        ingest=IngestSettings(**timings),
    )


def live_ingest(
    settings: Settings, fake: FakeBinance, topic: Callable[[str], str], **options: Any
) -> LiveIngest:
    """A live ingest of the fake's market onto fresh topics."""
    return LiveIngest(
        settings,
        market=fake.market,
        rest_url=fake.rest_url,
        ws_base=fake.ws_url,
        trades_topic=topic(topics.TRADES),
        quotes_topic=topic(topics.QUOTES),
        deadletter_topic=topic(topics.DEADLETTER),
        depth_topic=topic(topics.DEPTH),
        watch_topic=topic(topics.DEPTH_WATCH),
        **options,
    )


def truth_ids(fake: FakeBinance, symbol: str) -> list[int]:
    """The ids the followed stream numbers: raw trade ids on spot, aggregate ids on USDⓈ-M."""
    if fake.market == "spot":
        return [row["id"] for row in fake.raw_trades(symbol)]
    return [row["a"] for row in fake.trades(symbol)]


class Run:
    """One ingest run in the background of a test's event loop."""

    def __init__(self, live: LiveIngest) -> None:
        self.live = live
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(live.run(self.stop))

    async def until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.task.done():
                self.task.result()
                raise AssertionError(f"ingest ended while waiting for {what}")
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}: {self.live.status()}"
            )
            await asyncio.sleep(0.05)

    async def subscribed(self, timeout: float = 15.0) -> None:
        """Wait until every stream is subscribed on an open connection."""

        def ready() -> bool:
            shards = self.live.status().connections
            return bool(shards) and all(s.state == "open" for s in shards)

        await self.until(ready, timeout, "every connection open and subscribed")

    async def finish(self, fake: FakeBinance, timeout: float = 20.0) -> IngestReport:
        """Stop the exchange trading, wait until ingest has every trade, stop ingest."""
        fake.rate = 0.0
        await asyncio.sleep(0.3)  # the generator's last tick is sent
        ids = {s: truth_ids(fake, s) for s in self.live.symbols}

        def caught_up() -> bool:
            status = self.live.status()
            return (
                status.repairs_running == 0
                and status.open_holes == 0
                and all(
                    not want or self.live.last_trade_id(s) == want[-1] for s, want in ids.items()
                )
            )

        await self.until(caught_up, timeout, "ingest to catch up with the exchange")
        self.stop.set()
        return await asyncio.wait_for(self.task, 60)


async def open_market(fake: FakeBinance, *runs: Run) -> None:
    """Start the fake's trading once every run is subscribed: ingest sees its first trade."""
    for run in runs:
        await run.subscribed()
    fake.rate = RATE


# -- reading back what a run published ----------------------------------------------

Consumed = dict[int, list[Trade]]
"""The trades read back from the topic, per partition, in the topic's order."""


def read_topic(
    bootstrap: str, topic: str, expected: int, timeout: float = 30.0
) -> list[tuple[int, bytes]]:
    """Every record of a fresh topic as (partition, value), once at least `expected` are
    in (then a moment more); each partition's records in their order."""
    consumer = Consumer(consumer_config(bootstrap))
    values: list[tuple[int, bytes]] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + timeout
        quiet_until: float | None = None
        while True:
            batch = consumer.consume(num_messages=10_000, timeout=0.3)
            for msg in batch:
                assert msg.error() is None, msg.error()
                value, partition = msg.value(), msg.partition()
                assert value is not None and partition is not None
                values.append((partition, value))
            now = time.monotonic()
            if len(values) >= expected:
                # Keep reading briefly: more than expected would be duplicates.
                quiet_until = quiet_until or now + 1.0
                if now >= quiet_until:
                    return values
            assert now < deadline, f"read {len(values)} of {expected} records from {topic}"
    finally:
        consumer.close()


def consume_trades(bootstrap: str, topic: str, *reports: IngestReport) -> Consumed:
    """Read back every trade the runs of `reports` published."""
    decode = trade_decoder().decode
    consumed: Consumed = collections.defaultdict(list)
    expected = sum(report.publish.published for report in reports)
    for partition, value in read_topic(bootstrap, topic, expected):
        consumed[partition].append(decode(value))
    return consumed


def assert_no_trade_missing(consumed: Consumed, fake: FakeBinance) -> dict[str, list[int]]:
    """Every id from the first seen to the exchange's last is in the topic, once."""
    got: dict[str, list[int]] = collections.defaultdict(list)
    for trade in (t for trades in consumed.values() for t in trades):
        assert (trade.exchange, trade.market) == ("binance", fake.market)
        got[trade.symbol].append(trade.trade_id)
    for symbol, ids in got.items():
        truth = truth_ids(fake, symbol)
        first = min(ids)
        want = [i for i in truth if i >= first]
        missing = sorted(set(want) - set(ids))
        assert not missing, f"{symbol}: {len(missing)} trades missing, e.g. {missing[:10]}"
        dupes = [i for i, n in collections.Counter(ids).items() if n > 1]
        assert not dupes, f"{symbol}: published twice: {dupes[:10]}"
        assert sorted(ids) == want
        # Ingest saw the symbol from its first seconds, not just at the end.
        assert len(ids) > 0.5 * len(truth), (symbol, len(ids), len(truth))
    assert set(got) == report_symbols(fake)
    return got


def report_symbols(fake: FakeBinance) -> set[str]:
    return set(fake.symbols)


def truth_trades(fake: FakeBinance, symbol: str) -> list[Trade]:
    """The exchange's trades of `symbol` in id order, as the followed stream carries them."""
    if fake.market == "spot":
        return parse_trades(msgspec.json.encode(fake.raw_trades(symbol)), "spot", symbol)
    return parse_agg_trades(msgspec.json.encode(fake.trades(symbol)), "usdm", symbol)


CandleKey = tuple[str, str, int]


def final_candles(trades: Iterable[Trade]) -> tuple[dict[CandleKey, Candle], int]:
    """The latest version of every candle the engine makes of `trades` in this order,
    emitting as soon as event time allows (no lateness: late trades revise), and how
    many revisions it made."""
    engine = PartitionCandles(lateness_ms=0)
    out: list[Candle] = []
    for trade in trades:
        assert engine.add(trade.key, trade, out) is None, f"too late: {trade}"
        engine.advance(out)
    engine.flush(out)
    final: dict[CandleKey, Candle] = {}
    for candle in out:
        key = (candle.symbol, candle.interval, candle.open_time)
        if key not in final or candle.version >= final[key].version:
            final[key] = candle
    return final, engine.stats.revisions


def assert_candles_as_uninterrupted(consumed: Consumed, fake: FakeBinance) -> int:
    """The candles of the trades as consumed equal those of the exchange's history.

    Ours come from one engine per partition fed in topic order, like the candle flow;
    the exchange's from its trades of each symbol in id order. Every 1s and 1m candle
    from each symbol's first trade to its last is compared, flat ones included, all
    fields but the version.

    Returns:
        How many revisions our side made (late, repaired trades cause them).
    """
    ours: dict[CandleKey, Candle] = {}
    revisions = 0
    with localcontext(Context(prec=60)):  # as the candle flow: sums never round
        for trades in consumed.values():
            candles, revised = final_candles(trades)
            ours.update(candles)
            revisions += revised
        theirs: dict[CandleKey, Candle] = {}
        for symbol in fake.symbols:
            truth = truth_trades(fake, symbol)
            seen = [t.trade_id for ts in consumed.values() for t in ts if t.symbol == symbol]
            # Ingest saw the exchange's very first trade: its trading lies inside the run.
            assert truth and min(seen) == truth[0].trade_id, symbol
            first, last = truth[0].time_us // 1000, truth[-1].time_us // 1000
            candles, _ = final_candles(truth)
            for (sym, interval, open_time), candle in candles.items():
                size = 1_000 if interval == "1s" else 60_000
                if first - first % size <= open_time <= last:
                    theirs[(sym, interval, open_time)] = candle
    assert {c.interval for c in theirs.values()} == {"1s", "1m"}

    def unversioned(candles: dict[CandleKey, Candle]) -> dict[CandleKey, Candle]:
        return {k: msgspec.structs.replace(c, version=0) for k, c in candles.items()}

    compared = unversioned({k: c for k, c in ours.items() if k in theirs})
    assert compared.keys() == theirs.keys(), sorted(theirs.keys() - compared.keys())[:5]
    differ = [k for k, c in unversioned(theirs).items() if compared[k] != c]
    assert not differ, [(compared[k], theirs[k]) for k in differ[:3]]
    return revisions


def arrived_late(consumed: Consumed) -> int:
    """Trades that came after a later trade of their symbol: repaired ones."""
    late = 0
    for trades in consumed.values():
        newest: dict[str, int] = {}
        for trade in trades:
            if trade.trade_id < newest.get(trade.symbol, -1):
                late += 1
            else:
                newest[trade.symbol] = trade.trade_id
    return late


def gap_rows(
    ch: Client, market: Market, symbol: str | None = None, kind: str = "gap"
) -> list[dict[str, Any]]:
    """The latest state of each ``data_quality`` finding of `kind` (gaps by default)."""
    query = (
        "SELECT symbol, status, cause, first_id, last_id, missing, recovered, detail, version,"
        " detected_at, resolved_at"
        " FROM data_quality FINAL WHERE kind = {k:String} AND market = {m:String}"
    )
    params: dict[str, Any] = {"m": market, "k": kind}
    if symbol is not None:
        query += " AND symbol = {s:String}"
        params["s"] = symbol
    result = ch.query(query, parameters=params)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
