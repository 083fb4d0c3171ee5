"""One account's view on its own (`PaperEngine.view`), as the engine process values accounts
in turn instead of all at once."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import msgspec


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
