"""The paper engine as a process: market data and commands in; events, views, depth watches
and the store out.

One consumer reads md.trades.v1, md.quotes.v1, md.depth.v1, md.marks.v1 and tr.orders.v1
(every partition assigned explicitly, no consumer group) and feeds one `PaperEngine`. A
market record is kept or skipped on its Kafka key before its value is decoded: only the
symbols some account needs (`flows.trading.interest`) are decoded; the last quote, depth
and mark of every other symbol are kept undecoded, so an order on a new symbol finds its
book at once.

Durability: the events of each fetched batch are appended to a write-ahead journal in
the data directory (`flows.sinks.journal`; fsync'ed unless `PaperSettings.journal_fsync`
is off) *before* they are published to tr.events.v1, and inserted into ``paper_events``
afterwards, off the path to Kafka (the insert, with chDB's merges in this process, took
most of a fill's delay). At start the engine writes the journal's events that
``paper_events`` lacks through to it, empties the journal, and restores every account
from that table (`flows.trading.resume`), so nothing it published is lost. (Without a
journal, each batch is inserted into ``paper_events`` before it is published.) Commands are
read from the beginning of tr.orders.v1 at every start: up to where the topic ended at
start, a command whose id the log holds is skipped here (however old), and later the
engine drops a redelivered command id itself, so no command is applied twice; one sent
while the engine was down is applied when it comes back. A refusal for an account that
does not exist (seq 0) is published but belongs to no log.
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

Published besides the events: an account's `AccountView` (tr.accounts.v1) after its
events, at most once a second while only prices move (accounts are valued in turn, a
slice per loop, each about once a second), and every account's at start and every
`FULL_VIEWS_EVERY_S`; `DepthWatch` (md.depth_watch.v1) on change and every
`DEPTH_WATCH_EVERY_S`; one ``valuation`` row per account per market-time minute to
``paper_ledger`` while it holds positions or assets besides its deposits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from flows.dead_letters import dead_letter_message, record_dead_letter
from flows.errors import FlowError
from flows.sinks.journal import Journal
from flows.sinks.trading import (
    DerivedRows,
    Latencies,
    PaperOutput,
    PaperStore,
    StoredEvent,
    Valuation,
)
from flows.trading import catchup
from flows.trading.engine import PaperEngine
from flows.trading.interest import Interest, Pairs, account_needs
from flows.trading.pacing import ViewPacer, WatchPacer
from flows.trading.resume import (
    load_events,
    load_last_marks,
    load_symbols,
    published_seqs,
    stored_seqs,
    underived,
)
from flows.trading.settings import PaperSettings
from schemas import topics
from schemas.deadletter import DeadLetter
from schemas.depth import DepthWatch, depth_decoder, encode_depth
from schemas.perps import mark_decoder
from schemas.quotes import quote_decoder
from schemas.topics import TradingTopics, symbol_key
from schemas.trades import trade_decoder
from schemas.trading import (
    AccountEvent,
    AccountOpened,
    AccountReset,
    AccountView,
    PlaceOrder,
    command_decoder,
    encode,
)

logger = logging.getLogger(__name__)

STAGE = "paper"
"""The `stage` of every dead letter this process writes, and their Kafka key."""

VIEW_EVERY_S = 1.0
"""Least seconds between two views of one account whose only change is its valuation."""

FULL_VIEWS_EVERY_S = 10.0
"""Every account's view is republished this often (and at start)."""


SYMBOLS_EVERY_S = 60.0
"""How often the symbols are read again from ClickHouse."""

_MINUTE_US = 60_000_000

FUNDING_LOOKBACK_US = 9 * 3_600_000_000
"""At start, the last stored mark of a held perpetual is looked for this far before the
restored market time: Binance's longest funding interval is 8 h."""


@dataclass(frozen=True, slots=True)
class PaperTopics:
    """The topics the paper engine reads and writes (defaults: `schemas.topics`)."""

    trades: str = topics.TRADES
    quotes: str = topics.QUOTES
    depth: str = topics.DEPTH
    marks: str = topics.MARKS
    depth_watch: str = topics.DEPTH_WATCH
    dead_letters: str = topics.DEADLETTER
    trading: TradingTopics = field(default_factory=TradingTopics)

    @property
    def market(self) -> tuple[str, str, str, str]:
        """The market data topics, read from their latest offsets."""
        return (self.trades, self.quotes, self.depth, self.marks)


@dataclass
class PaperCounters:
    """Live counts of a running paper engine, for status lines (read from any thread):
    commands read; market records read, and applied (decoded: their symbol was needed);
    events stored and published, and fills among them; views published; records
    rejected; accounts held; the delays of the stages an event goes through (`Latencies`:
    ``fetched`` = a batch's first record's age when the engine reads it, ``loop`` = read →
    handed to the output, then the output's stages)."""

    commands: int = 0
    market: int = 0
    applied: int = 0
    events: int = 0
    fills: int = 0
    views: int = 0
    dead_letters: int = 0
    accounts: int = 0
    latencies: Latencies = field(default_factory=Latencies)

    def summary(self) -> str:
        """The counts in a line, and the stages' delays since the previous line."""
        stages = self.latencies.take()
        return (
            f"{self.accounts:,} accounts; {self.commands:,} commands, {self.market:,} market "
            f"records ({self.applied:,} applied); {self.events:,} events ({self.fills:,} "
            f"fills), {self.views:,} views, {self.dead_letters:,} dead letters"
            + (f"; stages mean/max ms: {stages}" if stages else "")
        )


class PaperFlowError(FlowError):
    """The paper engine cannot run: a topic it reads is missing."""


def _home_assets(event: AccountEvent) -> list[str] | None:
    """The deposit assets an opening or reset sets, else None."""
    if isinstance(event, AccountOpened | AccountReset):
        return [entry.asset for entry in event.entries]
    return None


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
        self._out: PaperOutput | None = None
        # What this step hands to the output: events to store and publish, then
        # messages to publish (topic, key, value), and valuation rows.
        self._stored: list[StoredEvent] = []
        self._messages: list[tuple[str, bytes | str, bytes]] = []
        self._valuations: list[Valuation] = []
        self.engine: PaperEngine | None = None
        self._consumer: Consumer | None = None
        self._interest = Interest()
        self._pairs = Pairs(())
        self._home: dict[str, list[str]] = {}
        # The last record (undecoded) per symbol key, per topic of quotes, depth and marks.
        self._latest: dict[str, dict[bytes, Any]] = {}
        self._views: dict[str, AccountView] = {}
        self._view_pacer = ViewPacer(VIEW_EVERY_S)
        self._watch_pacer = WatchPacer()
        self._minute = 0
        self._decoders: dict[str, Callable[[bytes], Any]] = {}
        self._feed: dict[str, Callable[[Any], list[AccountEvent]]] = {}
        self._next_full = self._next_symbols = self._next_watch = 0.0
        self._accounts: list[str] = []  # valued in turn by `_value_some`
        self._cursor = -1
        self._value_credit = 0.0
        self._valued_at = 0.0
        self._catchup: dict[int, int] = {}
        self._applied_ids: set[str] | None = None
        self._fetched = 0.0  # monotonic seconds the last batch was read at
        self._clock_us = 0  # market time to store with the next hand-over (0: none)

    # ---- start --------------------------------------------------------------------

    def start(self) -> None:
        """Restore every account from ClickHouse, close the gaps a crash may have left,
        publish every view and watch set, and assign the topics. `ready` is set after."""
        client = self._clickhouse()
        symbols = load_symbols(client, self._database)
        engine = self.engine = self._engine_factory(self.settings, symbols)
        self._pairs = Pairs(symbols)
        journaled = self._write_through(client)
        restored = 0
        applied: set[str] = set()
        for event in load_events(client, self._database):
            engine.restore((event,))
            self._note(event)
            if event.command_id:
                applied.add(event.command_id)
            restored += 1
        repaired = underived(client, self._database)
        if repaired:
            self.store.write_derived([StoredEvent.of(e) for e in repaired])
        since_us = catchup.start_time(client, self._database, engine.now_us)
        self._announce_stored_funding(client, engine, since_us)
        self._out = PaperOutput(
            self.store,
            Producer(self._producer_config),
            self.names.trading.events,
            DerivedRows(self.rows_store, journal=self.journal),
            latencies=self.counters.latencies,
            journal=self.journal,
        )
        self._republish_unpublished(client)
        for account_id in self._home:
            self._refresh_needs(account_id)
        caught = self._catch_up(client, engine, since_us)
        self.counters.accounts = len(self._home)
        now = self._clock()
        self._minute = engine.now_us // _MINUTE_US
        self._views = {v.account_id: v for v in engine.views(changed_only=False)}
        self._valued_at = now
        self._publish_all_views(now)
        self._publish_watch(now)
        self._hand_over()
        self._wire_decoders(engine)
        if caught is not None:
            names = self.names
            self._feed[names.trades] = caught.replayed.trades(engine.trade)
            self._feed[names.marks] = caught.replayed.marks(engine.mark)
        self._consumer = self._assign(caught.ends if caught is not None else {})
        # The commands tr.orders.v1 still holds from before this start were applied when
        # their id is in the log: skip those until the partition is read to where it
        # ended at start (the engine itself only remembers an account's recent ids).
        self._applied_ids = applied if self._catchup else None
        self._next_symbols = now + SYMBOLS_EVERY_S
        logger.info(
            "paper engine: %d accounts restored from %d events (%d from the journal), %d "
            "symbols; %d events' rows written again",
            len(self._home),
            restored,
            journaled,
            len(symbols),
            len(repaired),
        )
        self.ready.set()

    def _write_through(self, client: Any) -> int:
        """Insert the journal's events ``paper_events`` lacks (a crash kept them from it),
        with their rows, then empty the journal. Returns how many there were."""
        journal = self.journal
        if journal is None:
            return 0
        pending = journal.pending(stored_seqs(client, self._database))
        if pending:
            logger.warning(
                "paper engine: writing %d journaled events through to ClickHouse", len(pending)
            )
            self.store.write_log(pending)
            self.store.write_derived(pending)
        journal.clear()
        return len(pending)

    def _announce_stored_funding(self, client: Any, engine: PaperEngine, until_us: int) -> None:
        """Give the engine the funding time each held perpetual's last stored mark up to
        its market time `until_us` announced, so one that passed while the engine was down
        is still paid (by the catch-up's marks, or else the first live one)."""
        held = [
            (state.exchange, symbol)
            for state in filter(None, map(engine.account, self._home))
            if state.market == "usdm"
            for symbol, position in state.positions.items()
            if position.qty
        ]
        since_us = until_us - FUNDING_LOOKBACK_US
        for mark in load_last_marks(client, self._database, held, since_us, until_us):
            engine.announce(mark)

    def _catch_up(self, client: Any, engine: PaperEngine, since_us: int) -> catchup.CatchUp | None:
        """Replay the trades and marks missed since `since_us` (see the module docstring)
        and hand over the events they cause; None when there is nothing to replay."""
        accounts = list(filter(None, map(engine.account, self._home)))
        window = catchup.plan(
            accounts, since_us, time.time_ns() // 1000, self.settings.catchup_max_h
        )
        if window is None:
            return None
        caught = catchup.gather(
            window, consumer=self._consumer_config, clickhouse=client,
            database=self._database, trades_topic=self.names.trades,
            marks_topic=self.names.marks,
        )  # fmt: skip
        events = catchup.replay(engine, caught.records)
        for event in events:
            self._note(event)
        if events:
            self._emit(events)
        logger.info(
            "paper engine: caught up on %d records (%d from ClickHouse) of %d symbols "
            "after market time %d us, up to the live offsets: %d events",
            len(caught.records),
            caught.from_store,
            len(window.trades | window.marks),
            window.since_us,
            len(events),
        )
        return caught

    def _wire_decoders(self, engine: PaperEngine) -> None:
        names = self.names
        self._decoders = {
            names.trades: trade_decoder().decode,
            names.quotes: quote_decoder().decode,
            names.depth: depth_decoder().decode,
            names.marks: mark_decoder().decode,
        }
        self._latest = {names.quotes: {}, names.depth: {}, names.marks: {}}
        self._feed = {
            names.trades: engine.trade,
            names.quotes: engine.quote,
            names.depth: engine.depth,
            names.marks: engine.mark,
        }

    def _republish_unpublished(self, client: Any) -> None:
        """Publish the stored events a crash kept from tr.events.v1 (accounts whose log
        the topic still holds; the views published next carry every account's state)."""
        published = published_seqs(self._consumer_config, self.names.trading.events)
        if not published:
            return
        again = [
            e
            for e in load_events(client, self._database)
            if e.account_id in published and e.seq > published[e.account_id]
        ]
        if again:
            logger.warning(
                "paper engine: publishing %d stored events a crash held back", len(again)
            )
            for event in again:  # stored already: published only
                self._produce(self.names.trading.events, event.account_id, encode(event))

    def _assign(self, starts: dict[tuple[str, int], int]) -> Consumer:
        """A consumer on every partition: commands from the beginning, market data from
        `starts` (where a catch-up stopped reading) or else the offsets its partitions
        end at now (resolved here, so whatever is produced after `start` returns is
        read)."""
        consumer = Consumer(self._consumer_config)
        names = self.names
        assignment = []
        metadata = consumer.list_topics(timeout=30).topics
        for topic in (names.trading.orders, *names.market):
            found = metadata.get(topic)
            if found is None or found.error is not None or not found.partitions:
                raise PaperFlowError(f"topic {topic!r} not found or has no partitions")
            for partition in sorted(found.partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=30
                )
                if topic == names.trading.orders:
                    offset = low
                    if high > low:
                        self._catchup[partition] = high
                else:
                    offset = starts.get((topic, partition), high)
                assignment.append(TopicPartition(topic, partition, offset))
        consumer.assign(assignment)
        return consumer

    # ---- the loop -----------------------------------------------------------------

    def run(self) -> PaperCounters:
        """Start, then process until `stop` is set; publish what is queued and close."""
        try:
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
        assert consumer is not None and self._out is not None, "start() first"
        self._out.check()  # the output thread's failure stops the loop
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
            self._fetched = time.monotonic()
            created = messages[0].timestamp()[1]
            if created > 0:
                self.counters.latencies.add("fetched", time.time() * 1000 - created)
            self._process(messages)
            # The batch's events go out now, not behind the timers' work (valuing a
            # slice of the accounts, every view each 10 s, the symbols each minute).
            self._hand_over()
        self._timers(self._clock())
        return len(messages)

    def _process(self, messages: Sequence[Any]) -> None:
        engine = self.engine
        assert engine is not None
        names = self.names
        orders_topic = names.trading.orders
        interest = self._interest.keys
        latest = self._latest
        decoders = self._decoders
        feed = self._feed
        out: list[AccountEvent] = []
        commands = read = applied = 0
        dead: list[DeadLetter] = []
        for message in messages:
            if message.error() is not None:  # end-of-partition events are off
                raise KafkaException(message.error())
            topic = message.topic()
            if topic == orders_topic:
                commands += 1
                self._command(message, out, dead)
                continue
            read += 1
            key = message.key()
            last = latest.get(topic)
            if last is not None:
                # The last quote, depth and mark of every symbol, undecoded: an order on a
                # symbol nobody needed finds its book (`_warm`).
                last[key] = message  # its value is copied out only if it is used
            if key not in interest:
                continue
            headers = message.headers()
            if headers and topics.is_control(headers):
                continue
            try:
                record = decoders[topic](message.value())
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                dead.append(record_dead_letter(STAGE, message, "undecodable", str(exc)))
                continue
            applied += 1
            out.extend(feed[topic](record))
        counters = self.counters
        counters.commands += commands
        counters.market += read
        counters.applied += applied
        if dead:
            self._dead_letters(dead)
        if out:
            self._emit(out)

    def _command(self, message: Any, out: list[AccountEvent], dead: list[DeadLetter]) -> None:
        engine = self.engine
        assert engine is not None
        try:
            command = self._command_decoder(message.value())
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            dead.append(record_dead_letter(STAGE, message, "undecodable", str(exc)))
            return
        if self._applied_ids is not None and self._replayed(message, command.command_id):
            return
        if isinstance(command, PlaceOrder):
            request = command.order
            out.extend(self._warm(symbol_key(request.exchange, request.market, request.symbol)))
        events = engine.command(command)
        if not events:
            return  # a command id already applied
        for event in events:
            self._note(event)
        out.extend(events)
        self.counters.accounts = len(self._home)
        # At once: the rest of this batch may hold the new order's market data.
        for account_id in {e.account_id for e in events}:
            self._refresh_needs(account_id)

    _command_decoder = staticmethod(command_decoder().decode)

    def _replayed(self, message: Any, command_id: str) -> bool:
        """Whether a command read during the start's catch-up is in the log already."""
        applied = self._applied_ids
        assert applied is not None
        partition, offset = message.partition(), message.offset()
        end = self._catchup.get(partition)
        if end is not None and offset + 1 >= end:
            del self._catchup[partition]
            if not self._catchup:
                self._applied_ids = None  # caught up: every later command is new
        return end is not None and offset < end and command_id in applied

    def _warm(self, key: str) -> list[AccountEvent]:
        """Feed a symbol nobody needed its last quote, depth and mark (undecoded until now)."""
        raw = key.encode()
        if raw in self._interest:
            return []
        out: list[AccountEvent] = []
        names = self.names
        for topic in (names.marks, names.depth, names.quotes):
            found = self._latest[topic].get(raw)
            if found is not None:
                try:
                    record = self._decoders[topic](found.value())
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue  # it went to the dead letters when it was read
                out.extend(self._feed[topic](record))
        return out

    def _note(self, event: AccountEvent) -> None:
        home = _home_assets(event)
        if home is not None:
            if event.account_id not in self._home:
                self._accounts.append(event.account_id)
            self._home[event.account_id] = home

    def _refresh_needs(self, account_id: str) -> None:
        engine = self.engine
        assert engine is not None
        account = engine.account(account_id)
        if account is None:
            return
        needs = account_needs(account, self._home.get(account_id, ()), self._pairs)
        self._interest.update(account_id, needs)

    def _emit(self, events: list[AccountEvent]) -> None:
        """Store, publish and derive one batch's events, with the views they change."""
        engine = self.engine
        assert engine is not None
        touched = frozenset(e.account_id for e in events if e.seq)
        # Only the accounts with events are valued here: valuing every account whose
        # prices moved is `_timers`' job, once a second.
        views = [v for a in sorted(touched) if (v := engine.view(a)) is not None]
        by_account = {v.account_id: v for v in views}
        # The equity after an event is known for each account's last event of the batch.
        last_seq = {e.account_id: e.seq for e in events if e.seq}
        stored = []
        answers = []  # a refusal for an unknown account belongs to no log (seq 0)
        for event in events:
            if event.seq == 0:
                answers.append(StoredEvent.of(event))
                continue
            view = by_account.get(event.account_id)
            equity = (
                view.equity
                if view is not None and view.seq == event.seq == last_seq[event.account_id]
                else None
            )
            stored.append(StoredEvent.of(event, equity))
        # Stored before they are published, with the views after them (`PaperOutput`).
        self._stored.extend(stored)
        self._count(stored)
        for answer in answers:
            self._produce(self.names.trading.events, answer.event.account_id, answer.payload)
        now = self._clock()
        self._publish_views(self._view_pacer.offer(views, now, touched))
        self._views.update(by_account)
        for account_id in touched:
            self._refresh_needs(account_id)
        self._publish_watch(now)

    # ---- output -------------------------------------------------------------------

    def _produce(self, topic: str, key: bytes | str, value: bytes) -> None:
        """Publish a message after this step's events (`_hand_over`)."""
        self._messages.append((topic, key, value))

    def _hand_over(self) -> None:
        """Give this step's events, messages and valuation rows to the output."""
        out = self._out
        assert out is not None
        if self._stored:
            self.counters.latencies.add("loop", (time.monotonic() - self._fetched) * 1000)
        out.put(self._stored, self._messages, self._valuations, self._clock_us)
        self._stored, self._messages, self._valuations = [], [], []
        self._clock_us = 0

    def _count(self, stored: Iterable[StoredEvent]) -> None:
        counters = self.counters
        for item in stored:
            counters.events += 1
            if type(item.event).__struct_config__.tag == "fill":
                counters.fills += 1

    def _publish_views(self, views: Iterable[AccountView]) -> None:
        topic = self.names.trading.accounts
        sent = 0
        for view in views:
            self._produce(topic, view.account_id, encode(view))
            sent += 1
        self.counters.views += sent

    def _publish_all_views(self, now: float) -> None:
        """Every account's latest view (valued at most `VIEW_EVERY_S` ago)."""
        views = list(self._views.values())
        self._publish_views(views)
        self._view_pacer.all_sent(views, now)
        self._next_full = now + FULL_VIEWS_EVERY_S

    def _value_some(self, now: float) -> None:
        """Value the next accounts in turn, so each is valued about once per
        `VIEW_EVERY_S` in small slices (never every account in one go: that would hold
        up the fills behind it), and offer the views that changed to the pacer."""
        engine = self.engine
        assert engine is not None
        accounts = self._accounts
        if not accounts:
            self._valued_at = now
            return
        due = self._value_credit + len(accounts) * (now - self._valued_at) / VIEW_EVERY_S
        self._valued_at = now
        count = min(int(due), len(accounts))
        self._value_credit = due - count if count < len(accounts) else 0.0
        changed = []
        for _ in range(count):
            self._cursor = (self._cursor + 1) % len(accounts)
            account_id = accounts[self._cursor]
            view = engine.view(account_id)
            if view is None:
                continue
            before = self._views.get(account_id)
            self._views[account_id] = view
            if before is None or msgspec.structs.replace(before, time_us=view.time_us) != view:
                changed.append(view)
        self._publish_views(self._view_pacer.offer(changed, now, frozenset()))

    def _publish_watch(self, now: float) -> None:
        engine = self.engine
        assert engine is not None
        self._next_watch = now + self._watch_pacer.every_s
        changes = self._watch_pacer.changes(engine.watched(), now)
        if not changes:
            return
        time_us = time.time_ns() // 1000
        for (exchange, market), symbols in changes.items():
            watch = DepthWatch(exchange, market, symbols, time_us)  # type: ignore[arg-type]
            self._produce(self.names.depth_watch, watch.key, encode_depth(watch))

    def _dead_letters(self, letters: list[DeadLetter]) -> None:
        for letter in letters:
            key, value = dead_letter_message(letter)
            self._produce(self.names.dead_letters, key, value)
        self.counters.dead_letters += len(letters)
        logger.warning(
            "paper engine: %d records rejected (see %s)", len(letters), self.names.dead_letters
        )

    def _timers(self, now: float) -> None:
        engine = self.engine
        assert engine is not None
        self._value_some(now)
        if now >= self._next_full:
            self._publish_all_views(now)
        self._publish_views(self._view_pacer.due(now))
        minute = engine.now_us // _MINUTE_US
        if minute > self._minute:
            self._minute = minute
            self._value(minute * _MINUTE_US)
            self._clock_us = engine.now_us
        if now >= self._next_watch:
            self._publish_watch(now)  # the periodic republish (changes go out in _emit)
        if now >= self._next_symbols:
            self._next_symbols = now + SYMBOLS_EVERY_S
            symbols = load_symbols(self._clickhouse(), self._database)
            engine.update_symbols(symbols)
            self._pairs = Pairs(symbols)
        self._hand_over()

    def _value(self, time_us: int) -> None:
        """One valuation row per account holding positions or assets besides its deposits."""
        rows = []
        for account_id, view in self._views.items():
            home = self._home.get(account_id) or []
            if not home:
                continue
            holds = any(b.asset not in home and (b.free or b.locked) for b in view.balances)
            if not (view.positions or holds):
                continue
            asset = home[0]
            balance = next((b.free + b.locked for b in view.balances if b.asset == asset), 0)
            rows.append(
                Valuation(account_id, time_us, view.seq, asset, balance, view.equity)  # type: ignore[arg-type]
            )
        self._valuations.extend(rows)

    # ---- stop ---------------------------------------------------------------------

    def close(self) -> None:
        """Store and publish what was handed over (unless the output failed), and close
        the consumer."""
        try:
            if self._out is not None and self._out.error is None:
                if self.engine is not None:
                    self._clock_us = self.engine.now_us
                self._hand_over()
                self._out.close()
        finally:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
            if self.journal is not None:
                self.journal.close()
