"""One consumer of the live topics per API process, on a thread, handing batches to the loop."""

from __future__ import annotations

import abc
import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from runtime.kafka import consumer_config
from schemas import topics
from schemas.candles import Candle, candle_decoder
from schemas.perps import (
    FundingEvent,
    Liquidation,
    MarkPrice,
    OpenInterest,
    funding_decoder,
    liquidation_decoder,
    mark_decoder,
    open_interest_decoder,
)
from schemas.ranks import RankRow, rank_decoder
from schemas.signals import Signal, signal_decoder

logger = logging.getLogger(__name__)

RANKS_BACKLOG = 50_000
"""Records read back from the end of each md.ranks.v1 partition at start: about two
minutes of a whole exchange's rows (ranks carry only changed rows, so the board needs
the recent past, not only what comes next)."""


@dataclass(frozen=True, slots=True)
class LiveTopics:
    """The topics the feed follows: ranks, signals and candles, which it needs to be
    running, and the perpetuals' (marks, open interest, funding, liquidations), followed
    once they exist."""

    ranks: str
    signals: str
    candles: str
    marks: str = topics.MARKS
    open_interest: str = topics.OPEN_INTEREST
    funding: str = topics.FUNDING
    liquidations: str = topics.LIQUIDATIONS

    @classmethod
    def with_prefix(cls, prefix: str) -> LiveTopics:
        """The live topics, each name prefixed (tests isolate themselves with a prefix)."""
        return cls(
            prefix + topics.RANKS,
            prefix + topics.SIGNALS,
            prefix + topics.CANDLES,
            prefix + topics.MARKS,
            prefix + topics.OPEN_INTEREST,
            prefix + topics.FUNDING,
            prefix + topics.LIQUIDATIONS,
        )

    @property
    def core(self) -> tuple[str, str, str]:
        """The topics the feed must follow to be running."""
        return (self.ranks, self.signals, self.candles)

    @property
    def perps(self) -> tuple[str, str, str, str]:
        """The perpetuals' topics."""
        return (self.marks, self.open_interest, self.funding, self.liquidations)


@dataclass(slots=True)
class FeedBatch:
    """Decoded records of one fetch, by kind, in partition order."""

    ranks: list[RankRow] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    candles: list[Candle] = field(default_factory=list)
    perps: list[MarkPrice | OpenInterest | FundingEvent | Liquidation] = field(default_factory=list)


class FeedThread(abc.ABC):
    """A consumer of Kafka on a thread of its own, handing what it reads to an event loop
    in batches (`loop.call_soon_threadsafe(deliver, batch)`); the loop never waits on Kafka.

    A subclass says what it follows: `_housekeep` (about once a second: assign topics that
    appeared, measure lag), `_following` (whether anything is assigned) and `_take` (the
    batch of some fetched records, None when there is nothing to deliver).
    """

    thread_name = "feed"

    def __init__(
        self, bootstrap: str, deliver: Callable[[Any], None], poll_s: float, batch_size: int
    ) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bootstrap = bootstrap
        self._deliver, self._poll_s, self._batch_size = deliver, poll_s, batch_size
        self.decode_errors = 0
        """Records that did not decode (logged, skipped)."""

    def _undecodable(self, message: Any, exc: Exception) -> None:
        """Count and log a record that does not decode (it is skipped), with where it is."""
        self.decode_errors += 1
        logger.warning(
            "%s: undecodable record at %s[%s]@%s: %s",
            self.thread_name,
            message.topic(),
            message.partition(),
            message.offset(),
            exc,
        )

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start consuming; batches are delivered on `loop`."""
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name=self.thread_name, daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming and wait for the thread to close its consumer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @abc.abstractmethod
    def _housekeep(self, consumer: Consumer, now: float) -> None:
        """Assign topics that appeared and measure lag (about once a second)."""

    @abc.abstractmethod
    def _following(self) -> bool:
        """Whether anything is assigned."""

    @abc.abstractmethod
    def _take(self, messages: list[Any]) -> Any | None:
        """The batch of some fetched records, None when there is nothing to deliver."""

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        # A fetch that finds nothing waits at the broker for at most this long: Tansu holds
        # it the whole time, so a second's rows arriving meanwhile were 100 ms late (the
        # default), split across two fetches, and missed their board evaluation.
        consumer = Consumer(consumer_config(self.bootstrap, **{"fetch.wait.max.ms": 10}))
        next_check = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_check:
                    self._housekeep(consumer, now)
                    next_check = now + 1.0
                if not self._following():
                    self._stop.wait(self._poll_s)
                    continue
                # Wait for the first record only, then take what the same fetch brought
                # without waiting: consume(n, timeout) alone holds a fetch of fewer than
                # n records back until the timeout ends (measured: up to 50 ms of delay).
                first = consumer.poll(self._poll_s)
                if first is None:
                    continue
                batch = self._take([first, *consumer.consume(self._batch_size - 1, 0)])
                if batch is not None:
                    try:
                        loop.call_soon_threadsafe(self._deliver, batch)
                    except RuntimeError:  # the loop closed under us: we are shutting down
                        break
        except KafkaException:
            logger.exception("%s stopped: Kafka failed", self.thread_name)
        finally:
            self._closing()
            consumer.close()

    def _closing(self) -> None:  # noqa: B027 (an optional hook: most feeds need none)
        """Called on the thread as it stops, before its consumer closes."""


class LiveFeed(FeedThread):
    """Consumes md.ranks.v1, md.signals.v1, md.candles.v1 and the perpetuals' topics on a
    thread of its own.

    Every partition of each topic is assigned explicitly (no consumer group): signals and
    candles from their end, ranks from `ranks_backlog` records before it, so the board is
    whole within seconds. A topic that does not exist yet is assigned once it appears.
    Perpetuals records are decoded only for the symbols `perp_keys` returns (their Kafka
    keys): a chart follows one symbol, the topics carry every perpetual's.
    Records are decoded on the thread and handed to the event loop in batches with
    `loop.call_soon_threadsafe(deliver, batch)`; the loop never waits on Kafka.

    Args:
        bootstrap: `host:port[,host:port]` of the cluster.
        live_topics: The topics to follow.
        deliver: Called on the event loop with each non-empty batch.
        ranks_backlog: Records of each ranks partition read back from its end.
        batch_size: Most records fetched at once.
        poll_s: Longest wait for records before checking for a stop or new topics.
        perp_keys: The Kafka keys of the perpetuals someone follows (called on the
            feed's thread for each perpetuals record; it must not block).
    """

    def __init__(
        self,
        bootstrap: str,
        live_topics: LiveTopics,
        deliver: Callable[[FeedBatch], None],
        *,
        ranks_backlog: int = RANKS_BACKLOG,
        batch_size: int = 5_000,
        poll_s: float = 0.05,
        perp_keys: Callable[[], frozenset[bytes]] = frozenset,
    ) -> None:
        super().__init__(bootstrap, deliver, poll_s, batch_size)
        self.topics = live_topics
        self._ranks_backlog = ranks_backlog
        self._perp_keys = perp_keys
        self._assigned: set[str] = set()
        self._partitions: list[TopicPartition] = []
        self.events_total: dict[str, int] = {
            kind: 0 for kind in ("ranks", "signals", "candles", "perps")
        }
        """Records delivered, by kind."""
        self.lag: dict[str, int] = {}
        """Records behind each topic's high watermark, summed over its partitions."""
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self._decode_rank = rank_decoder().decode
        self._decode_signal = signal_decoder().decode
        self._decode_candle = candle_decoder().decode
        self._perp_decoders: dict[str, Callable[[bytes], Any]] = {
            live_topics.marks: mark_decoder().decode,
            live_topics.open_interest: open_interest_decoder().decode,
            live_topics.funding: funding_decoder().decode,
            live_topics.liquidations: liquidation_decoder().decode,
        }

    @property
    def running(self) -> bool:
        """Whether the consumer thread runs and follows every live topic."""
        thread = self._thread
        return (
            thread is not None
            and thread.is_alive()
            and self._assigned.issuperset(self.topics.core)
            and not self._stop.is_set()
        )

    thread_name = "live-feed"

    def events_per_s(self, window_s: float = 10.0) -> float:
        """Records delivered per second over about the last `window_s` seconds."""
        samples = list(self._rate)
        if len(samples) < 2:
            return 0.0
        end_t, end_n = samples[-1]
        start_t, start_n = next(((t, n) for t, n in samples if end_t - t <= window_s), samples[0])
        return (end_n - start_n) / (end_t - start_t) if end_t > start_t else 0.0

    def _housekeep(self, consumer: Consumer, now: float) -> None:
        if len(self._assigned) < len(self.topics.core) + len(self.topics.perps):
            self._assign_new(consumer)
        self._measure_lag(consumer, now)

    def _following(self) -> bool:
        return bool(self._assigned)

    def _take(self, messages: list[Any]) -> FeedBatch | None:
        batch = self._decode(messages)
        events = self.events_total
        events["ranks"] += len(batch.ranks)
        events["signals"] += len(batch.signals)
        events["candles"] += len(batch.candles)
        events["perps"] += len(batch.perps)
        if batch.ranks or batch.signals or batch.candles or batch.perps:
            return batch
        return None

    def _closing(self) -> None:
        self._assigned.clear()

    def _decode(self, messages: list[Any]) -> FeedBatch:
        """Decode fetched records by topic; control records are skipped, bad ones logged."""
        batch = FeedBatch()
        ranks, signals, candles = self.topics.ranks, self.topics.signals, self.topics.candles
        perp_keys: frozenset[bytes] | None = None
        for message in data_records(messages, "live feed"):
            topic, value = message.topic(), message.value() or b""
            try:
                if topic == ranks:
                    batch.ranks.append(self._decode_rank(value))
                elif topic == signals:
                    batch.signals.append(self._decode_signal(value))
                elif topic == candles:
                    batch.candles.append(self._decode_candle(value))
                else:
                    if perp_keys is None:
                        perp_keys = self._perp_keys()
                    if message.key() in perp_keys:  # nobody follows the others: not decoded
                        batch.perps.append(self._perp_decoders[topic](value))
            except msgspec.DecodeError as exc:
                self._undecodable(message, exc)
        return batch

    def _assign_new(self, consumer: Consumer) -> None:
        """Assign every partition of each followed topic that exists and is not yet assigned."""
        ranks, backlog = self.topics.ranks, self._ranks_backlog
        new = assign_new(
            consumer,
            (*self.topics.core, *self.topics.perps),
            self._assigned,
            lambda name: backlog if name == ranks else None,
            "live feed",
        )
        self._partitions.extend(TopicPartition(tp.topic, tp.partition) for tp in new)

    def _measure_lag(self, consumer: Consumer, now: float) -> None:
        self._rate.append((now, sum(self.events_total.values())))
        if not self._partitions:
            return
        lag: dict[str, int] = {}
        for tp in consumer.position(self._partitions):
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            behind = high - tp.offset if high >= 0 and tp.offset >= 0 else 0
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, behind)
        self.lag = lag


def data_records(messages: Iterable[Any], feed: str) -> Iterator[Any]:
    """The fetched records that carry data: errors are logged and skipped, and so are
    control records.

    Args:
        messages: What a consumer fetched (`confluent_kafka.Message`s).
        feed: The consumer's name, for the log.
    """
    for message in messages:
        error = message.error()
        if error is not None:
            logger.warning("%s: %s", feed, error)
            continue
        headers = message.headers()
        if headers and topics.is_control(headers):
            continue
        yield message


def assign_new(
    consumer: Consumer,
    names: Iterable[str],
    assigned: set[str],
    backlog: Callable[[str], int | None],
    feed: str,
) -> list[TopicPartition]:
    """Assign every partition of each of `names` that exists and is not in `assigned`
    (which gains the topics assigned), explicitly, without a consumer group.

    Args:
        consumer: The consumer.
        names: The topics to follow.
        assigned: The topics assigned already; updated in place.
        backlog: Per topic, None to start at its end as librdkafka finds it on the first
            fetch, or how many records of each partition to read back from the end it
            has now (0: exactly the end now, so nothing produced after this is missed).
        feed: The consumer's name, for the log.

    Returns:
        The partitions newly assigned (none when the metadata cannot be read yet).
    """
    try:
        metadata = consumer.list_topics(timeout=5)  # all topics: naming one creates it
    except KafkaException as exc:
        logger.warning("%s: cannot read cluster metadata: %s", feed, exc)
        return []
    new: list[TopicPartition] = []
    for name in names:
        topic = metadata.topics.get(name)
        if name in assigned or topic is None or topic.error is not None or not topic.partitions:
            continue
        back = backlog(name)
        for partition in sorted(topic.partitions):
            offset = OFFSET_END
            if back is not None:
                try:
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(name, partition), timeout=5
                    )
                except KafkaException as exc:
                    logger.warning("%s: no offsets of %s yet: %s", feed, name, exc)
                    return _assigned(consumer, new)
                offset = max(low, high - back)
            new.append(TopicPartition(name, partition, offset))
        assigned.add(name)
        logger.info("%s follows %s (%d partitions)", feed, name, len(topic.partitions))
    return _assigned(consumer, new)


def _assigned(consumer: Consumer, new: list[TopicPartition]) -> list[TopicPartition]:
    if new:
        consumer.incremental_assign(new)
    return new
