"""An account never takes the same liquidity twice: what its taker orders took from a
book, and how one trade is shared among its resting orders; other accounts unaffected.

Hand-worked numbers on `Paper.default_depth`: asks 100.00 × 0.5, 100.10 × 0.3,
100.50 × 1; bids 99.90 × 0.4, 99.00 × 2, 98.00 × 4. Times are seconds after T0 (`S`).
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from flows.trading.book import Book, Taken
from flows.trading.matching import QueuePosition, Sweep, priority
from flows.trading.rules import FOK_NOT_FILLED
from schemas.depth import BookDepth
from schemas.quotes import Quote
from schemas.trading import AccountEvent, OrderFilled

S = 1_000_000


def fills(events: list[AccountEvent]) -> list[tuple[str, D, D]]:
    """(client order id, price, qty) of each fill, in order."""
    return [
        (e.fill.client_order_id, e.fill.price, e.fill.qty)
        for e in events
        if isinstance(e, OrderFilled)
    ]


def takes(events: list[AccountEvent]) -> list[tuple[D, D, D]]:
    """(price, qty, slippage) of each fill, in order."""
    return [
        (e.fill.price, e.fill.qty, e.fill.slippage) for e in events if isinstance(e, OrderFilled)
    ]


# ---- taking the book ------------------------------------------------------------------


def test_a_second_market_order_in_one_snapshot_walks_to_the_next_level(paper: Any) -> None:
    paper.open(USDT="1000")
    paper.default_depth()
    first = paper.place(side="BUY", type="market", quantity="0.4")
    assert takes(first) == [(D("100.00"), D("0.4"), D("0"))]
    # only 0.5 − 0.4 = 0.1 is left at 100.00 for this account; the other 0.2 at 100.10,
    # 0.10 from the market's best
    second = paper.place(side="BUY", type="market", quantity="0.3")
    assert takes(second) == [(D("100.00"), D("0.1"), D("0")), (D("100.10"), D("0.2"), D("0.10"))]
    # a third finds 100.00 gone: it starts at 100.10's last 0.1, still measured from 100.00
    third = paper.place(side="BUY", type="market", quantity="0.2")
    assert takes(third) == [(D("100.10"), D("0.1"), D("0.10")), (D("100.50"), D("0.1"), D("0.50"))]
    # the bids were not touched: a sell takes the full best bid
    sell = paper.place(side="SELL", type="market", quantity="0.4")
    assert takes(sell) == [(D("99.90"), D("0.4"), D("0"))]


def test_a_newer_quote_frees_the_top_and_a_newer_depth_every_level(paper: Any) -> None:
    paper.open(USDT="1000")
    paper.default_depth(t=0)
    assert takes(paper.place(side="BUY", type="market", quantity="0.7")) == [
        (D("100.00"), D("0.5"), D("0")), (D("100.10"), D("0.2"), D("0.10")),
    ]  # fmt: skip
    # a newer bookTicker shows 0.5 at 100.00 again: the top is new liquidity; behind it
    # the depth levels are the same snapshot, 0.3 − 0.2 = 0.1 left at 100.10
    paper.quote("99.90", "100.00", t=1 * S, ask_qty="0.5")
    assert takes(paper.place(side="BUY", type="market", quantity="0.7")) == [
        (D("100.00"), D("0.5"), D("0")), (D("100.10"), D("0.1"), D("0.10")),
        (D("100.50"), D("0.1"), D("0.50")),
    ]  # fmt: skip
    # a newer depth20 snapshot replaces every level: all of it is there again
    paper.default_depth(t=2 * S)
    assert takes(paper.place(side="BUY", type="market", quantity="0.7")) == [
        (D("100.00"), D("0.5"), D("0")), (D("100.10"), D("0.2"), D("0.10")),
    ]  # fmt: skip


def test_an_older_quote_does_not_free_what_was_taken(paper: Any) -> None:
    paper.open(USDT="1000")
    paper.quote("99.90", "100.00", t=0, ask_qty="0.5", uid=50)
    paper.place(side="BUY", type="market", quantity="0.5")
    # update id 40 < 50: the book ignores it, so the 0.5 stays taken
    paper.quote("99.90", "100.00", t=1 * S, ask_qty="0.5", uid=40)
    events = paper.place(side="BUY", type="market", quantity="0.5")
    assert takes(events) == []
    assert events[-1].order.status == "expired"


@pytest.mark.parametrize(
    ("time_in_force", "filled", "status", "code"),
    [
        # within 100.00 the account has only 0.1 left, not the 0.5 the market shows: a
        # FOK of 0.2 cannot fill in full
        ("FOK", [], "expired", FOK_NOT_FILLED.code),
        # a GTC limit takes that 0.1 and rests the other 0.1
        ("GTC", [("L", D("100.00"), D("0.1"))], "partially_filled", None),
    ],
)
def test_a_limit_within_the_taken_top_sees_only_what_is_left(
    paper: Any, time_in_force: str, filled: list[Any], status: str, code: int | None
) -> None:
    paper.open(USDT="1000")
    paper.default_depth()
    paper.place(side="BUY", type="market", quantity="0.4")
    events = paper.place(client_order_id="L", side="BUY", type="limit", price="100.00",
                         quantity="0.2", time_in_force=time_in_force)  # fmt: skip
    assert fills(events) == filled
    assert (events[-1].order.status, events[-1].order.code) == (status, code)


# ---- sharing a trade among resting orders ---------------------------------------------


@pytest.mark.parametrize(
    ("orders", "trade", "expected"),
    [
        # three buys through a 0.6 print at 99.40: best price first (99.80), then the
        # oldest at that price; 0.3 + 0.2 leave 0.1 for the 99.50 (not 0.3 + 0.2 + 0.3)
        (
            [("o1", "99.50", "0.3"), ("o2", "99.80", "0.3"), ("o3", "99.80", "0.2")],
            ("99.40", "0.6"),
            [("o2", "99.80", "0.3"), ("o3", "99.80", "0.2"), ("o1", "99.50", "0.1")],
        ),
        # two buys at 99.90, each behind the book's 0.4 there: a 0.6 print at the price
        # clears the queue and 0.2 prints beyond it, all to the older one
        (
            [("o1", "99.90", "0.3"), ("o2", "99.90", "0.3")],
            ("99.90", "0.6"),
            [("o1", "99.90", "0.2")],
        ),
        # a buy at 99.95 (nothing ahead) takes 0.3 of a 0.6 print at 99.90 first; the
        # 0.3 that reaches 99.90 does not clear its 0.4 queue: nothing for the 99.90 buy
        (
            [("o1", "99.90", "0.3"), ("o2", "99.95", "0.3")],
            ("99.90", "0.6"),
            [("o2", "99.95", "0.3")],
        ),
    ],
)
def test_one_trade_is_shared_in_price_time_priority(
    paper: Any, orders: list[tuple[str, str, str]], trade: tuple[str, str],
    expected: list[tuple[str, str, str]],
) -> None:  # fmt: skip
    paper.open(USDT="1000")
    paper.default_depth()
    for client_id, price, qty in orders:
        paper.place(client_order_id=client_id, side="BUY", type="limit", price=price,
                    quantity=qty)  # fmt: skip
    got = paper.trade(*trade, t=1 * S)
    assert fills(got) == [(c, D(p), D(q)) for c, p, q in expected]


def test_the_younger_order_at_a_price_fills_only_after_the_older(paper: Any) -> None:
    paper.open(USDT="1000")
    paper.default_depth()
    paper.place(client_order_id="o1", side="BUY", type="limit", price="99.90", quantity="0.3")
    paper.place(client_order_id="o2", side="BUY", type="limit", price="99.90", quantity="0.3")
    # 0.6 at 99.90: 0.4 clears the queue ahead of both, 0.2 goes to o1 (0.1 left)
    assert fills(paper.trade("99.90", "0.6", t=1 * S)) == [("o1", D("99.90"), D("0.2"))]
    # 0.3 more: o1's last 0.1, then 0.2 for o2
    assert fills(paper.trade("99.90", "0.3", t=2 * S)) == [
        ("o1", D("99.90"), D("0.1")), ("o2", D("99.90"), D("0.2")),
    ]  # fmt: skip
    # a print through the price: o2's last 0.1 out of 0.5
    assert fills(paper.trade("99.80", "0.5", t=3 * S)) == [("o2", D("99.90"), D("0.1"))]


# ---- accounts are independent ---------------------------------------------------------


def test_another_account_is_its_own_simulation(paper: Any) -> None:
    paper.open(USDT="1000", account="a1")
    paper.open(USDT="1000", account="a2")
    paper.default_depth()
    # both take the full 0.4 of the same best ask: neither sees the other's take
    assert takes(paper.place(account="a1", side="BUY", type="market", quantity="0.4")) == [
        (D("100.00"), D("0.4"), D("0"))
    ]
    assert takes(paper.place(account="a2", side="BUY", type="market", quantity="0.4")) == [
        (D("100.00"), D("0.4"), D("0"))
    ]
    # each account's resting buy gets its own share of one 0.6 print through it
    paper.place(account="a1", client_order_id="x", side="BUY", type="limit", price="99.50",
                quantity="0.5")  # fmt: skip
    paper.place(account="a2", client_order_id="y", side="BUY", type="limit", price="99.50",
                quantity="0.5")  # fmt: skip
    assert fills(paper.trade("99.40", "0.6", t=1 * S)) == [
        ("x", D("99.50"), D("0.5")), ("y", D("99.50"), D("0.5")),
    ]  # fmt: skip


# ---- the pure parts -------------------------------------------------------------------


def test_a_sweep_keeps_the_younger_orders_at_the_price_behind_an_unfilled_older_one(
    paper: Any,
) -> None:
    # the older order waited behind 0.5 (the queue was longer then), the younger behind
    # 0.1: 0.4 prints beyond the younger's queue, yet the older still waits, so nothing
    sweep = Sweep.of("SELL", paper.trade_record("101", "0.6", t=0))
    older, younger = QueuePosition(D("0.5")), QueuePosition(D("0.1"))
    assert sweep.reach(D("101"), older) == D("0.1")
    sweep.took(D("0.1"), still_open=True)
    assert sweep.reach(D("101"), younger) == 0
    assert (older.ahead, younger.ahead, sweep.left) == (0, 0, D("0.5"))


def test_priority_is_best_price_then_oldest() -> None:
    buys = sorted([(D("99"), 3), (D("100"), 5), (D("100"), 4)],
                  key=lambda o: priority("BUY", *o))  # fmt: skip
    sells = sorted([(D("101"), 3), (D("100"), 5), (D("100"), 4)],
                   key=lambda o: priority("SELL", *o))  # fmt: skip
    assert buys == [(D("100"), 4), (D("100"), 5), (D("99"), 3)]
    assert sells == [(D("100"), 4), (D("100"), 5), (D("101"), 3)]


def test_taken_counts_only_while_its_book_part_is_current() -> None:
    book = Book()
    book.on_depth(BookDepth(
        exchange="binance", market="spot", symbol="BTCUSDT", update_id=5,
        bids=[(D("99"), D("1"))], asks=[(D("101"), D("1")), (D("102"), D("4"))], received_us=0,
    ), 1 * S)  # fmt: skip
    taken = Taken()
    taken.record(book, "BUY", [(D("101"), D("1")), (D("102"), D("1.5"))])
    assert book.levels_left("BUY", taken) == [(D("101"), D("0")), (D("102"), D("2.5"))]
    assert book.levels_left("SELL", taken) == [(D("99"), D("1"))]
    # a newer quote gives the top (ask 100.5): the depth behind it keeps its takes
    book.on_quote(Quote(
        exchange="binance", market="spot", symbol="BTCUSDT", update_id=9, bid_price=D("99"),
        bid_qty=D("1"), ask_price=D("100.5"), ask_qty=D("2"), received_us=0,
    ), 2 * S)  # fmt: skip
    assert book.levels_left("BUY", taken) == [
        (D("100.5"), D("2")), (D("101"), D("0")), (D("102"), D("2.5")),
    ]  # fmt: skip
    # recording a take from the quote forgets nothing still current …
    taken.record(book, "BUY", [(D("100.5"), D("2"))])
    assert len(taken.levels) == 3
    # … and a newer depth makes the depth's takes stale: the next record drops them
    book.on_depth(BookDepth(
        exchange="binance", market="spot", symbol="BTCUSDT", update_id=6,
        bids=[(D("99"), D("1"))], asks=[(D("101"), D("1")), (D("102"), D("4"))], received_us=0,
    ), 3 * S)  # fmt: skip
    assert book.levels_left("BUY", taken) == [(D("101"), D("1")), (D("102"), D("4"))]
    taken.record(book, "BUY", [(D("101"), D("0.5"))])
    # (the take from quote 9 stays: that quote is still the book's, though not on top)
    assert taken.levels == {
        ("BUY", D("100.5")): (("quote", 9), D("2")), ("BUY", D("101")): (("depth", 6), D("0.5")),
    }  # fmt: skip
