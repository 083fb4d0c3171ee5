"""The paper engine's two promises about its log: a replay of the events rebuilds every
account to the cent, and the same inputs give the same event bytes."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from flows.trading import ledger
from flows.trading.engine import PaperEngine
from flows.trading.ledger import LedgerError
from schemas.trading import (
    AmendOrder,
    CancelOrder,
    ResetAccount,
    SetLeverage,
    encode,
    event_decoder,
)

S = 1_000_000


def scenario(paper: Any) -> None:
    """Spot and USDⓈ-M accounts through every kind of event: walks (a second one in the
    same book, after what the first took), partial fills (two orders sharing a trade), an
    amend, a cancel, a reset, funding, a mark stop and a liquidation."""
    paper.open("spot", account="s1", USDT="10000", BTC="1")
    paper.open("spot", account="s2", USDT="500")
    paper.open("usdm", account="f1", USDT="10000")
    paper.open("usdm", account="f2", USDT="1000")
    paper.default_depth()
    paper.quote("99.9", "100.0", t=0, market="usdm", bid_qty="5", ask_qty="5")
    paper.mark("100.0", t=0, rate="0.0001", next_funding=10 * S)
    paper.place(account="s1", side="BUY", type="market", quantity="1")
    paper.place(account="s1", side="BUY", type="market", quantity="0.1")
    paper.place(account="s1", client_order_id="b", side="BUY", type="limit", price="99.00",
                quantity="1")  # fmt: skip
    paper.place(account="s1", client_order_id="b2", side="BUY", type="limit", price="99.00",
                quantity="0.5")  # fmt: skip
    paper.place(account="s1", client_order_id="s", side="SELL", type="limit", price="101.00",
                quantity="0.5")  # fmt: skip
    paper.place(account="s2", side="BUY", type="limit", price="98.00", quantity="3")
    paper.command(ResetAccount(command_id="r1", account_id="s2", sent_us=0,
                               balances={"USDT": D("1000")}))  # fmt: skip
    paper.command(SetLeverage(command_id="l1", account_id="f2", sent_us=0, symbol="BTCUSDT",
                              leverage=20, margin_mode="isolated"))  # fmt: skip
    paper.place("usdm", account="f2", side="BUY", type="market", quantity="1")
    paper.place("usdm", account="f1", side="BUY", type="market", quantity="2")
    paper.place("usdm", account="f1", side="SELL", type="limit", price="101.0", quantity="1")
    paper.place("usdm", account="f1", side="SELL", type="stop_market", stop_price="95.0",
                quantity="1", trigger="mark", reduce_only=True)  # fmt: skip
    paper.trade("99.00", "2.3", t=1 * S)
    paper.trade("98.50", "0.2", t=2 * S)
    paper.command(AmendOrder(command_id="m1", account_id="s1", sent_us=0, client_order_id="s",
                             price=D("100.90")))  # fmt: skip
    paper.command(CancelOrder(command_id="x1", account_id="s1", sent_us=0, client_order_id="b"))
    paper.mark("101.0", t=5 * S, rate="0.0002", next_funding=10 * S)
    paper.mark("102.0", t=10 * S, rate="0.0003", next_funding=20 * S)
    paper.trade("101.5", "3", t=10 * S, market="usdm")
    paper.quote("94.8", "94.9", t=11 * S, market="usdm", bid_qty="5", ask_qty="5")
    paper.mark("94.9", t=11 * S, rate="0.0003", next_funding=20 * S)


def tail(paper: Any, engine: PaperEngine) -> list[Any]:
    """The same last market data for an engine: nothing in it fills or funds."""
    out = []
    out += engine.trade(paper.trade_record("100.5", "1", 20 * S))
    out += engine.mark(paper.mark_record("95.0", 20 * S))
    return out


def test_restoring_every_event_rebuilds_every_account_to_the_cent(paper: Any) -> None:
    scenario(paper)
    kinds = {type(e).__name__ for e in paper.events}
    # the scenario exercised every event kind that moves an account
    assert {"AccountOpened", "AccountReset", "OrderAccepted", "OrderFilled", "OrderUpdated",
            "LeverageChanged", "FundingPaid", "Liquidated"} <= kinds  # fmt: skip
    wire = [encode(e) for e in paper.events]
    decoder = event_decoder()
    restored = PaperEngine(paper.settings, paper.symbols)
    restored.restore(decoder.decode(b) for b in wire)
    for account_id in ("s1", "s2", "f1", "f2"):
        assert restored.account(account_id) == paper.engine.account(account_id)
    assert tail(paper, paper.engine) == [] and tail(paper, restored) == []
    assert restored.views(changed_only=False) == paper.engine.views(changed_only=False)
    assert restored.watched() == paper.engine.watched()
    # a second restore of the same log changes nothing
    restored.restore(decoder.decode(b) for b in wire)
    assert restored.account("f1") == paper.engine.account("f1")


def test_the_same_inputs_give_the_same_event_bytes(make_paper: Any) -> None:
    first, second = make_paper(), make_paper()
    scenario(first)
    scenario(second)
    assert [encode(e) for e in first.events] == [encode(e) for e in second.events]
    assert len(first.events) > 30
    assert [encode(v) for v in first.engine.views(changed_only=False)] == [
        encode(v) for v in second.engine.views(changed_only=False)
    ]


def test_the_fold_refuses_a_gap_or_a_foreign_event(paper: Any) -> None:
    scenario(paper)
    s1 = [e for e in paper.events if e.account_id == "s1"]
    fresh = PaperEngine(paper.settings, paper.symbols)
    fresh.restore(s1[:3])
    state = fresh.account("s1")
    assert state is not None and state.seq == 3
    with pytest.raises(LedgerError, match="seq 5 after 3"):
        ledger.apply(state, s1[4])
    with pytest.raises(LedgerError, match="of s2 applied to s1"):
        ledger.apply(state, next(e for e in paper.events if e.account_id == "s2"))
    # restore skips what is already applied and what belongs to no opened account
    fresh.restore(s1[:3])
    assert fresh.account("s1").seq == 3  # type: ignore[union-attr]
