"""The engine's shortcuts give the answers of the long way: one account's view on its own
(`PaperEngine.view`, kept while nothing it depends on moved), and trades that skip a
symbol's resting orders when they reach none of them."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import msgspec

from schemas.trading import AmendOrder, OrderFilled


def test_one_account_is_valued_alone_and_views_then_skips_it_until_it_changes(
    paper: Any,
) -> None:
    paper.open("usdm", USDT="10000")
    paper.quote("99.9", "100.0", t=0, market="usdm", bid_qty="5", ask_qty="5")
    paper.mark("100.0", t=0)
    paper.place("usdm", side="BUY", type="market", quantity="1")
    paper.mark("110.0", t=1_000_000)
    view = paper.engine.view("a1")
    # unrealised (110 − 100) × 1 = 10 on a wallet of 10,000 − 0.05 taker fee
    assert view.equity == D("10009.95") and view.positions[0].unrealized_pnl == D("10")
    assert paper.engine.views() == []  # just valued: nothing changed since
    paper.mark("111.0", t=2_000_000)
    assert [v.equity for v in paper.engine.views()] == [D("10010.95")]
    assert paper.engine.view("nobody") is None


def test_a_view_follows_events_and_marks_and_only_its_time_moves_otherwise(paper: Any) -> None:
    paper.open("usdm", USDT="10000")
    paper.quote("99.9", "100.0", t=0, market="usdm", bid_qty="5", ask_qty="5")
    paper.mark("100.0", t=0)
    paper.place("usdm", side="BUY", type="market", quantity="1")
    first = paper.engine.view("a1")
    # a quote moves market time, not what a USDⓈ-M account is valued at
    paper.quote("104.9", "105.0", t=3_000_000, market="usdm", bid_qty="5", ask_qty="5")
    later = paper.engine.view("a1")
    assert later.time_us == first.time_us + 3_000_000
    assert msgspec.structs.replace(later, time_us=first.time_us) == first
    # an event (a resting order) and a mark each revalue it
    paper.place("usdm", side="SELL", type="limit", quantity="1", price="120.0")
    assert len(paper.engine.view("a1").open_orders) == 1
    paper.mark("90.0", t=4_000_000)
    assert paper.engine.view("a1").unrealized_pnl == D("-10")


def _fills(events: list[Any]) -> list[tuple[D, D]]:
    return [(e.fill.price, e.fill.qty) for e in events if isinstance(e, OrderFilled)]


def test_a_trade_sees_a_limit_moved_into_its_reach_and_a_stop_on_the_last_price(
    paper: Any,
) -> None:
    paper.open(USDT="10000", BTC="1")
    paper.default_depth()
    paper.place(client_order_id="b", side="BUY", type="limit", price="98.00", quantity="0.1")
    paper.place(client_order_id="s", side="SELL", type="limit", price="103.00", quantity="0.1")
    assert _fills(paper.trade("99.50", "1", t=1)) == []  # between the two limits
    move = AmendOrder(command_id="m1", account_id="a1", sent_us=0, client_order_id="b",
                      price=D("99.80"))  # fmt: skip
    paper.command(move)
    # 99.50 is now through the buy's new price: it fills at its limit
    assert _fills(paper.trade("99.50", "1", t=2)) == [(D("99.80"), D("0.1"))]
    paper.place(client_order_id="st", side="SELL", type="stop_market", stop_price="99.00",
                quantity="0.1")  # fmt: skip
    # a print between every limit still reaches the stop, which sells at the bid
    fired = paper.trade("98.90", "1", t=3)
    assert type(fired[0]).__name__ == "OrderUpdated" and _fills(fired)
