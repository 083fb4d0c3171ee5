"""The paper engine on spot, against hand-worked numbers: taking the book, resting,
queues, time in force, fees, filters, stale books, idempotency.

Default spot fees are 0.1 % maker and taker; times are seconds after T0 (`S`). The book
is `Paper.default_depth`: asks 100.00 × 0.5, 100.10 × 0.3, 100.50 × 1; bids 99.90 × 0.4,
99.00 × 2, 98.00 × 4.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from flows.trading.execution import IOC_EXPIRED
from flows.trading.rules import NO_FRESH_BOOK
from schemas.trading import (
    AccountEvent,
    AmendOrder,
    CancelAll,
    CancelOrder,
    CommandRefused,
    Fill,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderRepeated,
    OrderUpdated,
    ResetAccount,
)

S = 1_000_000


def kinds(events: list[AccountEvent]) -> list[str]:
    return [str(type(e).__struct_config__.tag) for e in events]


def fills(events: list[AccountEvent]) -> list[Fill]:
    return [e.fill for e in events if isinstance(e, OrderFilled)]


def booked(paper: Any, account: str = "a1") -> dict[str, D]:
    state = paper.engine.account(account)
    return {asset: amount for asset, amount in state.balances.items() if amount}


def test_market_order_walks_three_levels(paper: Any) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    events = paper.place(side="BUY", type="market", quantity="1")
    assert kinds(events) == ["accepted", "fill", "fill", "fill"]
    # 0.5 @ 100.00 (top, slip 0), 0.3 @ 100.10 (slip 0.10), 0.2 @ 100.50 (slip 0.50);
    # each fee 0.1 % of the BTC received
    assert [(f.price, f.qty, f.reference_price, f.slippage, f.fee, f.fee_asset, f.liquidity)
            for f in fills(events)] == [
        (D("100.00"), D("0.5"), D("100.00"), D("0"), D("0.0005"), "BTC", "taker"),
        (D("100.10"), D("0.3"), D("100.00"), D("0.10"), D("0.0003"), "BTC", "taker"),
        (D("100.50"), D("0.2"), D("100.00"), D("0.50"), D("0.0002"), "BTC", "taker"),
    ]  # fmt: skip
    final = events[-1].order
    assert final.status == "filled"
    assert final.avg_price == D("100.13")  # (50 + 30.03 + 20.10) / 1
    # USDT 10000 − 100.13; BTC 1 − 0.001 fee
    assert booked(paper) == {"USDT": D("9899.87"), "BTC": D("0.999")}
    (view,) = paper.engine.views()
    # fees in USDT: 0.0005 × 100.00 + 0.0003 × 100.10 + 0.0002 × 100.50 = 0.10013;
    # equity: 9,899.87 + 0.999 BTC at the mid (99.90 + 100.00) / 2 = 99.95 → 9,999.72005
    assert (view.fees, view.equity) == (D("0.10013"), D("9999.72005"))


@pytest.mark.parametrize(
    ("trades", "filled"),
    [
        # prints above a buy at 99.00 never reach it
        ([("99.01", "5")], []),
        # 2 bid at 99.00 ahead of it: a 2 print at the price only clears the queue
        ([("99.00", "2")], []),
        # … and what prints beyond the queue fills it: 2.3 − 2 = 0.3
        ([("99.00", "2"), ("99.00", "0.3")], ["0.3"]),
        # a print through the price fills up to its size at once, queue or not
        ([("98.99", "0.4")], ["0.4"]),
        # partial fill, then the rest (1 − 0.4 = 0.6) from a bigger print through
        ([("98.99", "0.4"), ("98.50", "5")], ["0.4", "0.6"]),
    ],
)
def test_resting_limit_fills_only_from_trades(
    paper: Any, trades: list[tuple[str, str]], filled: list[str]
) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    placed = paper.place(side="BUY", type="limit", price="99.00", quantity="1")
    assert kinds(placed) == ["accepted"]
    got: list[Any] = []
    for i, (price, qty) in enumerate(trades, start=1):
        got += paper.trade(price, qty, t=i * S)
    assert [f.qty for f in fills(got)] == [D(q) for q in filled]
    assert all(f.price == D("99.00") and f.liquidity == "maker" for f in fills(got))
    if sum(D(q) for q in filled) == 1:
        assert got[-1].order.status == "filled"
        # paid 99 USDT, got 1 BTC less 0.1 % fee, the lock is gone
        assert booked(paper) == {"USDT": D("9901.00"), "BTC": D("0.999")}


def test_ioc_takes_what_it_can_and_expires_the_rest(paper: Any) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    events = paper.place(side="BUY", type="limit", time_in_force="IOC", price="100.05",
                         quantity="1")  # fmt: skip
    # only the 0.5 @ 100.00 is within 100.05; the other 0.5 expires
    assert kinds(events) == ["accepted", "fill", "updated"]
    assert fills(events)[0].qty == D("0.5")
    assert (events[-1].order.status, events[-1].order.reason) == ("expired", IOC_EXPIRED)
    assert paper.engine.account("a1").orders == {}


@pytest.mark.parametrize(
    ("qty", "expected"),
    [
        # 0.5 + 0.3 = 0.8 is all there is up to 100.10: 1 cannot fill in full
        ("1", ["rejected"]),
        # 0.8 can: both levels, filled
        ("0.8", ["accepted", "fill", "fill"]),
    ],
)
def test_fok_is_all_or_nothing(paper: Any, qty: str, expected: list[str]) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    events = paper.place(side="BUY", type="limit", time_in_force="FOK", price="100.10",
                         quantity=qty)  # fmt: skip
    assert kinds(events) == expected
    order = events[-1].order
    if expected == ["rejected"]:
        assert (order.status, order.code) == ("expired", -5021)
        assert order.reason == (
            "Due to the order could not be filled immediately, the FOK order has been rejected."
        )
        assert booked(paper) == {"USDT": D("10000")}
    else:
        assert order.status == "filled"


def test_post_only_that_would_cross_is_rejected_and_one_that_would_not_rests(paper: Any) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    crossing = paper.place(side="BUY", type="limit", time_in_force="GTX", price="100.00",
                           quantity="0.1")  # fmt: skip
    assert isinstance(crossing[0], OrderRejected)
    assert (crossing[0].order.reason, crossing[0].order.code) == (
        "Order would immediately match and take.", -2010,
    )  # fmt: skip
    resting = paper.place(side="BUY", type="limit", time_in_force="GTX", price="99.95",
                          quantity="0.1")  # fmt: skip
    assert kinds(resting) == ["accepted"]


@pytest.mark.parametrize(
    ("side", "order", "trade", "fee", "balances"),
    [
        # taker buy 0.5 @ 100.00: fee 0.5 × 0.1 % = 0.0005 BTC (the asset received)
        ("BUY", {"type": "market", "quantity": "0.5"}, None, ("0.0005", "BTC"),
         {"USDT": "9950.000", "BTC": "1.4995"}),
        # taker sell 0.4 @ 99.90: 39.96 USDT received, fee 0.1 % = 0.03996 USDT
        ("SELL", {"type": "market", "quantity": "0.4"}, None, ("0.03996", "USDT"),
         {"USDT": "10039.92004", "BTC": "0.6"}),
        # maker buy 0.5 @ 99.00 (a print through): maker 0.08 % = 0.0004 BTC
        ("BUY", {"type": "limit", "price": "99.00", "quantity": "0.5"}, "98.50",
         ("0.0004", "BTC"), {"USDT": "9950.500", "BTC": "1.4996"}),
        # maker sell 0.5 @ 101.00: 50.5 USDT, maker 0.08 % = 0.0404 USDT
        ("SELL", {"type": "limit", "price": "101.00", "quantity": "0.5"}, "101.50",
         ("0.0404", "USDT"), {"USDT": "10050.4596", "BTC": "0.5"}),
    ],
)  # fmt: skip
def test_fee_on_each_side(
    make_paper: Any, side: str, order: dict[str, str], trade: str | None,
    fee: tuple[str, str], balances: dict[str, str],
) -> None:  # fmt: skip
    paper = make_paper(spot_fees={"maker": "0.0008", "taker": "0.001"})
    paper.open(USDT="10000", BTC="1")
    paper.default_depth()
    events = paper.place(side=side, **order)
    if trade is not None:
        events += paper.trade(trade, "10", t=S)
    (fill,) = fills(events)
    assert (fill.fee, fill.fee_asset) == (D(fee[0]), fee[1])
    assert booked(paper) == {k: D(v) for k, v in balances.items()}


@pytest.mark.parametrize(
    ("fields", "last", "reason", "code"),
    [
        ({"symbol": "ETHUSDT", "price": "100", "quantity": "1"}, None, "Invalid symbol.", -1121),
        ({"price": "100.005", "quantity": "1"}, None, "Filter failure: PRICE_FILTER", -1013),
        ({"price": "100", "quantity": "0.000015"}, None, "Filter failure: LOT_SIZE", -1013),
        ({"price": "100", "quantity": "0.000001"}, None, "Filter failure: LOT_SIZE", -1013),
        ({"price": "1", "quantity": "9001"}, None, "Filter failure: LOT_SIZE", -1013),
        ({"type": "market", "quantity": "101"}, None, "Filter failure: MARKET_LOT_SIZE", -1013),
        # 0.04 × 100 = 4 < 5
        ({"price": "100", "quantity": "0.04"}, None, "Filter failure: NOTIONAL", -1013),
        # 200 × 100 = 20,000 > 10,000 USDT
        ({"price": "100", "quantity": "200"}, None,
         "Account has insufficient balance for requested action.", -2010),
        # a buy stop at 99 with the last price 99.50 above it is already reached
        ({"type": "stop_market", "stop_price": "99", "quantity": "1"}, "99.50",
         "Stop price would trigger immediately.", -2010),
    ],
)  # fmt: skip
def test_rejections_in_binance_words(
    paper: Any, fields: dict[str, str], last: str | None, reason: str, code: int
) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    if last is not None:
        paper.trade(last, "1", t=0)
    (event,) = paper.place(**{"side": "BUY", "type": "limit", **fields})
    assert isinstance(event, OrderRejected)
    assert (event.order.status, event.order.reason, event.order.code) == ("rejected", reason, code)
    assert event.order.order_id == 1
    assert paper.engine.account("a1").next_order_id == 2


def test_a_market_order_waits_for_a_fresh_book_and_never_fills_a_stale_one(paper: Any) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    paper.trade("100", "1", t=10 * S)  # market time 10 s: the book is 10 s old (limit 3 s)
    placed = paper.place(side="BUY", type="market", quantity="0.1")
    assert kinds(placed) == ["accepted"]
    assert paper.engine.watched() == {("binance", "spot"): ["BTCUSDT"]}
    # a fresh quote at 12 s (within the 5 s wait): it fills at that quote's ask
    filled = paper.quote("100.20", "100.30", t=12 * S, ask_qty="1")
    assert [(f.price, f.qty) for f in fills(filled)] == [(D("100.30"), D("0.1"))]

    paper.trade("100", "1", t=30 * S)
    waiting = paper.place(side="BUY", type="market", quantity="0.1")
    assert kinds(waiting) == ["accepted"]
    # 35.000001 s: waited more than 5 s with no fresh book → expired, no fill
    expired = paper.trade("100", "1", t=35 * S + 1)
    assert kinds(expired) == ["updated"]
    assert (expired[0].order.status, expired[0].order.reason) == ("expired", NO_FRESH_BOOK)
    assert paper.quote("100", "100.1", t=36 * S) == []


def test_a_repeated_client_order_id_places_one_order(paper: Any) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    first = paper.place(client_order_id="mine-1", side="BUY", type="limit", price="99",
                        quantity="1")  # fmt: skip
    again = paper.place(client_order_id="mine-1", side="BUY", type="limit", price="98",
                        quantity="2")  # fmt: skip
    assert isinstance(first[0], OrderAccepted)
    assert isinstance(again[0], OrderRepeated) and len(again) == 1
    assert again[0].order == first[0].order
    assert list(paper.engine.account("a1").orders) == [1]


def test_a_redelivered_command_is_skipped(paper: Any) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    paper.place(side="BUY", type="limit", price="99", quantity="1")
    command = paper.inputs[-1][1]
    assert paper.command(command) == []
    assert paper.engine.account("a1").seq == 2


def test_limit_buy_locks_its_quote_and_cancel_releases_it(paper: Any) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    paper.place(client_order_id="big", side="BUY", type="limit", price="99", quantity="60")
    # 60 × 99 = 5,940 locked, 4,060 free: 50 × 99 = 4,950 does not fit
    (rejected,) = paper.place(side="BUY", type="limit", price="99", quantity="50")
    assert rejected.order.code == -2010
    (view,) = paper.engine.views(changed_only=False)
    assert [(b.asset, b.free, b.locked) for b in view.balances] == [
        ("USDT", D("4060"), D("5940")),
    ]
    canceled = paper.command(CancelOrder(command_id="x1", account_id="a1", sent_us=0,
                                         client_order_id="big"))  # fmt: skip
    assert isinstance(canceled[0], OrderUpdated) and canceled[0].order.status == "canceled"
    (view,) = paper.engine.views(changed_only=False)
    assert [(b.free, b.locked) for b in view.balances] == [(D("10000"), D("0"))]
    unknown = paper.command(CancelOrder(command_id="x2", account_id="a1", sent_us=0,
                                        client_order_id="big"))  # fmt: skip
    assert isinstance(unknown[0], CommandRefused)
    assert (unknown[0].reason, unknown[0].code) == ("Unknown order sent.", -2011)


def test_a_quote_amount_market_order_spends_at_most_that_amount(paper: Any) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    events = paper.place(side="BUY", type="market", quote_quantity="80")
    # 0.5 @ 100.00 = 50; 30 / 100.10 = 0.299700… → 0.29970 (step 0.00001) = 29.999970
    assert [(f.price, f.qty) for f in fills(events)] == [
        (D("100.00"), D("0.5")), (D("100.10"), D("0.29970")),
    ]  # fmt: skip
    order = events[-1].order
    assert (order.status, order.quantity, order.filled_quote) == (
        "filled", D("0.79970"), D("79.999970"),
    )  # fmt: skip
    assert booked(paper)["USDT"] == D("9920.000030")


def test_a_stop_limit_triggers_on_the_last_price_then_rests_as_a_limit(paper: Any) -> None:
    paper.open(USDT="10000", BTC="1")
    paper.default_depth()
    paper.trade("99.95", "1", t=0)
    placed = paper.place(client_order_id="sl", side="SELL", type="stop_limit",
                         stop_price="99.50", price="99.40", quantity="1")  # fmt: skip
    assert kinds(placed) == ["accepted"]
    assert paper.trade("99.60", "1", t=1 * S) == []
    # 99.50 printed: it triggers; a sell limit at 99.40 crosses the bid 99.90 (0.4), the
    # only level at or above 99.40, so it takes that and 0.6 rests at 99.40
    fired = paper.trade("99.50", "1", t=2 * S)
    assert kinds(fired) == ["updated", "fill"]
    assert fired[0].order.triggered
    assert (fired[1].fill.price, fired[1].fill.qty, fired[1].fill.liquidity) == (
        D("99.90"), D("0.4"), "taker",
    )  # fmt: skip
    # a print above 99.40 goes through the resting sell: the rest fills as maker
    rest = paper.trade("99.45", "2", t=3 * S)
    assert [(f.price, f.qty, f.liquidity) for f in fills(rest)] == [(D("99.40"), D("0.6"), "maker")]
    assert rest[-1].order.status == "filled"


def test_cancel_all_and_reset(paper: Any) -> None:
    paper.open(USDT="10000", BTC="1")
    paper.default_depth()
    paper.place(side="BUY", type="limit", price="99", quantity="1")
    paper.place(side="SELL", type="limit", price="101", quantity="0.5")
    canceled = paper.command(CancelAll(command_id="ca", account_id="a1", sent_us=0))
    assert [(k, e.order.status) for k, e in zip(kinds(canceled), canceled, strict=True)] == [
        ("updated", "canceled"), ("updated", "canceled"),
    ]  # fmt: skip
    none_left = paper.command(CancelAll(command_id="ca2", account_id="a1", sent_us=0))
    assert isinstance(none_left[0], CommandRefused) and none_left[0].code == -2011
    paper.place(client_order_id="keep", side="BUY", type="limit", price="99", quantity="1")
    reset = paper.command(ResetAccount(command_id="r", account_id="a1", sent_us=0,
                                       balances={"USDT": D("500")}))  # fmt: skip
    # the open order is canceled with its own event, then the balances are set:
    # USDT 10,000 → 500 (−9,500), BTC 1 → 0 (−1)
    assert kinds(reset) == ["updated", "reset"]
    assert [(e.asset, e.amount, e.balance_after) for e in reset[-1].entries] == [
        ("BTC", D("-1"), D("0")), ("USDT", D("-9500"), D("500")),
    ]  # fmt: skip
    assert booked(paper) == {"USDT": D("500")}
    again = paper.place(client_order_id="keep", side="BUY", type="limit", price="99",
                        quantity="1")  # fmt: skip
    assert isinstance(again[0], OrderRepeated) and again[0].order.status == "canceled"


@pytest.mark.parametrize(
    ("amend", "trades", "filled"),
    [
        # a smaller size keeps its place: 1 printed − 0.5 still ahead = 0.5 fills
        ({"quantity": D("0.8")}, [("99.00", "1")], [["0.5"]]),
        # a larger size goes to the back: the book's 2 at 99.00 are ahead again
        ({"quantity": D("1.5")}, [("99.00", "2"), ("99.00", "0.5")], [[], ["0.5"]]),
        # a new price queues behind the book's 4 at 98.00
        ({"price": D("98.00")}, [("98.00", "4"), ("98.00", "0.5")], [[], ["0.5"]]),
    ],
)
def test_amend_and_queue_position(
    paper: Any, amend: dict[str, D], trades: list[tuple[str, str]], filled: list[list[str]]
) -> None:
    paper.open(USDT="10000")
    paper.default_depth()
    paper.place(client_order_id="b", side="BUY", type="limit", price="99.00", quantity="1")
    paper.trade("99.00", "1.5", t=1 * S)  # 2 ahead at 99.00 → 0.5 ahead
    command = AmendOrder(command_id="m", account_id="a1", sent_us=0, client_order_id="b", **amend)
    assert kinds(paper.command(command)) == ["updated"]
    for i, ((price, qty), expected) in enumerate(zip(trades, filled, strict=True), start=2):
        assert [f.qty for f in fills(paper.trade(price, qty, t=i * S))] == [D(q) for q in expected]
