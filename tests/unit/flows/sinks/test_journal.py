"""The paper engine's write-ahead journal: events read back exactly, a torn last line
ignored with a warning, the file emptied once ClickHouse holds it, the restore merge, and
the output committing to it before it publishes, ClickHouse after."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from flows.sinks.journal import Journal
from flows.sinks.trading.output import PaperOutput
from flows.sinks.trading.rows import StoredEvent
from flows.sinks.trading.store import DerivedRows
from tests.unit.flows.sinks.test_trading_output import Journal as Log
from tests.unit.flows.sinks.test_trading_output import Producer, Store, _opened


def _event(account: str, seq: int, equity: Decimal | None = None) -> StoredEvent:
    return StoredEvent.of(msgspec.structs.replace(_opened(seq).event, account_id=account), equity)


def test_appended_events_read_back_exactly(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    written = [_event("a", 1, Decimal("10000.12345678")), _event("a", 2), _event("b", 1)]
    size = journal.append(written[:2])
    assert size == (tmp_path / "j").stat().st_size
    assert journal.append(written[2:]) == (tmp_path / "j").stat().st_size > size
    journal.close()
    assert Journal(tmp_path / "j").entries() == written  # reopened: appends after them


def test_a_torn_last_line_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal(tmp_path / "j")
    journal.append([_event("a", 1)])
    whole = _event("a", 2)
    with open(tmp_path / "j", "ab") as file:  # a crash cut the write short
        file.write(b"\t" + whole.payload[:30])
    with caplog.at_level(logging.WARNING, logger="flows.sinks.journal"):
        assert [s.event.seq for s in journal.entries()] == [1]
    assert "torn last line" in caplog.text


def test_a_bad_line_before_the_last_is_damage_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "j").write_bytes(b"\t{not json\n" + b"\t" + _event("a", 1).payload + b"\n")
    with pytest.raises(ValueError):
        Journal(tmp_path / "j").entries()


def test_the_file_starts_afresh_only_once_clickhouse_holds_all_of_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", fsync=False)
    first = journal.append([_event("a", 1)])
    second = journal.append([_event("a", 2)])
    journal.stored_to(first)  # ClickHouse holds the first batch only: nothing goes
    journal.append([_event("a", 3)])
    assert [s.event.seq for s in journal.entries()] == [1, 2, 3]
    journal.stored_to(second)
    journal.stored_to(first)  # an older answer never moves it back
    third = journal.append([_event("a", 4)])
    assert [s.event.seq for s in journal.entries()] == [1, 2, 3, 4]
    journal.stored_to(third)
    journal.append([_event("a", 5)])
    assert [s.event.seq for s in journal.entries()] == [5]


def test_a_batch_without_events_never_vouches_for_a_later_file(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    first = journal.append([_event("a", 1)])
    nothing = journal.append([])  # e.g. a batch of valuations only
    journal.stored_to(first)
    journal.append([_event("a", 2)])  # the file started afresh
    journal.stored_to(nothing)  # that batch's rows went in after
    journal.append([_event("a", 3)])
    assert [s.event.seq for s in journal.entries()] == [2, 3]


def test_pending_is_what_clickhouse_lacks_per_account(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.append([_event("a", 1), _event("a", 2), _event("b", 1), _event("a", 3)])
    pending = journal.pending({"a": 2})
    assert [(s.event.account_id, s.event.seq) for s in pending] == [("b", 1), ("a", 3)]
    journal.clear()
    assert journal.entries() == [] and journal.size == 0


def test_the_output_journals_then_publishes_and_stores_after(tmp_path: Path) -> None:
    log = Log()
    journal = Journal(tmp_path / "j")
    rows = DerivedRows(Store(log), journal=journal, every_s=0)
    output = PaperOutput(Store(log), Producer(log), "events", rows, journal=journal)
    output.put([_opened(1)], [("accounts", "a1", b"view")])
    output.close()
    assert [what for what, _ in log.lines] == ["publish", "publish", "log", "derived"]
    assert [s.event.seq for s in journal.entries()] == [1]  # published before it was stored
    journal.append([_opened(2)])  # ClickHouse held everything: the file started afresh
    assert [s.event.seq for s in journal.entries()] == [2]


def test_a_journal_that_fails_publishes_nothing(tmp_path: Path) -> None:
    log = Log()
    journal = Journal(tmp_path / "j")
    journal.close()  # writes now fail
    output = PaperOutput(
        Store(log), Producer(log), "events", DerivedRows(Store(log)), journal=journal
    )
    output.put([_opened(1)], [("accounts", "a1", b"view")])
    with pytest.raises(ValueError):
        output.close()
    assert log.lines == []
