"""The paper engine's events committed, then published: `PaperOutput` takes what the
engine's loop hands over to the journal (or ``paper_events``) and to Kafka in a thread of
its own, so the loop never waits; `Latencies` says where an event's time went.

With a journal (`flows.sinks.journal`), ``paper_events`` is written behind, by
`DerivedRows` (`flows.sinks.trading.store`), with the derived rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flows.errors import FlowError
from flows.sinks.journal import Journal
from flows.sinks.trading.rows import StoredEvent, Valuation
from flows.sinks.trading.store import DerivedRows, PaperStore, QueueThread
from runtime.kafka import produce_when_room

logger = logging.getLogger(__name__)


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
class _Batch:
    stored: list[StoredEvent]
    messages: list[tuple[str, bytes | str, bytes]]
    valuations: list[Valuation]
    handed: float  # monotonic seconds


class PaperOutput(QueueThread[_Batch]):
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
        super().__init__("paper-output", max_batches)
        self._journal = journal
        self.latencies = latencies if latencies is not None else Latencies()
        self._store = store
        self._rows = rows
        self._producer = producer
        self._events_topic = events_topic
        self._failed: list[Any] = []
        self._thread.start()

    def put(
        self,
        stored: Sequence[StoredEvent] = (),
        messages: Sequence[tuple[str, bytes | str, bytes]] = (),
        valuations: Sequence[Valuation] = (),
    ) -> None:
        """Hand over events to store and publish, then messages to publish (topic, key,
        value), and valuation rows to store."""
        self.check()
        if stored or messages or valuations:
            self._queue.put(
                _Batch(list(stored), list(messages), list(valuations), time.monotonic())
            )

    def check(self) -> None:
        """Raise what stopped the thread (or the rows' thread), if anything did."""
        super().check()
        self._rows.check()

    def _on_delivery(self, error: Any, message: Any) -> None:
        if error is not None:
            self._failed.append(error)
        elif message.topic() == self._events_topic:
            self.latencies.add("acked", (message.latency() or 0.0) * 1000)

    def _run(self) -> None:
        try:
            while True:
                batches = self._waiting(self._queue.get())
                work = [b for b in batches if b is not None]
                events, size = self._publish(work)
                self._rows.submit(events, [v for b in work for v in b.valuations], size)
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
        self._end(timeout_s)
        self._rows.close(timeout_s)
        remaining = self._producer.flush(timeout_s)
        if remaining or self._failed:
            raise KafkaDeliveryError(f"{remaining} message(s) not delivered in {timeout_s:.0f} s")


class KafkaDeliveryError(FlowError):
    """Messages of the paper engine could not be delivered; it stops rather than lose them."""
