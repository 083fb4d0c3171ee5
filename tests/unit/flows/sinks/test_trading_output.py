"""The paper engine's output thread: events stored before anything about them is published,
messages in the order handed over, derived rows after, a failure surfaced to the loop."""

from __future__ import annotations

import gc
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from flows.sinks.trading.output import FETCHED_HEADER, GcPauses, Latencies, PaperOutput
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

    def write_clock(self, time_us: int) -> None:
        if time_us:
            self.journal.add("clock", time_us)


class Producer:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def produce(
        self, topic: str, value: bytes, key: Any, on_delivery: Any = None, headers: Any = None
    ) -> None:
        self.journal.add("publish", topic)
        if headers:
            self.journal.add("headers", (topic, headers))

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


def test_the_market_time_is_stored_after_the_events_handed_over_before_it() -> None:
    journal = Journal()
    output = PaperOutput(Store(journal), Producer(journal), "events", DerivedRows(Store(journal)))
    output.put([_opened(1)], clock_us=5)
    output.put([], clock_us=7)  # a clock alone is handed over too
    output.put([_opened(2)])
    output.close()
    lines = journal.lines
    clocks = [i for i, (what, _) in enumerate(lines) if what == "clock"]
    assert clocks, lines
    # the last clock written is the latest handed over, and it follows event 1's rows (a
    # restart never finds a market time ahead of the events it caused)
    assert lines[clocks[-1]][1] == 7
    derived = next(i for i, (what, seqs) in enumerate(lines) if what == "derived" and 1 in seqs)
    assert clocks[0] > derived
    assert all(lines[i][1] in (5, 7) for i in clocks)


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


def test_events_say_when_their_records_were_read_and_the_engine_stage_is_timed() -> None:
    journal = Journal()
    latencies = Latencies()
    output = PaperOutput(
        Store(journal), Producer(journal), "events", DerivedRows(Store(journal)),
        latencies=latencies,
    )  # fmt: skip
    fetched = time.monotonic() - 0.25  # the batch was read 250 ms ago
    before_us = time.time_ns() // 1000
    output.put([_opened(1)], [("accounts", "a1", b"view")], fetched=fetched)
    output.put([_opened(2)])  # events of the timers: no batch read behind them
    output.close()
    headers = [detail for what, detail in journal.lines if what == "headers"]
    # Only the event from the read batch carries the header, views never do.
    assert [topic for topic, _ in headers] == ["events"]
    [(name, value)] = headers[0][1]
    assert name == FETCHED_HEADER
    assert before_us - 300_000 < int(value) < before_us - 200_000
    stages = dict(part.split(" ") for part in latencies.take().split(", "))
    assert float(stages["engine"].split("/")[0]) >= 250


def test_latencies_report_p50_p99_and_max_per_stage_then_forget() -> None:
    latencies = Latencies(keep=1_000)
    for ms in range(1, 1_001):
        latencies.add("loop", float(ms))
    latencies.add("loop", 5_000.0)  # beyond `keep`: only the max sees it
    latencies.add("stored", 2.0)
    assert latencies.take() == "loop 501.0/991.0/5000.0, stored 2.0/2.0/2.0"
    assert latencies.take() == ""


def test_older_generation_collections_are_counted_as_gc_pauses() -> None:
    latencies = Latencies()
    with GcPauses(latencies):
        gc.collect(0)  # the young generation: left out
        assert latencies.take() == ""
        gc.collect(2)
    gc.collect(2)  # after the block: no longer counted
    stages = latencies.take()
    assert stages.startswith("gc ") and stages.count(",") == 0, stages
    p50, p99, top = (float(x) for x in stages.removeprefix("gc ").split("/"))
    assert 0 < p50 == p99 == top
