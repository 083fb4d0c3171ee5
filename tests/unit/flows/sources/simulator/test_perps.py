"""The simulated perpetuals: seeded, marks that track the trades, funding at funding times,
liquidations in pumps and dumps only, open interest that moves with volume."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import numpy as np
import pytest

from flows.sources.simulator import SyntheticMarket
from flows.sources.simulator.perp_model import (
    FUNDING_INTERVAL_S,
    PerpModel,
    PerpState,
    funding_times_between,
)
from flows.sources.simulator.perps import (
    OPEN_INTEREST_EVERY_S,
    Perpetuals,
    PerpRecords,
    perp_count,
)
from flows.sources.simulator.regimes import DUMP, PUMP
from schemas.perps import check_funding, check_liquidation, check_mark, check_open_interest
from schemas.trades import Trade

EIGHT_UTC_S = 1_704_096_000  # 2024-01-01T08:00:00Z


def run(
    seed: int = 3,
    trades: int = 20_000,
    funding_every_s: int = FUNDING_INTERVAL_S,
    start_s: int | None = None,
    symbols: int = 20,
    rate: float = 400.0,
) -> tuple[Perpetuals, list[Trade], list[Trade], PerpRecords]:
    """A market and its perpetuals fed `trades` spot trades, as `publish_market` feeds them."""
    market = SyntheticMarket(
        symbols, rate, seed=seed, start_us=None if start_s is None else start_s * 1_000_000
    )
    perps = Perpetuals(market, funding_every_s)
    spot: list[Trade] = []
    printed: list[Trade] = []
    records = PerpRecords([], [], [], [])
    for trade in market.trades(trades):
        records.extend(perps.advance(trade.time_us))
        spot.append(trade)
        if (perp := perps.on_trade(trade)) is not None:
            printed.append(perp)
    return perps, spot, printed, records


def test_a_seed_fixes_every_trade_and_record() -> None:
    _, spot_a, perp_a, rec_a = run(seed=3)
    _, spot_b, perp_b, rec_b = run(seed=3)
    _, _, perp_c, rec_c = run(seed=4)

    assert perp_a == perp_b and rec_a == rec_b and spot_a == spot_b
    assert perp_a != perp_c and rec_a.marks != rec_c.marks
    assert len(perp_a) > 1_000 and rec_a.marks


def test_the_busiest_symbols_are_perpetual_twins_listed_on_usdm() -> None:
    market = SyntheticMarket(20, 100.0, seed=1)
    perps = Perpetuals(market)
    infos = perps.symbol_infos(updated_ms=5)

    assert perp_count(20) == 4 and perps.symbols == [s.symbol for s in market.symbols[:4]]
    assert {(i.market, i.kind, i.status) for i in infos} == {("usdm", "perpetual", "TRADING")}
    assert [(i.tick_size, i.step_size) for i in infos] == [
        (s.tick_size, s.step_size) for s in market.symbols[:4]
    ]


def test_perp_trades_follow_their_twin_at_a_small_premium_with_their_own_ids() -> None:
    perps, spot, printed, _ = run()
    by_time = {(t.symbol, t.time_us, t.qty, t.buyer_is_maker): t for t in spot}
    ids: dict[str, list[int]] = {}
    for perp in printed:
        assert perp.market == "usdm" and perp.exchange == "sim"
        twin = by_time[(perp.symbol, perp.time_us, perp.qty, perp.buyer_is_maker)]
        assert abs(perp.price / twin.price - 1) < Decimal("0.01")
        tick = perps.specs[perps.symbols.index(perp.symbol)].tick_size
        assert perp.price % tick == 0
        ids.setdefault(perp.symbol, []).append(perp.trade_id)
    assert set(ids) == set(perps.symbols)
    for symbol_ids in ids.values():
        assert symbol_ids == list(range(symbol_ids[0], symbol_ids[0] + len(symbol_ids)))


def test_marks_track_the_trades_every_second_tick_rounded() -> None:
    perps, spot, _, records = run()
    spot_at: dict[tuple[str, int], Decimal] = {}
    for trade in spot:
        spot_at[(trade.symbol, trade.time_us // 1_000_000 + 1)] = trade.price
    ticks = {spec.symbol: spec.tick_size for spec in perps.specs}
    seconds = Counter(mark.time_us for mark in records.marks)
    # One mark per perpetual per second of event time, at the second's end.
    assert set(seconds.values()) == {len(perps.symbols)}
    assert all(t % 1_000_000 == 0 for t in seconds)
    assert len(seconds) == spot[-1].time_us // 1_000_000 - spot[0].time_us // 1_000_000
    checked = 0
    for mark in records.marks:
        check_mark(mark)
        assert mark.market == "usdm" and mark.mark_price % ticks[mark.symbol] == 0
        assert mark.index_price % ticks[mark.symbol] == 0
        price = spot_at.get((mark.symbol, mark.time_us // 1_000_000))
        if price is None:
            continue
        # The index smooths spot over seconds; the mark is within a small basis of it.
        assert abs(mark.index_price / price - 1) < Decimal("0.01")
        assert abs(mark.mark_price / mark.index_price - 1) < Decimal("0.003")
        checked += 1
    assert checked > len(records.marks) // 2


def test_funding_settles_at_8h_funding_times_only() -> None:
    # Start 20 s before 08:00 UTC: one funding time passes.
    perps, _, _, records = run(start_s=EIGHT_UTC_S - 20, trades=20_000)
    assert records.marks[-1].time_us > EIGHT_UTC_S * 1_000_000
    assert [e.funding_time_us for e in records.funding] == [EIGHT_UTC_S * 1_000_000] * len(
        perps.symbols
    )
    for event in records.funding:
        check_funding(event)
        assert event.source == "sim" and event.mark_price is not None
    # Marks before it point at it, after it at 16:00.
    nexts = {m.next_funding_time_us for m in records.marks}
    assert nexts == {EIGHT_UTC_S * 1_000_000, (EIGHT_UTC_S + 8 * 3_600) * 1_000_000}
    # Without a funding time passing, none.
    assert not run(start_s=EIGHT_UTC_S + 60, trades=20_000)[3].funding


def test_accelerated_funding_settles_every_n_seconds_the_estimate_then_starts_afresh() -> None:
    perps, _, _, records = run(funding_every_s=10, trades=20_000)
    times = sorted({e.funding_time_us for e in records.funding})
    marks = records.marks
    first_s, last_s = marks[0].time_us // 1_000_000, marks[-1].time_us // 1_000_000
    assert times == [t * 1_000_000 for t in funding_times_between(first_s - 1, last_s, 10)]
    assert len(times) >= 4 and len(records.funding) == len(times) * len(perps.symbols)
    # The settled rate is the estimate the last mark of the interval showed.
    estimate = {(m.symbol, m.time_us): m.funding_rate for m in marks}
    for event in records.funding:
        assert event.funding_rate == estimate[(event.symbol, event.funding_time_us)]


def test_funding_estimate_is_binances_formula_on_the_mean_premium() -> None:
    market = SyntheticMarket(10, 100.0, seed=1)
    model = PerpModel(1, market.symbols[:2], 100.0)
    model.premium_sum[:] = [0.0, 0.002 * 60]
    model.premium_time[:] = 60.0
    # P + clamp(0.01 % - P, +-0.05 %): 0.01 % at no premium, P - 0.05 % at 0.2 %.
    assert model.funding_rate().tolist() == pytest.approx([0.0001, 0.0015])
    model.settle()
    assert model.funding_rate().tolist() == pytest.approx([0.0001, 0.0001])


def test_liquidations_only_in_pumps_and_dumps_at_most_one_per_symbol_per_second() -> None:
    market = SyntheticMarket(20, 50.0, seed=7)
    perps = Perpetuals(market)
    start_s = market.start_us // 1_000_000
    # Six hours of event time without trades: the model still steps every second.
    records = perps.advance((start_s + 6 * 3_600) * 1_000_000)
    liquidations = records.liquidations
    assert len(liquidations) > 20
    seconds = Counter((q.symbol, q.time_us // 1_000_000) for q in liquidations)
    assert max(seconds.values()) == 1
    slot = {name: i for i, name in enumerate(perps.symbols)}
    kinds = perps.model.regimes.at(np.array([q.time_us // 1_000_000 for q in liquidations])).kind
    sides: Counter[str] = Counter()
    for column, liquidation in enumerate(liquidations):
        check_liquidation(liquidation)
        kind = kinds[slot[liquidation.symbol], column]
        assert kind in (PUMP, DUMP)
        # Shorts are liquidated in a pump (the order buys), longs in a dump.
        assert liquidation.side == ("BUY" if kind == PUMP else "SELL")
        assert liquidation.filled_qty == liquidation.qty > 0
        sides[liquidation.side] += 1
    assert sides["BUY"] and sides["SELL"]


def test_open_interest_moves_with_volume() -> None:
    market = SyntheticMarket(10, 100.0, seed=2)
    specs = market.symbols[:3]
    prices = np.array([float(s.initial_price) for s in specs])
    moves = []
    for volume in (0.0, 100.0, 200.0):
        model = PerpModel(2, specs, 100.0)
        base = model.open_interest.copy()
        draws = model.draws(1_800_000_000, 1)
        model.step(draws, 0, 1.0, prices, prices, np.full(3, volume), np.zeros(3))
        moves.append(model.open_interest - base)
    # At its base and without volume it stays; with volume it moves, in proportion.
    assert moves[0].tolist() == [0.0, 0.0, 0.0]
    assert np.all(np.abs(moves[1]) > 0)
    assert moves[2] == pytest.approx(2 * moves[1])


def test_open_interest_is_published_every_few_seconds_valued_at_the_mark() -> None:
    _, _, _, records = run()
    times = sorted({o.time_us for o in records.open_interest})
    assert times and all(t % (OPEN_INTEREST_EVERY_S * 1_000_000) == 0 for t in times)
    mark = {(m.symbol, m.time_us): m.mark_price for m in records.marks}
    for sample in records.open_interest:
        check_open_interest(sample)
        assert sample.source == "sim" and sample.open_interest > 0
        assert (
            sample.open_interest_value
            == sample.open_interest * mark[(sample.symbol, sample.time_us)]
        )


def test_restore_continues_marks_open_interest_and_trade_ids() -> None:
    market = SyntheticMarket(20, 400.0, seed=3)
    perps = Perpetuals(market)
    name = perps.symbols[0]
    price = market.prices()[name]
    stored_oi = Decimal(int(perps.model.oi_base[0] * 0.7))
    perps.restore(
        {name: PerpState(index=price, mark=price * Decimal("1.001"), open_interest=stored_oi)},
        {name: 777},
    )
    records = perps.advance(market.start_us + 1_000_000)
    first = next(m for m in records.marks if m.symbol == name)
    assert abs(first.mark_price / price - Decimal("1.001")) < Decimal("0.0002")
    assert perps.model.open_interest[0] == pytest.approx(float(stored_oi), rel=1e-3)
    assert perps.next_trade_ids()[name] == 777


@pytest.mark.parametrize("rate", ["0.00030000", "0.00010000", "-0.00020000"])
def test_restore_continues_the_funding_estimate(rate: str) -> None:
    market = SyntheticMarket(20, 400.0, seed=3)
    model = Perpetuals(market).model
    price = Decimal("1.5")
    # Stored an hour into the interval: the estimate stands where the stored mark showed it.
    model.restore({0: PerpState(price, price, None, Decimal(rate), EIGHT_UTC_S + 3_600)})
    assert model.funding_rate()[0] == pytest.approx(float(rate))
    assert model.premium_time[0] == 3_600
