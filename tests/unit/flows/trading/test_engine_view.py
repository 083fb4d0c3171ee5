"""One account's view on its own (`PaperEngine.view`), as the engine process values accounts
in turn instead of all at once."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any


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
