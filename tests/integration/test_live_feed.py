"""The API's live feed on the real broker: a fetch is handed over as soon as it arrives."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from confluent_kafka import Producer

from api.live.feed import FeedBatch, LiveFeed, LiveTopics
from runtime.kafka import ensure_topics, producer_config
from schemas.ranks import RankRow, encode_rank

pytestmark = pytest.mark.integration

POLL_S = 120.0
"""The feed's longest wait for records: far longer than the test waits for them."""


def test_a_fetch_smaller_than_a_batch_is_delivered_without_waiting_for_more(
    kafka_bootstrap: str,
) -> None:
    live = LiveTopics.with_prefix(f"f{uuid.uuid4().hex[:8]}-")
    ensure_topics(kafka_bootstrap, [live.ranks, live.signals, live.candles], 2)
    batches: list[FeedBatch] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        feed = LiveFeed(kafka_bootstrap, live, batches.append, batch_size=5_000, poll_s=POLL_S)
        feed.start(loop)
        producer = Producer(producer_config(kafka_bootstrap))

        def produce(symbols: list[str]) -> None:
            now = time.time_ns() // 1_000_000
            for symbol in symbols:
                row = RankRow("binance", "spot", symbol, now, 1.0)
                producer.produce(live.ranks, encode_rank(row), row.key.encode())
            producer.flush(10)

        try:
            deadline = time.monotonic() + 30
            while not feed.running:
                assert time.monotonic() < deadline, "the feed never followed its topics"
                await asyncio.sleep(0.05)
            produce(["S0USDT", "S1USDT", "S2USDT"])  # far fewer than batch_size
            deadline = time.monotonic() + 30
            while sum(len(b.ranks) for b in batches) < 3:
                assert time.monotonic() < deadline, "three records never reached the loop"
                await asyncio.sleep(0.05)
        finally:
            # The thread waits in a poll of POLL_S: one more record ends that wait.
            feed.stop(timeout=0)
            produce(["WAKEUSDT"])
            await asyncio.to_thread(feed.stop, 30)

    asyncio.run(scenario())
    assert sorted(r.symbol for b in batches for r in b.ranks)[:3] == ["S0USDT", "S1USDT", "S2USDT"]
