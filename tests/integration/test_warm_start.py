"""Warm start of the signals flow on the real broker and chDB: run over candles, stop, start
again on an emptied topic, and the rows and signals continue as if it had never stopped; a
candle both in ClickHouse and on the topic counts once, a signal is fired (and stored)
once; exchange klines (version 0) fill the day."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from bytewax.testing import run_main
from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer

from flows.signals.flow import SignalCounters, build_kafka_flow
from flows.signals.history import QUOTE, VOLUME
from flows.signals.settings import SignalFlowSettings, SignalParams
from flows.signals.warm_start import WarmStart, read_histories
from flows.sinks.clickhouse import CandleWriter
from flows.sources.kafka import RunBounds
from runtime.kafka import ensure_topics, producer_config
from runtime.migrate import migrate
from schemas import topics
from schemas.candles import Candle, encode_candle
from schemas.ranks import RankRow, rank_decoder
from schemas.signals import Signal, signal_decoder
from tests.integration.test_signals import PARTITIONS, end_markers, read
from tests.integration.test_signals import RULES as SIGNALS_RULES

pytestmark = pytest.mark.integration

T0 = 1_725_148_800_000  # 2024-09-01 00:00 UTC
S = 1_000
M = 60_000
SECONDS = 20 * 60
"""Live seconds after the day of klines."""
STOP = 12 * 60 + 25
"""The first run sees seconds before this one; the second run's topic starts 30 s earlier."""
OVERLAP = 30
RULES = SignalParams(**{**SIGNALS_RULES.model_dump(), "timeframes": ("1m", "5m", "15m", "1h")})
"""Short lookbacks, so that every rule fires on every timeframe within the test's hours."""


def make(symbol: str, interval: str, t: int, price: float, qty: float, version: int) -> Candle:
    step = S if interval == "1s" else M
    p, q = Decimal(str(price)), Decimal(str(qty))
    return Candle(
        "sim", "spot", symbol, interval, t, t + step - 1,  # type: ignore[arg-type]
        p, p + Decimal("0.5"), p - Decimal("0.5"), p, q, p * q, 3,
        Decimal(0), Decimal(0), None if version == 0 else 1, None if version == 0 else 3,
        version,
    )  # fmt: skip


def market(symbols: list[str]) -> tuple[list[Candle], list[Candle]]:
    """The exchange's klines of the day before T0 (version 0), then live seconds from T0,
    each minute's 1m candle (built from trades, version 1) after its last second."""
    klines, live = [], []
    for i, symbol in enumerate(symbols):
        for m in range(-1441, 0):
            qty = 4 + 8 * (m % 17 == 0)  # a volume spike now and then
            klines.append(make(symbol, "1m", T0 + m * M, 20 + i + (m % 11) / 10, qty, 0))
    for s in range(SECONDS):
        for i, symbol in enumerate(symbols):
            jump = 1.5 if (s // 60 + i) % 5 == 3 else 0  # a breakout now and then
            price = 20 + i + ((s * 7) % 13) / 10 + jump
            burst = 2 if (s // 60 + i) % 4 == 1 else 0
            live.append(make(symbol, "1s", T0 + s * S, price, 0.25 + s % 3 + burst, 1))
        if (s + 1) % 60 == 0:
            for i, symbol in enumerate(symbols):
                seconds = live[-60 * len(symbols) + i :: len(symbols)]
                live.append(
                    make(symbol, "1m", T0 + (s // 60) * M, float(seconds[-1].close),
                         float(sum(c.volume for c in seconds)), 1)
                )  # fmt: skip
    return klines, live


def publish(bootstrap: str, topic: str, candles: list[Candle], run_id: str) -> RunBounds:
    producer = Producer(producer_config(bootstrap))
    for c in candles:
        producer.produce(topic, encode_candle(c), c.key)
    assert producer.flush(30) == 0
    return RunBounds(dict.fromkeys(range(PARTITIONS), 0), end_markers(bootstrap, topic, run_id))


def scan(
    bootstrap: str,
    ch: Client,
    database: str,
    candles_topic: str,
    bounds: RunBounds,
    warm: WarmStart | None,
) -> tuple[list[RankRow], list[Signal], SignalCounters]:
    """Run the signals flow over a finite topic; the rows and signals it published."""
    ranks = f"{candles_topic}-ranks"
    ensure_topics(bootstrap, [ranks, f"{candles_topic}-signals"], PARTITIONS)
    counters = SignalCounters()
    flow, _ = build_kafka_flow(
        SignalFlowSettings(rules=RULES, batch_size=500),
        bootstrap=bootstrap,
        clickhouse=lambda: ch,
        database=database,
        start=bounds,
        quotes_start=None,
        warm=warm,
        candles_topic=candles_topic,
        ranks_topic=ranks,
        signals_topic=f"{candles_topic}-signals",
        dead_letter_topic=f"{candles_topic}-dead",
        counters=counters,
    )
    run_main(flow)
    rows = read(bootstrap, ranks, counters.ranks, rank_decoder().decode)
    signals = read(bootstrap, f"{candles_topic}-signals", counters.signals, signal_decoder().decode)
    return sorted(rows, key=lambda r: (r.symbol, r.time_ms)), sorted(signals, key=order), counters


def order(signal: Signal) -> tuple[str, int, str, int]:
    return signal.symbol, signal.time_ms, signal.name, TIMEFRAME_ORDER.index(signal.timeframe)


TIMEFRAME_ORDER = ["1m", "5m", "15m", "1h", "4h", "1d"]


def by_key(rows: list[RankRow]) -> dict[tuple[str, int], RankRow]:
    return {(r.symbol, r.time_ms): r for r in rows}


def assert_same(got: RankRow, want: RankRow) -> None:
    """Equal field for field; floats to 1e-12 (ClickHouse turns a Decimal into a float
    its own way, which may differ from Python's in the last bit)."""
    for name in RankRow.__struct_fields__:
        a, b = getattr(got, name), getattr(want, name)
        if isinstance(a, float) and isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-12), (got.symbol, got.time_ms, name)
        else:
            assert a == b, (got.symbol, got.time_ms, name, a, b)


@pytest.fixture(scope="module")
def restarted(kafka_bootstrap: str, ch: Client, ch_database: str) -> dict[str, Any]:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    symbols = [f"WARM{uuid.uuid4().hex[:4].upper()}{i}" for i in range(3)]
    klines, live = market(symbols)
    names = {k: f"{prefix}{k}-{topics.CANDLES}" for k in ("whole", "first", "second")}
    ensure_topics(kafka_bootstrap, [*names.values(), *(n + "-dead" for n in names.values())],
                  PARTITIONS)  # fmt: skip
    run_id = str(uuid.uuid4())
    stop_at = next(i for i, c in enumerate(live) if c.open_time == T0 + STOP * S)
    resume_at = next(i for i, c in enumerate(live) if c.open_time == T0 + (STOP - OVERLAP) * S)

    # The run that never stops: the klines on the topic (as live ingest publishes them),
    # then every live candle. It stores its signals in a database of its own, so that the
    # session's `signals` table holds only those of the runs around the restart.
    reference = f"{ch_database}_reference"
    migrate(ch, reference)
    whole_bounds = publish(kafka_bootstrap, names["whole"], klines + live, run_id)
    whole, whole_signals, _ = scan(
        kafka_bootstrap, ch, reference, names["whole"], whole_bounds, None
    )
    ch.command("DROP DATABASE IF EXISTS {db:Identifier}", parameters={"db": reference})

    # Before the stop: the first run starts on a store holding the klines (the backfill
    # wrote them), reads them and the live candles until STOP from the topic, and the
    # candle flow stores those live candles.
    exchange = CandleWriter(lambda: ch, ch_database, source="exchange")
    exchange.add(klines)
    exchange.flush()
    first_bounds = publish(kafka_bootstrap, names["first"], klines + live[:stop_at], run_id)
    warm_first = WarmStart(lambda: ch, ch_database, as_of_ms=lambda: T0 - 1)
    first, first_signals, first_counters = scan(
        kafka_bootstrap, ch, ch_database, names["first"], first_bounds, warm_first
    )
    ours = CandleWriter(lambda: ch, ch_database)
    ours.add(live[:stop_at])
    ours.flush()

    # After the restart: a new, empty topic (the embedded broker forgot everything) that
    # the candle flow fills again from 30 s before the stop: those candles are both in
    # ClickHouse and on the topic.
    second_bounds = publish(kafka_bootstrap, names["second"], live[resume_at:], run_id)
    warm = WarmStart(lambda: ch, ch_database, as_of_ms=lambda: T0 + STOP * S)
    second, second_signals, counters = scan(
        kafka_bootstrap, ch, ch_database, names["second"], second_bounds, warm
    )
    return {
        "symbols": symbols,
        "whole": whole,
        "first": first,
        "first_counters": first_counters,
        "second": second,
        "counters": counters,
        "warm": warm,
        "whole_signals": whole_signals,
        "first_signals": first_signals,
        "second_signals": second_signals,
    }


def test_the_first_run_starts_empty_then_takes_the_klines(restarted: dict[str, Any]) -> None:
    # its store held the klines but nothing after T0 - 1 ms within the hour of seconds
    want = by_key(restarted["whole"])
    assert restarted["first_counters"].warm_symbols == len(restarted["symbols"])
    for row in restarted["first"]:
        assert_same(row, want[(row.symbol, row.time_ms)])
    assert {r.time_ms for r in restarted["first"]} == {T0 + s * S for s in range(1, STOP + 1)}


def test_after_a_restart_the_rows_are_those_of_a_run_that_never_stopped(
    restarted: dict[str, Any],
) -> None:
    second, whole = restarted["second"], restarted["whole"]
    after = [r for r in whole if r.time_ms > T0 + STOP * S]
    # every second after the stop changes the price or volume: each row is published
    assert len(after) == len(restarted["symbols"]) * (SECONDS - STOP)
    assert len(second) == len(after)
    for got, want in zip(second, after, strict=True):
        assert_same(got, want)
    report = restarted["warm"].report
    assert report is not None and report.symbols >= len(restarted["symbols"])
    assert restarted["counters"].warm_symbols == len(restarted["symbols"])
    assert restarted["counters"].dead_letters == 0


def test_stored_candles_still_on_the_topic_count_once(restarted: dict[str, Any]) -> None:
    """The 30 s before the stop are in ClickHouse and on the new topic: no row is made
    for them again, and the first row after the stop sums each of them once."""
    second = restarted["second"]
    assert min(r.time_ms for r in second) == T0 + (STOP + 1) * S
    first_after = by_key(second)
    whole = by_key(restarted["whole"])
    for symbol in restarted["symbols"]:
        key = (symbol, T0 + (STOP + 1) * S)
        got, want = first_after[key], whole[key]
        assert got.quote_volume_1m == pytest.approx(want.quote_volume_1m, rel=1e-12)
        assert got.trades_per_min == want.trades_per_min == 180  # 60 seconds x 3 trades


def test_the_day_of_klines_gives_the_24h_figures(restarted: dict[str, Any]) -> None:
    last = restarted["second"][-1]
    assert last.quote_volume_24h is not None and last.change_pct_24h is not None
    assert last.high_24h is not None and last.rsi_14 is not None
    # what the rings hold: every second since T0; the last day and 5 minutes of minutes
    assert last.history_1s_from_ms == T0
    assert last.history_1m_from_ms == T0 + (SECONDS // 60 - 1) * M - 1444 * M


def test_read_histories_reads_each_candle_once(
    restarted: dict[str, Any], ch: Client, ch_database: str
) -> None:
    histories, report = read_histories(ch, ch_database, T0 + STOP * S)
    # the store may hold other tests' symbols of the same hours too
    assert report.seconds >= len(restarted["symbols"]) * STOP
    for symbol in restarted["symbols"]:
        history = histories[f"sim:spot:{symbol}"].history
        assert history.time_ms == T0 + STOP * S
        assert history.seconds_from() == T0


def test_the_history_is_read_with_final(ch: Client, ch_database: str) -> None:
    """A revised candle (a higher version written later) is read once, as its revision."""
    symbol = f"REV{uuid.uuid4().hex[:6].upper()}"
    writer = CandleWriter(lambda: ch, ch_database)
    writer.add([make(symbol, "1s", T0 + s * S, 10, 1, 1) for s in range(5)])
    writer.flush()
    writer.add([make(symbol, "1s", T0 + 2 * S, 10, 9, 2)])
    writer.flush()
    histories, _ = read_histories(ch, ch_database, T0 + 5 * S)
    history = histories[f"sim:spot:{symbol}"].history
    # the forming minute, built from its five seconds: the revised one counts 9, once
    assert history.minutes(VOLUME, T0, T0, np.add) == pytest.approx(1 + 1 + 9 + 1 + 1)
    assert history.sum_since(QUOTE, T0) == pytest.approx(10 * 13)


STOPPED_MINUTE = T0 + (STOP // 60) * M
"""Close of the last 1m candle the first run read (minute 11): the second run's first new
bar closes a minute later."""


def test_signals_after_a_restart_are_those_of_a_run_that_never_stopped(
    restarted: dict[str, Any],
) -> None:
    whole = restarted["whole_signals"]
    before = [s for s in whole if T0 < s.time_ms <= STOPPED_MINUTE]
    after = [s for s in whole if s.time_ms > STOPPED_MINUTE]
    # the first run started from the klines, the second from the klines and the live
    # minutes: each fires what the run that never stopped fired on the bars after its start
    assert restarted["first_signals"] == before
    assert restarted["second_signals"] == after
    # what the bars stored before the restart decide: every rule, each timeframe a bar
    # of which closes in the 8 minutes after it (no 1h bar does), and the signals of the
    # first bars after it, which need the bars before it to fire at all
    assert {s.timeframe for s in after} == {"1m", "5m", "15m"}
    assert {s.name for s in after} == {"volume_spike", "breakout", "ema_cross"}
    assert min(s.time_ms for s in after) == STOPPED_MINUTE + M
    assert {s.symbol for s in after} == set(restarted["symbols"])


def test_no_signal_is_fired_or_stored_twice(
    restarted: dict[str, Any], ch: Client, ch_database: str
) -> None:
    fired = restarted["first_signals"] + restarted["second_signals"]
    assert len({(s.symbol, s.name, s.timeframe, s.time_ms) for s in fired}) == len(fired)
    rows = ch.query(
        "SELECT symbol, name, timeframe, toUnixTimestamp64Milli(time), count()"
        " FROM {db:Identifier}.signals WHERE symbol IN {symbols:Array(String)}"
        " GROUP BY symbol, name, timeframe, time",
        parameters={"db": ch_database, "symbols": restarted["symbols"]},
    ).result_rows
    assert {(r[0], r[1], r[2], r[3]) for r in rows} == {
        (s.symbol, s.name, s.timeframe, s.time_ms) for s in fired
    }
    assert all(r[4] == 1 for r in rows)
