"""The paper engine's events committed, then published: `PaperOutput` takes what the
engine's loop hands over to the journal (or ``paper_events``) and to Kafka in a thread of
its own, so the loop never waits; `Latencies` says where an event's time went.

With a journal (`flows.sinks.journal`), ``paper_events`` is written behind, by
`DerivedRows` (`flows.sinks.trading.store`), with the derived rows.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flows.errors import FlowError
from flows.sinks.journal import Journal
from flows.sinks.trading.rows import StoredEvent, Valuation
from flows.sinks.trading.store import DerivedRows, PaperStore, QueueThread
from runtime.figures import percentile
from runtime.kafka import produce_when_room

logger = logging.getLogger(__name__)


FETCHED_HEADER = "tickscan-fetched-us"
"""Header of every event on tr.events.v1: the wall time (µs) the engine read the batch of
records that caused it, so a reader splits a fill's delay into the hop in (the trade's
time → this) and the engine (this → the event's Kafka timestamp)."""


class Latencies:
    """Delays of the paper engine's stages (ms), kept per stage until `take`: the status
    line says where an event's time went, as p50/p99/max. Written from the loop and the
    output thread (a sample lost to a race is harmless).

    Args:
        keep: Samples kept per stage between two `take` calls; beyond it only the max is
            followed (the status line comes every few seconds, far below it).
    """

    def __init__(self, keep: int = 100_000) -> None:
        self._keep = keep
        self._stages: dict[str, list[float]] = {}
        self._top: dict[str, float] = {}

    def add(self, stage: str, ms: float) -> None:
        """Count one delay of `stage`."""
        samples = self._stages.get(stage)
        if samples is None:
            self._stages[stage] = [ms]
            self._top[stage] = ms
            return
        if len(samples) < self._keep:
            samples.append(ms)
        if ms > self._top[stage]:
            self._top[stage] = ms

    def take(self) -> str:
        """``stage p50/p99/max`` (ms) per stage since the previous call (then forgotten)."""
        stages, self._stages = self._stages, {}
        tops, self._top = self._top, {}
        parts = []
        for name, samples in stages.items():
            p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
            parts.append(f"{name} {p50:.1f}/{p99:.1f}/{tops.get(name, p99):.1f}")
        return ", ".join(parts)


class GcPauses:
    """Counts the process's older-generation garbage collections as the ``gc`` stage of
    `Latencies`: every thread stops while one runs, so each is a pause in a fill's path.
    (The young generation's collections take well under a millisecond and are left out.)

    Args:
        latencies: Where the pauses are counted.
    """

    def __init__(self, latencies: Latencies) -> None:
        self._latencies = latencies
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 0:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self._latencies.add("gc", (time.perf_counter() - self._started) * 1000)
            self._started = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)


@dataclass(frozen=True, slots=True)
class _Batch:
    stored: list[StoredEvent]
    messages: list[tuple[str, bytes | str, bytes]]
    valuations: list[Valuation]
    handed: float  # monotonic seconds
    fetched: float | None  # monotonic seconds the records behind the events were read
    headers: list[tuple[str, bytes]]  # of each event: when its records were read
    clock_us: int = 0  # the market time applied, stored after the events (0: none)


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
            ``produced`` (the produce calls), ``engine`` (the records read → their
            events produced: the whole of the engine's part), ``acked`` (produce → the
            broker's ack).
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
        fetched: float | None = None,
        clock_us: int = 0,
    ) -> None:
        """Hand over events to store and publish, then messages to publish (topic, key,
        value), and valuation rows to store; `fetched` is when (monotonic seconds) the
        loop read the records that caused the events, if they came from a batch;
        `clock_us` the market time applied so far, stored after the events (0: none)."""
        self.check()
        if stored or messages or valuations or clock_us:
            headers = []
            if fetched is not None:
                wall_us = time.time_ns() // 1000 - int((time.monotonic() - fetched) * 1e6)
                headers = [(FETCHED_HEADER, str(wall_us).encode())]
            self._queue.put(
                _Batch(
                    list(stored), list(messages), list(valuations), time.monotonic(),
                    fetched, headers, clock_us,
                )
            )  # fmt: skip

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
                self._produce(
                    self._events_topic, item.event.account_id, item.payload, batch.headers
                )
            for topic, key, value in batch.messages:
                self._produce(topic, key, value)
        if events:
            produced = time.monotonic()
            latencies.add("produced", (produced - stored) * 1000)
            for batch in batches:
                if batch.stored and batch.fetched is not None:
                    latencies.add("engine", (produced - batch.fetched) * 1000)
        self._producer.poll(0)
        if self._failed:
            failed = self._failed
            raise KafkaDeliveryError(f"{len(failed)} message(s) not delivered: {failed[0]}")
        return events, size

    def _produce(
        self,
        topic: str,
        key: bytes | str,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        placement = {"headers": headers} if headers else {}
        try:
            self._producer.produce(topic, value, key, on_delivery=self._on_delivery, **placement)
        except BufferError:
            produce_when_room(self._producer, topic, value, key, self._on_delivery, **placement)

    def close(self, timeout_s: float = 60.0) -> None:
        """Store and publish what was handed over, deliver it, and end the thread."""
        self._end(timeout_s)
        self._rows.close(timeout_s)
        remaining = self._producer.flush(timeout_s)
        if remaining or self._failed:
            raise KafkaDeliveryError(f"{remaining} message(s) not delivered in {timeout_s:.0f} s")


class KafkaDeliveryError(FlowError):
    """Messages of the paper engine could not be delivered; it stops rather than lose them."""
