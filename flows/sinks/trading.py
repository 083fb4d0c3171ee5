"""ClickHouse output of the paper engine: ``paper_events``, ``paper_orders``, ``paper_fills``
and ``paper_ledger`` (016_paper.sql).

`paper_events` is the durable log the engine restores from; the three other tables are
derived from the same events for analysts and the API's history. Rows go in as
TabSeparated text through clickhouse-connect's `raw_insert` (ClickHouse parses the decimal
text exactly; nothing is spliced into SQL). Every table is a ReplacingMergeTree keyed by
what a row describes, so writing an event twice leaves the same rows.

`PaperStore.write_log` inserts a batch of events into ``paper_events`` at once,
`write_derived` their order, fill and ledger rows (ledger last, see
`flows.trading.resume`). `PaperOutput` commits each batch of events in a thread of its own
before it publishes them, so the engine's loop never waits: to the journal
(`flows.sinks.journal`, then ``paper_events`` is written behind, by `DerivedRows`), or
without one to ``paper_events`` itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flows.errors import FlowError
from flows.sinks.clickhouse import NULL, TsvTable, tsv_escape
from flows.sinks.journal import Journal
from runtime.kafka import produce_when_room
from schemas.trading import (
    AccountEvent,
    AccountOpened,
    AccountReset,
    FundingPaid,
    LedgerEntry,
    Order,
    OrderAccepted,
    OrderFilled,
    OrderRejected,
    OrderUpdated,
    encode,
)

logger = logging.getLogger(__name__)

VALUATION_IDX = 65_535
"""``paper_ledger.idx`` of a valuation row: never the index of a movement of an event."""


class Latencies:
    """Delays of the paper engine's stages (ms), summed per stage until `take`: the
    status line says where an event's time went. Written from the loop and the output
    thread (a sample lost to a race is harmless)."""

    def __init__(self) -> None:
        self._stages: dict[str, list[float]] = {}

    def add(self, stage: str, ms: float) -> None:
        """Count one delay of `stage`."""
        found = self._stages.get(stage)
        if found is None:
            self._stages[stage] = [1, ms, ms]
        else:
            found[0] += 1
            found[1] += ms
            if ms > found[2]:
                found[2] = ms

    def take(self) -> str:
        """``stage mean/max ms`` per stage since the previous call (then forgotten)."""
        stages, self._stages = self._stages, {}
        return ", ".join(
            f"{name} {total / count:.1f}/{top:.1f}" for name, (count, total, top) in stages.items()
        )


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as it goes to the store and to Kafka.

    Attributes:
        event: The event.
        payload: Its wire JSON (`schemas.trading.encode`), stored and published as is.
        equity: The account's equity right after it, when known (its ledger rows carry it).
    """

    event: AccountEvent
    payload: bytes
    equity: Decimal | None = None

    @classmethod
    def of(cls, event: AccountEvent, equity: Decimal | None = None) -> StoredEvent:
        """Wrap an event with its wire form."""
        return cls(event, encode(event), equity)


@dataclass(frozen=True, slots=True)
class Valuation:
    """A minute's valuation of an account: a ``kind='valuation'`` ledger row.

    Attributes:
        account_id: The account.
        time_us: Start of the minute (market time).
        seq: The account's last applied event.
        asset: The asset equity is counted in.
        balance: The wallet balance of that asset then.
        equity: `AccountView.equity` then.
    """

    account_id: str
    time_us: int
    seq: int
    asset: str
    balance: Decimal
    equity: Decimal


EVENT_COLUMNS = ("account_id", "seq", "kind", "time", "command_id", "payload")
ORDER_COLUMNS = (
    "account_id", "order_id", "client_order_id", "exchange", "market", "symbol", "side",
    "type", "time_in_force", "trigger", "reduce_only", "quantity", "quote_quantity", "price",
    "stop_price", "status", "filled_qty", "filled_quote", "fees", "fee_asset", "triggered",
    "reason", "code", "created", "updated", "seq",
)  # fmt: skip
FILL_COLUMNS = (
    "account_id", "fill_id", "order_id", "client_order_id", "exchange", "market", "symbol",
    "side", "price", "qty", "quote_qty", "fee", "fee_asset", "liquidity", "reference_price",
    "slippage", "realized_pnl", "liquidation", "time", "seq",
)  # fmt: skip
LEDGER_COLUMNS = (
    "account_id", "time", "seq", "idx", "kind", "asset", "symbol", "amount", "balance_after",
    "equity",
)  # fmt: skip


def _time(time_us: int) -> str:
    """A time as DateTime64(6) text, ``YYYY-MM-DD hh:mm:ss.ffffff`` UTC (a bare integer
    would be read as ticks only when it has enough digits: not the 0 of a fresh engine)."""
    seconds = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time_us // 1_000_000))
    return f"{seconds}.{time_us % 1_000_000:06d}"


def _dec(value: Decimal | None) -> str:
    """A decimal in plain notation (never ``1E-8``), or NULL."""
    return NULL if value is None else format(value, "f")


def _opt(value: object) -> str:
    return NULL if value is None else tsv_escape(str(value))


def _line(fields: Iterable[str]) -> str:
    return "\t".join(fields) + "\n"


def event_rows(stored: list[StoredEvent]) -> bytes:
    """Events as ``paper_events`` rows (`EVENT_COLUMNS`)."""
    lines = []
    for item in stored:
        e = item.event
        kind = type(e).__struct_config__.tag
        lines.append(
            _line((
                tsv_escape(e.account_id), str(e.seq), str(kind), _time(e.time_us),
                tsv_escape(e.command_id), tsv_escape(item.payload.decode()),
            ))
        )  # fmt: skip
    return "".join(lines).encode()


def order_row(order: Order, seq: int) -> str:
    """One ``paper_orders`` row (`ORDER_COLUMNS`): `order` as event `seq` left it."""
    r = order.request
    quantity = order.quantity if order.quantity is not None else r.quantity
    return _line((
        tsv_escape(order.account_id), str(order.order_id), tsv_escape(r.client_order_id),
        tsv_escape(r.exchange), r.market, tsv_escape(r.symbol), r.side, r.type,
        r.time_in_force, r.trigger, str(int(r.reduce_only)), _dec(quantity or Decimal(0)),
        _dec(r.quote_quantity), _dec(order.price if order.price is not None else r.price),
        _dec(order.stop_price if order.stop_price is not None else r.stop_price),
        order.status, _dec(order.filled_qty), _dec(order.filled_quote), _dec(order.fees),
        tsv_escape(order.fee_asset), str(int(order.triggered)), _opt(order.reason),
        _opt(order.code), _time(order.created_us), _time(order.updated_us), str(seq),
    ))  # fmt: skip


def order_rows(stored: list[StoredEvent]) -> bytes:
    """The orders the events left (`ORDER_COLUMNS`): one row per event carrying an order's
    new state (accepted, rejected, updated, fill)."""
    return "".join(
        order_row(s.event.order, s.event.seq)
        for s in stored
        if isinstance(s.event, OrderAccepted | OrderRejected | OrderUpdated | OrderFilled)
    ).encode()


def fill_rows(stored: list[StoredEvent]) -> bytes:
    """The fills of the events (`FILL_COLUMNS`)."""
    lines = []
    for s in stored:
        e = s.event
        if not isinstance(e, OrderFilled):
            continue
        f = e.fill
        lines.append(
            _line((
                tsv_escape(f.account_id), str(f.fill_id), str(f.order_id),
                tsv_escape(f.client_order_id), tsv_escape(f.exchange), f.market,
                tsv_escape(f.symbol), f.side, _dec(f.price), _dec(f.qty), _dec(f.quote_qty),
                _dec(f.fee), tsv_escape(f.fee_asset), f.liquidity, _dec(f.reference_price),
                _dec(f.slippage), _dec(f.realized_pnl), str(int(f.liquidation)),
                _time(f.time_us), str(e.seq),
            ))
        )  # fmt: skip
    return "".join(lines).encode()


def ledger_entries(event: AccountEvent) -> Sequence[LedgerEntry]:
    """The wallet movements an event carries, in the order they apply."""
    if isinstance(event, AccountOpened | AccountReset | OrderFilled):
        return event.entries
    if isinstance(event, FundingPaid):
        return (event.entry,)
    return ()


def ledger_rows(stored: list[StoredEvent]) -> bytes:
    """One ``paper_ledger`` row per ledger entry of the events (`LEDGER_COLUMNS`); each
    carries the equity after its event when known."""
    lines = []
    for s in stored:
        e = s.event
        equity = _dec(s.equity)
        for idx, entry in enumerate(ledger_entries(e)):
            lines.append(
                _line((
                    tsv_escape(e.account_id), _time(e.time_us), str(e.seq), str(idx),
                    entry.kind, tsv_escape(entry.asset), tsv_escape(entry.symbol),
                    _dec(entry.amount), _dec(entry.balance_after), equity,
                ))
            )  # fmt: skip
    return "".join(lines).encode()


def valuation_rows(valuations: list[Valuation]) -> bytes:
    """Minute valuations as ``paper_ledger`` rows of kind ``valuation`` (`LEDGER_COLUMNS`)."""
    return "".join(
        _line((
            tsv_escape(v.account_id), _time(v.time_us), str(v.seq), str(VALUATION_IDX),
            "valuation", tsv_escape(v.asset), "", "0", _dec(v.balance), _dec(v.equity),
        ))
        for v in valuations
    ).encode()  # fmt: skip


EVENTS = TsvTable("paper_events", EVENT_COLUMNS, event_rows)
DERIVED = (
    TsvTable("paper_orders", ORDER_COLUMNS, order_rows),
    TsvTable("paper_fills", FILL_COLUMNS, fill_rows),
    # Last: `flows.trading.resume` re-derives the events after each account's last
    # ledger row, so a crash between these inserts loses no row.
    TsvTable("paper_ledger", LEDGER_COLUMNS, ledger_rows),
)
VALUATIONS = TsvTable("paper_ledger", LEDGER_COLUMNS, valuation_rows)


def clock_rows(times_us: list[int]) -> bytes:
    """Market times as ``paper_clock`` rows."""
    return "".join(_line((_time(t),)) for t in times_us).encode()


CLOCK = TsvTable("paper_clock", ("time",), clock_rows)


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


class PaperOutput:
    """Stores, then publishes, what the engine's loop hands over, in a thread of its own.

    The loop never waits for ClickHouse (an insert into chDB takes 20-700 ms, and inserts
    of one store queue behind one lock): it hands each batch's events and messages here.
    The thread takes every batch waiting and commits their events in one write: appended
    to `journal` (then ``paper_events`` is written by `rows`, off the path to Kafka), or
    without a journal inserted into ``paper_events``; then it publishes each batch's
    events and messages in the order handed over (nothing is published before the events
    it reveals are committed), then hands the events and valuations to `rows` (a thread
    and a client of its own: one client's calls queue behind one lock). A failure stops
    the thread; `check` raises it in the loop.

    Args:
        store: The store.
        producer: The Kafka producer (every message of the engine goes through here).
        events_topic: Where events go, keyed by account.
        rows: Writes the derived rows and valuations.
        max_batches: Batches that may wait before `put` blocks.
        journal: The commit point; None: the ``paper_events`` insert.
        latencies: Where the delays of the stages are counted (ms): ``queued`` (handed
            over → taken by the thread), ``stored`` (the commit: journal or insert),
            ``produced`` (the produce calls), ``acked`` (produce → the broker's ack).
    """

    def __init__(
        self,
        store: PaperStore,
        producer: Any,
        events_topic: str,
        rows: DerivedRows,
        max_batches: int = 10_000,
        latencies: Latencies | None = None,
        journal: Journal | None = None,
    ) -> None:
        self._journal = journal
        self.latencies = latencies if latencies is not None else Latencies()
        self._store = store
        self._rows = rows
        self._producer = producer
        self._events_topic = events_topic
        self._queue: queue.Queue[_Batch | None] = queue.Queue(max_batches)
        self._failed: list[Any] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="paper-output", daemon=True)
        self._thread.start()

    def put(
        self,
        stored: Sequence[StoredEvent] = (),
        messages: Sequence[tuple[str, bytes | str, bytes]] = (),
        valuations: Sequence[Valuation] = (),
        clock_us: int = 0,
    ) -> None:
        """Hand over events to store and publish, then messages to publish (topic, key,
        value), valuation rows to store, and the market time applied so far, stored
        after the events (0: none)."""
        self.check()
        if stored or messages or valuations or clock_us:
            self._queue.put(
                _Batch(list(stored), list(messages), list(valuations), time.monotonic(), clock_us)
            )

    def check(self) -> None:
        """Raise what stopped the thread (or the rows' thread), if anything did."""
        if self.error is not None:
            raise self.error
        self._rows.check()

    def _on_delivery(self, error: Any, message: Any) -> None:
        if error is not None:
            self._failed.append(error)
        elif message.topic() == self._events_topic:
            self.latencies.add("acked", (message.latency() or 0.0) * 1000)

    def _run(self) -> None:
        try:
            while True:
                batches = [self._queue.get()]
                while batches[-1] is not None and not self._queue.empty():
                    batches.append(self._queue.get_nowait())
                work = [b for b in batches if b is not None]
                events, size = self._publish(work)
                clock_us = max((b.clock_us for b in work), default=0)
                self._rows.submit(events, [v for b in work for v in b.valuations], size, clock_us)
                if batches[-1] is None:
                    return
        except BaseException as exc:
            logger.exception("paper engine output failed")
            self.error = exc

    def _publish(self, batches: list[_Batch]) -> tuple[list[StoredEvent], int]:
        """Commit the batches' events, then publish them and the batches' messages in order.

        Returns:
            The events committed, whose rows are still to write, and the journal's size
            after them (0 without a journal).
        """
        latencies = self.latencies
        started = time.monotonic()
        for batch in batches:
            if batch.stored:
                latencies.add("queued", (started - batch.handed) * 1000)
        events = [s for b in batches for s in b.stored]
        size = 0  # committed before anyone hears of them:
        if self._journal is not None:
            size = self._journal.append(events)
        else:
            self._store.write_log(events)
        stored = time.monotonic()
        if events:
            latencies.add("stored", (stored - started) * 1000)
        for batch in batches:
            for item in batch.stored:
                self._produce(self._events_topic, item.event.account_id, item.payload)
            for topic, key, value in batch.messages:
                self._produce(topic, key, value)
        if events:
            latencies.add("produced", (time.monotonic() - stored) * 1000)
        self._producer.poll(0)
        if self._failed:
            failed = self._failed
            raise KafkaDeliveryError(f"{len(failed)} message(s) not delivered: {failed[0]}")
        return events, size

    def _produce(self, topic: str, key: bytes | str, value: bytes) -> None:
        try:
            self._producer.produce(topic, value, key, on_delivery=self._on_delivery)
        except BufferError:
            produce_when_room(self._producer, topic, value, key, self._on_delivery)

    def close(self, timeout_s: float = 60.0) -> None:
        """Store and publish what was handed over, deliver it, and end the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout_s)
        self.check()
        self._rows.close(timeout_s)
        remaining = self._producer.flush(timeout_s)
        if remaining or self._failed:
            raise KafkaDeliveryError(f"{remaining} message(s) not delivered in {timeout_s:.0f} s")


class DerivedRows:
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
        self._store = store
        self._journal = journal
        self._every_s = every_s
        self._queue: queue.Queue[tuple[list[StoredEvent], list[Valuation], int, int] | None] = (
            queue.Queue(max_batches)
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="paper-rows", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        flushed = 0.0
        while True:
            items = [self._queue.get()]
            if items[-1] is not None:
                # Few, larger inserts: each makes a part the store merges later (in the
                # engine's own process with chDB).
                time.sleep(max(0.0, flushed + self._every_s - time.monotonic()))
            flushed = time.monotonic()
            while items[-1] is not None and not self._queue.empty():
                items.append(self._queue.get_nowait())
            work = [item for item in items if item is not None]
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
                self._error = exc
                return
            if items[-1] is None:
                return

    def check(self) -> None:
        """Raise what stopped the thread, if anything did."""
        if self._error is not None:
            raise self._error

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
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout_s)
        self.check()


@dataclass(frozen=True, slots=True)
class _Batch:
    stored: list[StoredEvent]
    messages: list[tuple[str, bytes | str, bytes]]
    valuations: list[Valuation]
    handed: float  # monotonic seconds
    clock_us: int = 0


class KafkaDeliveryError(FlowError):
    """Messages of the paper engine could not be delivered; it stops rather than lose them."""
