"""The paper engine process's start: its topics and live counts, and the steps that bring
it back (journal write-through, stored funding times, unpublished events, assignment).

`flows.trading.flow.PaperFlow` runs these in order at start; `intake` and `outbox` share
the topics and counters with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from flows.errors import FlowError
from flows.sinks.journal import Journal
from flows.sinks.trading.output import Latencies
from flows.sinks.trading.store import PaperStore
from flows.trading.engine import PaperEngine
from flows.trading.resume import load_events, load_last_marks, published_seqs, stored_seqs
from schemas import topics
from schemas.topics import TradingTopics
from schemas.trading import AccountEvent, AccountOpened, AccountReset

logger = logging.getLogger(__name__)

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
    handed to the output, then the output's stages, and ``engine`` = read → produced)."""

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
            + (f"; stages p50/p99/max ms: {stages}" if stages else "")
        )


@dataclass(slots=True)
class Accounts:
    """The accounts the engine holds: each one's deposit assets (``home``), and their ids
    in the order they appeared (``order``: they are valued in turn)."""

    home: dict[str, list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def note(self, event: AccountEvent) -> None:
        """Keep the deposit assets an account's opening or reset sets."""
        if isinstance(event, AccountOpened | AccountReset):
            if event.account_id not in self.home:
                self.order.append(event.account_id)
            self.home[event.account_id] = [entry.asset for entry in event.entries]


class PaperFlowError(FlowError):
    """The paper engine cannot run: a topic it reads is missing."""


def write_through(journal: Journal | None, store: PaperStore, client: Any, database: str) -> int:
    """Insert the journal's events ``paper_events`` lacks (a crash kept them from it),
    with their rows, then empty the journal.

    Args:
        journal: The write-ahead journal; None: there is none (nothing to do).
        store: Writes the events and their rows.
        client: The ClickHouse client the stored seqs are read with.
        database: Database holding the paper tables.

    Returns:
        How many events were written through.
    """
    if journal is None:
        return 0
    pending = journal.pending(stored_seqs(client, database))
    if pending:
        logger.warning(
            "paper engine: writing %d journaled events through to ClickHouse", len(pending)
        )
        store.write_log(pending)
        store.write_derived(pending)
    journal.clear()
    return len(pending)


def announce_stored_funding(
    engine: PaperEngine, accounts: Iterable[str], client: Any, database: str, until_us: int
) -> None:
    """Give the engine the funding time each held perpetual's last stored mark up to its
    market time announced, so one that passed while the engine was down is still paid
    (by the catch-up's marks, `flows.trading.catchup`, or else the first live one).

    Args:
        engine: The restored engine.
        accounts: The ids of the accounts it holds.
        client: The ClickHouse client the marks are read with.
        database: Database holding ``marks``.
        until_us: The engine's market time (`flows.trading.backlog.start_time`): later
            marks are the catch-up's.
    """
    held = [
        (state.exchange, symbol)
        for state in filter(None, map(engine.account, accounts))
        if state.market == "usdm"
        for symbol, position in state.positions.items()
        if position.qty
    ]
    since_us = until_us - FUNDING_LOOKBACK_US
    for mark in load_last_marks(client, database, held, since_us, until_us):
        engine.announce(mark)


def unpublished(
    consumer: dict[str, Any], events_topic: str, client: Any, database: str
) -> list[AccountEvent]:
    """The stored events a crash kept from tr.events.v1 (of the accounts whose log the
    topic still holds; the views published after them carry every account's state).

    Args:
        consumer: confluent-kafka consumer configuration.
        events_topic: The account events' topic.
        client: The ClickHouse client the log is read with.
        database: Database holding ``paper_events``.

    Returns:
        The events to publish again, in log order.
    """
    published = published_seqs(consumer, events_topic)
    if not published:
        return []
    again = [
        e
        for e in load_events(client, database)
        if e.account_id in published and e.seq > published[e.account_id]
    ]
    if again:
        logger.warning("paper engine: publishing %d stored events a crash held back", len(again))
    return again


def assign(
    consumer_config: dict[str, Any],
    names: PaperTopics,
    starts: dict[tuple[str, int], int] | None = None,
) -> tuple[Consumer, dict[int, int]]:
    """A consumer on every partition: commands from the beginning, market data from
    `starts` (where the start's catch-up stopped reading) or else the offsets its
    partitions end at now (resolved here, so whatever is produced after the start is
    read).

    Args:
        consumer_config: confluent-kafka consumer configuration.
        names: The topics.
        starts: (topic, partition) → the offset to read market data from.

    Returns:
        The consumer, and the offset each non-empty commands partition ended at.

    Raises:
        PaperFlowError: A topic is missing or has no partitions.
    """
    consumer = Consumer(consumer_config)
    ends: dict[int, int] = {}
    assignment = []
    metadata = consumer.list_topics(timeout=30).topics
    for topic in (names.trading.orders, *names.market):
        found = metadata.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise PaperFlowError(f"topic {topic!r} not found or has no partitions")
        for partition in sorted(found.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            if topic == names.trading.orders:
                offset = low
                if high > low:
                    ends[partition] = high
            else:
                offset = (starts or {}).get((topic, partition), high)
            assignment.append(TopicPartition(topic, partition, offset))
    consumer.assign(assignment)
    return consumer, ends
