"""Kafka client configuration and topic administration (confluent-kafka / librdkafka)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic, TopicMetadata

from runtime.errors import TopicSetupError
from runtime.settings import KafkaSettings

log = logging.getLogger(__name__)

_SEGMENT_MS_MAX = 3_600_000


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Configuration of a confluent-kafka `Producer` tuned for throughput without loss.

    Measured on our 2-core machines against the embedded broker, 200k-300k 130-byte trades
    on 6 partitions (`bench/kafka_producer.py`; the Python produce loop is the bottleneck):

    - enable.idempotence on: ~300-370k msg/s; off: ~760-840k msg/s. We keep it on: without it a
      retried batch can be duplicated or reordered within a partition, and a duplicated
      trade is counted twice in its candle's volume. Tansu supports it (no errors, no
      duplicates: exactly as many records stored as sent). Turn it off only to benchmark.
    - compression: lz4 made no consistent difference on loopback (within run-to-run noise,
      +-10%), so none, which leaves the CPU to the flows; over a real network to a remote
      cluster, pass `**{"compression.type": "lz4"}`.
    - linger.ms 5 vs 20 made no difference at full rate; 10 keeps latency low when idle.

    Args:
        bootstrap: `host:port[,host:port]` of the cluster.
        **overrides: librdkafka properties (use `**{"linger.ms": 50}` for dotted names)
            or confluent-kafka callbacks such as `error_cb`; they win over the defaults.

    Returns:
        A dict for `confluent_kafka.Producer`.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 10,
        "batch.num.messages": 100_000,
        "batch.size": 4_000_000,
        "compression.type": "none",
        # Room for a burst (a replay) without BufferError on every produce().
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        # Tansu creates a topic (with 4 partitions) when a client merely asks for its
        # metadata; a typo would silently make a topic of the wrong shape. Topics are made
        # only by ensure_topics().
        "allow.auto.create.topics": False,
        # librdkafka's own log lines go to Python logging (served by poll()), not stderr.
        "logger": logging.getLogger("librdkafka.producer"),
    }
    config.update(overrides)
    return config


BULK_PRODUCER: dict[str, Any] = {"linger.ms": 50, "compression.type": "lz4"}
"""`producer_config` overrides for a producer of a firehose (trades): fewer, larger batches.

The embedded broker keeps every produced batch as one stored object and never deletes one
(see `runtime.broker`); each costs ~1 KB besides its records, and every fetch walks them
all. At 2,000 trades/s (`bench/soak_run.py`) the broker grew ~3.9 GB/h with 10 ms
uncompressed batches everywhere, ~2.2 GB/h with these for trades only, ~1.1 GB/h with
these for every producer (not done: the candle and rank hops to the board would each
wait up to 50 ms more). 50 ms is far inside the candle flow's 1 s lateness; on Apache
Kafka larger compressed batches also cost less disk and network.
"""


def flush_or_drop(producer: Producer, timeout: float) -> int:
    """Deliver what `producer` has queued, for up to `timeout` seconds, then drop the rest.

    For producers whose messages are soon superseded (quotes, history a restart fetches
    again): a shutdown must not wait on them for ever.

    Returns:
        How many messages were dropped undelivered.
    """
    remaining: int = producer.flush(timeout)
    if remaining:
        producer.purge()
    return remaining


def consumer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Configuration of a confluent-kafka `Consumer` used with explicit `assign()`.

    We never join a consumer group (Tansu's group joins are slow, and each stage
    tracks its own positions), but librdkafka requires a `group.id`: it gets a
    throwaway one and commits nothing.

    Args:
        bootstrap: `host:port[,host:port]` of the cluster.
        **overrides: librdkafka properties (`**{"fetch.max.bytes": ...}`) or callbacks;
            they win over the defaults.

    Returns:
        A dict for `confluent_kafka.Consumer`.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": "tickscan-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        # librdkafka backs off 1 s after an empty fetch by default; with Tansu that turned
        # into visible 1 s stalls, 5 ms keeps a live stream live.
        "fetch.queue.backoff.ms": 5,
        "fetch.wait.max.ms": 100,
        "fetch.min.bytes": 1,
        # Bounded prefetch: a long-running consumer per partition must not hold hundreds
        # of MB. 8 MB fetches and a 16 MB queue per consumer measured no slower than
        # 50 MB / 256 MB in bench/candles.py (raw loop ~950k msg/s either way).
        "fetch.max.bytes": 8_388_608,
        "max.partition.fetch.bytes": 8_388_608,
        "queued.max.messages.kbytes": 16_384,
        "allow.auto.create.topics": False,
        "logger": logging.getLogger("librdkafka.consumer"),
    }
    config.update(overrides)
    return config


def admin_client(bootstrap: str, **overrides: Any) -> AdminClient:
    """An `AdminClient` that never creates topics as a side effect of a metadata request."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "allow.auto.create.topics": False,
        "logger": logging.getLogger("librdkafka.admin"),
        **overrides,
    }
    return AdminClient(config)


def _all_topics(admin: AdminClient, timeout: float) -> ClusterMetadata:
    # Metadata for *all* topics: naming one topic would make Tansu create it.
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise TopicSetupError(f"cannot read cluster metadata: {exc}") from exc


def topic_config(retention_ms: int) -> dict[str, str]:
    """Configuration of a topic we create: each record deleted `retention_ms` after it was written.

    Apache Kafka deletes whole closed segments only, so a segment is rolled at least hourly
    (or every `retention_ms`, if shorter): a quiet topic's one open segment would otherwise
    keep every record for `segment.ms`'s default of 7 days.

    The embedded broker (Tansu 0.6.0, memory storage) stores these settings but does not
    act on them: it deletes no record and does not implement DeleteRecords (see
    `runtime.broker`).

    Args:
        retention_ms: How long a record is kept.

    Returns:
        Topic configuration for `NewTopic(config=...)`.
    """
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(retention_ms),
        "segment.ms": str(min(retention_ms, _SEGMENT_MS_MAX)),
    }


def ensure_configured_topics(
    bootstrap: str, topics: Iterable[str], settings: KafkaSettings, timeout: float = 30
) -> dict[str, int]:
    """`ensure_topics` with the partitions, replication and retention of `settings`.

    Args:
        bootstrap: `host:port[,host:port]` of the cluster.
        topics: Topic names.
        settings: The process's Kafka settings.
        timeout: Seconds for the whole operation.

    Returns:
        Each topic's partition count.

    Raises:
        TopicSetupError: As `ensure_topics`.
    """
    config = topic_config(round(settings.retention_hours * 3_600_000))
    names = list(topics)
    return ensure_topics(
        bootstrap,
        names,
        settings.topic_partitions(),
        settings.replication_factor,
        timeout,
        configs={name: config for name in names},
    )


def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    partitions: int,
    replication_factor: int = 1,
    timeout: float = 30,
    *,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, int]:
    """Create the missing topics, then wait until every topic's partitions are visible.

    Idempotent: an existing topic (or one created concurrently by another process) is
    left as it is, even if its partition count or configuration differs (logged).

    Args:
        bootstrap: `host:port[,host:port]` of the cluster.
        topics: Topic names.
        partitions: Partitions of each topic created here.
        replication_factor: Replication factor of each topic created here.
        timeout: Seconds for the whole operation.
        configs: Per topic name, the configuration of the topic if it is created here
            (see `topic_config`); the broker's defaults where absent.

    Returns:
        Each topic's partition count.

    Raises:
        TopicSetupError: If a creation fails, or the metadata is not complete in time.
    """
    names = list(dict.fromkeys(topics))
    deadline = time.monotonic() + timeout
    admin = admin_client(bootstrap)
    existing = _all_topics(admin, timeout).topics
    expected: dict[str, int | None] = {}
    missing = []
    for name in names:
        if name in existing and existing[name].error is None:
            expected[name] = None
        else:
            missing.append(name)
            expected[name] = partitions
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    name,
                    partitions,
                    replication_factor,
                    config=dict((configs or {}).get(name, {})),
                )
                for name in missing
            ],
            request_timeout=timeout,
            operation_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
                log.info("created topic %s with %d partitions", name, partitions)
            except KafkaException as exc:
                error = exc.args[0]
                if (
                    isinstance(error, KafkaError)
                    and error.code() == KafkaError.TOPIC_ALREADY_EXISTS
                ):
                    expected[name] = None  # someone else made it: take it as it is
                    continue
                raise TopicSetupError(f"cannot create topic {name}: {exc}") from exc
            except TimeoutError as exc:
                raise TopicSetupError(f"creating topic {name} timed out") from exc

    # Creation returns before every broker's metadata shows the new partitions.
    counts: dict[str, int] = {}
    while True:
        metadata = _all_topics(admin, max(0.1, deadline - time.monotonic())).topics
        pending = []
        for name in names:
            topic = metadata.get(name)
            if _complete(topic, expected[name]):
                assert topic is not None
                counts[name] = len(topic.partitions)
            else:
                pending.append(name)
        if not pending:
            break
        if time.monotonic() >= deadline:
            raise TopicSetupError(
                f"topics {', '.join(pending)} not complete in metadata after {timeout:.0f} s"
            )
        time.sleep(0.05)
    for name in names:
        if expected[name] is None and counts[name] != partitions:
            log.warning(
                "topic %s exists with %d partitions (not %d); keeping it",
                name,
                counts[name],
                partitions,
            )
    return counts


def _complete(topic: TopicMetadata | None, want: int | None) -> bool:
    """Whether a topic's metadata shows it whole: `want` partitions (if given), all led."""
    if topic is None or topic.error is not None or not topic.partitions:
        return False
    if want is not None and len(topic.partitions) < want:
        return False
    return all(p.leader >= 0 for p in topic.partitions.values())


def partition_count(bootstrap: str, topic: str, timeout: float = 10) -> int:
    """The number of partitions of an existing topic.

    Args:
        bootstrap: `host:port[,host:port]` of the cluster.
        topic: Topic name.
        timeout: Seconds to wait for metadata.

    Returns:
        The partition count.

    Raises:
        TopicSetupError: If the topic does not exist (it is not created).
    """
    metadata = _all_topics(admin_client(bootstrap), timeout).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise TopicSetupError(f"topic {topic} does not exist on {bootstrap}")
    return len(metadata.partitions)


BUFFER_FULL_WAIT_S = 0.05
"""How long a producer whose queue is full serves deliveries before it tries again."""


def produce_when_room(
    producer: Producer,
    topic: str,
    value: bytes,
    key: bytes | str | None,
    on_delivery: Callable[[KafkaError | None, Message], None],
    **placement: Any,
) -> None:
    """Produce one message, waiting for room in librdkafka's queue as long as it takes.

    Deliveries free the queue, so serving them (`poll`) is how room is made. Hot loops
    call `produce` themselves and come here only on its `BufferError`.

    Args:
        producer: The producer.
        topic: Where the message goes.
        value: Its value.
        key: Its key (None: the partitioner picks, or `placement` names a partition).
        on_delivery: Its delivery report callback.
        **placement: ``partition`` and ``headers``, passed on to `Producer.produce`.
    """
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=on_delivery, **placement)
            return
        except BufferError:
            producer.poll(BUFFER_FULL_WAIT_S)
