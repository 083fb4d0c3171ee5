"""Table tests of the kline rules in flows.candles.engine."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from flows.candles.engine import Overlapping, PartitionCandles, TooLate
from flows.candles.resume import StoredSeries, resumed_symbol
from flows.candles.symbol_state import SymbolCandles
from schemas.bars import rollup
from schemas.candles import Candle
from schemas.trades import Trade

D = Decimal
T0 = 1_723_161_300_000  # 2024-08-08 23:55:00 UTC, a minute boundary (ms)


def trade(
    tid: int,
    ms: int,
    price: str,
    qty: str = "1",
    *,
    maker: bool = False,
    agg: tuple[int, int] | None = None,
    symbol: str = "BTCUSDT",
) -> Trade:
    return Trade(
        "binance",
        "usdm",
        symbol,
        tid,
        D(price),
        D(qty),
        ms * 1000,
        maker,
        agg[0] if agg else None,
        agg[1] if agg else None,
    )


def run(trades: list[Trade], *, advance_every: int = 1, lateness_ms: int = 0) -> list[Candle]:
    engine = PartitionCandles(lateness_ms=lateness_ms)
    out: list[Candle] = []
    for i, t in enumerate(trades):
        assert engine.add(t.symbol, t, out) is None
        if i % advance_every == 0:
            engine.advance(out)
    engine.flush(out)
    return out


def final(candles: list[Candle], interval: str) -> dict[int, Candle]:
    """The row ReplacingMergeTree keeps: the highest version of each open_time."""
    best: dict[int, Candle] = {}
    for c in candles:
        if c.interval == interval and (
            c.open_time not in best or c.version > best[c.open_time].version
        ):
            best[c.open_time] = c
    return dict(sorted(best.items()))


def test_window_edges_follow_trade_time_and_close_time_is_end_minus_one_ms() -> None:
    out = run([trade(1, T0 + 999, "10"), trade(2, T0 + 1000, "11")])
    s = final(out, "1s")
    assert list(s) == [T0, T0 + 1000]
    assert s[T0].close_time == T0 + 999
    assert s[T0].count == 1 and s[T0 + 1000].count == 1
    m = final(out, "1m")
    assert m[T0].close_time == T0 + 59_999
    assert (m[T0].open, m[T0].close, m[T0].count) == (D("10"), D("11"), 2)


def test_all_fields_of_a_candle() -> None:
    out = run(
        [
            trade(7, T0 + 10, "100.5", "0.2", maker=False),
            trade(8, T0 + 20, "101.0", "0.3", maker=True),
            trade(9, T0 + 30, "99.9", "0.5", maker=False),
            trade(10, T0 + 40, "100.1", "1.0", maker=True),
        ]
    )
    c = final(out, "1s")[T0]
    assert (c.open, c.high, c.low, c.close) == (D("100.5"), D("101.0"), D("99.9"), D("100.1"))
    assert c.volume == D("2.0")
    assert c.quote_volume == D("100.5") * D("0.2") + D("101.0") * D("0.3") + D("99.9") * D(
        "0.5"
    ) + D("100.1")
    assert c.taker_buy_volume == D("0.7")
    assert c.taker_buy_quote_volume == D("100.5") * D("0.2") + D("99.9") * D("0.5")
    assert (c.count, c.first_trade_id, c.last_trade_id, c.version) == (4, 7, 10, 1)
    assert c.vwap == c.quote_volume / c.volume


def test_sums_are_exact_decimals() -> None:
    trades = [trade(i, T0 + i, "0.1", "0.1") for i in range(1, 31)]
    c = final(run(trades), "1s")[T0]
    assert str(c.volume) == "3.0"
    assert c.quote_volume == D("0.30")
    # 0.1 * 30 in binary floating point is not 3.0; the candle must not drift
    assert float(sum([0.1] * 30)) != 3.0


def test_quiet_intervals_are_flat_candles_carrying_the_previous_close() -> None:
    out = run([trade(1, T0 + 100, "10", "2"), trade(2, T0 + 3500, "12")])
    s = final(out, "1s")
    assert list(s) == [T0, T0 + 1000, T0 + 2000, T0 + 3000]
    for flat in (s[T0 + 1000], s[T0 + 2000]):
        assert (flat.open, flat.high, flat.low, flat.close) == (D("10"),) * 4
        assert (flat.volume, flat.quote_volume, flat.count) == (0, 0, 0)
        assert (flat.taker_buy_volume, flat.taker_buy_quote_volume) == (0, 0)
        assert flat.first_trade_id is None and flat.last_trade_id is None
        assert flat.vwap is None


def test_no_flat_candles_before_a_symbols_first_trade() -> None:
    out = run([trade(1, T0 + 5000, "1", symbol="AAA"), trade(1, T0 + 500, "2", symbol="BBB")])
    aaa = [c for c in out if c.symbol == "AAA" and c.interval == "1s"]
    assert min(c.open_time for c in aaa) == T0 + 5000


def test_a_wholly_quiet_minute_is_flat_and_a_minute_ignores_flat_seconds() -> None:
    out = run(
        [
            trade(1, T0 + 1_000, "50"),
            # minute 2 is silent; minute 3's first trade comes 30 s in, far above 50
            trade(2, T0 + 120_000 + 30_000, "70"),
            trade(3, T0 + 120_000 + 40_000, "65"),
        ]
    )
    m = final(out, "1m")
    assert list(m) == [T0, T0 + 60_000, T0 + 120_000]
    quiet = m[T0 + 60_000]
    assert (quiet.open, quiet.high, quiet.low, quiet.close, quiet.count) == (
        D("50"),
        D("50"),
        D("50"),
        D("50"),
        0,
    )
    # The flat seconds of minute 3 carry 50; they are not trades of the minute.
    third = m[T0 + 120_000]
    assert (third.open, third.high, third.low, third.close) == (D("70"), D("70"), D("65"), D("65"))


def test_out_of_order_trades_in_an_open_window_keep_the_exchanges_open_and_close() -> None:
    out = run(
        [trade(3, T0 + 300, "13"), trade(1, T0 + 100, "11"), trade(2, T0 + 200, "12")],
        advance_every=100,
        lateness_ms=1000,
    )
    c = final(out, "1s")[T0]
    assert (c.open, c.close, c.first_trade_id, c.last_trade_id) == (D("11"), D("13"), 1, 3)
    assert all(x.version == 1 for x in out)


def test_aggtrade_counts_its_raw_trades() -> None:
    out = run([trade(100, T0, "5", agg=(1000, 1004)), trade(101, T0 + 5, "6", agg=(1005, 1005))])
    c = final(out, "1s")[T0]
    assert (c.count, c.first_trade_id, c.last_trade_id) == (6, 1000, 1005)


def test_late_trade_revises_its_candle_the_flats_after_it_and_the_minute() -> None:
    engine = PartitionCandles(lateness_ms=0)
    out: list[Candle] = []
    fold(engine, [trade(1, T0 + 100, "10"), trade(3, T0 + 4_100, "14")], out)
    fold(engine, [trade(5, T0 + 65_000, "20")], out)  # closes the first minute
    first_minute = final(out, "1m")[T0]
    assert first_minute.version == 1 and first_minute.count == 2
    out.clear()
    late = trade(2, T0 + 1_500, "12", "3")  # belongs to the 2nd second, emitted flat at 10
    assert engine.add("BTCUSDT", late, out) is None
    revised = {(c.interval, c.open_time): c for c in out}
    second = revised[("1s", T0 + 1000)]
    assert (second.version, second.open, second.close, second.volume) == (2, D("12"), D("12"), 3)
    # the flats after it now carry 12, as revisions; the real candle at +4s is untouched
    assert revised[("1s", T0 + 2000)].close == D("12")
    assert revised[("1s", T0 + 2000)].version == 2
    assert revised[("1s", T0 + 3000)].close == D("12")
    assert ("1s", T0 + 4000) not in revised
    minute = revised[("1m", T0)]
    assert (minute.version, minute.count, minute.high, minute.volume) == (2, 3, D("14"), 5)


def test_late_trade_that_is_not_last_does_not_touch_the_flats() -> None:
    engine = PartitionCandles(lateness_ms=0)
    out: list[Candle] = []
    fold(engine, [trade(2, T0 + 500, "10"), trade(4, T0 + 3_100, "14")], out)
    out.clear()
    engine.add("BTCUSDT", trade(1, T0 + 100, "9"), out)  # earlier id: new open, same close
    assert [(c.interval, c.open_time, c.version) for c in out] == [("1s", T0, 2)]
    assert out[0].open == D("9") and out[0].close == D("10")


def test_late_trade_before_the_first_candle_adds_candles_and_flats() -> None:
    engine = PartitionCandles(lateness_ms=0)
    out: list[Candle] = []
    engine.add("k", trade(10, T0 + 3_000, "30"), out)
    engine.add("k", trade(11, T0 + 9_000, "31"), out)
    engine.advance(out)
    out.clear()
    engine.add("k", trade(9, T0 + 1_000, "29"), out)
    got = {c.open_time: c for c in out if c.interval == "1s"}
    assert got[T0 + 1000].close == D("29") and got[T0 + 1000].version == 1
    assert got[T0 + 2000].count == 0 and got[T0 + 2000].close == D("29")
    assert T0 + 3000 not in got


def test_trade_older_than_the_horizon_is_returned_not_dropped() -> None:
    engine = PartitionCandles(lateness_ms=0, horizon_ms=60_000)
    out: list[Candle] = []
    engine.add("k", trade(1, T0, "1"), out)
    engine.add("k", trade(2, T0 + 10 * 60_000, "2"), out)
    engine.advance(out)
    old = trade(0, T0 + 500, "1")
    late = engine.add("k", old, out)
    assert isinstance(late, TooLate) and late.trade is old
    assert engine.stats.too_late == 1


def test_replay_order_and_speed_do_not_change_the_final_candles() -> None:
    trades = [
        trade(i, T0 + i * 137 % 190_000, str(100 + (i * 7919) % 50), "0.01") for i in range(400)
    ]
    trades.sort(key=lambda t: t.trade_id)
    in_order = run(sorted(trades, key=lambda t: t.time_us))
    # Read slowly, in another order: late trades revise, the final rows are the same.
    jumbled = run(trades, advance_every=3)
    for interval in ("1s", "1m"):
        a, b = final(in_order, interval), final(jumbled, interval)
        assert a.keys() == b.keys()
        for key in a:
            x, y = a[key], b[key]
            assert (x.open, x.high, x.low, x.close, x.volume, x.quote_volume, x.count) == (
                y.open,
                y.high,
                y.low,
                y.close,
                y.volume,
                y.quote_volume,
                y.count,
            ), (interval, key)


def test_rollup_of_nothing_is_none() -> None:
    assert rollup(T0, []) is None


@pytest.mark.parametrize("lateness_ms", [0, 500, 5_000])
def test_lateness_delays_emission_but_not_content(lateness_ms: int) -> None:
    engine = PartitionCandles(lateness_ms=lateness_ms)
    out: list[Candle] = []
    engine.add("k", trade(1, T0 + 100, "1"), out)
    engine.add("k", trade(2, T0 + 2_100, "2"), out)
    engine.advance(out)
    emitted = {c.open_time for c in out if c.interval == "1s"}
    expected = {w for w in (T0, T0 + 1000) if w + 1000 <= T0 + 2_100 - lateness_ms}
    assert emitted == expected


def test_a_minute_flushed_early_is_revised_when_the_rest_of_it_arrives() -> None:
    """End of one input mid-minute (flush), then the same minute continues (a resume)."""
    engine = PartitionCandles(lateness_ms=0)
    out: list[Candle] = []
    engine.add("k", trade(1, T0 + 1_000, "10"), out)
    engine.flush(out)
    assert final(out, "1m")[T0].count == 1
    for t in [trade(2, T0 + 20_000, "12"), trade(3, T0 + 70_000, "11")]:
        engine.add("k", t, out)
        engine.advance(out)
    minute = final(out, "1m")[T0]
    assert (minute.count, minute.close, minute.high, minute.version) == (2, D("12"), D("12"), 2)


# --- resuming from the store -------------------------------------------------------------


def stored(candles: list[Candle], key: str, interval: str, since: int) -> StoredSeries | None:
    """What ClickHouse FINAL would hand back of one series from `since` on."""
    mine = [c for c in candles if c.symbol == key]
    rows = [c for t, c in final(mine, interval).items() if t >= since]
    if not rows:
        return None
    return StoredSeries(rows[0].open_time, rows[-1], rows)


def resumed_engine(
    candles: list[Candle], since: int
) -> tuple[PartitionCandles, dict[str, SymbolCandles]]:
    """A new engine resumed, for BTCUSDT and ETHUSDT, from the candles an earlier one wrote;
    with the resumed state of each symbol."""
    resumed = PartitionCandles(lateness_ms=0)
    symbols = {}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        seconds = stored(candles, symbol, "1s", since)
        assert seconds is not None
        symbols[symbol] = resumed_symbol(seconds, stored(candles, symbol, "1m", since), since)
    resumed.resume(symbols)  # type: ignore[arg-type]
    return resumed, symbols


def test_a_resumed_engine_goes_on_as_if_it_had_never_stopped() -> None:
    """Crash mid-minute: the state rebuilt from the stored candles gives the candles of one
    uninterrupted run, the crash minute's 1m included."""
    trades = [
        trade(
            i + 1,
            T0 + i * 1_300 + (9_000 if i > 40 else 0),
            str(100 + (i * 7) % 11),
            symbol="BTCUSDT" if i % 3 else "ETHUSDT",
        )
        for i in range(140)
    ]
    whole = run(trades)
    engine = PartitionCandles(lateness_ms=0)
    before: list[Candle] = []
    cut = 75  # T0 + 97.5 s: the second minute is open
    for t in trades[:cut]:
        engine.add(t.symbol, t, before)
        engine.advance(before)
    resumed, symbols = resumed_engine(before, since=T0)
    after: list[Candle] = []
    # The trades of windows not yet stored come again (the lost ones, in a real crash).
    for t in trades:
        if t.time_us // 1000 >= symbols[t.symbol].s1.upto:  # type: ignore[operator]
            assert resumed.add(t.symbol, t, after) is None
            resumed.advance(after)
    resumed.flush(after)
    assert T0 + 60_000 in {c.open_time for c in before if c.interval == "1s"}
    assert T0 + 60_000 not in final(before, "1m")  # the crash minute was open
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for interval in ("1s", "1m"):
            got = final([c for c in before + after if c.symbol == symbol], interval)
            assert got == final([c for c in whole if c.symbol == symbol], interval)


def test_revisions_after_a_resume_are_written_above_the_stored_versions() -> None:
    engine = PartitionCandles(lateness_ms=0)
    out: list[Candle] = []
    for t in [
        trade(10, T0 + 1_000, "10"),
        trade(30, T0 + 5_000, "11"),
        trade(50, T0 + 61_000, "12"),
    ]:
        engine.add("k", t, out)
        engine.advance(out)
    engine.add("k", trade(20, T0 + 1_500, "9"), out)  # late: 1s and 1m at version 2
    engine.add("k", trade(40, T0 + 63_000, "13"), out)
    engine.advance(out)
    assert final(out, "1s")[T0 + 1_000].version == 2 == final(out, "1m")[T0].version
    resumed = PartitionCandles(lateness_ms=0)
    seconds = stored(out, "BTCUSDT", "1s", T0)
    assert seconds is not None
    resumed.resume({"k": resumed_symbol(seconds, stored(out, "BTCUSDT", "1m", T0), T0)})
    later: list[Candle] = []
    resumed.add("k", trade(60, T0 + 64_000, "14"), later)
    resumed.advance(later)
    assert resumed.add("k", trade(15, T0 + 1_200, "8", agg=(15, 15)), later) is None
    second, minute = final(later, "1s")[T0 + 1_000], final(later, "1m")[T0]
    assert (second.version, second.low, second.count) == (3, D("8"), 3)
    assert (minute.version, minute.low, minute.count, minute.close) == (3, D("8"), 4, D("11"))
    # Event time went on from where the store ended: nothing older was emitted again.
    assert min(c.open_time for c in later if c.version == 1) == T0 + 63_000


# ------------------------------------------------------------------ each trade once


def market(n: int = 300) -> list[Trade]:
    """Two symbols' trades over about two and a half minutes, ids consecutive per symbol."""
    out = []
    next_id = {"BTCUSDT": 1_000, "ETHUSDT": 9_000}
    for i in range(n):
        symbol = "BTCUSDT" if i % 3 else "ETHUSDT"
        tid = next_id[symbol]
        next_id[symbol] += 1
        out.append(
            trade(tid, T0 + i * 487, str(100 + (i * 7) % 13), f"0.{i % 9 + 1}", symbol=symbol)
        )
    return out


def fields(candles: dict[int, Candle]) -> dict[int, tuple[object, ...]]:
    return {
        t: (c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.count,
            c.taker_buy_volume, c.first_trade_id, c.last_trade_id)
        for t, c in candles.items()
    }  # fmt: skip


def fold(engine: PartitionCandles, trades: list[Trade], out: list[Candle]) -> list[object]:
    rejected: list[object] = []
    for t in trades:
        verdict = engine.add(t.symbol, t, out)
        if verdict is not None:
            rejected.append(verdict)
        engine.advance(out)
    return rejected


@pytest.mark.parametrize(
    "delivery",
    ["each_twice_at_once", "whole_input_twice", "tail_again_after_a_minute"],
)
def test_a_trade_delivered_twice_counts_once(delivery: str) -> None:
    """At-least-once delivery: a producer retry (the same trade right after), an archive
    replayed twice, an ingest restart sending its last trades again. The candles are those
    of the trades delivered once, and every extra copy is counted as a duplicate."""
    trades = market()
    once = run(trades)
    if delivery == "each_twice_at_once":
        delivered = [t for t in trades for _ in (0, 1)]
    elif delivery == "whole_input_twice":
        delivered = trades + trades
    else:
        delivered = trades[:200] + trades[120:200] + trades[200:]
    engine = PartitionCandles(lateness_ms=0)
    out: list[Candle] = []
    assert fold(engine, delivered, out) == []
    engine.flush(out)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for interval in ("1s", "1m"):
            got = final([c for c in out if c.symbol == symbol], interval)
            want = final([c for c in once if c.symbol == symbol], interval)
            assert fields(got) == fields(want), (symbol, interval)
    assert engine.stats.duplicates == len(delivered) - len(trades)
    assert engine.stats.too_late == 0
    assert engine.stats.trades == len(trades)


def test_an_aggtrade_and_the_raw_trades_it_stands_for_count_once() -> None:
    """An aggTrades archive and a trades archive of the same day: the raw trades of an
    aggTrade already folded are duplicates, and so is the aggTrade after its raw trades;
    one that only partly overlaps what was folded is returned, not folded."""
    engine = PartitionCandles(lateness_ms=0)
    out: list[Candle] = []
    aggs = [
        trade(1, T0 + 100, "10", "3", agg=(100, 102)),
        trade(2, T0 + 200, "11", "1", agg=(103, 103)),
        trade(3, T0 + 1_100, "12", "2", agg=(104, 105)),
    ]
    raws = [
        trade(100, T0 + 100, "10"), trade(101, T0 + 100, "10"), trade(102, T0 + 100, "10"),
        trade(103, T0 + 200, "11"), trade(104, T0 + 1_100, "12"), trade(105, T0 + 1_100, "12"),
    ]  # fmt: skip
    assert fold(engine, aggs + raws, out) == []
    later = trade(106, T0 + 2_100, "13")
    assert fold(engine, [later, trade(4, T0 + 2_100, "13", agg=(106, 106))], out) == []
    partly = trade(5, T0 + 2_200, "14", "5", agg=(106, 110))
    rejected = fold(engine, [partly], out)
    assert len(rejected) == 1 and isinstance(rejected[0], Overlapping)
    assert rejected[0].trade is partly
    engine.flush(out)
    seconds = final(out, "1s")
    assert [(c.count, c.volume) for c in seconds.values()] == [(4, D(4)), (2, D(2)), (1, D(1))]
    assert engine.stats.duplicates == 7 and engine.stats.overlapping == 1


def test_duplicates_are_dropped_before_the_revision_horizon_is_asked() -> None:
    """A copy of a trade long closed is a duplicate, not a too-late trade to dead-letter."""
    engine = PartitionCandles(lateness_ms=0, horizon_ms=60_000)
    out: list[Candle] = []
    first = trade(1, T0, "1")
    assert fold(engine, [first, trade(2, T0 + 10 * 60_000, "2"), first], out) == []
    assert engine.stats.duplicates == 1 and engine.stats.too_late == 0
    # A trade never seen that old still is too late.
    assert isinstance(engine.add("BTCUSDT", trade(0, T0 + 500, "1"), out), TooLate)


def test_a_resumed_engine_does_not_count_again_the_trades_in_its_stored_candles() -> None:
    """After a restart from the stored candles, trades the stored candles hold are
    delivered again (an ingest that restarted too): they are duplicates, and the trades
    in a stored candle's hole (a gap repair) still count."""
    trades = [t for t in market() if t.trade_id != 1_100]  # a hole in the BTCUSDT ids
    hole = next(t for t in market() if t.trade_id == 1_100)
    whole = run([*trades, hole])
    cut = 150
    engine = PartitionCandles(lateness_ms=0)
    before: list[Candle] = []
    fold(engine, trades[:cut], before)
    resumed, _ = resumed_engine(before, since=T0)
    after: list[Candle] = []
    # Everything from 40 trades before the cut, then the repaired hole.
    assert fold(resumed, [*trades[cut - 40 :], hole], after) == []
    resumed.flush(after)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for interval in ("1s", "1m"):
            got = final([c for c in before + after if c.symbol == symbol], interval)
            want = final([c for c in whole if c.symbol == symbol], interval)
            assert fields(got) == fields(want), (symbol, interval)
    emitted = {c.open_time for c in before if c.interval == "1s"}
    assert resumed.stats.duplicates == sum(
        1 for t in trades[cut - 40 : cut] if t.time_us // 1000 // 1000 * 1000 in emitted
    )


def test_folded_ids_survive_a_snapshot_and_an_older_snapshot_starts_them_empty() -> None:
    engine = PartitionCandles(lateness_ms=0)
    out: list[Candle] = []
    fold(engine, market(30), out)
    copy = pickle.loads(pickle.dumps(engine))
    assert fold(copy, market(30), out) == [] and copy.stats.duplicates == 30
    state = copy.symbols["BTCUSDT"]
    # A snapshot from before the ids were kept: its symbols come back without them.
    _, slots = state.__reduce_ex__(2)[2]
    del slots["ids"]
    older = SymbolCandles.__new__(SymbolCandles)
    older.__setstate__((None, slots))
    assert older.ids.ranges == [] and older.s1.upto == state.s1.upto
