"""What a replay tells about its files: one line per bad file, the exit status, the summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flows.candles.reports import FileOutcome, ReplayReport
from flows.sinks.dead_letters import COLUMNS, DeadLetterKeeper
from flows.sources.files import Rejected, UnreadableFile
from schemas.deadletter import DeadLetter
from tickscan.replay import summary


def report_of(*outcomes: FileOutcome, **counts: int) -> ReplayReport:
    report = ReplayReport(
        run_id="replay-1", files=[o.path for o in outcomes], market="spot", database="db"
    )
    report.outcomes.extend(outcomes)
    report.trades = sum(o.trades for o in outcomes)
    for name, value in counts.items():
        setattr(report, name, value)
    return report


def test_a_good_file_has_no_problem() -> None:
    good = FileOutcome(Path("a.gz"), lines=10, trades=10)
    assert good.problem() is None
    assert report_of(good).failure is None


def test_a_file_cut_short_says_how_many_trades_were_replayed_before() -> None:
    cut = FileOutcome(Path("/d/cut.gz"), lines=12, trades=7)
    cut.error = UnreadableFile(cut.path, "truncated", "truncated: ends early (after line 12)")
    assert cut.problem() == (
        "/d/cut.gz: truncated: ends early (after line 12); the 7 trades read before were replayed"
    )
    assert report_of(cut).failure == "1 of 1 file(s) had rejected input"


def test_rejected_lines_name_the_first() -> None:
    bad = FileOutcome(Path("x.csv"), lines=3, trades=0, rejected=3)
    bad.first_rejection = Rejected("x.csv:1", b"1,2", "bad_columns", "2 columns, spot trades has 7")
    assert bad.problem() == (
        "x.csv: all 3 line(s) rejected, the first at x.csv:1: bad_columns "
        "(2 columns, spot trades has 7)"
    )


def test_a_file_without_trades_says_what_it_held() -> None:
    quotes = FileOutcome(Path("q.gz"), lines=5)
    quotes.skipped.update({"bookTicker": 4, "header": 1})
    assert quotes.problem() == "q.gz: no trades in its 5 line(s) (4 bookTicker, 1 header)"
    assert report_of(quotes).failure == "nothing was replayed"


def test_flow_rejects_fail_the_replay_too() -> None:
    good = FileOutcome(Path("a.gz"), lines=10, trades=10)
    assert report_of(good, store_dead_letters=2).failure == "the flows rejected 2 trade(s)"


def test_the_summary_lists_problems_warnings_and_where_rejects_are_kept() -> None:
    good = FileOutcome(Path("a.gz"), lines=10, trades=10)
    empty = FileOutcome(Path("e.csv"))
    empty.error = UnreadableFile(empty.path, "empty", "empty")
    report = report_of(good, empty)
    report.kept, report.kept_file = 1, Path("/data/dead_letters/replay-1.jsonl")
    text = summary(report).splitlines()
    assert text[-3:] == [
        "rejected input in 1 of 2 file(s):",
        "  e.csv: empty",
        "1 dead letter(s) kept in /data/dead_letters/replay-1.jsonl and in ClickHouse "
        "db.dead_letters: SELECT * FROM db.dead_letters WHERE run_id = 'replay-1'",
    ]


class RecordingClient:
    def __init__(self) -> None:
        self.inserts: list[tuple[str, list[list[Any]], list[str], str]] = []

    def insert(self, table: str, rows: list[list[Any]], column_names: list[str], database: str):
        self.inserts.append((table, rows, column_names, database))


def letter(n: int) -> DeadLetter:
    return DeadLetter("ingest", "bad_json", f"x (at f:{n})", None, None, None, None, f"v{n}")


def test_the_keeper_writes_nothing_for_a_clean_run(tmp_path: Path) -> None:
    client = RecordingClient()
    with DeadLetterKeeper(tmp_path / "dl" / "r.jsonl", client, "db", "r") as keeper:
        pass
    assert keeper.kept == 0 and not (tmp_path / "dl").exists() and client.inserts == []


def test_the_keeper_appends_lines_and_inserts_in_batches(tmp_path: Path) -> None:
    client = RecordingClient()
    path = tmp_path / "dl" / "r.jsonl"
    with DeadLetterKeeper(path, client, "db", "run-9", batch=2) as keeper:
        for n in range(3):
            keeper.add(letter(n))
    assert [json.loads(line)["value"] for line in path.read_text().splitlines()] == [
        "v0",
        "v1",
        "v2",
    ]
    assert [len(rows) for _, rows, _, _ in client.inserts] == [2, 1]
    table, rows, columns, database = client.inserts[0]
    assert (table, columns, database) == ("dead_letters", list(COLUMNS), "db")
    row = dict(zip(COLUMNS, rows[0], strict=True))
    assert (row["run_id"], row["stage"], row["value"]) == ("run-9", "ingest", "v0")
