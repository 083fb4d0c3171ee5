"""The simulated perpetuals' generated candles: a day derived from their twins', by the
flow's candle rules, joined to the live perpetuals."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from flows.sources.simulator import SymbolResume, SyntheticMarket
from flows.sources.simulator.history import DAY_MS, HOUR_MS, MINUTE_MS, HistoryGenerator
from flows.sources.simulator.perps import Perpetuals
from flows.sources.simulator.stored import StoredSymbol
from schemas.trades import Trade
from tests.unit.flows.sources.simulator.test_history import (
    END_MS,
    Collect,
    check_candles,
    check_consecutive_ids,
    check_roll_up,
)

Day = tuple[SyntheticMarket, Collect, Collect, dict[str, SymbolResume]]


def generate(
    market: SyntheticMarket,
    span_ms: int = DAY_MS,
    stored_perps: dict[str, StoredSymbol] | None = None,
) -> tuple[Collect, Collect, dict[str, SymbolResume]]:
    spot, perp = Collect(), Collect("usdm")

    def write(interval: str, table: pa.Table) -> None:
        spot(interval, table)
        perp(interval, table)

    generator = HistoryGenerator(market, span_ms=span_ms, perps=Perpetuals(market))
    resume, report = generator.generate(END_MS, {}, write, stored_perps)
    assert (report.perp_candles_1m, report.perp_candles_1s) == (
        perp.counts["1m"],
        perp.counts["1s"],
    )
    return spot, perp, resume


def first_prints(market: SyntheticMarket, perps: Perpetuals, trades: int) -> dict[str, Trade]:
    """Each perpetual's first live print over the market's next `trades` spot trades."""
    firsts: dict[str, Trade] = {}
    for trade in market.trades(trades):
        perps.advance(trade.time_us)
        printed = perps.on_trade(trade)
        if printed is not None:
            firsts.setdefault(printed.symbol, printed)
    return firsts


@pytest.fixture(scope="module")
def day() -> Day:
    market = SyntheticMarket(20, 400.0, seed=8, start_us=END_MS * 1000)
    spot, perp, resume = generate(market)
    return market, spot, perp, resume


def test_the_perpetuals_get_the_day_in_minutes_and_the_last_hour_in_seconds(day: Day) -> None:
    market, _, perp, _ = day
    names = [spec.symbol for spec in Perpetuals(market).specs]
    assert names == [spec.symbol for spec in market.symbols[:4]]  # the busiest fifth
    assert sorted(perp.rows["1m"]) == sorted(perp.rows["1s"]) == sorted(names)
    for name in names:
        minutes = perp.rows["1m"][name]
        # From its first print, a few seconds into the day, every minute to the end.
        assert minutes[0].open_time == END_MS - DAY_MS and minutes[0].count > 0
        assert [r.open_time for r in minutes] == list(range(END_MS - DAY_MS, END_MS, MINUTE_MS))
        seconds = perp.rows["1s"][name]
        assert [r.open_time for r in seconds] == list(range(END_MS - HOUR_MS, END_MS, 1000))


def test_every_perpetual_candle_is_exact_with_consecutive_ids(day: Day) -> None:
    market, _, perp, _ = day
    check_candles(perp, Perpetuals(market).specs)
    check_consecutive_ids(perp)


def test_the_perpetuals_last_hour_minutes_are_the_roll_up_of_their_seconds(day: Day) -> None:
    compared, flat_seconds = check_roll_up(day[2])
    assert compared > 200 and flat_seconds > 100


def test_the_perpetual_prints_a_quarter_of_its_twin_at_a_small_premium(day: Day) -> None:
    _, spot, perp, _ = day
    for name, minutes in perp.rows["1m"].items():
        twin = spot.rows["1m"][name]
        share = sum(r.count for r in minutes) / sum(r.count for r in twin)
        assert 0.23 < share < 0.27, (name, share)
        volume_share = sum(r.volume for r in minutes) / sum(r.volume for r in twin)
        assert 0.2 < volume_share < 0.3, (name, volume_share)
        premiums = [float(p.close / s.close - 1) for p, s in zip(minutes, twin, strict=True)]
        assert max(abs(x) for x in premiums) < 0.01
        # Perpetuals trade a little over spot on the whole (funding leans positive).
        assert 0 < sum(premiums) / len(premiums) < 0.002


def test_the_live_perpetual_continues_the_generated_candles(day: Day) -> None:
    market, _, perp, resume = day
    # What prepare_perpetuals does with the stored candles: ids and price go on.
    last = {name: rows[-1] for name, rows in perp.rows["1s"].items()}
    last_ids = {
        name: max(r.last_trade_id or 0 for r in rows) for name, rows in perp.rows["1s"].items()
    }
    market.resume(resume)
    live = Perpetuals(market)
    live.restore({}, {n: i + 1 for n, i in last_ids.items()}, {n: r.close for n, r in last.items()})
    firsts = first_prints(market, live, 40_000)
    assert sorted(firsts) == sorted(last)
    for name, trade in firsts.items():
        assert trade.market == "usdm" and trade.time_us >= END_MS * 1000
        assert trade.trade_id == last_ids[name] + 1
        # No jump: the spot's own move over the first trades and the premium's noise.
        assert abs(trade.price / last[name].close - 1) < Decimal("0.005"), (name, trade)


def test_a_restart_fills_the_missed_minutes_from_the_stored_candles() -> None:
    market = SyntheticMarket(10, 200.0, seed=4, start_us=END_MS * 1000)
    name = market.symbols[0].symbol
    behind = StoredSymbol(Decimal("3.25"), 7_000, END_MS - 3 * HOUR_MS - 15_000)
    _, perp, _ = generate(market, stored_perps={name: behind})
    minutes = perp.rows["1m"][name]
    assert minutes[0].open_time == END_MS - 3 * HOUR_MS and len(minutes) == 180
    first_real = next(r for r in minutes if r.count)
    assert first_real.first_trade_id == 7_001
    for r in minutes[: minutes.index(first_real)]:
        assert r.count == 0 and r.close == Decimal("3.25")
    check_consecutive_ids(perp)


def test_the_spot_history_is_the_same_with_or_without_perpetuals() -> None:
    def spot_tables(perps: bool) -> pa.Table:
        market = SyntheticMarket(5, 100.0, seed=2, start_us=END_MS * 1000)
        tables: list[pa.Table] = []
        HistoryGenerator(
            market, span_ms=2 * HOUR_MS, perps=Perpetuals(market) if perps else None
        ).generate(END_MS, {}, lambda _, table: tables.append(table))
        spot = [t for t in tables if t.column("market")[0].as_py() == "spot"]
        assert len(spot) < len(tables) if perps else len(spot) == len(tables)
        return pa.concat_tables(spot)

    assert spot_tables(True).equals(spot_tables(False))
