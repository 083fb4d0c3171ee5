"""The simulated book: quotes and 20-level depth consistent with the trades, deterministic."""

from __future__ import annotations

import collections
import heapq
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from flows.sources.simulator import QUOTE_GAP_US, SyntheticMarket
from flows.sources.simulator.book import DEPTH_EVERY_US, DEPTH_LEVELS
from flows.sources.simulator.perps import Perpetuals
from schemas.depth import BookDepth
from schemas.quotes import Quote
from schemas.trades import Trade


def run(
    market: SyntheticMarket, n: int, watch: list[str] | None = None
) -> tuple[list[Trade], list[Quote], list[BookDepth]]:
    if watch is not None:
        market.watch_depth(watch)
    trades = list(market.trades(n))
    end = trades[-1].time_us
    return trades, market.take_quotes(end), market.take_depth(end)


def in_time_order(
    trades: Sequence[Trade], quotes: Sequence[Quote], depth: Sequence[BookDepth] = ()
) -> list[tuple[int, int, Any]]:
    """Every record in market time; at one time a quote comes first (the book moved),
    then the depth (the book as it stands then) and the trades that printed against it."""
    merged = heapq.merge(
        ((q.time_us, 0, q) for q in quotes),
        ((d.time_us, 1, d) for d in depth),
        ((t.time_us, 2, t) for t in trades),
        key=lambda r: (r[0], r[1]),
    )
    return list(merged)


@pytest.fixture(scope="module")
def spot() -> tuple[SyntheticMarket, list[Trade], list[Quote], list[BookDepth]]:
    market = SyntheticMarket(50, 400.0, seed=6, quotes=True)
    watched = ["SYM0001USDT", "SYM0007USDT", "SYM0040USDT"]
    return market, *run(market, 80_000, watched)


def test_takers_print_at_the_last_quoted_ask_or_bid(spot: Any) -> None:
    market, trades, quotes, _ = spot
    assert len(quotes) > 5_000
    specs = {spec.symbol: spec for spec in market.symbols}
    book: dict[str, Quote] = {}
    order_first: dict[tuple[str, int], Trade] = {}
    for _, _, record in in_time_order(trades, quotes):
        if isinstance(record, Quote):
            book[record.symbol] = record
            continue
        quote = book[record.symbol]  # no trade before its symbol's first quote
        tick = specs[record.symbol].tick_size
        first = order_first.setdefault((record.symbol, record.time_us), record)
        if record.buyer_is_maker:  # a taker sell: the bid, then a tick lower per level swept
            assert record.price <= quote.bid_price
            assert first.price == quote.bid_price
        else:
            assert record.price >= quote.ask_price
            assert first.price == quote.ask_price
        assert (record.price - first.price) % tick == 0


def test_quotes_say_when_the_book_moves_and_no_more_than_ten_times_a_second(spot: Any) -> None:
    market, _, quotes, _ = spot
    specs = {spec.symbol: spec for spec in market.symbols}
    last: dict[str, Quote] = {}
    for quote in quotes:
        spec = specs[quote.symbol]
        assert quote.exchange == "sim" and quote.market == "spot"
        assert Decimal(0) < quote.bid_price < quote.ask_price
        assert quote.bid_price % spec.tick_size == 0 and quote.ask_price % spec.tick_size == 0
        assert quote.bid_qty > 0 and quote.ask_qty > 0
        assert quote.bid_qty % spec.step_size == 0 and quote.ask_qty % spec.step_size == 0
        assert quote.time_us is not None and quote.update_id == quote.time_us
        before = last.get(quote.symbol)
        if before is not None:
            assert quote.update_id - before.update_id >= QUOTE_GAP_US
            # a quote is a move: the price changed
            assert (quote.bid_price, quote.ask_price) != (before.bid_price, before.ask_price)
        last[quote.symbol] = quote
    busiest = collections.Counter(q.symbol for q in quotes).most_common(1)[0][1]
    span_s = (quotes[-1].time_us - quotes[0].time_us) / 1e6
    assert busiest / span_s > 3  # the busiest book moves several times a second


def test_depth_is_the_quote_then_levels_a_tick_apart(spot: Any) -> None:
    market, trades, quotes, depth = spot
    specs = {spec.symbol: spec for spec in market.symbols}
    assert {d.symbol for d in depth} == {"SYM0001USDT", "SYM0007USDT", "SYM0040USDT"}
    book: dict[str, Quote] = {}
    near = far = Decimal(0)
    for _, _, record in in_time_order(trades, quotes, depth):
        if isinstance(record, Quote):
            book[record.symbol] = record
        elif isinstance(record, BookDepth):
            spec, quote = specs[record.symbol], book[record.symbol]
            assert (record.exchange, record.market) == ("sim", "spot")
            assert record.time_us == record.update_id == record.received_us
            assert record.time_us % DEPTH_EVERY_US == 0
            assert record.bids[0] == (quote.bid_price, quote.bid_qty)
            assert record.asks[0] == (quote.ask_price, quote.ask_qty)
            assert len(record.asks) == DEPTH_LEVELS
            assert len(record.bids) == DEPTH_LEVELS or record.bids[-1][0] == spec.tick_size
            for side, step in ((record.bids, -spec.tick_size), (record.asks, spec.tick_size)):
                prices = [price for price, _ in side]
                assert prices == [prices[0] + k * step for k in range(len(prices))]
                assert all(qty > 0 and qty % spec.step_size == 0 for _, qty in side)
            near += sum(q / quote.ask_qty for _, q in record.asks[1:6])
            far += sum(q / quote.ask_qty for _, q in record.asks[-5:])
    # Deeper levels rest more, on the whole (each is drawn, so not level by level).
    assert far > 2 * near
    # A record every 100 ms of market time for each watched symbol.
    per_symbol = collections.Counter(d.symbol for d in depth)
    slots = (trades[-1].time_us - trades[0].time_us) // DEPTH_EVERY_US
    assert min(per_symbol.values()) >= slots - 2


def test_depth_follows_the_watch_set() -> None:
    market = SyntheticMarket(20, 400.0, seed=2, quotes=True)
    _, _, first = run(market, 4_000, ["SYM0001USDT", "NOPEUSDT"])
    assert {d.symbol for d in first} == {"SYM0001USDT"}
    # A change applies from the market time generated so far (a chunk ahead of the
    # trades taken): what was recorded before it is still handed out.
    switched_us = market.now_us
    _, _, second = run(market, 4_000, ["SYM0002USDT"])
    assert {d.symbol for d in second if d.update_id > switched_us} == {"SYM0002USDT"}
    assert {d.symbol for d in second if d.update_id <= switched_us} <= {"SYM0001USDT"}
    assert market.book.watched == ["SYM0002USDT"]
    switched_us = market.now_us
    _, _, third = run(market, 4_000, [])
    assert [d for d in third if d.update_id > switched_us] == []
    assert market.book.watched == []


def test_the_same_seed_gives_the_same_book_whatever_was_watched() -> None:
    a, b = (SyntheticMarket(30, 400.0, seed=9, quotes=True) for _ in range(2))
    trades_a, quotes_a, depth_a = run(a, 20_000, ["SYM0003USDT", "SYM0005USDT"])
    # b watches more, and later: its trades and quotes are the same, its depth of the
    # symbols a watched the same from the moment it watches them.
    trades_b, quotes_b, _ = run(b, 10_000)
    more_b, more_quotes_b, depth_b = run(b, 10_000, ["SYM0001USDT", "SYM0003USDT", "SYM0005USDT"])
    assert trades_a == trades_b + more_b
    assert quotes_a == quotes_b + more_quotes_b
    assert trades_a == list(SyntheticMarket(30, 400.0, seed=9).trades(20_000))  # quotes or not
    since = depth_b[0].time_us
    assert [d for d in depth_a if d.time_us >= since] == [
        d for d in depth_b if d.symbol != "SYM0001USDT"
    ]
    other = SyntheticMarket(30, 400.0, seed=10, quotes=True)
    assert run(other, 20_000, ["SYM0003USDT"])[2][:50] != depth_a[:50]


def test_perpetuals_print_against_their_own_book_and_publish_its_depth() -> None:
    market = SyntheticMarket(20, 400.0, seed=5, quotes=True)
    perps = Perpetuals(market)
    watched = perps.watch_depth([perps.symbols[0], "SYM0019USDT"])  # not a perpetual
    assert watched == [perps.symbols[0]]
    prints: list[Trade] = []
    spot_quotes: list[Quote] = []
    for trade in market.trades(40_000):
        # As publish_market feeds them: the twins' quotes up to the trade, then the trade.
        for quote in market.take_quotes(trade.time_us):
            perps.advance(quote.time_us)  # type: ignore[arg-type]
            perps.on_quote(quote)
            spot_quotes.append(quote)
        perps.advance(trade.time_us)
        if (printed := perps.on_trade(trade)) is not None:
            prints.append(printed)
    end = prints[-1].time_us
    quotes, depth = perps.take_quotes(end), perps.take_depth(end)
    assert len(prints) > 1_000 and len(quotes) > 500 and len(depth) > 100
    assert {(q.exchange, q.market) for q in quotes} == {("sim", "usdm")}
    assert {d.symbol for d in depth} == {perps.symbols[0]}
    twins = {q.symbol for q in spot_quotes} & set(perps.symbols)
    assert {q.symbol for q in quotes} == twins
    specs = {spec.symbol: spec for spec in perps.specs}
    book: dict[str, Quote] = {}
    at_touch = 0
    for _, _, record in in_time_order(prints, quotes, depth):
        if isinstance(record, Quote):
            assert record.bid_price < record.ask_price
            book[record.symbol] = record
        elif isinstance(record, BookDepth):
            quote = book[record.symbol]
            assert record.bids[0] == (quote.bid_price, quote.bid_qty)
            assert record.asks[0] == (quote.ask_price, quote.ask_qty)
        else:
            quote, tick = book[record.symbol], specs[record.symbol].tick_size
            assert record.market == "usdm"
            if record.buyer_is_maker:
                assert record.price <= quote.bid_price
            else:
                assert record.price >= quote.ask_price
            assert (record.price - quote.bid_price) % tick == 0
            at_touch += record.price in (quote.bid_price, quote.ask_price)
    assert at_touch > len(prints) * 0.6  # most fills print at the touch, sweeps go deeper
