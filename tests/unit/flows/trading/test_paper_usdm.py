"""The paper engine on USDⓈ-M, against hand-worked numbers: stops on mark vs last,
funding once at the funding time, reduce-only clipping, liquidation, margin.

Default USDⓈ-M fees: 0.02 % maker, 0.05 % taker; leverage 20 unless set; Binance's
BTCUSDT tiers (first tier: maintenance rate 0.4 %). Times are seconds after T0 (`S`).
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from flows.trading.engine import PaperEngine
from schemas.trading import (
    AccountEvent,
    ClosePosition,
    CommandRefused,
    FundingPaid,
    Liquidated,
    OrderFilled,
    OrderRejected,
    SetLeverage,
)

S = 1_000_000
T0 = 1_700_000_000_000_000


def kinds(events: list[AccountEvent]) -> list[str]:
    return [str(type(e).__struct_config__.tag) for e in events]


def market(paper: Any, bid: str = "99.9", ask: str = "100.0", t: int = 0) -> None:
    """A fresh USDⓈ-M top of book with 5 BTC each side."""
    paper.quote(bid, ask, t=t, market="usdm", bid_qty="5", ask_qty="5")


def long_one(paper: Any) -> None:
    """A 10,000 USDT account long 1 BTC @ 100.0 (taker fee 0.05)."""
    paper.open("usdm", USDT="10000")
    market(paper)
    paper.mark("100.0", t=0)
    paper.place("usdm", side="BUY", type="market", quantity="1")


def position(paper: Any) -> Any:
    return paper.engine.account("a1").positions["BTCUSDT"]


def test_stop_on_mark_triggers_on_the_mark_and_stop_on_last_on_a_trade(paper: Any) -> None:
    paper.open("usdm", USDT="10000")
    market(paper, "100.0", "100.1")
    paper.trade("100.0", "1", t=0, market="usdm")
    paper.mark("100.0", t=0)
    on_mark = paper.place("usdm", client_order_id="on-mark", side="SELL", type="stop_market",
                          stop_price="95.0", quantity="1", trigger="mark")  # fmt: skip
    # the first order of a symbol records the leverage it starts at (default 20×)
    assert kinds(on_mark) == ["leverage", "accepted"]
    on_last = paper.place("usdm", client_order_id="on-last", side="SELL", type="stop_market",
                          stop_price="95.0", quantity="1")  # fmt: skip
    assert kinds(on_last) == ["accepted"]
    market(paper, "94.8", "94.9", t=1 * S)
    # the mark falls to 94.9 ≤ 95: only the mark stop fires, selling 1 @ the bid 94.8
    fired = paper.mark("94.9", t=1 * S)
    assert kinds(fired) == ["updated", "fill"]
    assert fired[0].order.request.client_order_id == "on-mark" and fired[0].order.triggered
    fill = fired[1].fill
    # fee 94.8 × 1 × 0.05 % = 0.0474
    assert (fill.price, fill.qty, fill.fee, fill.liquidity) == (D("94.8"), D("1"), D("0.0474"),
                                                                "taker")  # fmt: skip
    # a trade at 94.9 ≤ 95: now the last-price stop fires
    traded = paper.trade("94.9", "1", t=2 * S, market="usdm")
    assert kinds(traded) == ["updated", "fill"]
    assert traded[1].fill.client_order_id == "on-last"
    assert position(paper).qty == D("-2")


def test_funding_is_paid_once_at_the_funding_time_at_the_last_mark_before_it(paper: Any) -> None:
    long_one(paper)
    assert paper.mark("100.0", t=1 * S, rate="0.0001", next_funding=10 * S) == []
    # the last mark before T = 10 s: rate 0.0002 at mark 101.0
    assert paper.mark("101.0", t=5 * S, rate="0.0002", next_funding=10 * S) == []
    # the first mark at or past T (it still announces T, as a lagging stream may) pays
    paid = paper.mark("102.0", t=10 * S, rate="0.0003", next_funding=10 * S)
    assert kinds(paid) == ["funding"]
    event = paid[0]
    assert isinstance(event, FundingPaid)
    # a long pays: −1 × 101.0 × 0.0002 = −0.0202
    assert (event.funding_time_us, event.rate, event.mark_price, event.position_qty) == (
        T0 + 10 * S, D("0.0002"), D("101.0"), D("1"),
    )  # fmt: skip
    assert event.entry.amount == D("-0.0202")
    # wallet: 10,000 − 0.05 fee − 0.0202 funding
    assert paper.engine.account("a1").balances["USDT"] == D("9999.9298")
    # the next mark is past T again: T is paid already, nothing more
    assert paper.mark("102.0", t=11 * S, rate="0.0003", next_funding=20 * S) == []
    assert (position(paper).funding, position(paper).last_funding_us) == (D("-0.0202"), T0 + 10 * S)


@pytest.mark.parametrize(
    ("side", "qty", "outcome", "left"),
    [
        # long 1, reduce-only sell 3: clipped to 1, closes, never flips short
        ("SELL", "3", "1", "0"),
        # long 1, reduce-only sell 0.4: 0.6 left
        ("SELL", "0.4", "0.4", "0.6"),
        # a reduce-only buy would add to the long: rejected
        ("BUY", "1", None, "1"),
    ],
)
def test_reduce_only_never_flips(
    paper: Any, side: str, qty: str, outcome: str | None, left: str
) -> None:
    long_one(paper)
    events = paper.place("usdm", side=side, type="market", quantity=qty, reduce_only=True)
    if outcome is None:
        (event,) = events
        assert isinstance(event, OrderRejected)
        assert (event.order.reason, event.order.code) == ("ReduceOnly Order is rejected.", -2022)
    else:
        assert events[0].order.quantity == D(outcome)
        (fill,) = [e.fill for e in events if isinstance(e, OrderFilled)]
        # closed at the bid 99.9 from an entry of 100.0: (99.9 − 100.0) × qty
        assert (fill.qty, fill.realized_pnl) == (D(outcome), D("-0.1") * D(outcome))
    assert position(paper).qty == D(left)


def test_close_position_sends_a_reduce_only_market_order(paper: Any) -> None:
    long_one(paper)
    command = ClosePosition(command_id="k1", account_id="a1", sent_us=0)
    events = paper.command(command)
    assert kinds(events) == ["accepted", "fill"]
    order = events[-1].order
    assert order.request.client_order_id == "close-k1-BTCUSDT"
    assert order.request.reduce_only and order.status == "filled"
    assert position(paper).qty == 0
    again = paper.command(ClosePosition(command_id="k2", account_id="a1", sent_us=0))
    assert isinstance(again[0], CommandRefused) and again[0].code == -2022


def test_isolated_liquidation_closes_at_the_bankruptcy_price(paper: Any) -> None:
    paper.open("usdm", USDT="10000")
    lev = SetLeverage(command_id="l1", account_id="a1", sent_us=0, symbol="BTCUSDT", leverage=20,
                      margin_mode="isolated")  # fmt: skip
    assert kinds(paper.command(lev)) == ["leverage"]
    market(paper)
    paper.mark("100.0", t=0)
    paper.place("usdm", side="BUY", type="market", quantity="1")
    # isolated margin: 100 / 20 = 5, less the 0.05 fee booked against it = 4.95
    assert position(paper).isolated_margin == D("4.95")
    # mark 95.5: 4.95 − 4.5 = 0.45 ≥ maintenance 95.5 × 0.4 % = 0.382 → kept
    assert paper.mark("95.5", t=1 * S) == []
    # mark 95.4: 4.95 − 4.6 = 0.35 < 0.3816 → liquidated
    events = paper.mark("95.4", t=2 * S)
    assert kinds(events) == ["liquidation", "fill"]
    notice, filled = events
    assert isinstance(notice, Liquidated)
    assert (notice.position_qty, notice.mark_price, notice.margin_balance,
            notice.maintenance_margin) == (D("1"), D("95.4"), D("0.35"), D("0.3816"))  # fmt: skip
    fill = filled.fill
    # bankruptcy: 4.95 + (P − 100) = 0 → P = 95.05; realised −4.95; no fee on top
    assert (fill.liquidation, fill.side, fill.price, fill.qty, fill.realized_pnl, fill.fee) == (
        True, "SELL", D("95.05"), D("1"), D("-4.95"), D("0"),
    )  # fmt: skip
    assert position(paper).qty == 0
    # 10,000 − 0.05 − 4.95: the margin behind the position and the opening fee, no more
    assert paper.engine.account("a1").balances["USDT"] == D("9995.00")


def test_cross_liquidation_leaves_the_wallet_at_zero_not_below(paper: Any) -> None:
    paper.open("usdm", USDT="10")
    market(paper)
    paper.mark("100.0", t=0)
    paper.place("usdm", side="BUY", type="market", quantity="1")  # 100 / 20 = 5 ≤ 10
    # cross margin balance 9.95 + (m − 100) < 0.4 % × m  ⇔  m < 90.4116…
    assert paper.mark("90.5", t=1 * S) == []
    events = paper.mark("90.4", t=2 * S)
    assert kinds(events) == ["liquidation", "fill"]
    # bankruptcy: 9.95 + (P − 100) = 0 → P = 90.05, realising −9.95
    fill = events[1].fill
    assert (fill.price, fill.realized_pnl, fill.fee) == (D("90.05"), D("-9.95"), D("0"))
    assert paper.engine.account("a1").balances["USDT"] == 0


@pytest.mark.parametrize(
    ("fields", "reason", "code"),
    [
        # 0.001 × 100 = 0.1 USDT < 5
        ({"type": "limit", "price": "100.0", "quantity": "0.001"},
         "Order's notional must be no smaller than 5 (unless you choose reduce only).", -4164),
        # 200 × 100 / 20 = 1,000 USDT of margin > 100 USDT
        ({"type": "limit", "price": "100.0", "quantity": "200"}, "Margin is insufficient.", -2019),
        ({"type": "limit", "time_in_force": "GTX", "price": "100.0", "quantity": "1"},
         "Due to the order could not be executed as maker, the Post Only order will be rejected.",
         -5022),
        # a sell stop at 100.5 with the mark at 100.0 below it is already reached
        ({"side": "SELL", "type": "stop_market", "stop_price": "100.5", "quantity": "1",
          "trigger": "mark"}, "Order would immediately trigger.", -2021),
    ],
)  # fmt: skip
def test_usdm_rejections_in_binance_words(
    paper: Any, fields: dict[str, str], reason: str, code: int
) -> None:
    paper.open("usdm", USDT="100")
    market(paper)
    paper.mark("100.0", t=0)
    (event,) = paper.place("usdm", **{"side": "BUY", **fields})
    assert isinstance(event, OrderRejected)
    assert (event.order.reason, event.order.code) == (reason, code)


def test_the_view_values_positions_at_the_mark(paper: Any) -> None:
    long_one(paper)
    paper.mark("110.0", t=1 * S)
    (view,) = paper.engine.views(changed_only=False)
    (pos,) = view.positions
    # unrealised (110 − 100) × 1 = 10; equity = wallet 9,999.95 + 10
    assert (pos.mark_price, pos.unrealized_pnl) == (D("110.0"), D("10"))
    assert view.equity == D("10009.95")
    assert view.fees == D("0.05")
    # nothing moved: no view on the next call, a new mark: a new view
    assert paper.engine.views() == []
    paper.mark("111.0", t=2 * S)
    assert [v.equity for v in paper.engine.views()] == [D("10010.95")]


def test_a_resting_reduce_only_order_expires_once_nothing_is_left_to_reduce(paper: Any) -> None:
    long_one(paper)
    paper.place("usdm", client_order_id="tp", side="SELL", type="limit", price="105.0",
                quantity="1", reduce_only=True)  # fmt: skip
    paper.command(ClosePosition(command_id="k", account_id="a1", sent_us=0))
    assert position(paper).qty == 0
    # a print through 105.0 would fill it, but there is no long left to reduce
    events = paper.trade("105.5", "2", t=1 * S, market="usdm")
    assert kinds(events) == ["updated"]
    assert (events[0].order.status, events[0].order.reason) == (
        "expired", "ReduceOnly Order is rejected.",
    )  # fmt: skip
    assert position(paper).qty == 0


def test_a_market_order_without_a_book_is_margined_at_the_mark(paper: Any) -> None:
    paper.open("usdm", USDT="100")
    paper.mark("100.0", t=0)
    # no book yet: 30 × 100.0 (the mark) / 20 = 150 USDT of margin > 100
    (event,) = paper.place("usdm", side="BUY", type="market", quantity="30")
    assert (event.order.reason, event.order.code) == ("Margin is insufficient.", -2019)
    # 10 × 100.0 / 20 = 50 fits: it waits for a book
    assert kinds(paper.place("usdm", side="BUY", type="market", quantity="10")) == [
        "leverage", "accepted",
    ]  # fmt: skip


def test_a_funding_time_passed_while_the_engine_was_down_is_paid_from_the_stored_mark(
    paper: Any,
) -> None:
    long_one(paper)
    paper.mark("101.0", t=5 * S, rate="0.0002", next_funding=10 * S)
    # a restart: the log alone brings the position back, but not the funding time the
    # last mark before the stop announced
    restarted = PaperEngine(paper.settings, paper.symbols)
    restarted.restore(paper.events)
    unannounced = PaperEngine(paper.settings, paper.symbols)
    unannounced.restore(paper.events)
    # the stored mark (marks_1s) gives it back; a later announcement does not replace it
    restarted.announce(paper.mark_record("101.0", t=5 * S, rate="0.0002", next_funding=10 * S))
    restarted.announce(paper.mark_record("99.0", t=4 * S, rate="0.0009", next_funding=99 * S))
    # the first live mark after the restart is past T = 10 s
    after = paper.mark_record("103.0", t=12 * S, rate="0.0003", next_funding=20 * S)
    paid = restarted.mark(after)
    assert kinds(paid) == ["funding"]
    event = paid[0]
    assert isinstance(event, FundingPaid)
    # a long pays at the stored mark's rate and price: −1 × 101.0 × 0.0002 = −0.0202
    assert (event.funding_time_us, event.entry.amount) == (T0 + 10 * S, D("-0.0202"))
    assert unannounced.mark(after) == []
