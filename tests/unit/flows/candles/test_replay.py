"""Publishing a replay's files: each trade once, in file order; bad lines and files kept, told."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from flows.candles.replay import ReplayError, expand_paths, publish_files
from flows.candles.reports import ReplayReport
from flows.sinks.dead_letters import DeadLetterKeeper
from flows.sources.files import Rejected
from flows.sources.kafka import RunBounds
from schemas.trades import Trade

FIRST = "3812315235,61751.98000000,0.00100000,61.75198000,1723161599980,False,True\n"
SECOND = "3812315236,61751.99000000,0.00016000,9.88031840,1723161599986,True,True\n"
GOOD = FIRST + SECOND


class RecordingPublisher:
    """Takes what a TradePublisher is given; its run spans one offset per trade."""

    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.rejected: list[Rejected] = []
        self.ended: list[str] = []

    def publish_many(self, trades: Iterable[Trade]) -> int:
        self.trades.extend(trades)
        return len(self.trades)

    def reject(self, rejected: Rejected) -> None:
        self.rejected.append(rejected)

    def mark_end(self, run_id: str) -> None:
        self.ended.append(run_id)

    def report(self) -> Any:
        trades = len(self.trades)

        class Published:
            @staticmethod
            def bounds() -> RunBounds:
                return RunBounds(start={0: 0}, end={0: trades})

        return Published()


class RecordingProgress:
    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []

    def task(self, description: str, total: int | None) -> Any:
        state: dict[str, Any] = {"description": description, "total": total, "completed": 0}
        self.tasks.append(state)

        class Task:
            def advance(self, amount: int) -> None:
                state["completed"] += amount

            def update(self, **changes: Any) -> None:
                state.update({k: v for k, v in changes.items() if v is not None})

        return Task()


class NoClient:
    def insert(self, *args: Any, **kwargs: Any) -> None:
        pass


def test_paths_expand_to_the_files_under_them_sorted_and_a_missing_one_is_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "d").mkdir()
    for name in ("d/b.csv", "d/a.csv", "d/.hidden", "c.csv"):
        (tmp_path / name).write_text(GOOD)
    assert expand_paths([tmp_path / "c.csv", tmp_path / "d"]) == [
        tmp_path / "c.csv",
        tmp_path / "d" / "a.csv",
        tmp_path / "d" / "b.csv",
    ]
    with pytest.raises(ReplayError, match="no such file or directory"):
        expand_paths([tmp_path / "missing.csv"])


def test_every_trade_is_published_once_and_every_bad_line_and_file_is_kept_and_told(
    tmp_path: Path,
) -> None:
    good = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    good.write_text(GOOD)
    mixed = tmp_path / "ETHUSDT-trades-2024-08-08.csv"
    mixed.write_text(FIRST + "1,2\n" + SECOND)
    empty = tmp_path / "SOLUSDT-trades-2024-08-08.csv"
    empty.write_text("")
    report = ReplayReport(run_id="replay-1", files=[good, mixed, empty], market="spot")
    publisher, progress, told = RecordingPublisher(), RecordingProgress(), []
    with DeadLetterKeeper(tmp_path / "dl.jsonl", NoClient(), "db", "replay-1") as keeper:
        bounds = publish_files(
            report,
            publisher,  # type: ignore[arg-type]
            keeper,
            progress,
            told.append,
        )
        kept = keeper.kept

    assert [(t.symbol, t.trade_id) for t in publisher.trades] == [
        ("BTCUSDT", 3812315235),
        ("BTCUSDT", 3812315236),
        ("ETHUSDT", 3812315235),
        ("ETHUSDT", 3812315236),
    ]
    assert publisher.ended == ["replay-1"] and bounds.end == {0: 4}
    assert [r.source for r in publisher.rejected] == [f"{mixed}:2"]
    assert kept == 2  # the bad line and the empty file
    assert (report.trades, report.rejected, report.symbols) == (4, 1, {"BTCUSDT", "ETHUSDT"})
    assert report.file_trades == {good: 2, mixed: 2, empty: 0}
    assert report.first_trade_us == 1723161599980_000
    assert [line.split(":")[0] for line in told] == [str(mixed), str(empty)]
    assert progress.tasks == [
        {"description": f"publishing {empty.name}", "total": 4, "completed": 4}
    ]
