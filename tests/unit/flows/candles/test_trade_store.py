"""The trade store: row encoding for the `trades` table, and the dataflow on Bytewax's testing
source and sink."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, Literal

import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

import flows.candles.trade_store
from flows.candles.trade_store import (
    TRADE_COLUMNS,
    TradeStoreCounters,
    TradeStoreSettings,
    Unstorable,
    build_flow,
    trade_row,
    trade_rows,
    trade_writer,
)
from flows.sinks.clickhouse import CandleWriter
from flows.sources.kafka import Record, RecordBatch
from schemas import topics
from schemas.candles import Candle
from schemas.deadletter import DeadLetter
from schemas.trades import Trade, encode_trade, trade_decoder
from tests.fakes.clickhouse import RecordingClient

D = Decimal
T_US = 1_723_161_300_123_456


def trade(
    tid: int = 5_266_583_935,
    price: str = "56123.40",
    qty: str = "0.012",
    symbol: str = "BTCUSDT",
    **kw: Any,
) -> Trade:
    fields: dict[str, Any] = {"time_us": T_US, "buyer_is_maker": True} | kw
    return Trade("binance", "usdm", symbol, tid, D(price), D(qty), **fields)


def columns(line: str) -> dict[str, str]:
    assert line.endswith("\n") and line.count("\n") == 1
    return dict(zip(TRADE_COLUMNS, line[:-1].split("\t"), strict=True))


def record(value: bytes | None, offset: int = 0, headers: Any = None) -> Record:
    return Record(topics.TRADES, 0, offset, b"binance:usdm:BTCUSDT", value, headers)


END_MARKER = [(topics.CONTROL_HEADER, topics.END_OF_RUN)]


# ---- row encoding -----------------------------------------------------------------------


def test_a_trade_row_has_every_column_in_order() -> None:
    row = columns(trade_row(trade()))
    assert row == {
        "exchange": "binance",
        "market": "usdm",
        "symbol": "BTCUSDT",
        "trade_id": "5266583935",
        "price": "56123.40",
        "qty": "0.012",
        "quote_qty": "673.48080",
        "time": str(T_US),
        "buyer_is_maker": "true",
        "first_trade_id": "\\N",
        "last_trade_id": "\\N",
    }
    assert columns(trade_row(trade(buyer_is_maker=False)))["buyer_is_maker"] == "false"


def test_quote_qty_is_the_exact_product_with_all_sixteen_decimals() -> None:
    row = columns(trade_row(trade(price="99999999.99999999", qty="12345678.87654321")))
    # 32 significant digits: Decimal's default context (28) would have rounded it
    assert row["quote_qty"] == "1234567887654320.8765432112345679"


def test_tiny_and_integral_values_are_written_as_plain_decimals() -> None:
    # str(Decimal) writes these in exponent form
    row = columns(trade_row(trade(price="0.00000071", qty="1E+5")))
    assert (row["price"], row["qty"], row["quote_qty"]) == ("0.00000071", "100000", "0.071")
    row = columns(trade_row(trade(price="0.00000010", qty="0.00000001")))
    assert (row["price"], D(row["quote_qty"])) == ("0.00000010", D("1E-15"))


def test_surplus_decimals_that_are_zeros_are_kept_but_others_are_unstorable() -> None:
    assert columns(trade_row(trade(price="1.0000000000")))["price"] == "1.0000000000"
    with pytest.raises(Unstorable, match=r"price .* more than 8 decimals"):
        trade_row(trade(price="60000.123456789"))
    with pytest.raises(Unstorable, match="qty"):
        trade_row(trade(qty="0.000000001"))


def test_values_too_large_for_their_columns_are_unstorable() -> None:
    assert trade_row(trade(price="9" * 30, qty="0.00000001"))  # Decimal(38, 8) holds 30
    with pytest.raises(Unstorable, match="price"):
        trade_row(trade(price="1" + "0" * 30))
    with pytest.raises(Unstorable, match="quote_qty"):  # Decimal(38, 16) holds 22
        trade_row(trade(price="1" + "0" * 15, qty="1" + "0" * 7))
    with pytest.raises(Unstorable, match="trade_id"):
        trade_row(trade(tid=2**63))
    with pytest.raises(Unstorable, match="first_trade_id"):
        trade_row(trade(first_trade_id=2**63, last_trade_id=2**63 + 1))
    with pytest.raises(Unstorable, match="time_us"):
        trade_row(trade(time_us=10_413_792_000_000_000))  # 2300-01-01


def test_an_aggregate_trade_keeps_its_id_range_and_a_plain_one_has_nulls() -> None:
    row = columns(trade_row(trade(first_trade_id=7, last_trade_id=10)))
    assert (row["first_trade_id"], row["last_trade_id"]) == ("7", "10")
    row = columns(trade_row(trade()))
    assert (row["first_trade_id"], row["last_trade_id"]) == ("\\N", "\\N")


def test_tabs_newlines_and_backslashes_in_names_are_escaped() -> None:
    line = trade_row(trade(symbol="A\tB\nC\\D"))
    assert columns(line)["symbol"] == "A\\tB\\nC\\\\D"


# ---- a batch of records ------------------------------------------------------------------


def test_a_batch_keeps_good_rows_dead_letters_the_rest_and_skips_control_records() -> None:
    good = encode_trade(trade())
    batch = [
        record(good, 0),
        record(b'{"exchange": "binance", "price": ', 1),
        record(good.replace(b'"56123.40"', b'"-1"'), 2),
        record(good.replace(b'"56123.40"', b'"1.123456789"'), 3),
        record(None, 4),
        record(b"replay-1", 5, END_MARKER),
        record(encode_trade(trade(tid=5_266_583_936)), 6),
    ]
    out = trade_rows(batch, trade_decoder().decode)
    assert [columns(r)["trade_id"] for r in out.rows] == ["5266583935", "5266583936"]
    assert [(d.offset, d.reason) for d in out.dead_letters] == [
        (1, "undecodable"),
        (2, "invalid_trade"),
        (3, "unstorable"),
        (4, "undecodable"),
    ]
    assert all(d.stage == "trade_store" for d in out.dead_letters)
    assert out.dead_letters[2].value == batch[3].value().decode()  # type: ignore[union-attr]
    assert out.trades == 6


# ---- the dataflow ------------------------------------------------------------------------


def run(batches: list[RecordBatch]) -> tuple[list[str], list[DeadLetter], TradeStoreCounters]:
    rows: list[tuple[str, list[str]]] = []
    dead: list[tuple[str, list[DeadLetter]]] = []
    counters = TradeStoreCounters()
    flow = build_flow(
        TradeStoreSettings(),
        TestingSource([(str(b.partition), b) for b in batches]),
        TestingSink(rows),
        TestingSink(dead),
        counters,
    )
    run_main(flow)
    return [r for _, rs in rows for r in rs], [d for _, ds in dead for d in ds], counters


def test_the_flow_stores_every_trade_of_every_partition_once() -> None:
    trades = [trade(tid=i, symbol="AAAUSDT" if i % 2 else "BBBUSDT") for i in range(10)]
    recs = [
        Record(topics.TRADES, i % 2, i // 2, t.key.encode(), encode_trade(t))
        for i, t in enumerate(trades)
    ]
    end = Record(topics.TRADES, 0, 5, None, b"replay-1", END_MARKER)
    rows, dead, counters = run(
        [
            RecordBatch(0, [r for r in recs if r.partition() == 0][:3], 0),
            RecordBatch(1, [r for r in recs if r.partition() == 1], 0, caught_up=True),
            RecordBatch(0, [], 0, caught_up=True),  # heartbeat
            RecordBatch(0, [*[r for r in recs if r.partition() == 0][3:], end], 0),
            RecordBatch(0, [], 0, caught_up=True, end=True),
            RecordBatch(1, [], 0, caught_up=True, end=True),
        ]
    )
    assert sorted(rows) == sorted(trade_row(t) for t in trades)
    assert dead == []
    assert (counters.trades, counters.rows, counters.dead_letters) == (10, 10, 0)
    assert counters.partitions_done == 2


def test_a_bad_record_goes_to_the_dead_letter_sink_and_the_flow_goes_on() -> None:
    rows, dead, counters = run(
        [
            RecordBatch(0, [record(b"{not json", 0)], 0),
            RecordBatch(0, [record(encode_trade(trade()), 1)], 0),
        ]
    )
    assert [columns(r)["trade_id"] for r in rows] == ["5266583935"]
    assert [(d.stage, d.reason, d.offset, d.value) for d in dead] == [
        ("trade_store", "undecodable", 0, "{not json")
    ]
    assert (counters.trades, counters.rows, counters.dead_letters) == (2, 1, 1)


def test_a_trade_delivered_twice_is_written_once() -> None:
    """At-least-once delivery (an ingest restart, a replay of overlapping files): the copy
    is not written again, in the same batch or a later one, and is counted."""
    trades = [trade(tid=i, symbol="AAAUSDT" if i % 3 else "BBBUSDT") for i in range(100, 130)]
    recs = [
        Record(topics.TRADES, 0, i, t.key.encode(), encode_trade(t)) for i, t in enumerate(trades)
    ]
    again = [Record(topics.TRADES, 0, 30 + i, r.key(), r.value()) for i, r in enumerate(recs[10:])]
    rows, dead, counters = run(
        [
            RecordBatch(0, recs[:20] + recs[5:8], 0),
            RecordBatch(0, recs[20:], 0),
            RecordBatch(0, again, 0, caught_up=True, end=True),
        ]
    )
    assert sorted(rows) == sorted(trade_row(t) for t in trades)
    assert dead == []
    assert (counters.trades, counters.rows, counters.duplicates) == (53, 30, 23)


def test_an_aggtrade_is_its_raw_ids_and_a_partial_overlap_is_a_dead_letter() -> None:
    """The raw trades of an aggTrade already stored are duplicates; an aggTrade whose raw
    ids are only partly stored cannot be split and goes to the dead letters."""
    agg = trade(tid=7, first_trade_id=1_000, last_trade_id=1_004)
    raws = [trade(tid=1_000 + i) for i in range(5)]
    partly = trade(tid=8, first_trade_id=1_003, last_trade_id=1_006)
    batch = [record(encode_trade(t), i) for i, t in enumerate([agg, *raws, partly])]
    rows, dead, counters = run([RecordBatch(0, batch, 0, end=True)])
    assert rows == [trade_row(agg)]
    assert [(d.reason, d.offset) for d in dead] == [("overlapping_trade", 6)]
    assert counters.duplicates == 5


# ---- the buffered writer -----------------------------------------------------------------


def test_the_trade_writer_inserts_when_full_and_on_flush() -> None:
    client = RecordingClient()
    writer = trade_writer(lambda: client, "db", max_rows=3, max_age_ms=60_000)
    lines = [trade_row(trade(tid=i)) for i in range(5)]
    writer.add(lines[:2])
    assert client.inserts == []
    writer.add(lines[2:4])
    writer.add(lines[4:])
    writer.flush()
    assert [(t, len(d.splitlines())) for t, _, d in client.inserts] == [
        ("db.trades", 4),
        ("db.trades", 1),
    ]
    assert client.inserts[0][1] == list(TRADE_COLUMNS)
    assert b"".join(d for _, _, d in client.inserts) == "".join(lines).encode()
    assert writer.written == {"trades": 5}


def test_the_candle_writer_still_routes_candles_to_their_interval_table() -> None:
    client = RecordingClient()
    writer = CandleWriter(lambda: client, "db", max_age_ms=60_000)

    def candle(interval: Literal["1s", "1m"], open_time: int) -> Candle:
        one, zero = D(1), D(0)
        return Candle(
            "binance", "usdm", "BTCUSDT", interval, open_time, open_time + 999,
            one, one, one, one, zero, zero, 0, zero, zero, None, None, 1,
        )  # fmt: skip

    writer.add([candle("1s", 0), candle("1m", 0), candle("1s", 1000)])
    writer.flush()
    assert sorted((t, len(d.splitlines())) for t, _, d in client.inserts) == [
        ("db.candles_1m", 1),
        ("db.candles_1s", 2),
    ]
    assert writer.written == {"1s": 2, "1m": 1}


def test_duplicates_are_logged_while_they_come(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(flows.candles.trade_store, "DUPLICATES_LOG_EVERY_S", 0.0)
    caplog.set_level(logging.INFO, logger="flows.candles.trade_store")
    good = record(encode_trade(trade()), 0)
    run([RecordBatch(0, [good], 0), RecordBatch(0, [good, good], 0, end=True)])
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("trade store: 2 duplicate trades skipped in the last ") for m in lines)
    assert "trade store, partition 0 done: 1 trades written, 2 duplicate trades skipped" in lines
