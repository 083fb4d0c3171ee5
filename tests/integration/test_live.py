"""Live ingest against the fake Binance, the real broker and ClickHouse: no trade lost.

Each scenario runs `flows.ingest.run.LiveIngest` against `tests.fakes.binance.FakeBinance`,
makes the exchange misbehave (a cut, a rotation, a shutdown notice, ids never sent, a
delisting), then stops the exchange's trading, lets ingest catch up, stops it, reads the
trades topic back and compares trade ids with the fake's ground truth: every trade from
the first one ingest saw to the last one the exchange made must be there, exactly once.

The exchange opens only once ingest is subscribed and closes before ingest stops, so
every minute of its trading falls wholly inside the run. Where the scenario is one
issue 3 names (a cut, a rotation, a serverShutdown, an id gap), the candles are checked
too: the 1s and 1m candles built from the trades in the order the topic holds them
(repaired trades late, revising) equal those built from the exchange's own history in
id order, as an uninterrupted run would have seen it.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Iterator

import pytest
from clickhouse_connect.driver.client import Client

from flows.ingest.run import IngestReport
from schemas import topics
from schemas.quotes import quote_decoder
from tests.fakes.binance import FakeBinance
from tests.integration.live_run import (
    Run,
    arrived_late,
    assert_candles_as_uninterrupted,
    assert_no_trade_missing,
    consume_trades,
    gap_rows,
    live_ingest,
    open_market,
    read_topic,
    truth_ids,
)
from tickscan.ingest import LiveIngest
from tickscan.settings import Settings

pytestmark = pytest.mark.integration


# The exchanges open (`open_market`) once ingest is subscribed.
@pytest.fixture
def spot_fake() -> Iterator[FakeBinance]:
    with FakeBinance("spot", symbols=4, rate=0.0, seed=3) as fake:
        yield fake


@pytest.fixture
def usdm_fake() -> Iterator[FakeBinance]:
    with FakeBinance("usdm", symbols=4, rate=0.0, seed=4) as fake:
        yield fake


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
        await open_market(spot_fake, run)
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
    consumed = consume_trades(kafka_bootstrap, fresh_topic(topics.TRADES), report)
    assert_no_trade_missing(consumed, spot_fake)
    assert arrived_late(consumed) >= report.repairs.recovered
    assert_candles_as_uninterrupted(consumed, spot_fake)
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
    decoded = [quote_decoder().decode(v) for _, v in quotes]
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
        await open_market(usdm_fake, run)
        await run.until(lambda: live.status().reconnects.get("rotation", 0) >= 4, 20, "rotations")
        return await run.finish(usdm_fake)

    report = asyncio.run(scenario())
    consumed = consume_trades(kafka_bootstrap, fresh_topic(topics.TRADES), report)
    assert_no_trade_missing(consumed, usdm_fake)
    assert_candles_as_uninterrupted(consumed, usdm_fake)
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
        await open_market(spot_fake, run)
        await run.until(lambda: live.counts.trades > 100, 15, "trades")
        assert len(live.status().connections) == 2
        spot_fake.server_shutdown()
        await run.until(
            lambda: live.status().reconnects.get("server_shutdown", 0) >= 2, 10, "replacements"
        )
        await asyncio.sleep(2.5)  # past the server's close of the old sockets
        return await run.finish(spot_fake)

    report = asyncio.run(scenario())
    consumed = consume_trades(kafka_bootstrap, fresh_topic(topics.TRADES), report)
    assert_no_trade_missing(consumed, spot_fake)
    assert_candles_as_uninterrupted(consumed, spot_fake)
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
        await open_market(usdm_fake, run)
        await run.until(lambda: live.counts.trades > 100, 15, "trades")
        usdm_fake.stall(5.0)  # sockets stay open but send nothing, not even pings
        await run.until(lambda: live.status().repairs.repaired >= 1, 10, "the repair")
        return await run.finish(usdm_fake)

    report = asyncio.run(scenario())
    assert_no_trade_missing(
        consume_trades(kafka_bootstrap, fresh_topic(topics.TRADES), report), usdm_fake
    )
    assert report.reconnects.get("stall", 0) >= 1
    assert set(report.repairs.gaps) == {"stall"} and report.repairs.unrepairable == 0


def test_skipped_ids_are_repaired_from_rest_and_recorded(
    make_settings: Callable[..., Settings],
    fresh_topic: Callable[[str], str],
    kafka_bootstrap: str,
    ch: Client,
) -> None:
    # Its own seed: data_quality is shared by the session, and ids must not collide.
    usdm_fake = FakeBinance("usdm", symbols=4, rate=0.0, seed=11)
    usdm_fake.start_in_thread()

    async def scenario() -> IngestReport:
        live = live_ingest(make_settings(), usdm_fake, fresh_topic)
        run = Run(live)
        await open_market(usdm_fake, run)
        await run.until(lambda: live.counts.trades > 100, 15, "trades")
        usdm_fake.skip_ids("ETHUSDT", 7)
        await run.until(lambda: live.status().repairs.repaired >= 1, 10, "the repair")
        return await run.finish(usdm_fake)

    try:
        report = asyncio.run(scenario())
        consumed = consume_trades(kafka_bootstrap, fresh_topic(topics.TRADES), report)
        assert_no_trade_missing(consumed, usdm_fake)
        assert arrived_late(consumed) == 7  # the repaired trades, behind later live ones
        assert_candles_as_uninterrupted(consumed, usdm_fake)
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
        consumed = consume_trades(kafka_bootstrap, fresh_topic(topics.TRADES), report)
        got = assert_no_trade_missing(consumed, fake)
    # 3,000 streams at 200 per connection.
    assert shards == 15
    assert len(got) == 1_500
    print(f"1500 symbols: {report.publish.published} trades, {shards} connections, {elapsed:.1f} s")


def test_a_delisted_symbol_is_unsubscribed_and_its_status_recorded(
    make_settings: Callable[..., Settings],
    spot_fake: FakeBinance,
    fresh_topic: Callable[[str], str],
    ch: Client,
) -> None:
    async def scenario() -> tuple[LiveIngest, IngestReport]:
        live = live_ingest(make_settings(refresh_s=0.5), spot_fake, fresh_topic)
        run = Run(live)
        await open_market(spot_fake, run)
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
    # The symbols table says what the exchange lists, delisted symbols with their status.
    rows = ch.query(
        "SELECT symbol, base_asset, quote_asset, status, kind FROM symbols FINAL"
        " WHERE exchange = 'binance' AND market = 'spot' AND symbol IN ('BTCUSDT', 'ETHUSDT')"
        " ORDER BY symbol"
    ).result_rows
    assert rows == [
        ("BTCUSDT", "BTC", "USDT", "TRADING", "spot"),
        ("ETHUSDT", "ETH", "USDT", "BREAK", "spot"),
    ]
