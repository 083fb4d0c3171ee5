"""The signals dataflow on Bytewax's testing source and sinks: candle and quote batches in;
changed rows, minute snapshots, signals and dead letters out."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace

import pyarrow as pa
import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.signals.flow import (
    ScannerSinks,
    SignalCounters,
    build_flow,
    build_kafka_flow,
)
from flows.signals.scanner import PartitionScanner, ScanContext, ScannerOutput
from flows.signals.settings import SignalFlowSettings
from flows.signals.warm_start import WarmStart
from flows.sources.kafka import Record, RecordBatch, RunBounds
from schemas import topics
from schemas.candles import Candle, encode_candle
from schemas.deadletter import DeadLetter
from schemas.quotes import Quote, encode_quote
from schemas.ranks import RankRow
from schemas.signals import Signal
from schemas.tickers import Ticker24h, encode_ticker
from tests.unit.flows.signals.test_metrics import candle, ticker
from tests.unit.flows.signals.test_rules import RULES, SMALL, T0, M

S = 1_000


def quote(update_id: int, bid: str, ask: str, symbol: str = "AAA") -> Quote:
    return Quote(
        "sim", "spot", symbol, update_id, Decimal(bid), Decimal(1), Decimal(ask), Decimal(1), 0
    )


def records(items: list[Candle | Quote | Ticker24h | bytes], partition: int = 0) -> list[Record]:
    out = []
    for offset, item in enumerate(items):
        if isinstance(item, Ticker24h):
            out.append(
                Record(topics.TICKERS, partition, offset, item.key.encode(), encode_ticker(item))
            )
        elif isinstance(item, Candle):
            out.append(
                Record(topics.CANDLES, partition, offset, item.key.encode(), encode_candle(item))
            )
        elif isinstance(item, Quote):
            out.append(
                Record(topics.QUOTES, partition, offset, item.key.encode(), encode_quote(item))
            )
        else:
            out.append(Record(topics.CANDLES, partition, offset, b"k", item))
    return out


@dataclass
class Outputs:
    ranks: list[RankRow] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    tables: list[Signal | RankRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    counters: SignalCounters = field(default_factory=SignalCounters)


def run(
    candles: list[RecordBatch],
    quotes: list[RecordBatch] | None = None,
    tickers: list[RecordBatch] | None = None,
    warm: WarmStart | None = None,
) -> Outputs:
    sinks: dict[str, list[tuple[str, list[object]]]] = {
        "ranks": [],
        "signals": [],
        "tables": [],
        "dead": [],
    }
    result = Outputs()
    flow = build_flow(
        SignalFlowSettings(rules=SMALL),
        TestingSource([(str(b.partition), b) for b in candles]),
        None if quotes is None else TestingSource([(str(b.partition), b) for b in quotes]),
        tickers=None
        if tickers is None
        else TestingSource([(str(b.partition), b) for b in tickers]),
        warm=warm,
        sinks=ScannerSinks(
            ranks=TestingSink(sinks["ranks"]),
            signals=TestingSink(sinks["signals"]),
            tables=TestingSink(sinks["tables"]),
            dead_letters=TestingSink(sinks["dead"]),
        ),
        counters=result.counters,
    )
    run_main(flow)
    result.ranks = [r for _, items in sinks["ranks"] for r in items]  # type: ignore[misc]
    result.signals = [s for _, items in sinks["signals"] for s in items]  # type: ignore[misc]
    result.tables = [t for _, items in sinks["tables"] for t in items]  # type: ignore[misc]
    result.dead = [d for _, items in sinks["dead"] for d in items]  # type: ignore[misc]
    return result


def test_each_new_second_makes_a_row_published_only_when_it_changed() -> None:
    seconds = [candle("1s", T0 + s * S, "10") for s in range(3)]
    seconds += [candle("1s", T0 + s * S, "10", count=0) for s in range(3, 6)]
    seconds.append(candle("1s", T0 + 6 * S, "11"))
    out = run([RecordBatch(0, records(seconds), 0)])
    # every metric is None this early; only the price moves: at 0, and at 6 (10 -> 11)
    assert [(r.time_ms - T0, r.price) for r in out.ranks] == [(1_000, 10.0), (7_000, 11.0)]
    assert out.counters.rows == 7 and out.counters.ranks == 2 and out.counters.candles == 7


def test_rows_as_of_whole_minutes_are_snapshotted() -> None:
    seconds = [candle("1s", T0 + s * S, str(10 + s % 3)) for s in range(125)]
    out = run([RecordBatch(0, records(seconds[:70]), 0), RecordBatch(0, records(seconds[70:]), 0)])
    snapshots = [t for t in out.tables if isinstance(t, RankRow)]
    assert [r.time_ms - T0 for r in snapshots] == [60_000, 120_000]
    assert snapshots[1].quote_volume_1m == pytest.approx(sum(10 + s % 3 for s in range(60, 120)))
    assert snapshots == [r for r in out.ranks if r.time_ms % M == 0]


def test_signals_go_to_their_topic_and_to_clickhouse() -> None:
    minutes = [candle("1m", T0 + m * M, "10", volume=v) for m, v in enumerate(["1", "1", "1", "9"])]
    out = run([RecordBatch(0, records(minutes), 0)])
    assert [(s.name, s.timeframe, s.time_ms - T0, s.value) for s in out.signals] == [
        ("volume_spike", "1m", 4 * M, 9.0)
    ]
    assert out.tables == out.signals and out.counters.signals == 1


def test_quotes_set_bid_and_ask_even_before_the_first_candle() -> None:
    first = [quote(1, "9.9", "10.1"), quote(3, "9.8", "10.2"), quote(2, "1", "2")]
    out = run([RecordBatch(0, records([*first, candle("1s", T0, "10")]), 0)])
    (row,) = out.ranks
    assert (row.bid, row.ask) == (9.8, 10.2)  # the newest by update id, not the last read
    assert row.spread_bps == pytest.approx(0.4 / 10 * 10_000)
    assert out.counters.quotes == 3


def test_the_quote_topic_is_an_input_of_its_own() -> None:
    # Bytewax reads both inputs in turns: the quote is in long before the last of 20
    # one-candle batches, and a new bid/ask alone makes a flat second's row news.
    seconds = [candle("1s", T0 + s * S, "10", count=1 if s == 0 else 0) for s in range(20)]
    out = run(
        [RecordBatch(0, records([c]), 0) for c in seconds],
        [RecordBatch(0, records([quote(7, "9.5", "10.5")]), 0)],
    )
    assert (out.ranks[-1].bid, out.ranks[-1].ask) == (9.5, 10.5)
    # the first row, and one more if the quote came after it; flat seconds change nothing
    assert len(out.ranks) <= 2 and out.counters.rows == 20 and out.counters.quotes == 1


def test_bad_records_are_dead_lettered_and_control_records_skipped() -> None:
    misaligned = candle("1s", T0 + 500, "10")
    control = Record(
        topics.CANDLES, 0, 9, None, b"run-1", [(topics.CONTROL_HEADER, topics.END_OF_RUN)]
    )
    batch = records([b"\xff not json", misaligned, candle("1s", T0, "10")])
    out = run([RecordBatch(0, [*batch, control], 0, end=True)])
    assert [(d.reason, d.offset, d.stage) for d in out.dead] == [
        ("undecodable", 0, "signals"),
        ("invalid_candle", 1, "signals"),
    ]
    assert len(out.ranks) == 1 and out.counters.ends == 1


def test_partitions_keep_their_own_symbols() -> None:
    a = [candle("1s", T0 + s * S, "10", symbol="AAA") for s in range(2)]
    b = [candle("1s", T0 + s * S, "20", symbol="BBB") for s in range(2)]
    out = run([RecordBatch(0, records(a, 0), 0), RecordBatch(1, records(b, 1), 0)])
    assert sorted((r.symbol, r.price) for r in out.ranks) == [("AAA", 10.0), ("BBB", 20.0)]


def test_a_resumed_state_continues_exactly() -> None:
    """Recovery pickles the partition's state at an epoch; the resumed flow must give
    what an uninterrupted one gives."""
    items = [candle("1s", T0 + s * S, str(100 + s)) for s in range(130)]
    items += [candle("1m", T0 + m * M, str(159 + 60 * m)) for m in range(2)]
    context = ScanContext(SMALL, RULES, topics.QUOTES)
    whole, halves = ScannerOutput(), ScannerOutput()

    def reject(*_: object) -> None:
        raise AssertionError("nothing here is invalid")

    PartitionScanner().fold(records(items), context, whole, reject)
    first = PartitionScanner()
    first.fold(records(items[:65]), context, halves, reject)
    resumed = pickle.loads(pickle.dumps(first))
    resumed.fold(records(items[65:]), context, halves, reject)
    assert halves.ranks == whole.ranks and halves.snapshots == whole.snapshots
    assert whole.ranks[-1].quote_volume_1m == pytest.approx(sum(100 + s for s in range(70, 130)))


def test_a_finite_run_of_candles_cannot_follow_live_quotes() -> None:
    with pytest.raises(ValueError, match="run bounds"):
        build_kafka_flow(
            SignalFlowSettings(),
            bootstrap="127.0.0.1:1",
            clickhouse=lambda: None,
            database="db",
            start=RunBounds({0: 0}, {0: 5}),
            quotes_start="end",
        )


class StoredCandles:
    """A stand-in for the ClickHouse client holding `candles_1s` and `candles_1m` (each
    candle's highest version, as FINAL reads them): answers the warm start's two queries
    as ClickHouse would (a 64-bit key per symbol, rows ordered by symbol and time)."""

    def __init__(self, candles: list[Candle]) -> None:
        final: dict[tuple[str, str, int], Candle] = {}
        for c in candles:
            key = (c.interval, c.key, c.open_time)
            if key not in final or final[key].version < c.version:
                final[key] = c
        self.candles = sorted(final.values(), key=lambda c: (c.key, c.open_time))
        self.ids = {key: i + 1 for i, key in enumerate(sorted({c.key for c in candles}))}
        self.queries: list[str] = []

    def _rows(self, parameters: dict[str, object]) -> list[Candle]:
        interval = {"candles_1s": "1s", "candles_1m": "1m"}[str(parameters["table"])]
        since = int(parameters["since"])  # type: ignore[call-overload]
        return [c for c in self.candles if c.interval == interval and c.open_time >= since]

    def query(self, sql: str, parameters: dict[str, object]) -> SimpleNamespace:
        if "table" not in parameters:  # a perpetuals table: none stored here
            self.queries.append(sql.split("FROM {db:Identifier}.")[1].split()[0])
            return SimpleNamespace(result_rows=[])
        self.queries.append(str(parameters["table"]))
        keys = {c.key for c in self._rows(parameters)}
        return SimpleNamespace(result_rows=[(self.ids[k], *k.split(":")) for k in sorted(keys)])

    def query_arrow(self, sql: str, parameters: dict[str, object]) -> pa.Table:
        assert "FINAL" in sql
        rows = self._rows(parameters)
        columns: dict[str, object] = {
            "key": pa.array([self.ids[c.key] for c in rows], pa.uint64()),
            "t": pa.array([c.open_time for c in rows], pa.int64()),
            "close": [float(c.close) for c in rows],
            "high": [float(c.high) for c in rows],
            "low": [float(c.low) for c in rows],
            "volume": [float(c.volume) for c in rows],
            "quote": [float(c.quote_volume) for c in rows],
            "trades": [float(c.count) for c in rows],
            "version": pa.array([c.version for c in rows], pa.int64()),
        }
        if "AS open" in sql:  # the minutes' opens, for the signal bars
            columns["open"] = [float(c.open) for c in rows]
        return pa.table(columns)


def two_symbols(minutes: range, seconds: range) -> list[Candle]:
    """In candle-flow order, AAA and BBB: exchange klines (version 0) of `minutes`, then
    `seconds` (prices rising, so every row is news), each minute's own candle after its
    seconds."""
    out = []
    for m in minutes:
        for name, base in (("AAA", 10), ("BBB", 50)):
            out.append(candle("1m", T0 + m * M, base + m % 5, volume=3, version=0, symbol=name))
    for s in seconds:
        for name, base in (("AAA", 10), ("BBB", 50)):
            out.append(candle("1s", T0 + s * S, base + s / 1000, volume=2, symbol=name))
        if (s + 1) % 60 == 0:
            for name, base in (("AAA", 10), ("BBB", 50)):
                close = base + s / 1000
                out.append(candle("1m", T0 + (s // 60) * M, close, volume=120, symbol=name))
    return out


def test_a_restart_without_a_snapshot_continues_from_the_store() -> None:
    """Rows after the restart equal those of a run that never stopped: the store gave the
    history, and candles both stored and still on the topic (a real Kafka) count once."""
    candles = two_symbols(range(-1440, 0), range(0, 3_700))
    whole = run([RecordBatch(0, records(candles), 0)])
    cut = next(i for i, c in enumerate(candles) if c.open_time == T0 + 3_650 * S)
    store = StoredCandles(candles[:cut])
    warm = WarmStart(lambda: store, "db", as_of_ms=lambda: T0 + 3_650 * S)
    topic = candles[cut - 200 :]  # the last 100 stored seconds of both are on the topic too
    again = run([RecordBatch(0, records(topic[:150]), 0), RecordBatch(0, records(topic[150:]), 0)],
                warm=warm)  # fmt: skip
    assert again.counters.warm_symbols == 2 and again.counters.dead_letters == 0
    after = [r for r in whole.ranks if r.time_ms > T0 + 3_650 * S]
    assert len(after) == 2 * 50 and again.ranks == after
    assert after[-1].quote_volume_24h is not None and after[-1].change_pct_1h is not None
    # the rings full: an hour and a minute of seconds, a day and 5 minutes of minutes
    assert after[-1].history_1s_from_ms == after[-1].time_ms - 3_660 * S
    assert after[-1].history_1m_from_ms == T0 + 61 * M - 1_444 * M
    # read once, whatever the batches
    assert store.queries == [
        "candles_1s",
        "candles_1m",
        "marks_1s",
        "funding",
        "open_interest",
        "liquidations",
    ]
    # the signal bars came from the stored minutes too: the bars closing after the restart
    # fire as in the run that never stopped, and none of those before fires again
    signals_after = [s for s in whole.signals if s.time_ms > T0 + 3_650 * S]
    assert signals_after and again.signals == signals_after


def test_a_recovered_state_does_not_read_the_store() -> None:
    store = StoredCandles([])
    warm = WarmStart(lambda: store, "db", as_of_ms=lambda: T0)
    context = ScanContext(SMALL, RULES, topics.QUOTES, warm=warm)
    scanner = PartitionScanner()  # as recovery resumes it
    scanner.fold(records([candle("1s", T0, "10")]), context, ScannerOutput(), print)
    assert store.queries == [] and warm.report is None


def test_a_ticker_gives_the_24h_figures_of_a_fresh_symbol() -> None:
    seconds = [candle("1s", T0 + s * S, str(10 + s)) for s in range(20)]
    out = run(
        [RecordBatch(0, records([c]), 0) for c in seconds],
        tickers=[RecordBatch(0, records([ticker(T0, "8", "1000000")]), 0)],
    )
    assert out.counters.tickers == 1
    # Bytewax reads the inputs in turns: the ticker is in long before the last candle
    last = out.ranks[-1]
    assert (last.quote_volume_24h, last.change_pct_24h) == (1_000_000.0, pytest.approx(262.5))
    assert last.quote_volume_4h is None
