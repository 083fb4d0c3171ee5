"""When account views and depth watches are published (flows.trading.pacing)."""

from __future__ import annotations

from decimal import Decimal

from flows.trading.pacing import ViewPacer, WatchPacer
from schemas.trading import AccountView


def _view(account: str, seq: int, equity: str = "1") -> AccountView:
    return AccountView(
        account_id=account, owner="u", name="n", market="spot", exchange="sim",
        venue="paper", seq=seq, time_us=0, balances=[], positions=[], open_orders=[],
        equity=Decimal(equity),
    )  # fmt: skip


def test_valuation_views_go_out_at_most_once_a_second_and_the_last_one_is_kept() -> None:
    pacer = ViewPacer(1.0)
    assert pacer.offer([_view("a", 1, "10")], 0.0, frozenset()) == [_view("a", 1, "10")]
    assert pacer.offer([_view("a", 1, "11")], 0.3, frozenset()) == []
    assert pacer.offer([_view("a", 1, "12")], 0.6, frozenset()) == []
    assert pacer.due(0.9) == []
    assert pacer.due(1.0) == [_view("a", 1, "12")]
    assert pacer.due(1.5) == []


def test_an_account_with_events_is_published_at_once_and_drops_its_waiting_view() -> None:
    pacer = ViewPacer(1.0)
    pacer.offer([_view("a", 1)], 0.0, frozenset())
    pacer.offer([_view("a", 1, "2")], 0.1, frozenset())
    assert pacer.offer([_view("a", 2, "3")], 0.2, frozenset({"a"})) == [_view("a", 2, "3")]
    assert pacer.due(5.0) == []


def test_a_full_republish_resets_every_account() -> None:
    pacer = ViewPacer(1.0)
    pacer.offer([_view("a", 1)], 0.0, frozenset())
    pacer.offer([_view("a", 1, "2")], 0.5, frozenset())
    pacer.all_sent([_view("a", 1, "2")], 0.6)
    assert pacer.due(1.2) == []
    assert pacer.offer([_view("a", 1, "3")], 1.7, frozenset()) == [_view("a", 1, "3")]


def test_watch_sets_go_out_on_change_and_all_of_them_periodically() -> None:
    pacer = WatchPacer(30.0)
    spot, usdm = ("sim", "spot"), ("sim", "usdm")
    assert pacer.changes({spot: ["B", "A"]}, 0.0) == {spot: ["A", "B"]}
    assert pacer.changes({spot: ["A", "B"]}, 1.0) == {}
    assert pacer.changes({spot: ["A", "B"], usdm: ["X"]}, 2.0) == {usdm: ["X"]}
    # A market whose last order left is told so once, with an empty set.
    assert pacer.changes({spot: ["A", "B"]}, 3.0) == {usdm: []}
    assert pacer.changes({spot: ["A", "B"]}, 4.0) == {}
    assert pacer.changes({spot: ["A", "B"]}, 30.0) == {spot: ["A", "B"]}
