"""The synthetic market: deterministic, ordered, exchange-exact and realistically skewed."""

from __future__ import annotations

import collections
import itertools
import statistics
from decimal import Decimal

import pytest

from flows.sources.simulator import DEFAULT_START_US, SymbolResume, SyntheticMarket
from schemas.trades import Trade, check_trade


@pytest.fixture(scope="module")
def day() -> tuple[SyntheticMarket, list[Trade]]:
    """100k trades of a 200-symbol market at 50 trades/s: about 33 minutes of event time."""
    market = SyntheticMarket(200, 50.0, seed=7)
    return market, list(market.trades(100_000))


def test_same_seed_same_trades_other_seed_other_trades() -> None:
    first = list(SyntheticMarket(30, 1_000.0, seed=3).trades(20_000))
    again = list(SyntheticMarket(30, 1_000.0, seed=3).trades(20_000))
    other = list(SyntheticMarket(30, 1_000.0, seed=4).trades(20_000))
    assert first == again
    assert first != other


def test_successive_calls_continue_the_market() -> None:
    whole = list(SyntheticMarket(10, 100.0, seed=1).trades(10_000))
    market = SyntheticMarket(10, 100.0, seed=1)
    # 3_333 ends mid-chunk: the next call must pick up at the very next trade.
    parts = list(market.trades(3_333)) + list(itertools.islice(market.stream(), 6_667))
    assert parts == whole


def test_abandoned_iterator_loses_nothing() -> None:
    whole = list(SyntheticMarket(10, 100.0, seed=1).trades(100))
    market = SyntheticMarket(10, 100.0, seed=1)
    stream = market.stream()
    head = [next(stream) for _ in range(10)]
    del stream
    assert head + list(market.trades(90)) == whole


def test_trades_are_in_exchange_time_order_from_the_start(
    day: tuple[SyntheticMarket, list[Trade]],
) -> None:
    _, trades = day
    assert trades[0].time_us == DEFAULT_START_US
    assert all(a.time_us <= b.time_us for a, b in itertools.pairwise(trades))
    start = SyntheticMarket(5, 10.0, start_us=1_700_000_000_000_000)
    assert next(start.stream()).time_us == 1_700_000_000_000_000


def test_prices_and_quantities_are_exact_multiples_of_tick_and_step(
    day: tuple[SyntheticMarket, list[Trade]],
) -> None:
    market, trades = day
    specs = {spec.symbol: spec for spec in market.symbols}
    for trade in trades:
        spec = specs[trade.symbol]
        check_trade(trade)
        assert trade.price % spec.tick_size == 0, trade
        assert trade.qty % spec.step_size == 0, trade
        assert trade.exchange == "sim" and trade.market == "spot"


def test_prices_span_meme_coins_to_bitcoin() -> None:
    market = SyntheticMarket(500, 100.0, seed=0)
    prices = [spec.initial_price for spec in market.symbols]
    assert min(prices) < Decimal("0.001")
    assert max(prices) > Decimal("10000")
    assert all(Decimal("0.00005") < p < Decimal("70000") for p in prices)
    assert all(spec.tick_size >= Decimal("1e-8") for spec in market.symbols)
    assert market.symbols[0].symbol == "SYM0001USDT"
    assert len({spec.symbol for spec in market.symbols}) == 500


def test_activity_is_skewed_with_bursts_and_quiet_stretches(
    day: tuple[SyntheticMarket, list[Trade]],
) -> None:
    market, trades = day
    counts = collections.Counter(t.symbol for t in trades)
    ranked = sorted(counts.values(), reverse=True)
    # A few busy symbols dominate; the long tail trades rarely.
    assert sum(ranked[:10]) > 0.4 * len(trades)
    assert sum(ranked[100:]) < 0.15 * len(trades)

    span_s = (trades[-1].time_us - trades[0].time_us) / 1e6
    longest_gap: dict[str, float] = collections.defaultdict(float)
    busiest_10s: collections.Counter[str] = collections.Counter()
    per_window: collections.Counter[tuple[str, int]] = collections.Counter()
    last: dict[str, int] = {}
    for t in trades:
        if t.symbol in last:
            gap = (t.time_us - last[t.symbol]) / 1e6
            longest_gap[t.symbol] = max(longest_gap[t.symbol], gap)
        last[t.symbol] = t.time_us
        per_window[t.symbol, (t.time_us - trades[0].time_us) // 10_000_000] += 1
    for (symbol, _), n in per_window.items():
        busiest_10s[symbol] = max(busiest_10s[symbol], n)

    busy = [spec.symbol for spec in market.symbols[1:20]]
    mean_gap = {s: span_s / counts[s] for s in busy}
    mean_10s = {s: counts[s] / (span_s / 10) for s in busy}
    # Some busy symbol falls silent for over 100 times its usual gap (and > 2 minutes)...
    assert any(longest_gap[s] > max(120.0, 100 * mean_gap[s]) for s in busy)
    # ...and some bursts at more than 8 times its average pace for 10 s.
    assert any(busiest_10s[s] > 8 * mean_10s[s] for s in busy)


def test_trade_ids_increase_by_one_per_symbol(day: tuple[SyntheticMarket, list[Trade]]) -> None:
    _, trades = day
    last: dict[str, int] = {}
    for t in trades:
        assert t.first_trade_id is None and t.last_trade_id is None
        if t.symbol in last:
            assert t.trade_id == last[t.symbol] + 1
        last[t.symbol] = t.trade_id


def test_sweeps_print_several_fills_at_one_time(day: tuple[SyntheticMarket, list[Trade]]) -> None:
    _, trades = day
    same_time = sum(
        a.symbol == b.symbol and a.time_us == b.time_us for a, b in itertools.pairwise(trades)
    )
    assert 0.1 * len(trades) < same_time < 0.6 * len(trades)


def test_agg_prints_cover_contiguous_raw_id_ranges() -> None:
    market = SyntheticMarket(20, 200.0, seed=5, agg=True)
    trades = list(market.trades(50_000))
    last: dict[str, Trade] = {}
    for t in trades:
        assert t.first_trade_id is not None and t.last_trade_id is not None
        assert t.first_trade_id <= t.last_trade_id
        previous = last.get(t.symbol)
        if previous is not None:
            assert previous.last_trade_id is not None
            assert t.trade_id == previous.trade_id + 1
            assert t.first_trade_id == previous.last_trade_id + 1
        last[t.symbol] = t
    assert sum(t.count > 1 for t in trades) > 0.05 * len(trades)
    assert sum(t.count for t in trades) > len(trades)


@pytest.mark.parametrize("rate", [20.0, 500.0, 50_000.0])
def test_event_time_advances_at_the_requested_rate(rate: float) -> None:
    trades = list(SyntheticMarket(100, rate, seed=11).trades(100_000))
    span_s = (trades[-1].time_us - trades[0].time_us) / 1e6
    assert len(trades) / span_s == pytest.approx(rate, rel=0.03)


@pytest.mark.parametrize(("symbols", "rate"), [(0, 1.0), (10, 0.0), (10, -5.0)])
def test_rejects_an_empty_market_or_a_non_positive_rate(symbols: int, rate: float) -> None:
    with pytest.raises(ValueError):
        SyntheticMarket(symbols, rate)


def test_spreads_are_tight_for_busy_symbols_and_wider_in_the_tail() -> None:
    market = SyntheticMarket(200, 500.0, seed=2, quotes=True)
    trades = list(market.trades(100_000))
    spread: dict[str, list[float]] = collections.defaultdict(list)
    for quote in market.take_quotes(trades[-1].time_us):
        mid = (quote.bid_price + quote.ask_price) / 2
        spread[quote.symbol].append(float((quote.ask_price - quote.bid_price) / mid))
    names = [spec.symbol for spec in market.symbols]
    busy = [statistics.median(spread[s]) for s in names[:5]]
    tail = [statistics.median(spread[s]) for s in names[-50:] if spread[s]]
    assert max(busy) < 0.0002  # under 2 basis points
    assert statistics.median(tail) > 3 * max(busy)
    assert max(max(v) for v in spread.values()) < 0.03


def test_resume_continues_ids_and_price_from_stored_data() -> None:
    start_us = 1_796_000_000_000_000
    fresh = SyntheticMarket(10, 200.0, seed=4, start_us=start_us)
    market = SyntheticMarket(10, 200.0, seed=4, start_us=start_us)
    symbol = market.symbols[0].symbol
    stored_price = market.symbols[0].initial_price * 3  # far from the seeded price
    market.resume(
        {symbol: SymbolResume(stored_price, 987_654_321, from_us=start_us + 5_000_000)},
        start_us=start_us - 2_000_000,
    )
    assert market.next_trade_ids()[symbol] == 987_654_321
    trades = list(market.trades(20_000))
    assert trades[0].time_us == start_us - 2_000_000
    own = [t for t in trades if t.symbol == symbol]
    # No trade before its stored candles end, then ids straight on from the stored one.
    assert own[0].time_us >= start_us + 5_000_000
    assert [t.trade_id for t in own] == list(range(987_654_321, 987_654_321 + len(own)))
    # The price continues from the stored one (a spread and a few seconds of walk away).
    assert abs(own[0].price / stored_price - 1) < Decimal("0.01")
    # Other symbols keep the seed's ids.
    seeded = fresh.next_trade_ids()
    other = next(t for t in trades if t.symbol != symbol)
    assert other.trade_id == seeded[other.symbol]
