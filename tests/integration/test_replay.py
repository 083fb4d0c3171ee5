"""Replay of the real 2024-08-08 capture through the broker, the candle flow, the trade store
and chDB."""

from __future__ import annotations

import gzip
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from bytewax.testing import run_main
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition

from flows.candles.flow import FlowCounters, build_kafka_flow
from flows.candles.settings import CandleFlowSettings
from flows.sources.kafka import RunBounds
from runtime.kafka import consumer_config, ensure_topics, producer_config
from schemas import topics
from schemas.deadletter import DeadLetter
from tests.capture import CAPTURE, COVERED, FIELDS, official_klines
from tests.integration.replays import replay_quietly, replay_settings
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

COLUMNS = (
    "exchange, market, symbol, toUnixTimestamp64Milli(open_time) AS t, open, high, low, close,"
    " volume, toUnixTimestamp64Milli(close_time), quote_volume, count, taker_buy_volume,"
    " taker_buy_quote_volume, first_trade_id, last_trade_id, version, source"
)


@pytest.fixture(scope="module")
def replayed(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    clickhouse_dsn: str,
    ch_database: str,
) -> Settings:
    if not CAPTURE.exists():
        pytest.fail(f"shared data missing: {CAPTURE}")
    settings = replay_settings(
        tmp_path_factory.mktemp("replay"), kafka_bootstrap, clickhouse_dsn, ch_database
    )
    report = replay_quietly([CAPTURE], settings, kafka_bootstrap)
    assert report.trades == report.trades_stored == 21_313
    assert report.rejected == report.dead_letters == report.store_dead_letters == 0
    return settings


def rows(ch: Client, table: str) -> list[tuple[object, ...]]:
    return ch.query(
        f"SELECT {COLUMNS} FROM {table} FINAL WHERE symbol = 'BTCUSDT' ORDER BY t"
    ).result_rows


def stored_trades(ch: Client) -> list[tuple[object, ...]]:
    return ch.query(
        "SELECT exchange, market, symbol, trade_id, price, qty, quote_qty, time,"
        " buyer_is_maker, first_trade_id, last_trade_id"
        " FROM trades FINAL WHERE symbol = 'BTCUSDT' ORDER BY trade_id"
    ).result_rows


def test_replayed_1m_candles_equal_the_official_klines(replayed: Settings, ch: Client) -> None:
    klines = official_klines()
    got = {
        r[0]: dict(zip(FIELDS, r[1:], strict=True))
        for r in ch.query(
            "SELECT toUnixTimestamp64Milli(open_time), open, high, low, close, volume,"
            " quote_volume, count, taker_buy_volume, taker_buy_quote_volume"
            " FROM candles_1m FINAL WHERE symbol = 'BTCUSDT'"
        ).result_rows
    }
    for minute in COVERED:
        assert got[minute] == klines[minute], minute


def test_1s_candles_roll_up_to_the_official_klines(replayed: Settings, ch: Client) -> None:
    klines = official_klines()
    rolled = ch.query(
        "SELECT toUnixTimestamp(toStartOfMinute(open_time)) * 1000 AS m,"
        " argMin(open, open_time), max(high), min(low), argMax(close, open_time),"
        " sum(volume), sum(quote_volume), sum(count), sum(taker_buy_volume),"
        " sum(taker_buy_quote_volume)"
        " FROM candles_1s FINAL WHERE symbol = 'BTCUSDT' AND count > 0 GROUP BY m"
    ).result_rows
    by_minute = {r[0]: dict(zip(FIELDS, r[1:], strict=True)) for r in rolled}
    for minute in COVERED:
        assert by_minute[minute] == klines[minute], minute
    # every second from the first trade to the last is there, flat or not
    seconds = ch.query(
        "SELECT count(), 0, min(open_time), max(open_time)"
        " FROM candles_1s FINAL WHERE symbol = 'BTCUSDT'"
    ).result_rows[0]
    span = int((seconds[3] - seconds[2]).total_seconds()) + 1
    assert seconds[0] == span


def test_every_trade_of_the_capture_is_stored_once(replayed: Settings, ch: Client) -> None:
    count, first, last, distinct = ch.query(
        "SELECT count(), min(trade_id), max(trade_id), uniqExact(trade_id)"
        " FROM trades FINAL WHERE symbol = 'BTCUSDT'"
    ).result_rows[0]
    assert (count, first, last, distinct) == (21_313, 5_266_583_935, 5_266_605_247, 21_313)
    assert last - first + 1 == count  # contiguous


def test_stored_trades_sum_to_the_minute_candles(replayed: Settings, ch: Client) -> None:
    trades = ch.query(
        "SELECT toUnixTimestamp(toStartOfMinute(time)) * 1000 AS m, sum(qty), sum(quote_qty)"
        " FROM trades FINAL WHERE symbol = 'BTCUSDT' GROUP BY m"
    ).result_rows
    candles = ch.query(
        "SELECT toUnixTimestamp64Milli(open_time), volume, quote_volume"
        " FROM candles_1m FINAL WHERE symbol = 'BTCUSDT'"
    ).result_rows
    by_minute = {m: (qty, quote) for m, qty, quote in trades}
    volumes = {m: (volume, quote) for m, volume, quote in candles}
    klines = official_klines()
    for minute in COVERED:
        assert by_minute[minute] == volumes[minute], minute
        assert by_minute[minute] == (klines[minute]["volume"], klines[minute]["quote_volume"])


def test_a_second_replay_changes_no_row(
    replayed: Settings, ch: Client, kafka_bootstrap: str
) -> None:
    before_1m, before_1s = rows(ch, "candles_1m"), rows(ch, "candles_1s")
    before_trades = stored_trades(ch)
    replay_quietly([CAPTURE], replayed, kafka_bootstrap)
    assert rows(ch, "candles_1m") == before_1m
    assert rows(ch, "candles_1s") == before_1s
    assert stored_trades(ch) == before_trades
    assert {r[-2] for r in before_1s} == {1}


def read_dead_letters(
    bootstrap: str, topic: str, want: int, timeout: float = 30
) -> list[DeadLetter]:
    import msgspec

    consumer = Consumer(consumer_config(bootstrap))
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    found: list[DeadLetter] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < want and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is None:
                    found.append(msgspec.json.decode(message.value(), type=DeadLetter))
    finally:
        consumer.close()
    return found


def test_a_bad_line_in_a_capture_is_dead_lettered_and_the_rest_replays(
    tmp_path: Path, replayed: Settings, kafka_bootstrap: str, ch: Client
) -> None:
    bad = tmp_path / "bad.capture"
    with gzip.open(CAPTURE, "rt") as src:
        head = [next(src) for _ in range(400)]
    marker = f"broken-{uuid.uuid4().hex}"
    head.insert(10, f'1723161255088176367 {{"stream":"btcusdt@trade","data":{{"e":"{marker}\n')
    bad.write_text("".join(head))
    report = replay_quietly([bad], replayed, kafka_bootstrap)
    assert report.rejected == 1 and report.trades > 0
    letters = read_dead_letters(kafka_bootstrap, topics.DEADLETTER, want=1_000, timeout=5)
    mine = [d for d in letters if marker in d.value]
    assert len(mine) == 1
    assert mine[0].stage == "ingest" and mine[0].reason and "bad.capture:11" in mine[0].detail


def test_a_malformed_kafka_message_lands_in_the_dead_letter_topic_and_the_flow_goes_on(
    kafka_bootstrap: str, ch: Client, ch_database: str, clickhouse_dsn: str, fresh_topic
) -> None:
    trades_topic, dl_topic = fresh_topic("md.trades.v1"), fresh_topic("md.deadletter.v1")
    ensure_topics(kafka_bootstrap, [trades_topic, dl_topic, fresh_topic("md.candles.v1")], 1)
    producer = Producer(producer_config(kafka_bootstrap))
    good = (
        b'{"exchange":"binance","market":"usdm","symbol":"DLTEST","trade_id":1,'
        b'"price":"10.5","qty":"2","time_us":1723161300000000,"buyer_is_maker":false}'
    )
    producer.produce(trades_topic, b'{"exchange": "binance", "price": ', b"binance:usdm:DLTEST")
    producer.produce(trades_topic, good.replace(b'"10.5"', b'"-1"'), b"binance:usdm:DLTEST")
    producer.produce(trades_topic, good, b"binance:usdm:DLTEST")
    producer.produce(
        trades_topic, b"end", None, headers=[(topics.CONTROL_HEADER, topics.END_OF_RUN)]
    )
    producer.flush(10)
    counters = FlowCounters()
    from runtime.clickhouse import connect

    client = connect(clickhouse_dsn)
    flow, writer = build_kafka_flow(
        CandleFlowSettings(idle_close_ms=None),
        bootstrap=kafka_bootstrap,
        clickhouse=lambda: client,
        database=ch_database,
        start=RunBounds(start={0: 0}, end={0: 3}),
        trades_topic=trades_topic,
        candles_topic=fresh_topic("md.candles.v1"),
        dead_letter_topic=dl_topic,
        counters=counters,
    )
    run_main(flow)
    client.close()
    letters = read_dead_letters(kafka_bootstrap, dl_topic, want=2)
    assert sorted(d.reason for d in letters) == ["invalid_trade", "undecodable"]
    assert {d.offset for d in letters} == {0, 1}
    assert all(d.stage == "candles" and d.source_topic == trades_topic for d in letters)
    got = ch.query(
        "SELECT close, volume, count FROM candles_1m FINAL WHERE symbol = 'DLTEST'"
    ).result_rows
    assert got == [(Decimal("10.5"), Decimal("2"), 1)]
    assert writer.written == {"1s": 1, "1m": 1}
