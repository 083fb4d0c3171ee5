"""The soak's verifier, in a child process: every trade id on the topic against the fake's truth."""

from __future__ import annotations

import collections
import time
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from bench.soak.memory import rss_mb
from runtime.kafka import consumer_config


class _TradeId(msgspec.Struct):
    symbol: str
    trade_id: int


class _Coverage:
    """The ids of one symbol seen on the topic: all of first..low, plus `above` past low."""

    __slots__ = ("above", "first", "low")

    def __init__(self, first: int) -> None:
        self.first = first
        self.low = first
        self.above: set[int] = set()


def verifier(bootstrap: str, topic: str, conn: Connection) -> None:
    """Child process: read `topic` from the start until told to finish, then count the
    ids missing against the ground truth it is sent ({symbol: last id})."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(consumer_config(bootstrap))
    partitions = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    decode = msgspec.json.Decoder(_TradeId).decode
    cover: dict[str, _Coverage] = {}
    counts = collections.Counter[str]()

    def take(messages: list[Any]) -> None:
        for msg in messages:
            if msg.error() is not None:
                counts["errors"] += 1
                continue
            try:
                t = decode(msg.value())
            except msgspec.DecodeError:
                counts["undecodable"] += 1
                continue
            counts["consumed"] += 1
            c = cover.get(t.symbol)
            tid = t.trade_id
            if c is None:
                cover[t.symbol] = _Coverage(tid)
            elif tid == c.low + 1:
                c.low = tid
                above = c.above
                while above and c.low + 1 in above:
                    above.remove(c.low + 1)
                    c.low += 1
            elif tid <= c.low or tid in c.above:
                counts["duplicates" if tid >= c.first else "before_first"] += 1
            else:
                c.above.add(tid)

    try:
        while not conn.poll():
            take(consumer.consume(10_000, 0.5))
        _, truth = conn.recv()
        # Ingest has flushed: read up to the end of every partition.
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in partitions
        }
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            positions = consumer.position([TopicPartition(topic, p) for p in partitions])
            if all(tp.offset >= ends[tp.partition] for tp in positions):
                break
            take(consumer.consume(10_000, 0.5))
        else:
            counts["unread_at_end"] = 1
        missing = beyond = 0
        unseen: list[str] = []
        holes: list[tuple[str, int, int]] = []  # the first few missing id ranges
        for symbol, last in truth.items():
            c = cover.get(symbol)
            if c is None:
                unseen.append(symbol)
                continue
            got_above = sum(1 for i in c.above if i <= last)
            beyond += len(c.above) - got_above + max(0, c.low - last)
            lost = max(0, last - c.low) - got_above
            missing += lost
            if lost and len(holes) < 5:
                start = None
                for i in range(c.low + 1, last + 2):
                    if i <= last and i not in c.above:
                        start = i if start is None else start
                    elif start is not None:
                        holes.append((symbol, start, i - 1))
                        start = None
        conn.send(
            {
                "consumed": counts["consumed"],
                "ids_expected": sum(truth[s] - c.first + 1 for s, c in cover.items() if s in truth),
                "missing": missing,
                "duplicates": counts["duplicates"],
                "before_first": counts["before_first"],
                "beyond_truth": beyond,
                "undecodable": counts["undecodable"],
                "errors": counts["errors"],
                "unread_at_end": counts["unread_at_end"],
                "symbols_seen": len(cover),
                "symbols_unseen": unseen,
                "holes": holes[:5],
                "rss_mb": rss_mb(),
            }
        )
    finally:
        consumer.close()
