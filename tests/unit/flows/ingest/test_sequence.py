"""Trade-id sequencing: duplicates dropped, holes filled late or reported as gaps."""

from __future__ import annotations

import pytest

from flows.ingest.sequence import Gap, Origin, QuoteFilter, TradeSequencer

FIRST = Origin(1, None)
ROTATED = Origin(2, "rotation")
RECONNECTED = Origin(3, "reconnect")


@pytest.mark.parametrize(
    ("deliveries", "published", "duplicates"),
    [
        # in order: everything published
        ([(FIRST, 10), (FIRST, 11), (FIRST, 12)], [10, 11, 12], 0),
        # a rotation overlap: the replacement repeats what the old socket delivered
        (
            [(FIRST, 10), (FIRST, 11), (ROTATED, 10), (ROTATED, 11), (FIRST, 12), (ROTATED, 12)],
            [10, 11, 12],
            3,
        ),
        # a reconnect replays ids already seen
        (
            [(FIRST, 5), (FIRST, 6), (RECONNECTED, 4), (RECONNECTED, 6), (RECONNECTED, 7)],
            [5, 6, 7],
            2,
        ),
        # a lagging socket fills a hole the faster one opened
        (
            [(FIRST, 1), (ROTATED, 4), (FIRST, 2), (FIRST, 3), (FIRST, 4), (ROTATED, 5)],
            [1, 4, 2, 3, 5],
            1,
        ),
    ],
)
def test_what_is_published(
    deliveries: list[tuple[Origin, int]], published: list[int], duplicates: int
) -> None:
    seq = TradeSequencer(grace_s=1.0)
    got = [tid for origin, tid in deliveries if seq.accept("BTCUSDT", tid, origin, 0.0).publish]
    assert got == published
    assert seq.counts.duplicates == duplicates
    assert seq.counts.accepted == len(published)
    assert seq.due(10.0) == []


@pytest.mark.parametrize(
    ("deliveries", "gaps"),
    [
        # a hole within one socket's stream: cause sequence
        ([(FIRST, 1), (FIRST, 5)], [Gap("S", 2, 4, "sequence")]),
        # the first trade from a new socket opens the hole: the socket's cause
        ([(FIRST, 1), (RECONNECTED, 9)], [Gap("S", 2, 8, "reconnect")]),
        ([(FIRST, 1), (ROTATED, 3)], [Gap("S", 2, 2, "rotation")]),
        # server_shutdown and stall come from the socket the same way
        ([(FIRST, 1), (Origin(7, "server_shutdown"), 4)], [Gap("S", 2, 3, "server_shutdown")]),
        ([(FIRST, 1), (Origin(8, "stall"), 3)], [Gap("S", 2, 2, "stall")]),
        # a late fill in the middle splits the hole; the rest is reported
        (
            [(FIRST, 1), (ROTATED, 10), (FIRST, 5)],
            [Gap("S", 2, 4, "rotation"), Gap("S", 6, 9, "rotation")],
        ),
        # filled at both ends
        ([(FIRST, 1), (ROTATED, 6), (FIRST, 2), (FIRST, 5)], [Gap("S", 3, 4, "rotation")]),
        # filled entirely: no gap
        ([(FIRST, 1), (ROTATED, 4), (FIRST, 2), (FIRST, 3)], []),
        # two holes
        (
            [(FIRST, 1), (FIRST, 3), (FIRST, 6)],
            [Gap("S", 2, 2, "sequence"), Gap("S", 4, 5, "sequence")],
        ),
    ],
)
def test_which_gaps_are_reported(deliveries: list[tuple[Origin, int]], gaps: list[Gap]) -> None:
    seq = TradeSequencer(grace_s=1.0)
    for origin, tid in deliveries:
        assert seq.accept("S", tid, origin, 100.0).gaps == ()
    assert seq.due(100.5) == [], "reported before its grace ran out"
    reported = seq.due(101.0)
    assert [(g.symbol, g.first_id, g.last_id, g.cause) for g in reported] == [
        (g.symbol, g.first_id, g.last_id, g.cause) for g in gaps
    ]
    assert all(g.detected_at == 100.0 for g in reported)
    assert seq.due(1_000.0) == [], "a gap is reported once"
    assert seq.counts.gaps == len(gaps)
    assert seq.counts.missing == sum(g.missing for g in gaps)


def test_an_id_in_a_reported_gap_is_a_duplicate_of_its_repair() -> None:
    seq = TradeSequencer(grace_s=0.0)
    seq.accept("S", 1, FIRST, 0.0)
    seq.accept("S", 5, RECONNECTED, 0.0)
    assert seq.due(0.0) == [Gap("S", 2, 4, "reconnect", 0.0)]
    # The repair publishes 2..4; the same ids arriving late must not be published again.
    assert not seq.accept("S", 3, FIRST, 1.0).publish


def test_memory_is_bounded_by_max_holes() -> None:
    seq = TradeSequencer(grace_s=60.0, max_holes=3)
    seq.accept("S", 0, FIRST, 0.0)
    overflow: list[Gap] = []
    for i in range(1, 11):
        overflow.extend(seq.accept("S", 2 * i, FIRST, float(i)).gaps)
    # Ten holes opened (1, 3, 5, ... 19), three kept, the oldest seven reported early.
    assert [g.first_id for g in overflow] == [1, 3, 5, 7, 9, 11, 13]
    assert seq.open_holes() == 3
    assert [g.first_id for g in seq.flush()] == [15, 17, 19]
    assert seq.open_holes() == 0


def test_symbols_are_independent_and_can_be_forgotten() -> None:
    seq = TradeSequencer(grace_s=0.0)
    assert seq.accept("A", 100, FIRST, 0.0).publish
    assert seq.accept("B", 7, FIRST, 0.0).publish
    assert seq.accept("A", 101, FIRST, 0.0).publish
    assert not seq.accept("B", 7, FIRST, 0.0).publish
    seq.accept("A", 200, FIRST, 0.0)
    seq.forget(["A"])
    assert seq.due(1.0) == [] and seq.last_id("A") is None
    # A relisted symbol starts a new sequence: no gap back to its old ids.
    assert seq.accept("A", 5_000, FIRST, 2.0).publish
    assert seq.due(3.0) == []
    assert seq.last_id("B") == 7


def test_a_seeded_symbol_continues_from_an_earlier_run() -> None:
    seq = TradeSequencer(grace_s=0.0)
    seq.seed("A", 100)
    seq.seed("B", 50)
    seq.seed("C", 10)
    # What the earlier run published is a duplicate ...
    assert not seq.accept("A", 99, FIRST, 0.0).publish
    assert not seq.accept("A", 100, FIRST, 0.0).publish
    # ... and the first trade past the next id opens a restart hole, on whatever socket.
    assert seq.accept("A", 130, FIRST, 0.0).publish
    assert seq.accept("B", 51, RECONNECTED, 0.0).publish
    assert seq.accept("B", 53, RECONNECTED, 0.0).publish
    assert set(seq.due(0.0)) == {Gap("A", 101, 129, "restart"), Gap("B", 52, 52, "sequence")}
    # Only the first hole after the seed is the restart's.
    seq.accept("A", 135, FIRST, 1.0)
    assert seq.due(1.0) == [Gap("A", 131, 134, "sequence", 1.0)]
    # A symbol this process has already seen keeps its own, newer, position.
    seq.seed("A", 5)
    assert seq.last_id("A") == 135 and seq.last_id("C") == 10


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TradeSequencer(grace_s=-1)
    with pytest.raises(ValueError):
        TradeSequencer(max_holes=0)


def test_quote_filter_keeps_only_newer_updates() -> None:
    quotes = QuoteFilter()
    ids = [5, 6, 6, 4, 9, 7, 10]
    assert [u for u in ids if quotes.accept("S", u)] == [5, 6, 9, 10]
    assert quotes.stale == 3
    assert quotes.accept("T", 1)
    quotes.forget(["S"])
    assert quotes.accept("S", 1)
