"""Perpetuals metrics end to end, on the real broker and chDB: candles, marks, open interest,
liquidations and funding published to their topics, the signals flow run over them, and
its published rows checked against the values recomputed here from the records; then a
restart that reads the perpetuals data back from ClickHouse shows the same row at once,
and its minute snapshots in `rank_snapshots` hold the recomputed values too."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer

from api.services.filter_query import parse_query
from api.services.filter_sql import history_rows, history_sql
from flows.recovery import run_flow
from flows.signals.flow import SignalCounters, build_kafka_flow
from flows.signals.settings import SignalFlowSettings
from flows.signals.warm_start import WarmStart
from flows.sinks.perps import PerpWriter
from flows.sinks.scanner_tables import scanner_writer
from flows.sources.kafka import RunBounds
from runtime.kafka import ensure_topics, producer_config
from schemas import topics
from schemas.candles import Candle, encode_candle
from schemas.perps import FundingEvent, Liquidation, MarkPrice, OpenInterest, encode_perp
from schemas.ranks import PERP_METRICS, RankRow, rank_decoder
from schemas.topics import PerpTopics
from tests.integration.test_signals import read
from tests.perps_records import funding, liquidation, mark, open_interest, perp_candle
from tests.unit.flows.signals.test_metrics import candle

pytestmark = pytest.mark.integration

PARTITIONS = 3
S = 1_000
H = 3_600_000
# Yesterday's midnight (UTC): inside marks_1s's TTL, and a funding time.
T0 = int((datetime.now(UTC) - timedelta(days=1)).replace(
    hour=0, minute=0, second=0, microsecond=0).timestamp()) * 1000  # fmt: skip
SECONDS = 130
"""1s candles of each symbol: T0 .. T0 + 129 s; the last row is as of T0 + 130 s."""
SYMBOLS = ("PXAUSDT", "PXBUSDT")

Perp = MarkPrice | OpenInterest | Liquidation | FundingEvent


def records_of(symbol: str, k: int) -> tuple[list[Candle], list[Perp]]:
    """A symbol's candles and perpetuals records (`k` tells the symbols' figures apart).
    Prices are multiples of 1/8, exact in binary, so every path gives the same floats."""
    candles = [
        perp_candle(candle("1s", T0 + s * S, str(100 * k + s % 7 * 0.125), symbol=symbol))
        for s in range(SECONDS)
    ]
    perps: list[Perp] = [
        funding(T0 - 8 * H, "-0.0002", symbol),
        funding(T0, str(k * 0.0001), symbol),
    ]
    for s in range(0, 121):
        price = 100 * k + s % 5 * 0.25
        perps.append(
            mark(
                T0 + s * S + 500,
                str(price),
                str(price - 0.5 * k),
                str(k * 0.00005),
                T0 + 8 * H,
                symbol,
            )
        )
    perps.append(open_interest(T0 - H, str(900 * k), symbol))
    perps.append(open_interest(T0 - 300 * S, str(950 * k), symbol))
    for s in range(0, 121, 10):
        perps.append(open_interest(T0 + s * S, str(1000 * k + s * 4), symbol))
    perps += [
        liquidation(T0 + 3 * S, "SELL", "0.5", str(100 * k), symbol),
        liquidation(T0 + 40 * S, "BUY", "2", str(100 * k + 1), symbol),
        liquidation(T0 + 40 * S, "SELL", "1.5", str(100 * k - 1), symbol),
        liquidation(T0 + 119 * S, "SELL", str(k), "99", symbol),
    ]
    return candles, perps


def expected(perps: list[Perp], time_ms: int) -> dict[str, float | None]:
    """The row's perpetuals metrics as of `time_ms`, recomputed from the records by the
    definitions (schemas.ranks.RankRow), with exact decimals until the end."""
    marks = [p for p in perps if isinstance(p, MarkPrice)]
    last = max(marks, key=lambda m: m.time_us)
    settled = max(
        (p for p in perps if isinstance(p, FundingEvent)), key=lambda f: f.funding_time_us
    )
    samples = sorted((p for p in perps if isinstance(p, OpenInterest)), key=lambda o: o.time_us)
    newest_ms = (
        max(
            getattr(p, "time_us", None) or p.funding_time_us
            for p in perps  # type: ignore[union-attr]
        )
        // 1000
    )
    end = max(time_ms, newest_ms + 1)
    assert last.funding_rate is not None
    rate_pct = last.funding_rate * 100
    interval_h = (last.next_funding_time_us - settled.funding_time_us) // 3_600_000_000
    assert interval_h == 8
    oi = samples[-1].open_interest

    def oi_change(window_ms: int) -> float | None:
        at = samples[-1].time_us // 1000 - window_ms
        before = [o for o in samples if o.time_us // 1000 <= at]
        if not before or before[-1].time_us // 1000 < at - 300_000:
            return None
        return float((oi / before[-1].open_interest - 1) * 100)

    def liquidated(is_long: bool, window_ms: int) -> float:
        return float(
            sum(
                (
                    q.filled_qty * q.avg_price
                    for q in perps
                    if isinstance(q, Liquidation)
                    and q.is_long == is_long
                    and end - window_ms <= q.time_us // 1000 < end
                ),
                Decimal(0),
            )
        )

    return {
        "mark_price": float(last.mark_price),
        "index_price": float(last.index_price),
        "basis_bps": float((last.mark_price - last.index_price) / last.index_price * 10_000),
        "funding_rate_pct": float(rate_pct),
        "funding_last_pct": float(settled.funding_rate * 100),
        "funding_annual_pct": float(rate_pct * 365 * 24 / interval_h),
        "next_funding_s": (last.next_funding_time_us // 1000 - time_ms) / 1000,
        "open_interest": float(oi),
        "open_interest_value": float(oi * last.mark_price),
        "oi_change_pct_5m": oi_change(300_000),
        "oi_change_pct_1h": oi_change(H),
        "oi_change_pct_4h": oi_change(4 * H),
        "oi_change_pct_24h": oi_change(24 * H),
        "liq_long_5m": liquidated(True, 300_000),
        "liq_long_1h": liquidated(True, H),
        "liq_long_24h": liquidated(True, 24 * H),
        "liq_short_5m": liquidated(False, 300_000),
        "liq_short_1h": liquidated(False, H),
        "liq_short_24h": liquidated(False, 24 * H),
    }


def assert_perps(row: dict[str, Any] | RankRow, want: dict[str, float | None]) -> None:
    got = {
        name: getattr(row, name) if isinstance(row, RankRow) else row[name] for name in PERP_METRICS
    }
    assert [name for name in PERP_METRICS if (got[name] is None) != (want[name] is None)] == []
    assert {k: v for k, v in got.items() if v is not None} == pytest.approx(
        {k: v for k, v in want.items() if v is not None}, rel=1e-12
    )


def publish(bootstrap: str, topic: str, items: list[tuple[str, bytes]]) -> RunBounds:
    """Publish keyed messages (partitioned by key, as every stage does) and end the run."""
    producer = Producer(producer_config(bootstrap))
    ends: dict[int, int] = {}

    def delivered(error: Any, message: Any) -> None:
        assert error is None, error
        ends[message.partition()] = message.offset()

    for key, value in items:
        producer.produce(topic, value, key.encode())
    assert producer.flush(30) == 0
    for partition in range(PARTITIONS):
        producer.produce(
            topic, b"end", partition=partition,
            headers=[(topics.CONTROL_HEADER, topics.END_OF_RUN)], on_delivery=delivered,
        )  # fmt: skip
    assert producer.flush(30) == 0
    return RunBounds(dict.fromkeys(range(PARTITIONS), 0), ends)


def last_rows(rows: list[RankRow]) -> dict[str, RankRow]:
    latest: dict[str, RankRow] = {}
    for row in rows:  # one symbol's rows keep their order in their partition
        latest[row.key] = row
    return latest


DATA = {symbol: records_of(symbol, k) for k, symbol in enumerate(SYMBOLS, start=1)}
PERP_TOPICS = (topics.MARKS, topics.OPEN_INTEREST, topics.LIQUIDATIONS, topics.FUNDING)
TOPIC_OF: dict[type, str] = dict(
    zip((MarkPrice, OpenInterest, Liquidation, FundingEvent), PERP_TOPICS, strict=True)
)


def run(
    bootstrap: str,
    ch: Client,
    database: str,
    names: Callable[[str], str],
    bounds: dict[str, RunBounds],
    warm: WarmStart | None,
) -> tuple[SignalCounters, list[RankRow]]:
    counters = SignalCounters()
    flow, writer = build_kafka_flow(
        SignalFlowSettings(batch_size=50),  # small batches: the topics interleave
        bootstrap=bootstrap,
        clickhouse=lambda: ch,
        database=database,
        start=bounds[topics.CANDLES],
        quotes_start=None,
        perps_start={names(t): bounds[t] for t in PERP_TOPICS if t in bounds},
        warm=warm,
        candles_topic=names(topics.CANDLES),
        ranks_topic=names(topics.RANKS),
        signals_topic=names(topics.SIGNALS),
        dead_letter_topic=names(topics.DEADLETTER),
        perp_topics=_perp_topics(names),
        counters=counters,
    )
    run_flow(flow, None)
    writer.flush()
    assert counters.dead_letters == 0
    return counters, read(bootstrap, names(topics.RANKS), counters.ranks, rank_decoder().decode)


def _perp_topics(names: Callable[[str], str]) -> PerpTopics:
    marks, open_interest, liquidations, funding = (names(t) for t in PERP_TOPICS)
    return PerpTopics(marks, liquidations, open_interest, funding)


def test_rows_and_snapshots_hold_the_recomputed_perpetuals_metrics(
    kafka_bootstrap: str, ch: Client, database: str
) -> None:
    first = f"t{uuid.uuid4().hex[:8]}-"
    names = lambda topic: f"{first}{topic}"  # noqa: E731
    every = (topics.CANDLES, *PERP_TOPICS, topics.RANKS, topics.SIGNALS, topics.DEADLETTER)
    ensure_topics(kafka_bootstrap, [names(t) for t in every], PARTITIONS)
    candles = [c for cs, _ in DATA.values() for c in cs]
    perps = [p for _, ps in DATA.values() for p in ps]
    candle_messages = [(c.key, encode_candle(c)) for c in candles]
    bounds = {topics.CANDLES: publish(kafka_bootstrap, names(topics.CANDLES), candle_messages)}
    for topic in PERP_TOPICS:
        kind = [p for p in perps if TOPIC_OF[type(p)] == topic]
        bounds[topic] = publish(
            kafka_bootstrap, names(topic), [(p.key, encode_perp(p)) for p in kind]
        )

    counters, ranks = run(kafka_bootstrap, ch, database, names, bounds, warm=None)
    assert counters.perps == len(perps) and counters.candles == len(candles)
    latest = last_rows(ranks)
    for symbol, (_, records) in DATA.items():
        row = latest[f"sim:usdm:{symbol}"]
        assert row.time_ms == T0 + SECONDS * S
        assert_perps(row, expected(records, row.time_ms))
        assert row.liq_long_24h and row.liq_short_24h and row.oi_change_pct_1h is not None

    # A restart: the perpetuals data is in ClickHouse now (as the store flow writes it), the
    # broker has lost it; the same candles again on a fresh topic.
    writer = PerpWriter(lambda: ch, database)
    writer.add(perps)
    writer.flush()
    second = f"t{uuid.uuid4().hex[:8]}-"
    again = lambda topic: f"{second}{topic}"  # noqa: E731
    ensure_topics(kafka_bootstrap, [again(t) for t in every], PARTITIONS)
    bounds = {topics.CANDLES: publish(kafka_bootstrap, again(topics.CANDLES), candle_messages)}
    warm = WarmStart(lambda: ch, database, as_of_ms=lambda: T0 + SECONDS * S)
    counters, restarted = run(kafka_bootstrap, ch, database, again, bounds, warm=warm)
    assert counters.perps == 0
    after = last_rows(restarted)
    for key, row in latest.items():
        assert_perps(after[key], {name: getattr(row, name) for name in PERP_METRICS})
    # the very first row after the restart already shows them
    firsts = {}
    for row in restarted:
        firsts.setdefault(row.key, row)
    for symbol, (_, records) in DATA.items():
        row = firsts[f"sim:usdm:{symbol}"]
        assert row.time_ms == T0 + S
        assert_perps(row, expected(records, row.time_ms))

    # Its minute snapshots, as the historical scan reads them.
    snapshots = ch.query(
        f"SELECT symbol, toUnixTimestamp64Milli(time) AS time_ms, {', '.join(PERP_METRICS)}"
        " FROM {db:Identifier}.rank_snapshots FINAL WHERE symbol IN {symbols:Array(String)}"
        " ORDER BY symbol, time",
        parameters={"db": database, "symbols": list(SYMBOLS)},
    ).named_results()
    snapshots = list(snapshots)
    assert [(s["symbol"], s["time_ms"] - T0) for s in snapshots] == [
        (symbol, minute) for symbol in SYMBOLS for minute in (60_000, 120_000)
    ]
    for snapshot in snapshots:
        assert_perps(snapshot, expected(DATA[snapshot["symbol"]][1], snapshot["time_ms"]))


def test_the_historical_scan_filters_and_sorts_on_perpetuals_columns(
    ch: Client, database: str
) -> None:
    """The board as of a past minute, from rank_snapshots: a filter on funding, a sort on
    the premium over spot (joined from the spot pair's snapshot of the same moment)."""
    at = T0 + 10 * 60_000
    snapshot = [
        RankRow("sim", "spot", "HAAUSDT", at, 100.0),
        RankRow("sim", "usdm", "HAAUSDT", at, 100.5, funding_rate_pct=0.01, liq_long_1h=5.0),
        RankRow("sim", "spot", "HBBUSDT", at - 60_000, 20.0),  # the pair's row a minute older
        RankRow("sim", "usdm", "HBBUSDT", at, 19.9, funding_rate_pct=0.03),
        RankRow("sim", "usdm", "HCCUSDT", at, 5.0, funding_rate_pct=-0.02),  # no spot pair
    ]
    writer = scanner_writer(lambda: ch, database)
    writer.add(snapshot)
    writer.flush()

    def scan(*pairs: tuple[str, str]) -> list[tuple[str, str, float | None]]:
        sql, params = history_sql(parse_query(list(pairs)), at, database)
        result = ch.query(sql, parameters=params)
        rows = history_rows(result.column_names, [tuple(r) for r in result.result_rows])
        return [(r.market, r.symbol, r.premium_bps) for r, _, _ in rows]

    premium_a = (100.5 / 100.0 - 1) * 10_000  # 50 bp
    premium_b = (19.9 / 20.0 - 1) * 10_000  # -50 bp
    got = scan(("min_funding_rate_pct", "0.005"), ("sort", "-premium_bps"))
    assert [(m, s) for m, s, _ in got] == [("usdm", "HAAUSDT"), ("usdm", "HBBUSDT")]
    assert [p for _, _, p in got] == pytest.approx([premium_a, premium_b], rel=1e-12)
    # the premium is a filter too; spot rows and a perpetual without a pair have none
    assert scan(("max_premium_bps", "0"), ("market", "usdm")) == [
        ("usdm", "HBBUSDT", pytest.approx(premium_b, rel=1e-12))
    ]
    assert [s for _, s, _ in scan(("max_funding_rate_pct", "0"))] == ["HCCUSDT"]
    assert [s for _, s, _ in scan(("min_liq_long_1h", "1"))] == ["HAAUSDT"]
