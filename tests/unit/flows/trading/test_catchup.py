"""The start's catch-up on missed market data: its window, its source, and the replay
against hand-worked numbers (USDⓈ-M fees 0.02 % maker, 0.05 % taker; times are seconds
after T0)."""

from __future__ import annotations

import logging
from decimal import Decimal as D
from typing import Any

import pytest

from flows.trading import backlog, catchup
from flows.trading.engine import PaperEngine
from flows.trading.rules import NO_FRESH_BOOK
from schemas.perps import MarkPrice
from schemas.trades import Trade
from schemas.trading import AccountEvent, FundingPaid, OrderFilled, OrderUpdated
from tests.unit.flows.trading.conftest import EX, T0, Paper

S = 1_000_000
H = 3_600 * S
USDM = f"{EX}:usdm:BTCUSDT"
SPOT = f"{EX}:spot:BTCUSDT"


def kinds(events: list[AccountEvent]) -> list[str]:
    return [str(type(e).__struct_config__.tag) for e in events]


def long_one_and_a_bid(paper: Paper) -> None:
    """A 10,000 USDT account long 1 BTC @ 100.0, with a limit buy of 0.5 @ 95.0 resting,
    then a mark at 1 s announcing the funding time 10 s at 0.0002 (no event: the log
    ends at 0 s, the engine's market time is 1 s)."""
    paper.open("usdm", USDT="10000")
    paper.quote("99.9", "100.0", t=0, market="usdm", bid_qty="5", ask_qty="5")
    paper.mark("100.0", t=0)
    paper.place("usdm", side="BUY", type="market", quantity="1")
    paper.place("usdm", client_order_id="bid", side="BUY", type="limit", price="95.0",
                quantity="0.5", time_in_force="GTC")  # fmt: skip
    assert paper.mark("101.0", t=1 * S, rate="0.0002", next_funding=10 * S) == []


def restarted(paper: Paper, since_us: int) -> PaperEngine:
    """A new engine from the log, told the funding time the last stored mark up to
    `since_us` announced (what `PaperFlow.start` does)."""
    engine = PaperEngine(paper.settings, paper.symbols)
    engine.restore(paper.events)
    marks = [m for kind, m in paper.inputs if kind == "mark" and m.time_us <= since_us]
    engine.announce(marks[-1])
    return engine


def missed(paper: Paper) -> list[Trade | MarkPrice]:
    """What the market did while the engine was down."""
    return catchup.merge(
        [
            paper.trade_record("96.0", "2", t=3 * S, market="usdm"),  # above the bid
            paper.trade_record("94.9", "0.3", t=4 * S, market="usdm"),  # through it
            paper.trade_record("94.0", "1", t=15 * S, market="usdm"),  # through again
        ],
        [
            paper.mark_record("102.0", t=10 * S, rate="0.0003", next_funding=20 * S),
            paper.mark_record("100.0", t=20 * S, rate="0.0001", next_funding=30 * S),
        ],
    )


def test_the_window_starts_at_the_later_of_the_stored_clock_and_the_log() -> None:
    class Client:
        def __init__(self, stored: int | None) -> None:
            self.stored = stored

        def query(self, sql: str, parameters: dict[str, Any]) -> Any:
            assert "paper_clock" in sql and parameters == {"db": "db"}
            return type("Result", (), {"result_rows": [(self.stored,)]})()

    assert backlog.start_time(Client(T0 + 5 * S), "db", T0) == T0 + 5 * S
    assert backlog.start_time(Client(T0), "db", T0 + 7 * S) == T0 + 7 * S
    assert backlog.start_time(Client(None), "db", T0 + 7 * S) == T0 + 7 * S  # empty table


def test_the_symbols_that_matter_are_those_of_open_orders_and_held_perpetuals() -> None:
    paper = Paper()
    long_one_and_a_bid(paper)
    paper.open("spot", account="s1", USDT="1000")
    paper.place("spot", account="s1", side="BUY", type="limit", price="90.00",
                quantity="0.1", time_in_force="GTC")  # fmt: skip
    paper.open("spot", account="idle", USDT="1000")
    accounts = [paper.engine.account(a) for a in ("a1", "s1", "idle")]
    # spot: trades only (no marks); USDⓈ-M: trades of the resting bid, marks of both;
    # of the trades, those at or below each bid
    bands = {USDM: catchup.Band(below=D("95.0")), SPOT: catchup.Band(below=D("90.00"))}
    assert catchup.needs(accounts) == (bands, frozenset({USDM}))
    # flat and without orders: nothing to replay
    assert catchup.needs([paper.engine.account("idle")]) == ({}, frozenset())


@pytest.mark.parametrize(
    ("order", "band"),
    [
        # a limit buy fills on trades at or below its price, a sell at or above
        ({"type": "limit", "side": "BUY", "price": "95.0"}, ("95.0", None)),
        ({"type": "limit", "side": "SELL", "price": "105.0"}, (None, "105.0")),
        # a stop sells on a fall to its stop, buys on a rise; a take-profit the other way
        ({"type": "stop_market", "side": "SELL", "stop_price": "90.0"}, ("90.0", None)),
        ({"type": "stop_market", "side": "BUY", "stop_price": "110.0"}, (None, "110.0")),
        ({"type": "take_profit_market", "side": "SELL", "stop_price": "110.0"}, (None, "110.0")),
        ({"type": "take_profit_market", "side": "BUY", "stop_price": "90.0"}, ("90.0", None)),
        # a stop-limit buy: its stop on a rise to 110, then its limit at 111 (every price)
        (
            {"type": "stop_limit", "side": "BUY", "stop_price": "110.0", "price": "111.0"},
            ("111.0", "110.0"),
        ),
        # a stop on the mark price: no trade triggers it
        (
            {"type": "stop_market", "side": "SELL", "stop_price": "90.0", "trigger": "mark"},
            (None, None),
        ),
    ],
)
def test_only_the_trades_that_can_touch_an_open_order_are_replayed(
    order: dict[str, str], band: tuple[str | None, str | None]
) -> None:
    paper = Paper()
    paper.open("usdm", USDT="10000")
    paper.quote("99.9", "100.0", t=0, market="usdm", bid_qty="5", ask_qty="5")
    paper.mark("100.0", t=0)
    paper.place("usdm", quantity="1", **order)
    placed = next(iter(paper.engine.account("a1").orders.values()))
    below, above = (None if p is None else D(p) for p in band)
    got = catchup.order_band(catchup.Band(), placed)
    assert got == catchup.Band(below, above)


def test_plan_skips_a_market_time_older_than_the_limit_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    paper = Paper()
    long_one_and_a_bid(paper)
    accounts = [paper.engine.account("a1")]
    window = catchup.plan(accounts, T0 + S, T0 + 23 * H, max_h=24)
    bid = {USDM: catchup.Band(below=D("95.0"))}
    assert window == catchup.Window(T0 + S, T0 + 23 * H, bid, frozenset({USDM}))
    assert catchup.plan(accounts, 0, T0, max_h=24) is None  # never ran
    assert catchup.plan([paper.engine.account("a1")], T0 + S, T0 + 2 * H, max_h=1) is None
    assert "catchup_max_h" in caplog.text and "2.0 h ago" in caplog.text
    assert caplog.records[-1].levelno == logging.WARNING
    paper.open("spot", account="idle", USDT="1000")
    assert catchup.plan([paper.engine.account("idle")], T0 + S, T0 + 2 * S, max_h=24) is None


@pytest.mark.parametrize(
    ("firsts", "bound"),
    [
        # every partition holds records from before the window: the topic alone
        ([T0, T0 + S], None),
        # one partition starts inside the window (retention): the store up to where the
        # last of them starts; the topic's records from there
        ([T0, T0 + 5 * S], T0 + 5 * S),
        ([T0 + 3 * S, T0 + 5 * S], T0 + 5 * S),
        # an empty partition (a broker restarted empty): the store up to the live start
        ([T0, None], T0 + H),
        ([None, None], T0 + H),
    ],
)
def test_the_store_fills_in_what_the_topic_no_longer_holds(
    firsts: list[int | None], bound: int | None
) -> None:
    assert backlog.store_bound(firsts, T0 + S, T0 + H) == bound


def test_a_window_keeps_every_mark_and_the_trades_in_its_band() -> None:
    paper = Paper()
    band = catchup.Band(below=D("95.0"), above=D("105.0"))
    window = catchup.Window(T0, T0 + H, {USDM: band}, frozenset({USDM}))
    prices = ["94.9", "95.0", "95.1", "100.0", "104.9", "105.0", "120.0"]
    kept = [p for p in prices if window.keeps(paper.trade_record(p, "1", t=S, market="usdm"))]
    assert kept == ["94.9", "95.0", "105.0", "120.0"]
    assert window.keeps(paper.mark_record("50.0", t=S))


def test_records_from_both_sources_are_merged_in_market_time_each_once() -> None:
    paper = Paper()
    trade = paper.trade_record("96.0", "2", t=3 * S, market="usdm")
    early = paper.trade_record("95.0", "1", t=2 * S, market="usdm")
    mark = paper.mark_record("101.0", t=2 * S)
    merged = catchup.merge([trade, mark], [early, trade], [mark])
    # at 2 s the trade before the mark; the duplicates (same id, same mark time) once
    assert merged == [early, mark, trade]


def test_a_live_record_the_replay_applied_already_is_dropped() -> None:
    paper = Paper()
    seen_trade = paper.trade_record("96.0", "2", t=3 * S, market="usdm")
    seen_mark = paper.mark_record("101.0", t=4 * S)
    replayed = catchup.Replayed()
    replayed.note([seen_trade, seen_mark])
    got: list[Any] = []
    trades = replayed.trades(lambda t: got.append(t) or [])
    marks = replayed.marks(lambda m: got.append(m) or [])
    newer_trade = paper.trade_record("96.5", "1", t=3 * S, market="usdm")  # a later id
    spot_trade = paper.trade_record("96.0", "1", t=1 * S)  # another symbol: never replayed
    newer_mark = paper.mark_record("101.5", t=5 * S)
    for record in (seen_trade, newer_trade, spot_trade):
        trades(record)
    for record in (seen_mark, newer_mark):
        marks(record)
    assert got == [newer_trade, spot_trade, newer_mark]
    # nothing replayed: the feed itself, no wrapper
    feed = PaperEngine.trade
    assert catchup.Replayed().trades(feed) is feed


def test_the_missed_market_fills_the_resting_bid_at_its_price_and_pays_each_funding_time() -> None:
    paper = Paper()
    long_one_and_a_bid(paper)
    engine = restarted(paper, T0 + S)
    assert engine.now_us == T0  # the log's last event; the stored clock says 1 s
    events = catchup.replay(engine, missed(paper))
    assert kinds(events) == ["fill", "funding", "fill", "funding"]
    first, at_10, second, at_20 = events
    assert isinstance(first, OrderFilled) and isinstance(second, OrderFilled)
    assert isinstance(at_10, FundingPaid) and isinstance(at_20, FundingPaid)
    # 0.3 of the bid at its own price (the trade at 94.9 went through it), as maker:
    # fee 0.3 × 95.0 × 0.02 % = 0.0057; the trade at 96.0 before it filled nothing
    assert (first.fill.price, first.fill.qty, first.fill.fee, first.fill.liquidity) == (
        D("95.0"), D("0.3"), D("0.0057"), "maker",
    )  # fmt: skip
    # funding at 10 s, at the stored mark's price and rate: −1.3 × 101.0 × 0.0002
    assert (at_10.funding_time_us, at_10.mark_price, at_10.rate) == (
        T0 + 10 * S, D("101.0"), D("0.0002"),
    )  # fmt: skip
    assert at_10.entry.amount == D("-0.02626")
    # the rest, 0.2 @ 95.0 (fee 0.0038), at 15 s
    assert (second.fill.price, second.fill.qty, second.fill.fee) == (
        D("95.0"), D("0.2"), D("0.0038"),
    )  # fmt: skip
    # funding at 20 s at the 10 s mark: −1.5 × 102.0 × 0.0003 = −0.0459
    assert (at_20.funding_time_us, at_20.mark_price, at_20.entry.amount) == (
        T0 + 20 * S, D("102.0"), D("-0.0459"),
    )  # fmt: skip
    # 10,000 − 0.05 − 0.0057 − 0.02626 − 0.0038 − 0.0459
    assert engine.account("a1").balances["USDT"] == D("9999.86834")
    assert engine.now_us == T0 + 20 * S


def test_a_crash_during_the_catch_up_and_another_start_give_the_same_events() -> None:
    paper = Paper()
    long_one_and_a_bid(paper)
    records = missed(paper)
    whole = catchup.replay(restarted(paper, T0 + S), records)
    # the first start commits what the records up to the first fill caused, then dies
    first = restarted(paper, T0 + S)
    committed = catchup.replay(first, records[:2])
    assert kinds(committed) == ["fill"]
    # the next start restores those events too and begins after their market time
    paper.events.extend(committed)
    second = restarted(paper, T0 + S)
    since = max(T0 + S, second.now_us)
    assert since == T0 + 4 * S
    rest = catchup.replay(second, [r for r in records if r.time_us > since])
    assert committed + rest == whole
    # replaying what the log already holds changes nothing
    assert catchup.replay(second, [r for r in records if r.time_us > since]) == []


def test_a_stop_triggered_in_the_catch_up_waits_for_a_fresh_book_and_never_fills_stale() -> None:
    paper = Paper()
    long_one_and_a_bid(paper)
    paper.place("usdm", client_order_id="stop", side="SELL", type="stop_market",
                stop_price="90.0", quantity="1", reduce_only=True)  # fmt: skip
    engine = restarted(paper, T0 + S)
    fell = paper.trade_record("89.9", "0.1", t=3 * S, market="usdm")
    triggered = catchup.replay(engine, [fell])
    # triggered by the last price, but no book is fresh: it waits, unfilled (the bid at
    # 95.0 fills, as the trade went through it)
    assert "updated" in kinds(triggered) and "fill" in kinds(triggered)
    assert all(e.fill.client_order_id != "stop" for e in triggered if isinstance(e, OrderFilled))
    stop = [e for e in triggered if isinstance(e, OrderUpdated)][-1].order
    assert stop.request.client_order_id == "stop" and stop.triggered
    # the market order's wait (5 s of market time) runs out during the catch-up: expired
    later = paper.trade_record("89.0", "0.1", t=9 * S, market="usdm")
    ended = catchup.replay(engine, [later])
    expired = [e for e in ended if isinstance(e, OrderUpdated)]
    assert [(e.order.status, e.order.reason) for e in expired] == [("expired", NO_FRESH_BOOK)]
    # the trade at 89.0 fills the bid again, up to its own 0.1, and nothing else
    fills = [e.fill for e in ended if isinstance(e, OrderFilled)]
    assert [(f.client_order_id, f.price, f.qty) for f in fills] == [("bid", D("95.0"), D("0.1"))]
