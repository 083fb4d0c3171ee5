"""Generated history of the simulated market: a day, by the flow's candle rules, joined to live."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from flows.signals.rules import Bars, default_rules
from flows.signals.settings import SignalParams
from flows.sinks.clickhouse import CANDLE_COLUMNS
from flows.sources.simulator import SymbolResume, SyntheticMarket
from flows.sources.simulator.buckets import decimal_array
from flows.sources.simulator.history import DAY_MS, HOUR_MS, MINUTE_MS, HistoryGenerator
from flows.sources.simulator.stored import StoredSymbol
from flows.sources.simulator.symbols import SymbolSpec
from schemas.trades import Trade

RULES = default_rules()


END_MS = 1_796_000_040 * 1000 - (1_796_000_040 * 1000) % MINUTE_MS


@dataclass(frozen=True)
class Row:
    """One written candle row, parsed back."""

    symbol: str
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    first_trade_id: int | None
    last_trade_id: int | None
    version: int
    source: str


def parse(table: pa.Table, market: str = "spot") -> list[Row]:
    """The rows of a written Arrow table, with the candle tables' columns in their order;
    none if the table is of another market than `market`."""
    assert table.column_names == list(CANDLE_COLUMNS)
    values = {
        name: table.column(name).cast(pa.int64()).to_pylist()
        if name.endswith("_time")
        else table.column(name).to_pylist()
        for name in CANDLE_COLUMNS
    }
    out = []
    for i in range(table.num_rows):
        fields = {name: values[name][i] for name in CANDLE_COLUMNS}
        exchange, table_market = fields.pop("exchange"), fields.pop("market")
        assert exchange == "sim" and table_market in ("spot", "usdm")
        if table_market == market:
            out.append(Row(**fields))
    return out


class Collect:
    """A `Write` that keeps the rows of `market` per interval and symbol, in the order
    written."""

    def __init__(self, market: str = "spot") -> None:
        self.market = market
        self.rows: dict[str, dict[str, list[Row]]] = {
            "1m": collections.defaultdict(list),
            "1s": collections.defaultdict(list),
        }
        self.counts = {"1m": 0, "1s": 0}

    def __call__(self, interval: str, table: pa.Table) -> None:
        parsed = parse(table, self.market)
        self.counts[interval] += len(parsed)
        for row in parsed:
            self.rows[interval][row.symbol].append(row)


Day = tuple[SyntheticMarket, Collect, dict[str, SymbolResume]]


@pytest.fixture(scope="module")
def day() -> Day:
    market = SyntheticMarket(20, 400.0, seed=8, start_us=END_MS * 1000)
    out = Collect()
    resume, report = HistoryGenerator(market).generate(END_MS, {}, out)
    assert report.symbols == 20
    assert (report.candles_1m, report.candles_1s) == (out.counts["1m"], out.counts["1s"])
    return market, out, resume


def test_covers_the_last_day_in_minutes_and_the_last_hour_in_seconds(day: Day) -> None:
    market, out, _ = day
    for spec in market.symbols:
        minutes = out.rows["1m"][spec.symbol]
        seconds = out.rows["1s"][spec.symbol]
        assert [r.open_time for r in minutes] == list(range(END_MS - DAY_MS, END_MS, MINUTE_MS))
        assert [r.open_time for r in seconds] == list(range(END_MS - HOUR_MS, END_MS, 1000))
        assert all(r.close_time == r.open_time + MINUTE_MS - 1 for r in minutes)
        assert all(r.close_time == r.open_time + 999 for r in seconds)
        # The symbol's history opens with a trade, like the flow's first candle.
        assert minutes[0].count > 0
        assert all((r.version, r.source) == (1, "trades") for r in minutes + seconds)


def test_every_candle_is_exact_and_well_formed(day: Day) -> None:
    market, out, _ = day
    check_candles(out, market.symbols)


def check_candles(out: Collect, symbols: Sequence[SymbolSpec]) -> None:
    """Every candle of `out` is exact and well formed; flat ones carry the close."""
    specs = {spec.symbol: spec for spec in symbols}
    for interval in ("1m", "1s"):
        for symbol, rows in out.rows[interval].items():
            spec = specs[symbol]
            # The hour's first seconds carry the close of the minute before the hour.
            before = out.rows["1m"][symbol][-61] if interval == "1s" else None
            previous_close = None if before is None else before.close
            for r in rows:
                for price in (r.open, r.high, r.low, r.close):
                    assert price > 0 and price % spec.tick_size == 0, r
                assert r.volume % spec.step_size == 0 and r.taker_buy_volume % spec.step_size == 0
                if r.count == 0:
                    # Flat: the previous close carried, nothing traded.
                    assert r.open == r.high == r.low == r.close == previous_close, r
                    assert r.volume == r.quote_volume == r.taker_buy_volume == 0
                    assert r.first_trade_id is None and r.last_trade_id is None
                else:
                    assert r.low <= min(r.open, r.close) <= max(r.open, r.close) <= r.high, r
                    assert r.volume >= r.count * spec.step_size
                    assert r.low * r.volume <= r.quote_volume <= r.high * r.volume, r
                    assert 0 <= r.taker_buy_volume <= r.volume
                    assert 0 <= r.taker_buy_quote_volume <= r.quote_volume
                    if r.count == 1:
                        assert r.open == r.high == r.low == r.close
                        assert r.quote_volume == r.close * r.volume
                    assert r.first_trade_id is not None and r.last_trade_id is not None
                    assert r.last_trade_id - r.first_trade_id + 1 == r.count
                previous_close = r.close


def test_trade_ids_are_consecutive_across_the_day(day: Day) -> None:
    check_consecutive_ids(day[1])


def check_consecutive_ids(out: Collect) -> None:
    """Each symbol's trade ids run on from candle to candle."""
    for rows in out.rows["1m"].values():
        real = [r for r in rows if r.count]
        for a, b in itertools.pairwise(real):
            assert b.first_trade_id == a.last_trade_id + 1  # type: ignore[operator]


def test_the_last_hour_s_minutes_are_the_roll_up_of_their_seconds(day: Day) -> None:
    compared, flat_seconds = check_roll_up(day[1])
    # Quiet seconds inside traded minutes: the roll-up skipped their carried closes.
    assert compared > 500 and flat_seconds > 1_000


def check_roll_up(out: Collect) -> tuple[int, int]:
    """The last hour's 1m candles are the roll-up of their 1s ones: how many traded
    minutes were compared, and how many quiet seconds they held."""
    compared = flat_seconds = 0
    for symbol, seconds in out.rows["1s"].items():
        minutes = {r.open_time: r for r in out.rows["1m"][symbol]}
        for start in range(END_MS - HOUR_MS, END_MS, MINUTE_MS):
            minute = minutes[start]
            part = [r for r in seconds if start <= r.open_time < start + MINUTE_MS]
            assert len(part) == 60
            real = [r for r in part if r.count]
            flat_seconds += len(part) - len(real)
            if not real:
                assert minute.count == 0 and minute.close == part[-1].close == minute.open
                continue
            assert minute.open == real[0].open
            assert minute.close == real[-1].close
            assert minute.high == max(r.high for r in real)
            assert minute.low == min(r.low for r in real)
            for name in (
                "volume",
                "quote_volume",
                "count",
                "taker_buy_volume",
                "taker_buy_quote_volume",
            ):
                assert getattr(minute, name) == sum(getattr(r, name) for r in real), name
            assert minute.first_trade_id == real[0].first_trade_id
            assert minute.last_trade_id == real[-1].last_trade_id
            compared += 1
    return compared, flat_seconds


def test_the_day_moves_like_the_live_market(day: Day) -> None:
    market, out, _ = day
    # Pumps and dumps of several percent within 5 minutes, most windows calm.
    moves = []
    for rows in out.rows["1m"].values():
        closes = [r.close for r in rows]
        moves += [abs(float(b / a - 1)) for a, b in zip(closes, closes[5:], strict=False)]
    assert max(moves) > 0.05
    assert sum(m > 0.03 for m in moves) > 20
    assert sum(m < 0.01 for m in moves) > 0.8 * len(moves)
    # The busiest symbol trades about its share of the market's rate.
    top = market.symbols[0]
    traded = sum(r.count for r in out.rows["1m"][top.symbol])
    assert 0.3 * top.activity * 400 * 86_400 < traded < 3 * top.activity * 400 * 86_400


def test_the_live_market_continues_the_generated_history(day: Day) -> None:
    market, out, resume = day
    market.resume(resume)
    trades = list(market.trades(20_000))
    assert trades[0].time_us >= END_MS * 1000
    firsts: dict[str, Trade] = {}
    for trade in trades:
        firsts.setdefault(trade.symbol, trade)
    assert len(firsts) >= 10
    for symbol, trade in firsts.items():
        last = out.rows["1s"][symbol][-1]
        last_id = max(r.last_trade_id or 0 for r in out.rows["1s"][symbol])
        assert trade.trade_id == last_id + 1
        assert abs(trade.price / last.close - 1) < Decimal("0.02"), (symbol, trade, last)


def test_stored_symbols_continue_and_up_to_date_ones_are_left_alone() -> None:
    market = SyntheticMarket(3, 100.0, seed=9, start_us=END_MS * 1000)
    names = [spec.symbol for spec in market.symbols]
    behind = StoredSymbol(Decimal("12.5"), 5_000, END_MS - 3 * HOUR_MS - 15_000)
    current = StoredSymbol(Decimal("7"), 42, END_MS + 20_000)
    out = Collect()
    resume, report = HistoryGenerator(market).generate(
        END_MS, {names[0]: behind, names[1]: current}, out
    )
    assert report.symbols == 2
    # Behind: from the next whole minute on, at the stored close, ids straight on.
    minutes = out.rows["1m"][names[0]]
    assert minutes[0].open_time == END_MS - 3 * HOUR_MS
    assert len(minutes) == 180
    first_real = next(r for r in minutes if r.count)
    assert first_real.first_trade_id == 5_001
    if minutes[0].count == 0:
        assert minutes[0].close == Decimal("12.5")
    # Up to date: nothing written; it resumes where its candles end.
    assert names[1] not in out.rows["1m"] and names[1] not in out.rows["1s"]
    assert (
        resume[names[1]].next_trade_id == 43
        and resume[names[1]].from_us == (END_MS + 20_000) * 1000
    )
    # Fresh: the whole day.
    assert len(out.rows["1m"][names[2]]) == DAY_MS // MINUTE_MS
    assert all(r.from_us == END_MS * 1000 for n, r in resume.items() if n != names[1])


def test_generation_is_deterministic_for_a_seed() -> None:
    def run(seed: int) -> pa.Table:
        market = SyntheticMarket(5, 100.0, seed=seed, start_us=END_MS * 1000)
        tables: list[pa.Table] = []
        HistoryGenerator(market, span_ms=2 * HOUR_MS).generate(
            END_MS, {}, lambda interval, table: tables.append(table)
        )
        return pa.concat_tables(tables)

    assert run(1).equals(run(1))
    assert not run(1).equals(run(2))


def test_rejects_an_end_that_is_not_a_whole_minute() -> None:
    market = SyntheticMarket(2, 10.0, seed=1)
    with pytest.raises(ValueError):
        HistoryGenerator(market).generate(END_MS + 1, {}, lambda *_: None)


def test_the_default_signals_fire_on_the_busiest_symbols_every_hour_or_so(day: Day) -> None:
    market, out, _ = day
    params = SignalParams()
    for spec in market.symbols[:3]:
        rows = out.rows["1m"][spec.symbol]

        def column(name: str, rows: list[Row] = rows) -> np.ndarray:
            return np.array([float(getattr(r, name)) for r in rows])

        times = np.array([r.open_time for r in rows])
        o, h, lo, c, v = (column(n) for n in ("open", "high", "low", "close", "volume"))
        fired: collections.Counter[str] = collections.Counter()
        for end in range(params.history_bars, len(rows)):
            window = slice(end - params.history_bars, end)
            bars = Bars(times[window], o[window], h[window], lo[window], c[window], v[window])
            for name, rule in RULES.rules_for("1m"):
                if rule(bars, params) is not None:
                    fired[name] += 1
        # Thousands of trades a minute: only the regimes' bursts, pumps and dumps make
        # these fire, and they do many times a day.
        assert min(fired[name] for name in ("volume_spike", "breakout", "ema_cross")) >= 24, fired


def test_decimals_are_exact_past_64_bits() -> None:
    units = np.array([0, 1, 123_456_789, 2**62 + 12_345, 9_000_000_000_000_000_000 // 8])
    shifts = np.array([0, 16, 8, 16, 13])
    got = decimal_array(units, shifts, 16).to_pylist()
    want = [Decimal(int(u) * 10 ** int(k)).scaleb(-16) for u, k in zip(units, shifts, strict=True)]
    assert got == want
    assert got[3] > Decimal(2**64).scaleb(-16)  # the product needed more than 64 bits
