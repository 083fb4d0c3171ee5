"""ClickHouse output of the paper engine: its rows inserted, synchronously (`PaperStore`) or
in a thread of their own (`DerivedRows`, a `QueueThread` like `PaperOutput`).

`paper_events` is the durable log the engine restores from; the three other tables are
derived from the same events for analysts and the API's history. Rows go in as
TabSeparated text (`flows.sinks.trading.rows`) through clickhouse-connect's
`raw_insert`. Every table is a ReplacingMergeTree keyed by what a row describes, so
writing an event twice leaves the same rows.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from flows.sinks.clickhouse import TsvTable
from flows.sinks.journal import Journal
from flows.sinks.trading.rows import CLOCK, DERIVED, EVENTS, VALUATIONS, StoredEvent, Valuation

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PaperStore:
    """Inserts the paper engine's rows, each call one insert per table, synchronously.

    Args:
        client_factory: Returns the clickhouse-connect client to insert with (called on
            first use).
        database: Database holding the paper tables.
    """

    def __init__(self, client_factory: Callable[[], Any], database: str) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._database = database
        self.written: dict[str, int] = {}

    def _insert(self, table: TsvTable[Any], rows: list[Any]) -> None:
        data = table.encode(rows)
        if not data:
            return
        if self._client is None:
            self._client = self._client_factory()
        self._client.raw_insert(
            f"{self._database}.{table.name}", list(table.columns), data, fmt="TabSeparated"
        )
        self.written[table.name] = self.written.get(table.name, 0) + data.count(b"\n")

    def write_log(self, stored: list[StoredEvent]) -> None:
        """Insert events into ``paper_events`` (one insert)."""
        if stored:
            self._insert(EVENTS, stored)

    def write_derived(self, stored: list[StoredEvent]) -> None:
        """Insert the events' rows of ``paper_orders``, ``paper_fills`` and ``paper_ledger``."""
        if stored:
            for table in DERIVED:
                self._insert(table, stored)

    def write_valuations(self, valuations: list[Valuation]) -> None:
        """Insert minute valuation rows into ``paper_ledger``."""
        if valuations:
            self._insert(VALUATIONS, valuations)

    def write_clock(self, time_us: int) -> None:
        """Insert the engine's market time into ``paper_clock`` (where a restart's
        catch-up begins, `flows.trading.catchup`)."""
        if time_us:
            self._insert(CLOCK, [time_us])


class QueueThread(ABC, Generic[T]):
    """A daemon thread that works through a bounded queue until it takes None (`_end`);
    what stops it with an error is kept (`error`) and raised by `check`.

    Args:
        name: The thread's name.
        max_items: Items that may wait before putting one blocks.
    """

    def __init__(self, name: str, max_items: int) -> None:
        self._queue: queue.Queue[T | None] = queue.Queue(max_items)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @abstractmethod
    def _run(self) -> None:
        """The thread's work: take items until None (`_waiting` takes what is queued)."""

    def _waiting(self, first: T | None) -> list[T | None]:
        """`first` and every item waiting after it, up to the end (None) if it is there."""
        items = [first]
        while items[-1] is not None and not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    def check(self) -> None:
        """Raise what stopped the thread, if anything did."""
        if self.error is not None:
            raise self.error

    def _end(self, timeout_s: float) -> None:
        """Let the thread work through what is queued and end; raise what stopped it."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout_s)
        self.check()


class DerivedRows(QueueThread[tuple[list[StoredEvent], list[Valuation], int, int]]):
    """Writes derived rows (`PaperStore.write_derived`, `write_valuations`) in a thread,
    batches in the order handed over, each insert covering every batch waiting, at most
    one round of inserts per `every_s`.

    A failed insert stops the thread; the next `submit` (or `check`, `close`) raises it.
    What a crash keeps from being written is written again at start
    (`flows.trading.resume.underived`): every batch's rows go in before the next batch's,
    and each batch's ledger rows last.

    With a journal, the events go into ``paper_events`` here first (one insert per round),
    and the journal is told ClickHouse holds them (`Journal.stored_to`) once every row
    of the round is in.

    Args:
        store: The store to write with (a client of its own, see `PaperOutput`).
        max_batches: Batches that may wait before `submit` blocks.
        every_s: Least seconds between two rounds of inserts.
        journal: The journal the events were committed to; None: they are in
            ``paper_events`` already.
    """

    def __init__(
        self,
        store: PaperStore,
        max_batches: int = 10_000,
        every_s: float = 1.0,
        journal: Journal | None = None,
    ) -> None:
        super().__init__("paper-rows", max_batches)
        self._store = store
        self._journal = journal
        self._every_s = every_s
        self._thread.start()

    def _run(self) -> None:
        flushed = 0.0
        while True:
            first = self._queue.get()
            if first is not None:
                # Few, larger inserts: each makes a part the store merges later (in the
                # engine's own process with chDB).
                time.sleep(max(0.0, flushed + self._every_s - time.monotonic()))
            flushed = time.monotonic()
            items = self._waiting(first)
            work = [item for item in items if item is not None]
            if not work:  # the end came alone
                return
            events = [s for stored, *_ in work for s in stored if s.event.seq]
            try:
                if self._journal is not None:
                    self._store.write_log(events)
                self._store.write_derived(events)
                self._store.write_valuations([v for _, valuations, *_ in work for v in valuations])
                # After the events: a stored market time never runs ahead of them.
                self._store.write_clock(max((clock for *_, clock in work), default=0))
                if self._journal is not None:
                    self._journal.stored_to(max((size for _, _, size, _ in work), default=0))
            except BaseException as exc:
                logger.exception("paper rows could not be written")
                self.error = exc
                return
            if items[-1] is None:
                return

    def submit(
        self,
        stored: list[StoredEvent],
        valuations: Sequence[Valuation] = (),
        size: int = 0,
        clock_us: int = 0,
    ) -> None:
        """Queue one batch's rows (and valuation rows); `size`: the journal's size after
        the batch's events; `clock_us`: the market time applied, stored after them."""
        self.check()
        if stored or valuations or clock_us:
            self._queue.put((stored, list(valuations), size, clock_us))

    def close(self, timeout_s: float = 60.0) -> None:
        """Write what is queued, then end the thread."""
        self._end(timeout_s)
