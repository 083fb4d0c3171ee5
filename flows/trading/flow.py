"""The paper engine as a process: market data and commands in; events, views, depth watches
and the store out.

One consumer reads md.trades.v1, md.quotes.v1, md.depth.v1, md.marks.v1 and tr.orders.v1
(every partition assigned explicitly, no consumer group) and feeds one `PaperEngine`
through `flows.trading.intake` (records kept or skipped on their key, commands applied
once); what comes out goes through `flows.trading.outbox` (events, views, depth watches,
valuation rows); `flows.trading.process` holds the steps of the start.

Durability: the events of each fetched batch are appended to a write-ahead journal in
the data directory (`flows.sinks.journal`; fsync'ed unless `PaperSettings.journal_fsync`
is off) *before* they are published to tr.events.v1, and inserted into ``paper_events``
afterwards, off the path to Kafka (the insert, with chDB's merges in this process, took
most of a fill's delay). At start the engine writes the journal's events that
``paper_events`` lacks through to it, empties the journal, and restores every account
from that table (`flows.trading.resume`), so nothing it published is lost. (Without a
journal, each batch is inserted into ``paper_events`` before it is published.) Commands are
read from the beginning of tr.orders.v1 at every start and none is applied twice; one
sent while the engine was down is applied when it comes back. A refusal for an account
that does not exist (seq 0) is published but belongs to no log.
Market data is read live from the offsets its partitions end at when the engine starts;
before that, the trades and marks it missed while it was down are replayed in market time
(`flows.trading.catchup`), so resting orders fill, stops trigger and funding is paid as if
it had run. Its market time is stored (``paper_clock``) once a market-time minute and at
stop, after the events caused by then, to know where that catch-up begins.

Why a plain consumer loop and not Bytewax: every record (any symbol, any account) meets
the one engine state in order, so a dataflow would be a single stateful step on one key,
with nothing to parallelise, and its recovery snapshots would duplicate the log the
engine restores from. The loop takes a fetched batch straight to the engine and the
events straight to the journal and Kafka, before its timed work (`bench/paper.py`
measures market event → fill event; the status line splits it into stages).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from flows.sinks.journal import Journal
from flows.sinks.trading.output import GcPauses, PaperOutput
from flows.sinks.trading.rows import StoredEvent
from flows.sinks.trading.store import DerivedRows, PaperStore
from flows.trading import backlog, catchup
from flows.trading.engine import PaperEngine
from flows.trading.intake import Intake
from flows.trading.interest import Pairs
from flows.trading.outbox import Outbox
from flows.trading.process import (
    Accounts,
    PaperCounters,
    PaperTopics,
    announce_stored_funding,
    assign,
    unpublished,
    write_through,
)
from flows.trading.resume import load_events, load_symbols, underived
from flows.trading.settings import PaperSettings
from schemas.trading import encode

logger = logging.getLogger(__name__)

SYMBOLS_EVERY_S = 60.0
"""How often the symbols are read again from ClickHouse."""


class PaperFlow:
    """The engine process's loop (run it in a thread of its own, or as the process).

    Args:
        settings: The engine's settings.
        consumer: confluent-kafka consumer configuration (`runtime.kafka.consumer_config`).
        producer: confluent-kafka producer configuration.
        clickhouse: Returns the ClickHouse client to read and insert events with.
        rows_clickhouse: Returns the client the derived rows are inserted with, in a
            thread of their own (a second client keeps those inserts from queueing in
            front of the events'); None: `clickhouse`'s.
        database: Database holding ``symbols`` and the paper tables.
        names: The topics.
        stop: Ends `run` when set.
        counters: Filled with live counts.
        engine_factory: Builds the engine from settings and symbols.
        clock: Monotonic seconds (pacing only: the engine never reads a clock).
        journal: The write-ahead journal's file, the events' commit point (see the module
            docstring); None: ``paper_events`` itself.
    """

    def __init__(
        self,
        settings: PaperSettings,
        *,
        consumer: dict[str, Any],
        producer: dict[str, Any],
        clickhouse: Callable[[], Any],
        database: str,
        rows_clickhouse: Callable[[], Any] | None = None,
        names: PaperTopics | None = None,
        stop: threading.Event | None = None,
        counters: PaperCounters | None = None,
        engine_factory: Callable[[PaperSettings, list[Any]], PaperEngine] = PaperEngine,
        clock: Callable[[], float] = time.monotonic,
        journal: Path | None = None,
    ) -> None:
        self.settings = settings
        self.journal = (
            Journal(journal, fsync=settings.journal_fsync) if journal is not None else None
        )
        self.names = names if names is not None else PaperTopics()
        self.stop = stop if stop is not None else threading.Event()
        self.counters = counters if counters is not None else PaperCounters()
        self.ready = threading.Event()
        self._consumer_config = consumer
        self._producer_config = producer
        self._clickhouse = clickhouse
        self._database = database
        self._engine_factory = engine_factory
        self._clock = clock
        self.store = PaperStore(clickhouse, database)
        self.rows_store = PaperStore(rows_clickhouse or clickhouse, database)
        self.engine: PaperEngine | None = None
        self._intake: Intake | None = None
        self._outbox: Outbox | None = None
        self._consumer: Consumer | None = None
        self._accounts = Accounts()
        self._next_symbols = 0.0

    # ---- start --------------------------------------------------------------------

    def start(self) -> None:
        """Restore every account from ClickHouse, close the gaps a crash may have left,
        publish every view and watch set, and assign the topics. `ready` is set after."""
        client = self._clickhouse()
        database = self._database
        symbols = load_symbols(client, database)
        engine = self.engine = self._engine_factory(self.settings, symbols)
        names = self.names
        intake = self._intake = Intake(engine, names, self.counters, Pairs(symbols), self._accounts)
        journaled = write_through(self.journal, self.store, client, database)
        restored = 0
        applied: set[str] = set()
        for event in load_events(client, database):
            engine.restore((event,))
            self._accounts.note(event)
            if event.command_id:
                applied.add(event.command_id)
            restored += 1
        repaired = underived(client, database)
        if repaired:
            self.store.write_derived([StoredEvent.of(e) for e in repaired])
        since_us = backlog.start_time(client, database, engine.now_us)
        announce_stored_funding(engine, self._accounts.home, client, database, since_us)
        output = PaperOutput(
            self.store,
            Producer(self._producer_config),
            names.trading.events,
            DerivedRows(self.rows_store, journal=self.journal),
            latencies=self.counters.latencies,
            journal=self.journal,
        )
        outbox = self._outbox = Outbox(
            engine, output, names, self.counters, self._clock, self._accounts
        )
        # Stored already: published only.
        for event in unpublished(self._consumer_config, names.trading.events, client, database):
            outbox.produce(names.trading.events, event.account_id, encode(event))
        home = self._accounts.home
        for account_id in home:
            intake.refresh_needs(account_id)
        caught = catchup.catch_up(
            engine, list(home), since_us, self.settings.catchup_max_h,
            consumer=self._consumer_config, clickhouse=client, database=database,
            trades_topic=names.trades, marks_topic=names.marks,
        )  # fmt: skip
        if caught is not None:
            for event in caught.events:
                self._accounts.note(event)
            for account_id in outbox.emit(caught.events) if caught.events else ():
                intake.refresh_needs(account_id)
            intake.skip_replayed(caught.replayed)
        self.counters.accounts = len(home)
        now = self._clock()
        outbox.start(now)
        outbox.hand_over()
        starts = caught.ends if caught is not None else None
        self._consumer, ends = assign(self._consumer_config, names, starts)
        # The commands tr.orders.v1 still holds from before this start were applied when
        # their id is in the log.
        intake.skip_applied(applied, ends)
        self._next_symbols = now + SYMBOLS_EVERY_S
        logger.info(
            "paper engine: %d accounts restored from %d events (%d from the journal), %d "
            "symbols; %d events' rows written again",
            len(home),
            restored,
            journaled,
            len(symbols),
            len(repaired),
        )
        # What the start built (accounts, symbols, modules) lives as long as the process:
        # out of the collector's sight, a full collection (`runtime.process.release_memory`
        # every few minutes) scans only what came after. The garbage goes first.
        gc.collect()
        gc.freeze()
        self.ready.set()

    # ---- the loop -----------------------------------------------------------------

    def run(self) -> PaperCounters:
        """Start, then process until `stop` is set; publish what is queued and close."""
        try:
            with GcPauses(self.counters.latencies):
                self.start()
                while not self.stop.is_set():
                    self.step()
        finally:
            self.close()
        return self.counters

    def step(self, timeout_s: float = 0.05) -> int:
        """Read and process one batch, then do what is due (views, watches, valuations,
        symbols). Returns how many records the batch held."""
        consumer = self._consumer
        outbox = self._outbox
        assert consumer is not None and outbox is not None, "start() first"
        outbox.out.check()  # the output thread's failure stops the loop
        # What is there now; else wait for the first record only: consume(n, timeout)
        # waits for n records or the whole timeout, which would add up to `timeout_s` to
        # every record's latency.
        batch = self.settings.batch_size
        messages = consumer.consume(batch, 0)
        if not messages:
            messages = consumer.consume(1, timeout_s)
            if messages and batch > 1:
                messages += consumer.consume(batch - 1, 0)
        if messages:
            outbox.fetched = time.monotonic()
            created = messages[0].timestamp()[1]
            if created > 0:
                self.counters.latencies.add("fetched", time.time() * 1000 - created)
            self._process(messages)
            # The batch's events go out now, not behind the timers' work (valuing a
            # slice of the accounts, every view each 10 s, the symbols each minute).
            outbox.hand_over()
        self._timers(self._clock())
        return len(messages)

    def _process(self, messages: Sequence[Any]) -> None:
        intake, outbox = self._intake, self._outbox
        assert intake is not None and outbox is not None
        events, dead = intake.process(messages)
        if dead:
            outbox.dead_letters(dead)
        if events:
            for account_id in outbox.emit(events):
                intake.refresh_needs(account_id)

    def _timers(self, now: float) -> None:
        engine, intake, outbox = self.engine, self._intake, self._outbox
        assert engine is not None and intake is not None and outbox is not None
        outbox.tick(now)
        if now >= self._next_symbols:
            self._next_symbols = now + SYMBOLS_EVERY_S
            symbols = load_symbols(self._clickhouse(), self._database)
            engine.update_symbols(symbols)
            intake.pairs = Pairs(symbols)
        outbox.hand_over()

    # ---- stop ---------------------------------------------------------------------

    def close(self) -> None:
        """Store and publish what was handed over (unless the output failed), and close
        the consumer."""
        try:
            if self._outbox is not None and self._outbox.out.error is None:
                self._outbox.keep_time()
                self._outbox.hand_over()
                self._outbox.out.close()
        finally:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
            if self.journal is not None:
                self.journal.close()
