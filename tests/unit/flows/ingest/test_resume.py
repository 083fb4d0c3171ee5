"""Where a restarted ingest resumes, and which restart gaps it leaves to backfill."""

from __future__ import annotations

import pytest

from flows.ingest.resume import LastTrade, newest, restart_gap_refusal
from flows.ingest.sequence import Gap

T0 = 1_704_164_645_250_000  # 2024-01-02 03:04:05.25 UTC, in µs


def test_the_highest_id_of_any_source_wins() -> None:
    tail = {"A": LastTrade(10, 1), "B": LastTrade(7, 2)}
    stored = {"B": LastTrade(9, 3), "C": LastTrade(1, 4)}
    assert newest(tail, stored) == {
        "A": LastTrade(10, 1),
        "B": LastTrade(9, 3),
        "C": LastTrade(1, 4),
    }
    assert newest({"A": LastTrade(5, 1)}, {"A": LastTrade(5, 2)}) == {"A": LastTrade(5, 1)}
    assert newest() == {}


def refusal(missing: int, down_s: float, max_trades: int = 1_000, max_age_s: float = 300) -> str:
    gap = Gap("BTCUSDT", 101, 100 + missing, "restart")
    return restart_gap_refusal(
        gap,
        LastTrade(100, T0),
        T0 + int(down_s * 1e6),
        market="usdm",
        max_trades=max_trades,
        max_age_s=max_age_s,
    )


@pytest.mark.parametrize(("missing", "down_s"), [(1, 0.1), (1_000, 299.0)])
def test_a_small_recent_gap_is_repaired(missing: int, down_s: float) -> None:
    assert refusal(missing, down_s) == ""


def test_a_gap_over_the_cap_is_left_to_backfill_with_its_range() -> None:
    reason = refusal(1_001, 90.0)
    assert "1001 trades (ids 101..1101)" in reason
    assert "between 2024-01-02T03:04:05Z and 2024-01-02T03:05:35Z" in reason
    assert "more than max_restart_gap_trades (1000)" in reason
    # The minutes holding the gap, the end exclusive.
    assert reason.endswith(
        "run `tickscan backfill --market usdm --symbols BTCUSDT "
        "--from 2024-01-02T03:04:00Z --to 2024-01-02T03:06:00Z`"
    )


def test_a_gap_older_than_the_revision_horizon_is_left_to_backfill() -> None:
    reason = refusal(10, 301.0)
    assert "older than the candle flow's revision horizon (300 s)" in reason
    assert "--from 2024-01-02T03:04:00Z --to 2024-01-02T03:10:00Z" in reason
