"""The paper engine's output thread: events stored before anything about them is published,
messages in the order handed over, derived rows after, a failure surfaced to the loop."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest

from flows.sinks.trading.output import PaperOutput
from flows.sinks.trading.rows import StoredEvent, Valuation
from flows.sinks.trading.store import DerivedRows, PaperStore
from schemas.trading import AccountOpened, LedgerEntry


class Journal:
    """What happened, in order, across the store and the producer."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def add(self, what: str, detail: Any) -> None:
        with self.lock:
            self.lines.append((what, detail))


class Store(PaperStore):
    def __init__(self, journal: Journal, fail: bool = False) -> None:
        super().__init__(lambda: None, "db")
        self.journal = journal
        self.fail = fail

    def write_log(self, stored: list[StoredEvent]) -> None:
        if self.fail:
            raise RuntimeError("the store is gone")
        self.journal.add("log", [s.event.seq for s in stored])

    def write_derived(self, stored: list[StoredEvent]) -> None:
        self.journal.add("derived", [s.event.seq for s in stored])

    def write_valuations(self, valuations: list[Valuation]) -> None:
        if valuations:
            self.journal.add("valuations", len(valuations))


class Producer:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def produce(self, topic: str, value: bytes, key: Any, on_delivery: Any = None) -> None:
        self.journal.add("publish", topic)

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return 0


def _opened(seq: int) -> StoredEvent:
    entry = LedgerEntry("USDT", "deposit", Decimal(1), Decimal(1))
    return StoredEvent.of(AccountOpened(
        account_id=f"a{seq}", seq=seq, time_us=0, owner="u", name="n", market="spot",
        exchange="sim", venue="paper", entries=[entry],
    ))  # fmt: skip


def test_events_are_stored_then_published_then_their_rows_derived() -> None:
    journal = Journal()
    output = PaperOutput(Store(journal), Producer(journal), "events", DerivedRows(Store(journal)))
    valuation = Valuation("a1", 0, 1, "USDT", Decimal(1), Decimal(1))
    output.put([_opened(1)], [("accounts", "a1", b"view")], [valuation])
    output.put([], [("depth_watch", "sim:spot", b"watch")])
    output.close()
    lines = journal.lines
    stored_at = lines.index(("log", [1]))
    published = [i for i, (what, _) in enumerate(lines) if what == "publish"]
    assert [lines[i][1] for i in published] == ["events", "accounts", "depth_watch"]
    assert stored_at < published[0]
    assert lines.index(("derived", [1])) > stored_at
    assert ("valuations", 1) in lines


def test_a_store_that_fails_publishes_nothing_and_stops_the_loop() -> None:
    journal = Journal()
    output = PaperOutput(
        Store(journal, fail=True), Producer(journal), "events", DerivedRows(Store(journal))
    )
    output.put([_opened(1)], [("accounts", "a1", b"view")])
    with pytest.raises(RuntimeError, match="the store is gone"):
        output.close()
    assert not [line for line in journal.lines if line[0] == "publish"]
    with pytest.raises(RuntimeError):
        output.check()
