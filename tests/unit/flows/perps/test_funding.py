"""The settled funding rate from the mark stream: one event per funding time, the last
estimate seen before it, and none twice across redeliveries, restarts and reruns."""

from __future__ import annotations

from decimal import Decimal

from flows.perps.funding import SymbolFunding
from schemas.perps import FundingEvent, MarkPrice

S = 1_000_000
T = 1_767_225_600 * S  # a funding time (2026-01-01 00:00 UTC), microseconds
NEXT = T + 8 * 3600 * S
GAP = 60 * S


def mark(at_s: float, rate: str | None, due: int = T, price: str = "100.5") -> MarkPrice:
    time_us = T + round(at_s * S)
    return MarkPrice(
        "binance", "usdm", "BTCUSDT", time_us, Decimal(price), Decimal("100.4"),
        Decimal("100.45"), due, time_us + 2_000, None if rate is None else Decimal(rate),
    )  # fmt: skip


def feed(state: SymbolFunding, marks: list[MarkPrice]) -> list[FundingEvent]:
    return [e for m in marks if (e := state.observe(m, GAP)) is not None]


def test_the_last_estimate_before_the_funding_time_is_the_rate_that_applied() -> None:
    marks = [
        mark(-2.0, "0.00010000"),
        mark(-1.6, "0.00012000"),
        mark(-0.3, "0.00013000", price="101"),  # several in one second: the last counts
        mark(0.2, "0.00001000", due=NEXT),  # the next funding time advanced: T settled
        mark(1.2, "0.00002000", due=NEXT),
    ]
    assert feed(SymbolFunding(), marks) == [
        FundingEvent(
            "binance", "usdm", "BTCUSDT", T, Decimal("0.00013000"), "stream", Decimal("101")
        )
    ]


def test_marks_seen_again_derive_nothing_twice() -> None:
    marks = [mark(-1, "0.0001"), mark(0.5, "0.0002", due=NEXT)]
    state = SymbolFunding()
    assert len(feed(state, marks)) == 1
    # A redelivery of the same marks, and a rerun from the topic's beginning.
    assert feed(state, marks) == []
    assert feed(state, [mark(-3, "0.0001"), *marks, mark(1.5, "0.0002", due=NEXT)]) == []


def test_a_restart_from_the_stored_last_mark_derives_the_funding_time_it_crossed() -> None:
    """After a restart the last stored mark (before T) stands in for the lost state."""
    restarted = SymbolFunding(mark(-0.4, "0.00031000"))
    assert [e.funding_rate for e in feed(restarted, [mark(3, "0.0001", due=NEXT)])] == [
        Decimal("0.00031000")
    ]
    # The funding time is settled already (a row in `funding`): nothing is derived again.
    settled = SymbolFunding(mark(-0.4, "0.00031000"), settled_us=T)
    assert feed(settled, [mark(3, "0.0001", due=NEXT)]) == []
    # The stored last mark is after T already: T was derived before the restart.
    after = SymbolFunding(mark(0.5, "0.0001", due=NEXT))
    assert feed(after, [mark(1, "0.0001", due=NEXT)]) == []


def test_an_estimate_older_than_the_gap_does_not_stand_for_the_rate() -> None:
    stale = [mark(-61, "0.0001"), mark(5, "0.0002", due=NEXT)]
    assert feed(SymbolFunding(), stale) == []
    fresh = [mark(-60, "0.0001"), mark(5, "0.0002", due=NEXT)]
    assert len(feed(SymbolFunding(), fresh)) == 1


def test_a_late_update_still_naming_the_past_funding_time_is_no_estimate_for_it() -> None:
    marks = [
        mark(-0.5, "0.0004"),
        mark(0.4, "0.0009"),  # after T, the old next funding time: not seen before T
        mark(1.4, "0.0001", due=NEXT),
    ]
    assert [e.funding_rate for e in feed(SymbolFunding(), marks)] == [Decimal("0.0004")]


def test_a_funding_time_settled_by_another_source_is_not_derived() -> None:
    state = SymbolFunding()
    feed(state, [mark(-1, "0.0001")])
    state.settled(T)  # the simulated market's own event came first
    assert feed(state, [mark(1, "0.0002", due=NEXT)]) == []
    state.settled(T - 8 * 3600 * S)  # an older one changes nothing
    assert state.settled_us == T


def test_a_gap_over_several_funding_times_settles_only_the_one_estimated() -> None:
    marks = [mark(-1, "0.0001"), mark(20 * 3600, "0.0003", due=T + 24 * 3600 * S)]
    assert [e.funding_time_us for e in feed(SymbolFunding(), marks)] == [T]


def test_a_contract_without_funding_derives_nothing() -> None:
    marks = [mark(-1, None, due=0), mark(1, None, due=0)]
    assert feed(SymbolFunding(), marks) == []
    no_rate = [mark(-1, None), mark(1, None, due=NEXT)]
    assert feed(SymbolFunding(), no_rate) == []
