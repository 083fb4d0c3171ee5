"""Live ingest against the fake Binance, the real broker and ClickHouse: no trade lost.

Each scenario runs `flows.live.LiveIngest` against `tests.fakes.binance.FakeBinance`,
makes the exchange misbehave (a cut, a rotation, a shutdown notice, ids never sent, a
delisting), then stops the exchange's trading, lets ingest catch up, stops it, reads the
trades topic back and compares trade ids with the fake's ground truth: every trade from
the first one ingest saw to the last one the exchange made must be there, exactly once.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, TopicPartition

from flows.live import IngestReport, LiveIngest
from runtime.kafka import consumer_config
from runtime.settings import ClickHouseSettings, IngestSettings, KafkaSettings, Settings
from schemas import topics
from schemas.quotes import quote_decoder
from schemas.trades import Market, trade_decoder
from tests.fakes.binance import FakeBinance

pytestmark = pytest.mark.integration

PARTITIONS = 3


@pytest.fixture
def make_settings(
    kafka_bootstrap: str, clickhouse_dsn: str, ch_database: str
) -> Callable[..., Settings]:
    """Settings for a test: the session's broker and database, short ingest timings."""

    def build(**ingest: Any) -> Settings:
        timings: dict[str, Any] = {
            "open_timeout_s": 5.0,
            "stall_s": 5.0,
            "backoff_base_s": 0.1,
            "backoff_max_s": 1.0,
            "gap_grace_s": 0.3,
            "rotation_overlap_s": 0.3,
            "status_every_s": 5.0,
        }
        timings.update(ingest)
        return Settings(
            kafka=KafkaSettings(bootstrap=kafka_bootstrap, partitions=PARTITIONS),
            clickhouse=ClickHouseSettings(dsn=clickhouse_dsn, database=ch_database),
            ingest=IngestSettings(**timings),
        )

    return build


@pytest.fixture
def spot_fake() -> Iterator[FakeBinance]:
    with FakeBinance("spot", symbols=4, rate=40.0, seed=3) as fake:
        yield fake


@pytest.fixture
def usdm_fake() -> Iterator[FakeBinance]:
    with FakeBinance("usdm", symbols=4, rate=40.0, seed=4) as fake:
        yield fake


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


def truth_ids(fake: FakeBinance, symbol: str) -> list[int]:
    """The ids the followed stream numbers: raw trade ids on spot, aggregate ids on USDⓈ-M."""
    if fake.market == "spot":
        return [row["id"] for row in fake.raw_trades(symbol)]
    return [row["a"] for row in fake.trades(symbol)]


def live_ingest(settings: Settings, fake: FakeBinance, topic: Callable[[str], str]) -> LiveIngest:
    return LiveIngest(
        settings,
        market=fake.market,
        rest_url=fake.rest_url,
        ws_base=fake.ws_url,
        trades_topic=topic(topics.TRADES),
        quotes_topic=topic(topics.QUOTES),
        deadletter_topic=topic(topics.DEADLETTER),
    )


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[bytes]:
    """Every record of a fresh topic, once at least `expected` are in (then a moment more)."""
    consumer = Consumer(consumer_config(bootstrap))
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + timeout
        quiet_until: float | None = None
        while True:
            batch = consumer.consume(num_messages=10_000, timeout=0.3)
            for msg in batch:
                assert msg.error() is None, msg.error()
                value = msg.value()
                assert value is not None
                values.append(value)
            now = time.monotonic()
            if len(values) >= expected:
                # Keep reading briefly: more than expected would be duplicates.
                quiet_until = quiet_until or now + 1.0
                if now >= quiet_until:
                    return values
            assert now < deadline, f"read {len(values)} of {expected} records from {topic}"
    finally:
        consumer.close()


def assert_no_trade_missing(
    bootstrap: str, topic: str, fake: FakeBinance, report: IngestReport
) -> dict[str, list[int]]:
    """Read the trades back: every id from the first seen to the exchange's last, once."""
    decode = trade_decoder().decode
    expected = report.publish.published
    got: dict[str, list[int]] = collections.defaultdict(list)
    for value in read_topic(bootstrap, topic, expected):
        trade = decode(value)
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


def gap_rows(ch: Client, market: Market, symbol: str | None = None) -> list[dict[str, Any]]:
    query = (
        "SELECT symbol, status, cause, first_id, last_id, missing, recovered, detail, version"
        " FROM data_quality FINAL WHERE kind = 'gap' AND market = {m:String}"
    )
    params: dict[str, Any] = {"m": market}
    if symbol is not None:
        query += " AND symbol = {s:String}"
        params["s"] = symbol
    result = ch.query(query, parameters=params)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def test_a_dropped_connection_loses_no_trade(
    make_settings: Callable[..., Settings],
    spot_fake: FakeBinance,
    fresh_topic: Callable[[str], str],
    kafka_bootstrap: str,
    ch: Client,
) -> None:
    async def scenario() -> IngestReport:
        live = live_ingest(make_settings(backoff_base_s=0.3), spot_fake, fresh_topic)
        run = Run(live)
        await run.until(lambda: live.counts.trades > 100, 15, "trades")
        # The fake makes trades in 50 ms ticks: a reconnect quick enough to fall between
        # two ticks misses nothing, so cut again until a cut has cost trades.
        for cut in range(1, 6):
            spot_fake.drop_connections()
            await run.until(
                lambda n=cut: live.status().reconnects.get("reconnect", 0) >= n, 10, "reconnect"
            )
            await asyncio.sleep(0.6)
            if live.status().repairs.gaps:
                break
        await run.until(lambda: live.status().repairs.repaired >= 1, 10, "a repaired gap")
        await asyncio.sleep(0.5)
        return await run.finish(spot_fake)

    report = asyncio.run(scenario())
    assert_no_trade_missing(kafka_bootstrap, fresh_topic(topics.TRADES), spot_fake, report)
    assert report.repairs.gaps["reconnect"] >= 1 and report.repairs.unrepairable == 0
    assert report.repairs.recovered >= 1
    assert report.counts.quotes > 0
    # data_quality is shared by the session: this run's rows are those of its ids.
    ours = {(s, i) for s in spot_fake.symbols for i in truth_ids(spot_fake, s)}
    repaired = [
        r
        for r in gap_rows(ch, "spot")
        if r["cause"] == "reconnect" and (r["symbol"], r["first_id"]) in ours
    ]
    assert len(repaired) == report.repairs.gaps["reconnect"]
    assert all(r["status"] == "repaired" and r["recovered"] == r["missing"] for r in repaired)

    quotes = read_topic(kafka_bootstrap, fresh_topic(topics.QUOTES), report.counts.quotes)
    decoded = [quote_decoder().decode(v) for v in quotes]
    assert len(decoded) == report.counts.quotes == report.counts.quotes_delivered
    per_symbol: dict[str, list[int]] = collections.defaultdict(list)
    for q in decoded:
        assert q.bid_price < q.ask_price and q.time_us is None  # spot sends no time
        per_symbol[q.symbol].append(q.update_id)
    # Overlaps and replays never publish a quote twice or out of order.
    assert all(ids == sorted(set(ids)) for ids in per_symbol.values())


def test_rotation_overlaps_connections_and_loses_no_trade(
    make_settings: Callable[..., Settings],
    usdm_fake: FakeBinance,
    fresh_topic: Callable[[str], str],
    kafka_bootstrap: str,
) -> None:
    # The exchange cuts connections at 3 s; ingest must rotate them before (at ~1.5 s).
    usdm_fake.max_connection_s = 3.0

    async def scenario() -> IngestReport:
        settings = make_settings(max_connection_age_s=1.5, rotation_overlap_s=0.3)
        live = live_ingest(settings, usdm_fake, fresh_topic)
        run = Run(live)
        await run.until(lambda: live.status().reconnects.get("rotation", 0) >= 4, 20, "rotations")
        return await run.finish(usdm_fake)

    report = asyncio.run(scenario())
    assert_no_trade_missing(kafka_bootstrap, fresh_topic(topics.TRADES), usdm_fake, report)
    # Each rotation opened the replacement first: the exchange never had to cut one.
    assert report.reconnects.get("reconnect", 0) == 0, report.reconnects
    assert report.counts.duplicates > 0, "the overlap delivered nothing twice?"


def test_server_shutdown_is_answered_before_the_server_closes(
    make_settings: Callable[..., Settings],
    spot_fake: FakeBinance,
    fresh_topic: Callable[[str], str],
    kafka_bootstrap: str,
) -> None:
    spot_fake.shutdown_grace_s = 2.0

    async def scenario() -> IngestReport:
        # Two connections of four streams each: both are told, both are replaced.
        live = live_ingest(make_settings(max_streams=4), spot_fake, fresh_topic)
        run = Run(live)
        await run.until(lambda: live.counts.trades > 100, 15, "trades")
        assert len(live.status().connections) == 2
        spot_fake.server_shutdown()
        await run.until(
            lambda: live.status().reconnects.get("server_shutdown", 0) >= 2, 10, "replacements"
        )
        await asyncio.sleep(2.5)  # past the server's close of the old sockets
        return await run.finish(spot_fake)

    report = asyncio.run(scenario())
    assert_no_trade_missing(kafka_bootstrap, fresh_topic(topics.TRADES), spot_fake, report)
    # Replaced in time: no socket was cut from under us, so nothing needed repair.
    assert report.reconnects.get("reconnect", 0) == 0, report.reconnects
    assert report.repairs.unrepairable == 0


def test_a_silent_connection_is_replaced_and_its_gap_repaired(
    make_settings: Callable[..., Settings],
    usdm_fake: FakeBinance,
    fresh_topic: Callable[[str], str],
    kafka_bootstrap: str,
) -> None:
    async def scenario() -> IngestReport:
        live = live_ingest(make_settings(stall_s=1.0), usdm_fake, fresh_topic)
        run = Run(live)
        await run.until(lambda: live.counts.trades > 100, 15, "trades")
        usdm_fake.stall(5.0)  # sockets stay open but send nothing, not even pings
        await run.until(lambda: live.status().repairs.repaired >= 1, 10, "the repair")
        return await run.finish(usdm_fake)

    report = asyncio.run(scenario())
    assert_no_trade_missing(kafka_bootstrap, fresh_topic(topics.TRADES), usdm_fake, report)
    assert report.reconnects.get("stall", 0) >= 1
    assert set(report.repairs.gaps) == {"stall"} and report.repairs.unrepairable == 0


def test_skipped_ids_are_repaired_from_rest_and_recorded(
    make_settings: Callable[..., Settings],
    fresh_topic: Callable[[str], str],
    kafka_bootstrap: str,
    ch: Client,
) -> None:
    # Its own seed: data_quality is shared by the session, and ids must not collide.
    usdm_fake = FakeBinance("usdm", symbols=4, rate=40.0, seed=11)
    usdm_fake.start_in_thread()

    async def scenario() -> IngestReport:
        live = live_ingest(make_settings(), usdm_fake, fresh_topic)
        run = Run(live)
        await run.until(lambda: live.counts.trades > 100, 15, "trades")
        usdm_fake.skip_ids("ETHUSDT", 7)
        await run.until(lambda: live.status().repairs.repaired >= 1, 10, "the repair")
        return await run.finish(usdm_fake)

    try:
        report = asyncio.run(scenario())
        assert_no_trade_missing(kafka_bootstrap, fresh_topic(topics.TRADES), usdm_fake, report)
        truth = truth_ids(usdm_fake, "ETHUSDT")
    finally:
        usdm_fake.stop_in_thread()
    assert dict(report.repairs.gaps) == {"sequence": 1}
    assert report.repairs.recovered == 7 and report.repairs.missing == 7
    rows = [r for r in gap_rows(ch, "usdm", "ETHUSDT") if truth[0] <= r["first_id"] <= truth[-1]]
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["status"], row["cause"], row["missing"], row["recovered"], row["version"]) == (
        "repaired",
        "sequence",
        7,
        7,
        2,
    )
    assert row["last_id"] - row["first_id"] == 6 and row["first_id"] in truth


def test_1500_symbols_over_many_connections_all_deliver(
    make_settings: Callable[..., Settings],
    fresh_topic: Callable[[str], str],
    kafka_bootstrap: str,
) -> None:
    with FakeBinance("spot", symbols=1_500, rate=2.0, seed=5) as fake:

        async def scenario() -> tuple[IngestReport, int]:
            live = live_ingest(make_settings(), fake, fresh_topic)
            run = Run(live)
            await run.until(lambda: len(live.status().connections) > 0, 15, "connections")
            shards = len(live.status().connections)
            traded = lambda: len({s.partition("@")[0] for s in live.status().freshness}) == 1_500  # noqa: E731
            await run.until(traded, 30, "every symbol's first message")
            await asyncio.sleep(3.0)
            return await run.finish(fake, timeout=30), shards

        started = time.monotonic()
        report, shards = asyncio.run(scenario())
        elapsed = time.monotonic() - started
        got = assert_no_trade_missing(kafka_bootstrap, fresh_topic(topics.TRADES), fake, report)
    # 3,000 streams at 200 per connection.
    assert shards == 15
    assert len(got) == 1_500
    print(f"1500 symbols: {report.publish.published} trades, {shards} connections, {elapsed:.1f} s")


def test_a_delisted_symbol_is_unsubscribed(
    make_settings: Callable[..., Settings],
    spot_fake: FakeBinance,
    fresh_topic: Callable[[str], str],
) -> None:
    async def scenario() -> tuple[LiveIngest, IngestReport]:
        live = live_ingest(make_settings(refresh_s=0.5), spot_fake, fresh_topic)
        run = Run(live)
        await run.until(lambda: live.counts.trades > 50, 15, "trades")
        assert "ETHUSDT" in live.symbols
        spot_fake.delist("ETHUSDT")
        await run.until(lambda: "ETHUSDT" not in live.symbols, 10, "the delisting")
        assert not {s for s in live.streams if s.startswith("ethusdt@")}
        assert len(live.status().freshness) == 6
        run.stop.set()
        return live, await run.task

    _, report = asyncio.run(scenario())
    unsubscribed = {
        stream
        for msg in spot_fake.subscribe_messages
        if isinstance(msg, dict) and msg.get("method") == "UNSUBSCRIBE"
        for stream in msg["params"]
    }
    assert unsubscribed == {"ethusdt@trade", "ethusdt@bookTicker"}
    assert report.symbols == 3
