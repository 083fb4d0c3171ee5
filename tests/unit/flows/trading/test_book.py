"""The paper book: quote and depth combined (the newer gives the top), freshness in
market time, and the walk and queue rules of matching."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from flows.trading.book import Book
from flows.trading.matching import QueuePosition, Sweep, walk
from schemas.depth import BookDepth
from schemas.quotes import Quote
from schemas.trades import Trade

S = 1_000_000


def _quote(bid: str, ask: str, uid: int = 10, bid_qty: str = "2", ask_qty: str = "3") -> Quote:
    return Quote(
        exchange="binance", market="spot", symbol="BTCUSDT", update_id=uid, bid_price=D(bid),
        bid_qty=D(bid_qty), ask_price=D(ask), ask_qty=D(ask_qty), received_us=0,
    )  # fmt: skip


def _depth(uid: int = 5) -> BookDepth:
    return BookDepth(
        exchange="binance", market="spot", symbol="BTCUSDT", update_id=uid,
        bids=[(D("99"), D("1")), (D("98"), D("4")), (D("97"), D("5"))],
        asks=[(D("101"), D("1")), (D("102"), D("4")), (D("103"), D("5"))],
        received_us=0,
    )  # fmt: skip


def _trade(price: str, qty: str) -> Trade:
    return Trade(
        exchange="binance", market="spot", symbol="BTCUSDT", trade_id=1, price=D(price),
        qty=D(qty), time_us=0, buyer_is_maker=True,
    )  # fmt: skip


def test_a_newer_quote_gives_the_top_and_drops_the_levels_it_shows_gone() -> None:
    book = Book()
    book.on_depth(_depth(), 1 * S)
    # the quote (newer) says the best ask is now 102 (101 was taken) and the bid 99.5
    book.on_quote(_quote("99.5", "102"), 2 * S)
    assert book.levels("BUY") == [(D("102"), D("3")), (D("103"), D("5"))]
    assert book.levels("SELL") == [(D("99.5"), D("2")), (D("99"), D("1")), (D("98"), D("4")),
                                   (D("97"), D("5"))]  # fmt: skip


def test_a_newer_depth_gives_the_whole_book() -> None:
    book = Book()
    book.on_quote(_quote("99.5", "102"), 1 * S)
    book.on_depth(_depth(), 2 * S)
    assert book.best("BUY") == D("101")
    assert book.best("SELL") == D("99")


def test_freshness_is_judged_in_market_time_from_the_newest_part() -> None:
    book = Book()
    assert not book.is_fresh(0, 3 * S)
    book.on_depth(_depth(), 1 * S)
    book.on_quote(_quote("99", "101"), 2 * S)
    assert book.is_fresh(5 * S, 3 * S)  # 5 - 2 = 3 s old: still fresh
    assert not book.is_fresh(5 * S + 1, 3 * S)


def test_an_older_update_is_ignored() -> None:
    book = Book()
    book.on_quote(_quote("99", "101", uid=10), 1 * S)
    book.on_quote(_quote("90", "91", uid=9), 2 * S)
    assert book.best("BUY") == D("101")


def test_queue_size_is_the_own_side_level() -> None:
    book = Book()
    book.on_depth(_depth(), 1 * S)
    assert book.size_at("BUY", D("98")) == D("4")  # a buy at 98 queues behind 4 bid
    assert book.size_at("SELL", D("102")) == D("4")
    assert book.size_at("BUY", D("98.5")) == 0


@pytest.mark.parametrize(
    ("qty", "limit", "expected"),
    [
        # 2.5 from asks 101×1, 102×4: 1 @ 101 (slip 0), 1.5 @ 102 (slip 1)
        ("2.5", None, [("101", "1", "0"), ("102", "1.5", "1")]),
        # a limit of 101 stops after the first level
        ("2.5", "101", [("101", "1", "0")]),
        # more than the book holds: all of it
        ("20", None, [("101", "1", "0"), ("102", "4", "1"), ("103", "5", "2")]),
    ],
)
def test_walk_takes_level_by_level(qty: str, limit: str | None, expected: list[tuple]) -> None:
    book = Book()
    book.on_depth(_depth(), 1 * S)
    takes = walk(book.levels("BUY"), "BUY", qty=D(qty), limit=D(limit) if limit else None)
    assert [(t.price, t.qty, t.slippage) for t in takes] == [
        (D(p), D(q), D(s)) for p, q, s in expected
    ]


def test_walk_by_quote_amount_rounds_each_level_down_to_the_step() -> None:
    # 150 USDT: 1 @ 101 = 101, then 49 / 102 = 0.48039… → 0.48 (step 0.01) = 48.96
    takes = walk([(D("101"), D("1")), (D("102"), D("4"))], "BUY", quote_qty=D("150"),
                 step=D("0.01"))  # fmt: skip
    assert [(t.price, t.qty) for t in takes] == [(D("101"), D("1")), (D("102"), D("0.48"))]


@pytest.mark.parametrize(
    ("ahead", "trades", "fills"),
    [
        # 2 ahead at 100: a 1.5 print leaves 0.5 ahead, the next 1.0 print gives 0.5
        ("2", [("100", "1.5"), ("100", "1.0")], ["0", "0.5"]),
        # a print through the price (99.9 < 100 for a buy) fills up to its size at once
        ("2", [("99.9", "0.7")], ["0.7"]),
        # a print above the limit never reaches a buy
        ("0", [("100.1", "5")], ["0"]),
        # queue unknown (restored, no book yet): only a print through fills
        (None, [("100", "5"), ("99", "1")], ["0", "1"]),
    ],
)
def test_queue_position(ahead: str | None, trades: list[tuple[str, str]], fills: list[str]) -> None:
    queue = QueuePosition(D(ahead) if ahead is not None else None)
    got = [Sweep.of("BUY", _trade(p, q)).reach(D("100"), queue) for p, q in trades]
    assert got == [D(f) for f in fills]
