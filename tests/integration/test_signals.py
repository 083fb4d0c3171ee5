"""The signals flow end to end: the real 2024-08-08 capture through the broker, the candle
flow and chDB, then the signals flow over the candles and book tickers it left; its rows
and signals checked against values recomputed from candles_1s and candles_1m."""

from __future__ import annotations

import gzip
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from bytewax.testing import run_main
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer, TopicPartition

from flows.candles.flow import build_kafka_flow as build_candle_flow
from flows.candles.settings import CandleFlowSettings
from flows.ingest.quotes import QuotePublisher
from flows.ingest.trades import TradePublisher
from flows.recovery import run_flow
from flows.signals.flow import SignalCounters, build_kafka_flow
from flows.signals.settings import SignalFlowSettings, SignalParams
from flows.sources.binance.book import BookTickerDecoder
from flows.sources.files import read_trades
from flows.sources.kafka import RunBounds
from runtime.kafka import consumer_config, ensure_topics, producer_config
from runtime.settings import ClickHouseSettings, KafkaSettings
from schemas import topics
from schemas.candles import Candle, encode_candle
from schemas.quotes import Quote
from schemas.ranks import RankRow, rank_decoder
from schemas.signals import Signal, signal_decoder
from schemas.trades import Trade
from tests.shared_data import SHARED_DATA
from tickscan.settings import SignalsSettings
from tickscan.signals import run_signals

pytestmark = pytest.mark.integration

DATA = SHARED_DATA / "binance-um-btcusdt-20240808"
CAPTURE = DATA / "hftbacktest_usdm_btcusdt_20240808.gz"
SYMBOL = "BTCSIGUSDT"
"""The capture's BTCUSDT under a name of its own, so other tests' replays of the same
capture into the session's database cannot touch the candles checked here."""
PARTITIONS = 3
RULES = SignalParams(
    volume_spike_factor=1.2,
    volume_spike_bars=2,
    breakout_bars=2,
    ema_fast=2,
    ema_slow=3,
    history_bars=10,
    timeframes=("1m",),
)
MINUTE = 60_000


def end_markers(bootstrap: str, topic: str, run_id: str) -> dict[int, int]:
    """End a finite run in every partition of `topic`; the markers' offsets."""
    producer = Producer(producer_config(bootstrap))
    offsets: dict[int, int] = {}

    def delivered(error: Any, message: Any) -> None:
        assert error is None, error
        offsets[message.partition()] = message.offset()

    for partition in range(PARTITIONS):
        producer.produce(
            topic,
            run_id.encode(),
            partition=partition,
            headers=[(topics.CONTROL_HEADER, topics.END_OF_RUN)],
            on_delivery=delivered,
        )
    assert producer.flush(30) == 0
    return offsets


def read(bootstrap: str, topic: str, want: int, decode: Callable[[bytes], Any]) -> list[Any]:
    """The first `want` messages of a topic (all partitions), decoded."""
    consumer = Consumer(consumer_config(bootstrap))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    found: list[Any] = []
    deadline = time.monotonic() + 60
    try:
        while len(found) < want and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is None:
                    found.append(decode(message.value()))
    finally:
        consumer.close()
    assert len(found) == want, f"{topic}: {len(found)} of {want} messages"
    return found


def capture_quotes() -> list[Quote]:
    decoder = BookTickerDecoder("usdm")
    quotes = []
    with gzip.open(CAPTURE, "rt") as lines:
        for line in lines:
            received_ns, _, raw = line.partition(" ")
            if '"btcusdt@bookTicker"' in raw:
                quote = decoder.decode(raw, int(received_ns) // 1000)
                quotes.append(msgspec.structs.replace(quote, symbol=SYMBOL))
    return quotes


@dataclass
class Scanned:
    counters: SignalCounters
    ranks: list[RankRow]
    signals: list[Signal]
    quotes: list[Quote]
    candle_bounds: RunBounds
    quote_bounds: RunBounds
    names: dict[str, str]


def run_signal_flow(
    bootstrap: str,
    ch: Client,
    database: str,
    names: dict[str, str],
    bounds: tuple[RunBounds, RunBounds],
    recovery: Path | None = None,
) -> SignalCounters:
    counters = SignalCounters()
    flow, writer = build_kafka_flow(
        # small batches, so the two topics interleave
        SignalFlowSettings(rules=RULES, batch_size=20),
        bootstrap=bootstrap,
        clickhouse=lambda: ch,
        database=database,
        start=bounds[0],
        quotes_start=bounds[1],
        candles_topic=names["candles"],
        quotes_topic=names["quotes"],
        ranks_topic=names["ranks"],
        signals_topic=names["signals"],
        dead_letter_topic=names["dead"],
        counters=counters,
    )
    run_flow(flow, recovery)
    assert writer.written["rank_snapshots"] == counters.snapshots
    return counters


@pytest.fixture(scope="module")
def scanned(kafka_bootstrap: str, ch: Client, ch_database: str) -> Scanned:
    if not CAPTURE.exists():
        pytest.fail(f"shared data missing: {CAPTURE}")
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    names = {
        kind: f"{prefix}{name}"
        for kind, name in [
            ("trades", topics.TRADES),
            ("candles", topics.CANDLES),
            ("quotes", topics.QUOTES),
            ("ranks", topics.RANKS),
            ("signals", topics.SIGNALS),
            ("dead", topics.DEADLETTER),
        ]
    }
    ensure_topics(kafka_bootstrap, names.values(), PARTITIONS)
    run_id = f"signals-test-{uuid.uuid4()}"
    trades = [t for t in read_trades(CAPTURE, market="usdm", symbol=SYMBOL) if isinstance(t, Trade)]
    with TradePublisher(
        kafka_bootstrap, topic=names["trades"], deadletter_topic=names["dead"]
    ) as publisher:
        publisher.publish_many(trades)
        publisher.mark_end(run_id)
        published = publisher.report()
    candle_flow, _ = build_candle_flow(
        CandleFlowSettings(idle_close_ms=None),
        bootstrap=kafka_bootstrap,
        clickhouse=lambda: ch,
        database=ch_database,
        start=published.bounds(),
        trades_topic=names["trades"],
        candles_topic=names["candles"],
        dead_letter_topic=names["dead"],
    )
    run_main(candle_flow)
    zero = dict.fromkeys(range(PARTITIONS), 0)
    candle_bounds = RunBounds(zero, end_markers(kafka_bootstrap, names["candles"], run_id))

    quotes = capture_quotes()
    quote_publisher = QuotePublisher(kafka_bootstrap, topic=names["quotes"])
    for quote in quotes:
        quote_publisher.publish(quote)
    quote_publisher.close()
    assert quote_publisher.delivered == len(quotes) == 66_089
    quote_bounds = RunBounds(zero, end_markers(kafka_bootstrap, names["quotes"], run_id))

    counters = run_signal_flow(
        kafka_bootstrap, ch, ch_database, names, (candle_bounds, quote_bounds)
    )
    ranks = read(kafka_bootstrap, names["ranks"], counters.ranks, rank_decoder().decode)
    signals = read(kafka_bootstrap, names["signals"], counters.signals, signal_decoder().decode)
    return Scanned(counters, ranks, signals, quotes, candle_bounds, quote_bounds, names)


def recomputed_seconds(ch: Client) -> dict[int, dict[str, Any]]:
    """Per 1s candle of the symbol, by its close + 1 ms: the window values, recomputed by
    ClickHouse from candles_1s (contiguous seconds, so N rows back is N seconds back)."""
    rows = ch.query(
        """
        SELECT toUnixTimestamp64Milli(open_time) + 1000 AS t, close,
            row_number() OVER whole AS k,
            lagInFrame(close, 60) OVER whole, lagInFrame(close, 300) OVER whole,
            sum(quote_volume) OVER w1m, sum(count) OVER w1m, sum(quote_volume) OVER w5m
        FROM candles_1s FINAL
        WHERE symbol = {symbol:String}
        WINDOW whole AS (ORDER BY open_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
            w1m AS (ORDER BY open_time ROWS BETWEEN 59 PRECEDING AND CURRENT ROW),
            w5m AS (ORDER BY open_time ROWS BETWEEN 299 PRECEDING AND CURRENT ROW)
        ORDER BY t
        """,
        parameters={"symbol": SYMBOL},
    ).result_rows
    out = {}
    for t, close, k, close_1m_ago, close_5m_ago, quote_1m, trades_1m, quote_5m in rows:
        price = float(close)
        out[t] = {
            "price": price,
            "change_pct_1m": (price / float(close_1m_ago) - 1) * 100 if k > 60 else None,
            "change_pct_5m": (price / float(close_5m_ago) - 1) * 100 if k > 300 else None,
            "quote_volume_1m": float(quote_1m) if k >= 60 else None,
            "quote_volume_5m": float(quote_5m) if k >= 300 else None,
            "trades_per_min": float(trades_1m) if k >= 60 else None,
        }
    return out


NONE_THIS_EARLY = (
    "change_pct_15m",
    "change_pct_1h",
    "change_pct_4h",
    "change_pct_24h",
    "quote_volume_15m",
    "quote_volume_1h",
    "quote_volume_4h",
    "quote_volume_24h",
    "rvol_1m",  # the capture holds 5 whole minutes; relative volume needs 10 bars before
    "rvol_5m",
    "rvol_15m",
    "rvol_1h",
    "volatility_1h",
    "rsi_14",
    "vwap_24h",
    "high_24h",
    "low_24h",
)


def assert_row_matches(row: RankRow, expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        got = getattr(row, name)
        if value is None:
            assert got is None, (row.time_ms, name, got)
        else:
            assert got == pytest.approx(value, rel=1e-9), (row.time_ms, name)
    for name in NONE_THIS_EARLY:
        assert getattr(row, name) is None, (row.time_ms, name)
    assert not row.new_high and not row.new_low  # less than an hour of history


def test_every_second_makes_a_row_and_changed_rows_are_published(
    scanned: Scanned, ch: Client
) -> None:
    seconds = recomputed_seconds(ch)
    assert len(seconds) == 344  # 23:54:16 .. 23:59:59
    assert scanned.counters.rows == len(seconds)
    assert scanned.counters.dead_letters == 0
    assert scanned.counters.candles == len(seconds) + 6  # and the 1m candles 23:54 .. 23:59
    times = [r.time_ms for r in scanned.ranks]
    assert times == sorted(set(times)) and set(times) <= set(seconds)
    # a second left out is one with nothing new: the same values as the second before
    for t in sorted(set(seconds) - set(times)):
        assert seconds[t] == seconds[t - 1_000], t


def test_rows_equal_the_windows_recomputed_from_the_1s_candles(
    scanned: Scanned, ch: Client
) -> None:
    seconds = recomputed_seconds(ch)
    for row in scanned.ranks:
        assert (row.exchange, row.market, row.symbol) == ("binance", "usdm", SYMBOL)
        assert_row_matches(row, seconds[row.time_ms])
    # the rows checked span both sides of each window's first full second
    for name in ("quote_volume_1m", "change_pct_1m", "quote_volume_5m", "change_pct_5m"):
        assert {getattr(r, name) is None for r in scanned.ranks} == {True, False}, name


def test_snapshots_are_the_rows_of_whole_minutes(scanned: Scanned, ch: Client) -> None:
    rows = ch.query(
        "SELECT * EXCEPT (time, written_at), toUnixTimestamp64Milli(time) AS t"
        " FROM rank_snapshots FINAL"
        " WHERE symbol = {symbol:String} ORDER BY t",
        parameters={"symbol": SYMBOL},
    )
    names = rows.column_names
    snapshots = [dict(zip(names, r, strict=True)) for r in rows.result_rows]
    minutes = [1_723_161_300_000 + i * MINUTE for i in range(6)]  # 23:55 .. 00:00
    assert [s["t"] for s in snapshots] == minutes
    seconds = recomputed_seconds(ch)
    for snapshot in snapshots:
        row = RankRow(**{k: v for k, v in snapshot.items() if k != "t"}, time_ms=snapshot["t"])
        assert_row_matches(row, seconds[snapshot["t"]])
    published = {r.time_ms: r for r in scanned.ranks}
    for snapshot in snapshots:
        if snapshot["t"] in published:
            assert snapshot["quote_volume_1m"] == published[snapshot["t"]].quote_volume_1m


def test_bid_and_ask_come_from_the_capture_book(scanned: Scanned) -> None:
    """Which quote a row meets depends on how the two topics interleave (see the restart
    test below for one that does not): whichever it is, it is one of the capture's."""
    book = {(float(q.bid_price), float(q.ask_price)) for q in scanned.quotes}
    for row in (r for r in scanned.ranks if r.bid is not None):
        assert row.ask is not None and row.spread_bps is not None
        assert (row.bid, row.ask) in book
        mid = (row.bid + row.ask) / 2
        assert row.spread_bps == pytest.approx((row.ask - row.bid) / mid * 10_000)
    assert scanned.counters.quotes == len(scanned.quotes)


def test_a_restarted_flow_keeps_the_quotes_it_read(
    scanned: Scanned, kafka_bootstrap: str, ch: Client, ch_database: str, tmp_path: Path
) -> None:
    """First the quotes alone, then, after a restart from recovery, the candles: every row
    meets the newest quote of the capture, which only the recovered state can hold."""
    names = {
        **scanned.names,
        "ranks": scanned.names["ranks"] + "-restart",
        "signals": scanned.names["signals"] + "-restart",
    }
    ensure_topics(kafka_bootstrap, [names["ranks"], names["signals"]], PARTITIONS)
    zero = dict.fromkeys(range(PARTITIONS), 0)
    recovery = tmp_path / "recovery"
    quotes_only = (RunBounds(zero, zero), scanned.quote_bounds)
    first = run_signal_flow(kafka_bootstrap, ch, ch_database, names, quotes_only, recovery)
    assert (first.quotes, first.candles, first.rows) == (len(scanned.quotes), 0, 0)
    both = (scanned.candle_bounds, scanned.quote_bounds)
    second = run_signal_flow(kafka_bootstrap, ch, ch_database, names, both, recovery)
    assert (second.quotes, second.rows) == (0, scanned.counters.rows)  # no quote read again
    newest = max(scanned.quotes, key=lambda q: q.update_id)
    ranks = read(kafka_bootstrap, names["ranks"], second.ranks, rank_decoder().decode)
    assert ranks and {(r.bid, r.ask) for r in ranks} == {
        (float(newest.bid_price), float(newest.ask_price))
    }


def test_signals_fire_where_the_minute_candles_say(scanned: Scanned, ch: Client) -> None:
    minutes = ch.query(
        """
        SELECT toUnixTimestamp64Milli(open_time) + 60000, volume, close, open,
            avg(volume) OVER before, max(high) OVER before, min(low) OVER before,
            count() OVER before
        FROM candles_1m FINAL WHERE symbol = {symbol:String}
        WINDOW before AS (ORDER BY open_time ROWS BETWEEN 2 PRECEDING AND 1 PRECEDING)
        ORDER BY open_time
        """,
        parameters={"symbol": SYMBOL},
    ).result_rows
    assert len(minutes) == 6
    spikes, breakouts = set(), set()
    for t, volume, close, open_, mean, top, bottom, n in minutes:
        # avg() of a Decimal column is a Float64
        if n == 2 and mean > 0 and float(volume) >= 1.2 * mean:
            spikes.add((t, "up" if close >= open_ else "down", float(volume) / mean))
        if n == 2 and close > top:
            breakouts.add((t, "up"))
        elif n == 2 and close < bottom:
            breakouts.add((t, "down"))
    got: dict[str, list[Signal]] = defaultdict(list)
    for s in scanned.signals:
        got[s.name].append(s)
    assert {(s.time_ms, s.direction) for s in got.get("volume_spike", [])} == {
        (t, d) for t, d, _ in spikes
    }
    for s in got.get("volume_spike", []):
        assert s.value == pytest.approx(next(v for t, _, v in spikes if t == s.time_ms))
    assert {(s.time_ms, s.direction) for s in got.get("breakout", [])} == breakouts
    assert spikes or breakouts, "the fixture's parameters should make something fire"
    stored = ch.query(
        "SELECT name, timeframe, toUnixTimestamp64Milli(time), direction, price, value, details"
        " FROM signals FINAL WHERE symbol = {symbol:String}",
        parameters={"symbol": SYMBOL},
    ).result_rows
    assert sorted(stored) == sorted(
        (s.name, s.timeframe, s.time_ms, s.direction, s.price, s.value, s.details)
        for s in scanned.signals
    )


def test_a_rerun_writes_the_same_rows(
    scanned: Scanned, kafka_bootstrap: str, ch: Client, ch_database: str
) -> None:
    def stored() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        params = {"symbol": SYMBOL}
        snapshots = ch.query(
            "SELECT * EXCEPT (bid, ask, spread_bps, written_at) FROM rank_snapshots FINAL"
            " WHERE symbol = {symbol:String} ORDER BY time",
            parameters=params,
        ).result_rows
        signals = ch.query(
            "SELECT * FROM signals FINAL WHERE symbol = {symbol:String} ORDER BY name, time",
            parameters=params,
        ).result_rows
        return snapshots, signals

    before = stored()
    names = {**scanned.names, "ranks": scanned.names["ranks"] + "-rerun"}
    names["signals"] = scanned.names["signals"] + "-rerun"
    ensure_topics(kafka_bootstrap, [names["ranks"], names["signals"]], PARTITIONS)
    counters = run_signal_flow(
        kafka_bootstrap, ch, ch_database, names, (scanned.candle_bounds, scanned.quote_bounds)
    )
    assert stored() == before
    again = read(kafka_bootstrap, names["signals"], counters.signals, signal_decoder().decode)
    assert again == scanned.signals
    assert counters.rows == scanned.counters.rows


def live_candle(symbol: str, interval: str, t: int, qty: int, trades: int) -> Candle:
    """A candle of a quiet symbol at price 10."""
    step = 1_000 if interval == "1s" else MINUTE
    ten, volume = Decimal(10), Decimal(qty)
    return Candle(
        "sim", "spot", symbol, interval, t, t + step - 1,  # type: ignore[arg-type]
        ten, ten, ten, ten, volume, volume * ten, trades,
        Decimal(0), Decimal(0), None, None, 1,
    )  # fmt: skip


def live_candles(symbol: str, t0: int) -> list[Candle]:
    """Three minutes of a quiet symbol: one trade opens each minute (volumes 1, 1, 5 at
    price 10), each 1m candle after its minute's seconds."""
    out = []
    for m, volume in enumerate([1, 1, 5]):
        for s in range(60):
            t, trades = t0 + m * MINUTE + s * 1_000, int(s == 0)
            out.append(live_candle(symbol, "1s", t, volume * trades, trades))
        out.append(live_candle(symbol, "1m", t0 + m * MINUTE, volume, 1))
    return out


def test_the_signals_process_follows_the_live_topics(
    kafka_bootstrap: str,
    clickhouse_dsn: str,
    ch_database: str,
    ch: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKSCAN_SIGNALS__RULES__VOLUME_SPIKE_BARS", "2")
    monkeypatch.setenv("TICKSCAN_SIGNALS__RULES__BREAKOUT_BARS", "2")
    settings = SignalsSettings(
        data_dir=tmp_path,
        kafka=KafkaSettings(bootstrap=kafka_bootstrap, partitions=PARTITIONS),
        clickhouse=ClickHouseSettings(dsn=clickhouse_dsn, database=ch_database),
    )
    assert settings.signals.rules.volume_spike_bars == 2
    symbol = f"LIVE{uuid.uuid4().hex[:6].upper()}"
    t0 = 1_723_161_600_000
    candles = live_candles(symbol, t0)
    ensure_topics(kafka_bootstrap, topics.ALL, PARTITIONS)
    producer = Producer(producer_config(kafka_bootstrap))
    for c in candles:
        producer.produce(topics.CANDLES, encode_candle(c), c.key)
    assert producer.flush(30) == 0

    stop = threading.Event()
    failures: list[BaseException] = []
    counters = SignalCounters()

    def target() -> None:
        try:
            run_signals(
                settings, bootstrap=kafka_bootstrap, start="beginning", stop=stop, counters=counters
            )
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    try:
        # a row after the three minutes: every candle of them (one partition) is in
        later = wait_for_rank(kafka_bootstrap, symbol, t0)
    finally:
        stop.set()
        worker.join(60)
    assert not worker.is_alive() and not failures, failures
    assert counters.dead_letters == 0
    # as of t0 + 3 min + n s, the last minute holds the n one-trade seconds from 180 on
    n = (later.time_ms - t0) // 1_000 - 180
    assert n >= 1 and (later.quote_volume_1m, later.trades_per_min) == (10.0 * n, n)

    snapshots = ch.query(
        "SELECT toUnixTimestamp64Milli(time), quote_volume_1m FROM rank_snapshots FINAL"
        " WHERE symbol = {symbol:String} ORDER BY time",
        parameters={"symbol": symbol},
    ).result_rows
    assert snapshots == [(t0 + MINUTE, 10.0), (t0 + 2 * MINUTE, 10.0), (t0 + 3 * MINUTE, 50.0)]
    fired = ch.query(
        "SELECT name, timeframe, toUnixTimestamp64Milli(time), value FROM signals FINAL"
        " WHERE symbol = {symbol:String}",
        parameters={"symbol": symbol},
    ).result_rows
    assert fired == [("volume_spike", "1m", t0 + 3 * MINUTE, 5.0)]


def wait_for_rank(bootstrap: str, symbol: str, t0: int) -> RankRow:
    """Follow md.ranks.v1 until a row of `symbol` after t0 + 3 min, feeding the symbol a
    trade a second meanwhile, as a live market would: the row waited for is then never
    the last record of either topic, whose visibility a broker may delay. It stops short
    of t0 + 4 min, so no more snapshots are made."""
    producer = Producer(producer_config(bootstrap))
    consumer = Consumer(consumer_config(bootstrap))
    partitions = consumer.list_topics(topics.RANKS, timeout=10).topics[topics.RANKS].partitions
    consumer.assign([TopicPartition(topics.RANKS, p, 0) for p in partitions])
    decode = rank_decoder().decode
    deadline = time.monotonic() + 90
    second = 180
    try:
        while time.monotonic() < deadline:
            if second < 230:
                candle = live_candle(symbol, "1s", t0 + second * 1_000, 1, 1)
                producer.produce(topics.CANDLES, encode_candle(candle), candle.key)
                producer.flush(10)
                second += 1
            for message in consumer.consume(1000, 0.5):
                if message.error() is not None:
                    continue
                row = decode(message.value())
                if row.symbol == symbol and row.time_ms > t0 + 3 * MINUTE:
                    return row
    finally:
        consumer.close()
    raise AssertionError(f"no row of {symbol} after {t0 + 3 * MINUTE} on {topics.RANKS}")
