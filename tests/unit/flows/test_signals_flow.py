"""The signals dataflow on Bytewax's testing source and sinks: candle and quote batches in;
changed rows, minute snapshots, signals and dead letters out."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.signal_rules import RULES
from flows.signals import (
    PartitionScanner,
    ScanContext,
    ScannerOutput,
    ScannerSinks,
    SignalCounters,
    SignalFlowSettings,
    build_flow,
    build_kafka_flow,
)
from flows.sources.kafka import Record, RecordBatch, RunBounds
from schemas import topics
from schemas.candles import Candle, encode_candle
from schemas.deadletter import DeadLetter
from schemas.quotes import Quote, encode_quote
from schemas.ranks import RankRow
from schemas.signals import Signal
from tests.unit.flows.test_metrics import candle
from tests.unit.flows.test_signal_rules import SMALL

T0 = 1_723_161_600_000  # 2024-08-09 00:00 UTC
S = 1_000
M = 60_000


def quote(update_id: int, bid: str, ask: str, symbol: str = "AAA") -> Quote:
    return Quote(
        "sim", "spot", symbol, update_id, Decimal(bid), Decimal(1), Decimal(ask), Decimal(1), 0
    )


def records(items: list[Candle | Quote | bytes], partition: int = 0) -> list[Record]:
    out = []
    for offset, item in enumerate(items):
        if isinstance(item, Candle):
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


def run(candles: list[RecordBatch], quotes: list[RecordBatch] | None = None) -> Outputs:
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
        ScannerSinks(
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
