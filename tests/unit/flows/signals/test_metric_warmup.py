"""`schemas.ranks.METRIC_WARMUP` against `flows.signals.metrics`: each metric gets its first value
exactly when the table says, on a market that trades every second (what the board's
"5m in 3:12" is computed from)."""

from __future__ import annotations

import pytest

from flows.signals.metrics import SymbolMetrics
from schemas.candles import Candle
from schemas.ranks import DERIVED_FIELDS, METRIC_WARMUP, METRICS, PERP_METRICS, RankRow
from tests.unit.flows.signals.test_metrics import T0, M, S, candle

STEP = {"1s": S, "1m": M}
DAY = 1440 * M
HORIZON = DAY + 2 * M
"""Every span is within a day and a minute."""


def trading(start: int, end: int) -> list[Candle]:
    """Every second of [start, end) trades (price moving, so RSI and volatility have
    changes to measure); each minute's 1m candle after its last second."""
    out = []
    for t in range(start, end, S):
        price = 100 + (t // S) % 7
        out.append(candle("1s", t, price, count=1, high=price + 1, low=price - 1))
        if (t + S) % M == 0 and t + S - M >= start:
            out.append(candle("1m", t + S - M, price, volume=60, count=60, high=107, low=99))
    return out


def starts(start: int) -> dict[str, int]:
    """Where the history behind the rows begins, per resolution: the first second, and the
    first whole minute (checked against the rows' own fields below)."""
    return {"1s": start, "1m": -(-start // M) * M}


def checkpoints(start: int) -> set[int]:
    """For every metric, the time the table says its value appears and one step before."""
    begin = starts(start)
    times = {start + HORIZON - S}
    for resolution, span in METRIC_WARMUP.values():
        times |= {begin[resolution] + span, begin[resolution] + span - STEP[resolution]}
    times |= {start + S, start + 2 * M}
    return times


def rows_by_time(start: int) -> dict[int, RankRow]:
    """Rows of a history starting at `start` at its checkpoints (a row costs far more than
    folding a candle in), by their time."""
    wanted = checkpoints(start)
    metrics = SymbolMetrics("sim", "spot", "AAA")
    rows = {}
    for c in trading(start, start + HORIZON):
        if c.interval == "1m":
            metrics.add_minute(c)
        elif metrics.add_second(c) and c.open_time + S in wanted:
            rows[c.open_time + S] = metrics.row()
    return rows


@pytest.fixture(scope="module")
def aligned() -> dict[int, RankRow]:
    """History from a whole day (so a whole bar of every interval)."""
    return rows_by_time(T0)


UNALIGNED = T0 + 7 * M + 17 * S


@pytest.fixture(scope="module")
def unaligned() -> dict[int, RankRow]:
    """History from 17 s past 00:07 (the first whole minute is 00:08)."""
    return rows_by_time(UNALIGNED)


def expected_at(rows: dict[int, RankRow], name: str) -> tuple[int, int]:
    """The time the table says a value appears, and one step before it, from the history
    start the rows themselves give (as the board reads it)."""
    resolution, span = METRIC_WARMUP[name]
    field = f"history_{resolution}_from_ms"
    start = getattr(rows[min(rows) - S + 2 * M], field)  # once there is a whole minute
    at = start + span
    assert getattr(rows[at], field) == start, (name, field)
    return at, at - STEP[resolution]


@pytest.mark.parametrize("name", sorted(METRIC_WARMUP))
def test_a_metric_appears_when_its_warmup_says(aligned: dict[int, RankRow], name: str) -> None:
    at, before = expected_at(aligned, name)
    assert getattr(aligned[before], name) is None, (name, before - T0)
    assert getattr(aligned[at], name) is not None, (name, at - T0)


@pytest.mark.parametrize("name", sorted(n for n in METRIC_WARMUP if not n.startswith("rvol_")))
def test_a_history_starting_inside_a_minute_changes_nothing_but_its_start(
    unaligned: dict[int, RankRow], name: str
) -> None:
    """1s windows count from the first second, minute windows from the first whole minute
    (the row's `history_1m_from_ms`). Relative volume counts from a bar boundary instead:
    see `METRIC_WARMUP`."""
    at, before = expected_at(unaligned, name)
    assert getattr(unaligned[before], name) is None, name
    assert getattr(unaligned[at], name) is not None, name


def test_the_history_start_is_where_the_unbroken_history_starts(
    unaligned: dict[int, RankRow],
) -> None:
    first = unaligned[UNALIGNED + S]
    assert first.history_1s_from_ms == UNALIGNED
    assert first.history_1m_from_ms is None  # no whole minute yet
    later = unaligned[UNALIGNED + 2 * M]
    assert (later.history_1s_from_ms, later.history_1m_from_ms) == (UNALIGNED, T0 + 8 * M)
    # a day later the seconds ring (an hour and a minute) slides on; the minutes ring
    # (a day and 5 minutes) still holds every minute
    last = unaligned[max(unaligned)]
    assert last.history_1s_from_ms == last.time_ms - 3_660 * S
    assert last.history_1m_from_ms == T0 + 8 * M


def test_every_metric_that_needs_history_is_in_the_table() -> None:
    from_quotes = {"bid", "ask", "spread_bps"}
    no_history = {"price", "new_high", "new_low"}
    # perpetuals data has no candle history: it shows once it arrives
    from_perps = {*PERP_METRICS, *DERIVED_FIELDS}
    assert set(METRIC_WARMUP) == set(METRICS) - from_quotes - no_history - from_perps
