"""What the paper engine process sends out, step by step: the events to store and publish,
account views, depth watches, valuation rows and dead letters, handed to `PaperOutput`.

Besides the events: an account's `AccountView` (tr.accounts.v1) after its events, at most
once a second while only prices move (accounts are valued in turn, a slice per loop, each
about once a second), and every account's at start and every `FULL_VIEWS_EVERY_S`;
`DepthWatch` (md.depth_watch.v1) on change and every `DEPTH_WATCH_EVERY_S`; one
``valuation`` row per account per market-time minute to ``paper_ledger`` while it holds
positions or assets besides its deposits; the market time itself to ``paper_clock``
each market-time minute (and at stop), after the events before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from flows.dead_letters import dead_letter_message
from flows.sinks.trading.output import PaperOutput
from flows.sinks.trading.rows import StoredEvent, Valuation
from flows.trading.engine import PaperEngine
from flows.trading.pacing import ViewPacer, WatchPacer
from flows.trading.process import Accounts, PaperCounters, PaperTopics
from schemas.deadletter import DeadLetter
from schemas.depth import DepthWatch, encode_depth
from schemas.trading import AccountEvent, AccountView, encode

logger = logging.getLogger(__name__)

VIEW_EVERY_S = 1.0
"""Least seconds between two views of one account whose only change is its valuation."""

FULL_VIEWS_EVERY_S = 10.0
"""Every account's view is republished this often (and at start)."""

_MINUTE_US = 60_000_000


@dataclass(eq=False)
class Outbox:
    """Collects one step's output and hands it to the output thread (`hand_over`).

    Args:
        engine: The engine whose accounts are valued and watched.
        out: The output the step's events, messages and rows are handed to.
        names: The topics.
        counters: Counts what is published; times the loop's stage.
        clock: Monotonic seconds (pacing only).
        accounts: The accounts held, valued in turn.
    """

    engine: PaperEngine
    out: PaperOutput
    names: PaperTopics
    counters: PaperCounters
    clock: Callable[[], float]
    accounts: Accounts
    fetched: float = field(default=0.0, init=False)  # monotonic s the last batch was read at
    # What this step hands to the output: events to store and publish, then messages to
    # publish (topic, key, value), and valuation rows.
    _stored: list[StoredEvent] = field(default_factory=list, init=False)
    _messages: list[tuple[str, bytes | str, bytes]] = field(default_factory=list, init=False)
    _valuations: list[Valuation] = field(default_factory=list, init=False)
    _views: dict[str, AccountView] = field(default_factory=dict, init=False)
    _view_pacer: ViewPacer = field(default_factory=lambda: ViewPacer(VIEW_EVERY_S), init=False)
    _watch_pacer: WatchPacer = field(default_factory=WatchPacer, init=False)
    _minute: int = field(default=0, init=False)
    _next_full: float = field(default=0.0, init=False)
    _next_watch: float = field(default=0.0, init=False)
    _cursor: int = field(default=-1, init=False)
    _value_credit: float = field(default=0.0, init=False)
    _valued_at: float = field(default=0.0, init=False)
    _clock_us: int = field(default=0, init=False)  # market time to store (0: none)

    def start(self, now: float) -> None:
        """Publish every account's view and the watched symbols, as at every start."""
        engine = self.engine
        self._minute = engine.now_us // _MINUTE_US
        self._views = {v.account_id: v for v in engine.views(changed_only=False)}
        self._valued_at = now
        self._publish_all_views(now)
        self._publish_watch(now)

    def emit(self, events: list[AccountEvent]) -> frozenset[str]:
        """Store, publish and derive one batch's events, with the views they change.

        Returns:
            The accounts the events belong to (a refusal for no account aside).
        """
        engine = self.engine
        touched = frozenset(e.account_id for e in events if e.seq)
        # Only the accounts with events are valued here: valuing every account whose
        # prices moved is `tick`'s job, once a second.
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
            self.produce(self.names.trading.events, answer.event.account_id, answer.payload)
        now = self.clock()
        self._publish_views(self._view_pacer.offer(views, now, touched))
        self._views.update(by_account)
        self._publish_watch(now)
        return touched

    def produce(self, topic: str, key: bytes | str, value: bytes) -> None:
        """Publish a message after this step's events (`hand_over`)."""
        self._messages.append((topic, key, value))

    def hand_over(self) -> None:
        """Give this step's events, messages and valuation rows to the output."""
        fetched = None
        if self._stored:
            fetched = self.fetched
            self.counters.latencies.add("loop", (time.monotonic() - fetched) * 1000)
        self.out.put(self._stored, self._messages, self._valuations, fetched, self._clock_us)
        self._stored, self._messages, self._valuations = [], [], []
        self._clock_us = 0

    def keep_time(self) -> None:
        """Store the engine's market time with the next hand-over, after the events
        handed over so far (``paper_clock``: where a restart's catch-up begins)."""
        self._clock_us = self.engine.now_us

    def dead_letters(self, letters: list[DeadLetter]) -> None:
        """Publish the records rejected, to the dead letters' topic."""
        for letter in letters:
            key, value = dead_letter_message(letter)
            self.produce(self.names.dead_letters, key, value)
        self.counters.dead_letters += len(letters)
        logger.warning(
            "paper engine: %d records rejected (see %s)", len(letters), self.names.dead_letters
        )

    def tick(self, now: float) -> None:
        """Do what is due: value a slice of the accounts, republish views and watches,
        and a valuation row per account each market-time minute."""
        self._value_some(now)
        if now >= self._next_full:
            self._publish_all_views(now)
        self._publish_views(self._view_pacer.due(now))
        minute = self.engine.now_us // _MINUTE_US
        if minute > self._minute:
            self._minute = minute
            self._value(minute * _MINUTE_US)
            self.keep_time()
        if now >= self._next_watch:
            self._publish_watch(now)  # the periodic republish (changes go out in emit)

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
            self.produce(topic, view.account_id, encode(view))
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
        accounts = self.accounts.order
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
            view = self.engine.view(account_id)
            if view is None:
                continue
            before = self._views.get(account_id)
            self._views[account_id] = view
            if before is None or msgspec.structs.replace(before, time_us=view.time_us) != view:
                changed.append(view)
        self._publish_views(self._view_pacer.offer(changed, now, frozenset()))

    def _publish_watch(self, now: float) -> None:
        self._next_watch = now + self._watch_pacer.every_s
        changes = self._watch_pacer.changes(self.engine.watched(), now)
        if not changes:
            return
        time_us = time.time_ns() // 1000
        for (exchange, market), symbols in changes.items():
            watch = DepthWatch(exchange, market, symbols, time_us)  # type: ignore[arg-type]
            self.produce(self.names.depth_watch, watch.key, encode_depth(watch))

    def _value(self, time_us: int) -> None:
        """One valuation row per account holding positions or assets besides its deposits."""
        rows = []
        for account_id, view in self._views.items():
            home = self.accounts.home.get(account_id) or []
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
