"""Backfilling a perpetual's history, the parts that need no exchange: what may be asked for,
chunks grouped and clipped to the 30 days Binance keeps, the summary."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.candles.backfill import BackfillError, Chunk, plan_backfill
from flows.candles.perp_backfill import HISTORY, _check_perpetuals, _plan, _runs
from flows.candles.reports import BackfillReport, HistoryCounts
from flows.sources.binance.perp_history import open_interest_floor
from runtime.settings import ClickHouseSettings
from tickscan.backfill import backfill, summary
from tickscan.cli import app
from tickscan.settings import Settings

DAY = 86_400_000


def _plan_args(**changes: object) -> dict[str, object]:
    args: dict[str, object] = {
        "market": "usdm", "symbols": "BTCUSDT", "start": "2026-11-01", "end": "2026-11-03",
        "interval": "1m", "archives": [], "clickhouse": "chdb:///unused", "database": "db",
    }  # fmt: skip
    return args | changes


def test_data_kinds_are_read_in_order_without_repeats() -> None:
    report = plan_backfill(**_plan_args(data="Mark-Klines, funding,funding"))  # type: ignore[arg-type]
    assert report.data == ("funding", "mark-klines")
    assert plan_backfill(**_plan_args()).data == ("candles",)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"market": "spot", "data": "candles,funding"}, "USDⓈ-M only: use --market usdm"),
        ({"data": "funding,liquidations"}, "--data takes candles, funding, open-interest"),
        ({"data": " , "}, "not nothing"),
        ({"data": "open-interest", "symbols": ""}, "--data open-interest needs --symbols"),
        ({"data": "funding", "archives": ["x.zip"]}, "--archives only give candles"),
    ],
)
def test_what_cannot_be_fetched_is_refused_before_anything_opens(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(BackfillError, match=message):
        plan_backfill(**_plan_args(**changes))  # type: ignore[arg-type]


def test_the_command_refuses_perpetual_history_on_spot_without_touching_clickhouse(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path, clickhouse=ClickHouseSettings(dsn="http://unused.invalid:1")
    )
    with pytest.raises(BackfillError, match="perpetual futures history exists on USDⓈ-M"):
        backfill(
            settings, market="spot", symbols="BTCUSDT", start="2026-11-01", end="2026-11-02",
            data="open-interest",
        )  # fmt: skip


def _chunk(day: int, start_h: int = 0, end_h: int = 24) -> Chunk:
    base = 1_700_006_400_000 + day * DAY  # 2023-11-15 00:00 UTC
    when = datetime.fromtimestamp(base / 1000, UTC).date()
    return Chunk("BTCUSDT", when, base + start_h * 3_600_000, base + end_h * 3_600_000)


def test_consecutive_days_run_together_up_to_the_kind_s_most() -> None:
    chunks = [_chunk(0, 20), _chunk(1), _chunk(2), _chunk(4), _chunk(5, 0, 3)]
    assert _runs(chunks, 300) == [chunks[:3], chunks[3:]]
    assert _runs(chunks, 2) == [chunks[:2], chunks[2:3], chunks[3:]]
    assert _runs(chunks, 1) == [[c] for c in chunks]


def _report(start: datetime, end: datetime, data: str) -> BackfillReport:
    report = plan_backfill(**_plan_args(start=start, end=end, data=data))  # type: ignore[arg-type]
    for name in report.data:
        report.history[name] = HistoryCounts()
    return report


def test_open_interest_older_than_30_days_is_clipped_and_warned_about_once() -> None:
    now = int(datetime(2026, 12, 7, 15, 0, tzinfo=UTC).timestamp() * 1000)
    report = _report(datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC),
                     "funding,open-interest")  # fmt: skip
    start, end = 1793836800000, 1794182400000  # 2026-11-05, 2026-11-09
    floor = open_interest_floor(now)  # 2026-11-07 15:15
    todo, skipped = _plan(HISTORY["open-interest"], report, start, end, now, {})
    assert [(c.day, c.start_ms, c.end_ms) for c in todo["BTCUSDT"]] == [
        (date(2026, 11, 7), floor, start + 3 * DAY),
        (date(2026, 11, 8), start + 3 * DAY, end),
    ]
    assert skipped == {}
    counts = report.history["open-interest"]
    assert (counts.chunks, counts.clipped) == (4, 3)
    assert report.warnings == [
        "open-interest history: Binance keeps only the last 30 days, so 2026-11-05 00:00 .. "
        "2026-11-07 15:15 UTC was left out (1 symbol(s))"
    ]
    # Funding history is kept for good: nothing clipped, and recorded days are skipped.
    done = {("BTCUSDT", date(2026, 11, 6)): [(start + DAY, start + 2 * DAY)]}
    todo, skipped = _plan(HISTORY["funding"], report, start, end, now, done)
    assert [c.day.day for c in todo["BTCUSDT"]] == [5, 7, 8]
    assert (report.history["funding"].clipped, report.history["funding"].skipped) == (0, 1)
    assert len(report.warnings) == 1


def test_a_delivery_contract_is_refused_for_perpetual_history() -> None:
    _check_perpetuals({"BTCUSDT": {"contractType": "PERPETUAL"}, "ETHUSDT": {}})
    with pytest.raises(BackfillError, match="BTCUSDT_261225 is CURRENT_QUARTER"):
        _check_perpetuals({"BTCUSDT_261225": {"contractType": "CURRENT_QUARTER"}})


def test_the_summary_names_each_kind_its_table_and_what_was_left_out() -> None:
    report = _report(datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC),
                     "open-interest,mark-klines")  # fmt: skip
    report.history["open-interest"] = HistoryCounts(4, 2, 0, 0, 3, 465)
    report.history["mark-klines"] = HistoryCounts(4, 3, 0, 1, 0, 5000)
    text = summary(report)
    assert "\nklines:" not in text and "candles_1m" not in text
    assert (
        "open-interest: 4 chunk(s): 2 written, 0 already done, 3 wholly or partly older than "
        "Binance keeps; 465 open-interest samples -> db.open_interest"
    ) in text
    assert (
        "mark-klines: 4 chunk(s): 3 written, 0 already done, 1 still open (not recorded); "
        "5,000 mark klines -> db.mark_klines_1m"
    ) in text
    assert text.endswith(
        "SELECT * FROM db.open_interest FINAL; SELECT * FROM db.mark_klines_1m FINAL"
    )


def test_the_command_line_help_offers_the_data_kinds_and_says_open_interest_keeps_30_days() -> None:
    shown = CliRunner().invoke(app, ["backfill", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    text = " ".join(shown.output.split())
    assert "--data" in text
    for kind in ("candles", "funding", "open-interest", "mark-klines"):
        assert kind in text
    assert "Binance keeps only the last 30 days" in text
