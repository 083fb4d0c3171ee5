"""The simulated perpetuals against the real broker and ClickHouse: a day of marks, funding,
open interest and liquidations at first start, resumed after a restart, and all four
kinds published live."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC
from typing import Any

import numpy as np
import pytest
from clickhouse_connect.driver.client import Client

from flows.sinks.symbols import SymbolWriter
from flows.sources.simulator import SyntheticMarket
from flows.sources.simulator.perps import Perpetuals, perp_count
from flows.sources.simulator.regimes import PUMP, Regimes
from runtime.kafka import ensure_topics
from schemas import topics
from schemas.perps import funding_decoder, liquidation_decoder, mark_decoder, open_interest_decoder
from schemas.topics import PerpTopics
from schemas.trades import trade_decoder
from tests.integration.databases import migrated_database
from tests.integration.live_run import PARTITIONS, read_topic
from tests.unit.flows.sources.simulator.test_perp_candles import first_prints
from tickscan.simulate import BOARD_HISTORY_MS, prepare_market, prepare_perpetuals, publish_market

pytestmark = pytest.mark.integration

SYMBOLS = 10
PERPS = perp_count(SYMBOLS)
NOW_MS = 1_795_999_980_000 + 37_250  # 37 s into a minute
END_MS = NOW_MS - NOW_MS % 60_000


@pytest.fixture
def database(clickhouse_dsn: str) -> Iterator[str]:
    """A migrated database of this test's own: no other test's simulated data to resume."""
    with migrated_database(clickhouse_dsn, "simperps") as name:
        yield name


def rows(ch: Client, sql: str, database: str) -> Sequence[Sequence[Any]]:
    return ch.query(sql, parameters={"db": database}).result_rows


def count(ch: Client, table: str, database: str) -> int:
    return int(rows(ch, f"SELECT count() FROM {{db:Identifier}}.{table} FINAL", database)[0][0])


def test_first_start_fills_the_perps_tables_and_a_restart_continues_them(
    ch: Client, database: str
) -> None:
    market, _ = prepare_market(ch, database, SYMBOLS, 200.0, seed=5, now_ms=NOW_MS)
    perps, report = prepare_perpetuals(ch, database, market)
    SymbolWriter(lambda: ch, database).write(perps.symbol_infos(END_MS))

    assert report.written["MarkPrice"] == count(ch, "marks_1s", database)
    # Marks every second of the last hour, every minute before; up to the market's start.
    per_symbol = ch.query(
        "SELECT symbol, countIf(time > fromUnixTimestamp64Milli({end:Int64}) - INTERVAL 1 HOUR),"
        " toUnixTimestamp64Milli(max(time)) FROM {db:Identifier}.marks_1s FINAL"
        " GROUP BY symbol ORDER BY symbol",
        parameters={"db": database, "end": END_MS},
    ).result_rows
    assert [(s, n, end) for s, n, end in per_symbol] == [
        (name, 3_600, END_MS) for name in sorted(perps.symbols)
    ]
    # The three funding times of the day, at 00/08/16 UTC, one row each per perpetual.
    funding = rows(
        ch,
        "SELECT funding_time, count(), min(source) FROM {db:Identifier}.funding FINAL"
        " GROUP BY funding_time ORDER BY funding_time",
        database,
    )
    assert len(funding) == 3 and report.written["FundingEvent"] == 3 * PERPS
    for when, n, source in funding:
        assert (when.astimezone(UTC).hour % 8, when.minute, when.second) == (0, 0, 0)
        assert (n, source) == (PERPS, "sim")
    # Open interest every 5 minutes over the day.
    oi = rows(
        ch,
        "SELECT count(), countIf(toUnixTimestamp(time) % 300 != 0), min(open_interest) > 0"
        " FROM {db:Identifier}.open_interest FINAL",
        database,
    )[0]
    assert oi[0] == report.written["OpenInterest"] and oi[0] >= PERPS * 24 * 12 - PERPS
    assert oi[1:] == (0, True)
    # Liquidations in the pumps and dumps of the day, at most one per symbol per second.
    liquidations = rows(
        ch,
        "SELECT symbol, toUnixTimestamp(time), side FROM {db:Identifier}.liquidations FINAL",
        database,
    )
    assert len(liquidations) == report.written["Liquidation"] > 0
    assert max(Counter((s, t) for s, t, _ in liquidations).values()) == 1
    slot = {name: i for i, name in enumerate(perps.symbols)}
    kinds = Regimes(5, PERPS).at(np.array([t for _, t, _ in liquidations])).kind
    for column, (symbol, _, side) in enumerate(liquidations):
        assert side == ("BUY" if kinds[slot[symbol], column] == PUMP else "SELL")
    # The perpetuals are listed as the exchange's would be.
    listed = rows(
        ch,
        "SELECT symbol, kind, status FROM {db:Identifier}.symbols FINAL"
        " WHERE exchange = 'sim' AND market = 'usdm' ORDER BY symbol",
        database,
    )
    assert listed == [(name, "perpetual", "TRADING") for name in sorted(perps.symbols)]

    # A restart at once writes nothing; ten minutes later, only those ten minutes.
    again, none = prepare_perpetuals(
        ch, database, prepare_market(ch, database, SYMBOLS, 200.0, seed=5, now_ms=NOW_MS)[0]
    )
    assert not none.written
    last_oi = {
        s: float(v)
        for s, v in rows(
            ch,
            "SELECT symbol, argMax(open_interest, time) FROM {db:Identifier}.open_interest FINAL"
            " GROUP BY symbol",
            database,
        )
    }
    assert again.model.open_interest.tolist() == pytest.approx([last_oi[s] for s in again.symbols])
    # So does the funding estimate: the last stored mark's.
    last_rate = {
        s: float(v)
        for s, v in rows(
            ch,
            "SELECT symbol, argMax(funding_rate, time) FROM {db:Identifier}.marks_1s"
            " GROUP BY symbol",
            database,
        )
    }
    assert again.model.funding_rate().tolist() == pytest.approx(
        [last_rate[s] for s in again.symbols], abs=1e-8
    )
    later_ms = END_MS + 10 * 60_000
    later, _ = prepare_market(ch, database, SYMBOLS, 200.0, seed=5, now_ms=later_ms)
    _, ten = prepare_perpetuals(ch, database, later)
    assert (
        ten.written["MarkPrice"] == 600 * PERPS and ten.written["FundingEvent"] == 0
    )  # within the 1 Hz hour
    assert ten.written["OpenInterest"] == 2 * PERPS  # two 5-minute marks in ten minutes
    new = rows(
        ch,
        "SELECT symbol, open_interest FROM {db:Identifier}.open_interest FINAL"
        " WHERE time = (SELECT min(time) FROM {db:Identifier}.open_interest"
        f" WHERE time > fromUnixTimestamp64Milli({END_MS}))",
        database,
    )
    # Open interest goes on from the stored value: no jump back to a base.
    for symbol, value in new:
        assert abs(float(value) / last_oi[symbol] - 1) < 0.05


def pump_start_s(seed: int, after_s: int) -> int:
    """A second after `after_s` at which the busiest perpetual is in a pump."""
    times = np.arange(after_s, after_s + 7 * 86_400, 60)
    kinds = Regimes(seed, 1).at(times).kind[0]
    return int(times[np.flatnonzero(kinds == PUMP)[0]])


def test_a_short_run_publishes_trades_marks_funding_open_interest_and_liquidations(
    kafka_bootstrap: str, fresh_topic: Callable[[str], str]
) -> None:
    names = {
        kind: fresh_topic(topic)
        for kind, topic in (
            ("trades", topics.TRADES),
            ("marks", topics.MARKS),
            ("liquidations", topics.LIQUIDATIONS),
            ("open_interest", topics.OPEN_INTEREST),
            ("funding", topics.FUNDING),
        )
    }
    ensure_topics(kafka_bootstrap, list(names.values()), partitions=PARTITIONS)
    start_s = pump_start_s(9, 1_790_000_000)
    market = SyntheticMarket(SYMBOLS, 400.0, seed=9, start_us=start_s * 1_000_000)
    perps = Perpetuals(market, funding_every_s=60)
    report = publish_market(
        kafka_bootstrap,
        market,
        duration=2.0,
        topic=names["trades"],
        realtime=False,
        perps=perps,
        perp_topics=PerpTopics(
            names["marks"], names["liquidations"], names["open_interest"], names["funding"]
        ),
    )
    seconds = perps.second - start_s
    assert seconds > 60 and report.publish.delivery_failures == 0

    marks = [mark_decoder().decode(v) for _, v in read_topic(kafka_bootstrap, names["marks"], 1)]
    assert len(marks) == seconds * PERPS
    funding = [
        funding_decoder().decode(v) for _, v in read_topic(kafka_bootstrap, names["funding"], 1)
    ]
    assert {e.funding_time_us % 60_000_000 for e in funding} == {0}
    assert len(funding) == (perps.second // 60 - start_s // 60) * PERPS
    oi = [
        open_interest_decoder().decode(v)
        for _, v in read_topic(kafka_bootstrap, names["open_interest"], 1)
    ]
    assert {o.source for o in oi} == {"sim"} and len(oi) >= (seconds // 5 - 1) * PERPS
    liquidations = [
        liquidation_decoder().decode(v)
        for _, v in read_topic(kafka_bootstrap, names["liquidations"], 1)
    ]
    assert liquidations
    slot = {name: i for i, name in enumerate(perps.symbols)}
    kinds = Regimes(9, PERPS).at(np.array([q.time_us // 1_000_000 for q in liquidations])).kind
    for column, liquidation in enumerate(liquidations):
        kind = kinds[slot[liquidation.symbol], column]
        assert liquidation.side == ("BUY" if kind == PUMP else "SELL")
    trades = [
        trade_decoder().decode(v)
        for _, v in read_topic(kafka_bootstrap, names["trades"], report.trades)
    ]
    perp_trades = [t for t in trades if t.market == "usdm"]
    assert perp_trades and {t.symbol for t in perp_trades} == set(perps.symbols)
    assert report.perps == len(marks) + len(funding) + len(oi) + len(liquidations)


def perp_candles(ch: Client, database: str, table: str) -> dict[str, list[tuple[Any, ...]]]:
    """Each perpetual's stored candles of `table`: (open ms, open, close, count, first id,
    last id), in time order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for symbol, *row in ch.query(
        "SELECT symbol, toUnixTimestamp64Milli(open_time), open, close, count, first_trade_id,"
        " last_trade_id FROM {db:Identifier}.{table:Identifier} FINAL"
        " WHERE exchange = 'sim' AND market = 'usdm' ORDER BY symbol, open_time",
        parameters={"db": database, "table": table},
    ).result_rows:
        out.setdefault(symbol, []).append(tuple(row))
    return out


def assert_ids_run_on(candles: list[tuple[Any, ...]]) -> None:
    traded = [c for c in candles if c[3]]
    assert all(c[5] - c[4] + 1 == c[3] for c in traded)
    assert all(b[4] == a[5] + 1 for a, b in itertools.pairwise(traded))


def test_first_start_gives_the_perpetuals_candles_and_a_restart_continues_them(
    ch: Client, database: str
) -> None:
    market, report = prepare_market(
        ch, database, SYMBOLS, 200.0, seed=5, now_ms=NOW_MS, perpetuals=True
    )
    perps, _ = prepare_perpetuals(ch, database, market)
    minutes = perp_candles(ch, database, "candles_1m")
    seconds = perp_candles(ch, database, "candles_1s")
    assert sorted(minutes) == sorted(seconds) == sorted(perps.symbols)
    assert report.perp_candles_1m == sum(map(len, minutes.values()))
    first_ms = END_MS - BOARD_HISTORY_MS
    for name in perps.symbols:
        # The board's day in minutes (from the first print, in the first minute) and
        # the last hour in seconds, up to the market's start.
        assert [c[0] for c in minutes[name]] == list(range(first_ms, END_MS, 60_000))
        assert [c[0] for c in seconds[name]] == list(range(END_MS - 3_600_000, END_MS, 1000))
        assert_ids_run_on(minutes[name])
        assert_ids_run_on(seconds[name])
    # The live perpetuals go on from the stored candles: next id, last price.
    last_ids = {name: minutes[name][-1][5] for name in perps.symbols}
    assert perps.next_trade_ids() == {name: i + 1 for name, i in last_ids.items()}

    # A restart ten minutes later fills the ten minutes, ids and prices running on.
    later_ms = END_MS + 10 * 60_000
    later, again = prepare_market(
        ch, database, SYMBOLS, 200.0, seed=5, now_ms=later_ms, perpetuals=True
    )
    assert again.perp_candles_1m == 10 * PERPS and again.perp_candles_1s == 600 * PERPS
    resumed, _ = prepare_perpetuals(ch, database, later)
    after = perp_candles(ch, database, "candles_1m")
    for name in perps.symbols:
        assert [c[0] for c in after[name]] == list(range(first_ms, later_ms, 60_000))
        assert_ids_run_on(after[name])
        before_close, next_open = after[name][-11][2], after[name][-10][1]
        assert abs(next_open / before_close - 1) < 0.005, name
    live = first_prints(later, resumed, 30_000)
    assert sorted(live) == sorted(perps.symbols)
    for name, trade in live.items():
        assert trade.trade_id == max(c[5] or 0 for c in after[name]) + 1
        assert trade.time_us >= later_ms * 1000
        assert abs(trade.price / after[name][-1][2] - 1) < 0.005, (name, trade)
