"""The candle dataflow on Bytewax's testing source and sink: batches in, candles out."""

from __future__ import annotations

import csv
import logging
import pickle
from decimal import Decimal

import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

import flows.candles.flow
from flows.candles.flow import CandleLogic, FlowCounters, build_flow
from flows.candles.settings import CandleFlowSettings
from flows.sources.files import read_trades
from flows.sources.kafka import Record, RecordBatch
from schemas import topics
from schemas.candles import Candle
from schemas.deadletter import DeadLetter
from schemas.trades import Trade, encode_trade
from tests.shared_data import SHARED_DATA

DATA = SHARED_DATA
CAPTURE = DATA / "binance-um-btcusdt-20240808" / "hftbacktest_usdm_btcusdt_20240808.gz"
KLINES = (
    DATA
    / "binance-um-btcusdt-20240808"
    / ("BTCUSDT-1m-2024-08_um_klines_2024-08-08T2350_2024-08-09T0010.csv")
)
T0 = 1_723_161_300_000


def records(trades: list[Trade], partition: int = 0) -> list[Record]:
    return [
        Record(topics.TRADES, partition, offset, t.key.encode(), encode_trade(t))
        for offset, t in enumerate(trades)
    ]


def trade(tid: int, ms: int, price: str, symbol: str = "AAAUSDT") -> Trade:
    return Trade("sim", "spot", symbol, tid, Decimal(price), Decimal("1"), ms * 1000, False)


def run(
    batches: list[RecordBatch], settings: CandleFlowSettings | None = None
) -> tuple[list[Candle], list[DeadLetter], FlowCounters]:
    out: list[tuple[str, list[Candle]]] = []
    dead: list[tuple[str, list[DeadLetter]]] = []
    counters = FlowCounters()
    flow = build_flow(
        settings or CandleFlowSettings(idle_close_ms=None),
        TestingSource([(str(b.partition), b) for b in batches]),
        {"test": TestingSink(out)},
        TestingSink(dead),
        counters,
    )
    run_main(flow)
    return [c for _, cs in out for c in cs], [d for _, ds in dead for d in ds], counters


def capture_trades() -> list[Trade]:
    return [t for t in read_trades(CAPTURE, market="usdm") if isinstance(t, Trade)]


def batched(trades: list[Trade], size: int = 997) -> list[RecordBatch]:
    recs = records(trades)
    batches = [RecordBatch(0, recs[i : i + size], 0) for i in range(0, len(recs), size)]
    batches.append(RecordBatch(0, [], 0, caught_up=True, end=True))
    return batches


def assert_equal_to_the_official_klines(candles: list[Candle]) -> None:
    got: dict[int, Candle] = {}
    for c in candles:  # the latest revision of each minute, as FINAL reads it
        if c.interval == "1m" and (c.open_time not in got or c.version > got[c.open_time].version):
            got[c.open_time] = c
    compared = 0
    with KLINES.open() as f:
        for row in csv.DictReader(f):
            minute = int(row["open_time"])
            if T0 <= minute < T0 + 5 * 60_000:
                c = got[minute]
                assert (c.open, c.high, c.low, c.close) == tuple(
                    Decimal(row[k]) for k in ("open", "high", "low", "close")
                )
                assert (c.volume, c.quote_volume, c.count) == (
                    Decimal(row["volume"]),
                    Decimal(row["quote_volume"]),
                    int(row["count"]),
                )
                assert (c.taker_buy_volume, c.taker_buy_quote_volume) == (
                    Decimal(row["taker_buy_volume"]),
                    Decimal(row["taker_buy_quote_volume"]),
                )
                compared += 1
    assert compared == 5


def test_capture_through_the_flow_equals_the_official_klines() -> None:
    trades = capture_trades()
    candles, dead, counters = run(batched(trades))
    assert not dead and counters.trades == len(trades) == 21_313
    assert counters.duplicates == 0
    assert_equal_to_the_official_klines(candles)


@pytest.mark.parametrize("delivery", ["the_capture_twice", "overlapping_halves"])
def test_trades_delivered_twice_count_once_and_equal_the_official_klines(
    delivery: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The same capture replayed twice, or two archives that overlap by a third: every
    minute still equals Binance's own kline, and the copies are counted as duplicates
    (and logged at INFO when the partition's run ends)."""
    caplog.set_level(logging.INFO, logger="flows.candles.flow")
    trades = capture_trades()
    if delivery == "the_capture_twice":
        delivered = trades + trades
    else:
        third = len(trades) // 3
        delivered = trades[: 2 * third] + trades[third:]
    candles, dead, counters = run(batched(delivered))
    assert dead == []
    assert counters.trades == len(delivered)
    assert counters.duplicates == len(delivered) - len(trades)
    assert_equal_to_the_official_klines(candles)
    ends = [r.getMessage() for r in caplog.records if "done:" in r.getMessage()]
    assert ends == [
        f"candle flow, partition 0 done: {len(trades)} trades folded, "
        f"{len(delivered) - len(trades)} duplicate trades dropped, "
        "0 overlapping and 0 too late sent to the dead letters"
    ]


def test_an_aggtrade_partly_folded_already_goes_to_dead_letters() -> None:
    agg = Trade("sim", "spot", "AAAUSDT", 7, Decimal("5"), Decimal("3"), T0 * 1000, False, 1, 3)
    candles, dead, counters = run(
        [RecordBatch(0, records([trade(1, T0, "5"), agg, trade(4, T0 + 5, "6")]), 0, end=True)]
    )
    assert [(d.reason, d.offset) for d in dead] == [("overlapping_trade", 1)]
    assert [c.count for c in candles if c.interval == "1s"] == [2]
    assert counters.duplicates == 0


def test_bad_records_go_to_dead_letters_and_the_flow_goes_on() -> None:
    good = records([trade(1, T0 + 10, "5"), trade(2, T0 + 20, "6")])
    garbage = Record(topics.TRADES, 0, 7, b"k", b"\xff\xfe not json")
    negative = Record(
        topics.TRADES, 0, 8, b"k", encode_trade(trade(3, T0 + 30, "1")).replace(b'"1"', b'"-1"', 1)
    )
    control = Record(
        topics.TRADES, 0, 9, None, b"run-1", [(topics.CONTROL_HEADER, topics.END_OF_RUN)]
    )
    candles, dead, _ = run(
        [RecordBatch(0, [good[0], garbage, negative, control, good[1]], 0, end=True)]
    )
    assert [(d.reason, d.offset, d.value_encoding) for d in dead] == [
        ("undecodable", 7, "base64"),
        ("invalid_trade", 8, "utf-8"),
    ]
    assert all(d.stage == "candles" and d.source_topic == topics.TRADES for d in dead)
    assert [c.count for c in candles if c.interval == "1s"] == [2]


def test_an_idle_live_partition_closes_its_windows_on_heartbeats() -> None:
    logic = CandleLogic(
        CandleFlowSettings(idle_close_ms=2_000, lateness_ms=1_000), None, FlowCounters()
    )
    wall = 1_000_000

    def emitted(batch: RecordBatch) -> list[Candle]:
        outputs, retain = logic.on_item(batch)
        assert retain is CandleLogic.RETAIN
        return [c for out in outputs for c in out.candles]

    assert emitted(RecordBatch(0, records([trade(1, T0 + 100, "5")]), wall)) == []
    # 1 s of quiet is less than idle_close_ms: the window stays open for stragglers
    assert emitted(RecordBatch(0, [], wall + 1_000, caught_up=True)) == []
    # 3 s of quiet: event time runs on with wall time, the second closes
    closed = emitted(RecordBatch(0, [], wall + 3_000, caught_up=True))
    assert [(c.interval, c.open_time, c.count) for c in closed][:1] == [("1s", T0, 1)]
    # a heartbeat from a partition that is still catching up (not caught_up) does nothing
    assert emitted(RecordBatch(0, [], wall + 60_000, caught_up=False)) == []


def test_a_replay_ignores_wall_time() -> None:
    """With idle_close_ms None (replays), a long stall closes nothing early."""
    batches = [
        RecordBatch(0, records([trade(1, T0 + 100, "5")]), 0),
        RecordBatch(0, [], 10**9, caught_up=True),
        RecordBatch(0, records([trade(2, T0 + 300, "7")]), 10**9),
        RecordBatch(0, [], 10**9, caught_up=True, end=True),
    ]
    candles, _, _ = run(batches)
    one_s = [c for c in candles if c.interval == "1s"]
    assert [(c.count, c.close, c.version) for c in one_s] == [(2, Decimal("7"), 1)]


def test_record_batches_survive_pickling_between_workers() -> None:
    batch = RecordBatch(3, records([trade(1, T0, "5")], partition=3), 42, True, False)
    copy = pickle.loads(pickle.dumps(batch))
    assert copy.partition == 3 and copy.wall_ms == 42 and copy.caught_up
    assert copy.records[0].value() == batch.records[0].value()
    assert copy.records[0].key() == b"sim:spot:AAAUSDT"


def test_an_aggtrade_whose_ids_run_backwards_is_an_invalid_trade() -> None:
    backwards = Trade(
        "sim", "spot", "AAAUSDT", 7, Decimal("5"), Decimal("3"), T0 * 1000, False, 9, 3
    )
    candles, dead, _ = run(
        [
            RecordBatch(
                0, records([trade(1, T0, "5"), backwards, trade(2, T0 + 5, "6")]), 0, end=True
            )
        ]
    )
    assert [(d.reason, d.offset) for d in dead] == [("invalid_trade", 1)]
    assert [c.count for c in candles if c.interval == "1s"] == [2]


def test_duplicates_are_logged_while_they_come(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(flows.candles.flow, "DUPLICATES_LOG_EVERY_S", 0.0)
    caplog.set_level(logging.INFO, logger="flows.candles.flow")
    first = records([trade(1, T0, "5"), trade(2, T0 + 5, "6")])
    again = records([trade(2, T0 + 5, "6")])
    _, _, counters = run([RecordBatch(0, first, 0), RecordBatch(0, again, 0)])
    assert counters.duplicates == 1
    lines = [r.getMessage() for r in caplog.records if "in the last" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith(
        "candle flow, partition 0: 1 duplicate trades dropped in the last "
    )


def test_a_live_flow_that_stops_logs_its_partitions_duplicates_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="flows.candles.flow")
    logic = CandleLogic(CandleFlowSettings(), None, FlowCounters())
    twice = records([trade(1, T0, "5"), trade(1, T0, "5"), trade(2, T0 + 5, "6")], partition=4)
    logic.on_item(RecordBatch(4, twice, 1_000))
    logic.on_eof()
    assert [r.getMessage() for r in caplog.records] == [
        "candle flow, partition 4 done: 2 trades folded, 1 duplicate trades dropped, "
        "0 overlapping and 0 too late sent to the dead letters"
    ]
