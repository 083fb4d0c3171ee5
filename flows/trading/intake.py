"""What the paper engine process reads, taken to the engine: market records kept or
skipped on their key, commands decoded and applied once.

A market record is kept or skipped on its Kafka key before its value is decoded: only the
symbols some account needs (`flows.trading.interest`) are decoded; the last quote, depth
and mark of every other symbol are kept undecoded, so an order on a new symbol finds its
book at once. Commands are read from the beginning of tr.orders.v1 at every start: up to
where the topic ended at start, a command whose id the log holds is skipped here
(however old), and later the engine drops a redelivered command id itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from confluent_kafka import KafkaException

from flows.dead_letters import record_dead_letter
from flows.trading.catchup import Replayed
from flows.trading.engine import PaperEngine
from flows.trading.interest import Interest, Pairs, account_needs
from flows.trading.process import Accounts, PaperCounters, PaperTopics
from schemas import topics
from schemas.deadletter import DeadLetter
from schemas.depth import depth_decoder
from schemas.perps import mark_decoder
from schemas.quotes import quote_decoder
from schemas.topics import symbol_key
from schemas.trades import trade_decoder
from schemas.trading import (
    AccountEvent,
    PlaceOrder,
    command_decoder,
)

STAGE = "paper"
"""The `stage` of every dead letter this process writes, and their Kafka key."""


@dataclass(eq=False)
class Intake:
    """Takes fetched records to the engine and says which symbols it needs next.

    Args:
        engine: The engine the records are fed to.
        names: The topics.
        counters: Counts the commands and market records read and applied.
        pairs: The symbols' base and quote assets.
        accounts: The accounts held, noted here from their events.
    """

    engine: PaperEngine
    names: PaperTopics
    counters: PaperCounters
    pairs: Pairs
    accounts: Accounts
    interest: Interest = field(default_factory=Interest, init=False)
    _catchup: dict[int, int] = field(default_factory=dict, init=False)
    _applied_ids: set[str] | None = field(default=None, init=False)
    # The last market record read (undecoded) since the last command: its time moves the
    # engine's clock before the next command (`_clock_to_market`).
    _last_market: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        names, engine = self.names, self.engine
        self._decoders: dict[str, Callable[[bytes], Any]] = {
            names.trades: trade_decoder().decode,
            names.quotes: quote_decoder().decode,
            names.depth: depth_decoder().decode,
            names.marks: mark_decoder().decode,
        }
        # The last record (undecoded) per symbol key, per topic of quotes, depth and marks.
        self._latest: dict[str, dict[bytes, Any]] = {
            names.quotes: {},
            names.depth: {},
            names.marks: {},
        }
        self._feed: dict[str, Callable[[Any], list[AccountEvent]]] = {
            names.trades: engine.trade,
            names.quotes: engine.quote,
            names.depth: engine.depth,
            names.marks: engine.mark,
        }

    def skip_replayed(self, replayed: Replayed) -> None:
        """Drop the live trades and marks the start's catch-up applied already."""
        names, engine = self.names, self.engine
        self._feed[names.trades] = replayed.trades(engine.trade)
        self._feed[names.marks] = replayed.marks(engine.mark)

    def skip_applied(self, applied: set[str], ends: dict[int, int]) -> None:
        """Skip the commands tr.orders.v1 still holds from before this start whose id is
        in the log, until each partition is read to where it ended at start (`ends`; the
        engine itself only remembers an account's recent ids)."""
        self._catchup = ends
        self._applied_ids = applied if ends else None

    def process(self, messages: Sequence[Any]) -> tuple[list[AccountEvent], list[DeadLetter]]:
        """Apply one fetched batch to the engine.

        Args:
            messages: The consumer's messages, in the order read.

        Returns:
            The engine's events, and the records rejected.

        Raises:
            KafkaException: A message is an error.
        """
        orders_topic = self.names.trading.orders
        interest = self.interest.keys
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
            self._last_market = message
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
        return out, dead

    def _command(self, message: Any, out: list[AccountEvent], dead: list[DeadLetter]) -> None:
        engine = self.engine
        try:
            command = self._command_decoder(message.value())
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            dead.append(record_dead_letter(STAGE, message, "undecodable", str(exc)))
            return
        if self._applied_ids is not None and self._replayed(message, command.command_id):
            return
        self._clock_to_market()
        if isinstance(command, PlaceOrder):
            request = command.order
            out.extend(self._warm(symbol_key(request.exchange, request.market, request.symbol)))
        events = engine.command(command)
        if not events:
            return  # a command id already applied
        for event in events:
            self.accounts.note(event)
        out.extend(events)
        self.counters.accounts = len(self.accounts.home)
        # At once: the rest of this batch may hold the new order's market data.
        for account_id in {e.account_id for e in events}:
            self.refresh_needs(account_id)

    _command_decoder = staticmethod(command_decoder().decode)

    def _clock_to_market(self) -> None:
        """Move the engine's clock to the time of the last market record read, needed or
        not: the engine's clock otherwise moves only with the records accounts need, so
        the first account opened on a fresh engine would be stamped 1970, and a command
        after a quiet hour on its symbols an hour early. One decode per command."""
        message, self._last_market = self._last_market, None
        if message is None:
            return
        headers = message.headers()
        if headers and topics.is_control(headers):
            return
        try:
            record = self._decoders[message.topic()](message.value())
        except (msgspec.DecodeError, msgspec.ValidationError):
            return  # dead-lettered where it is applied, if it ever is
        time_us = record.time_us
        self.engine.advance(time_us if time_us is not None else record.received_us)

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
        if raw in self.interest:
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

    def refresh_needs(self, account_id: str) -> None:
        """Decode the market data an account needs now (its orders, positions, assets)."""
        account = self.engine.account(account_id)
        if account is None:
            return
        needs = account_needs(account, self.accounts.home.get(account_id, ()), self.pairs)
        self.interest.update(account_id, needs)
