"""Live depth against the fake Binance and the real broker: followed while watched.

A `DepthWatch` record on ``md.depth_watch.v1`` names a symbol; the live ingest subscribes
its ``@depth20@100ms`` stream on the running connection (``/public`` on USDⓈ-M), publishes
its books to ``md.depth.v1``, and unsubscribes it when a later record leaves it out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from runtime.kafka import producer_config
from schemas import topics
from schemas.depth import BookDepth, DepthWatch, depth_decoder, encode_depth
from schemas.trades import Market
from tests.fakes.binance import FakeBinance
from tests.integration.live_run import Run, live_ingest, open_market, read_topic
from tickscan.settings import Settings

pytestmark = pytest.mark.integration

STREAM = "btcusdt@depth20@100ms"


def _watch(bootstrap: str, topic: str, market: Market, symbols: list[str]) -> None:
    record = DepthWatch("binance", market, symbols, time.time_ns() // 1_000)
    producer = Producer(producer_config(bootstrap))
    producer.produce(topic, encode_depth(record), record.key)
    assert producer.flush(10) == 0


def _control(fake: FakeBinance, method: str) -> set[str]:
    return {
        stream
        for msg in fake.subscribe_messages
        if isinstance(msg, dict) and msg.get("method") == method
        for stream in msg["params"]
    }


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_depth_is_followed_while_its_symbol_is_watched(
    market: Market,
    make_settings: Callable[..., Settings],
    fresh_topic: Callable[[str], str],
    kafka_bootstrap: str,
) -> None:
    depth_topic, watch_topic = fresh_topic(topics.DEPTH), fresh_topic(topics.DEPTH_WATCH)
    with FakeBinance(market, symbols=3, rate=0.0, seed=5) as fake:

        async def scenario() -> int:
            live = live_ingest(make_settings(depth_watch_poll_s=0.1), fake, fresh_topic)
            run = Run(live)
            await open_market(fake, run)
            await run.until(lambda: live.counts.trades > 20, 15, "trades")
            assert not any("@depth" in s for s in live.streams)  # nothing watched yet
            # Another exchange's record, and one for a symbol not listed, change nothing.
            _watch(kafka_bootstrap, watch_topic, market, ["NOPEUSDT"])
            _watch(kafka_bootstrap, watch_topic, "spot" if market == "usdm" else "usdm", [])
            await asyncio.sleep(0.5)
            assert not any("@depth" in s for s in live.streams)
            _watch(kafka_bootstrap, watch_topic, market, ["BTCUSDT"])
            await run.until(lambda: live.counts.depth >= 10, 15, "depth of BTCUSDT")
            assert {s for s in live.streams if "@depth" in s} == {STREAM}
            _watch(kafka_bootstrap, watch_topic, market, [])
            await run.until(lambda: STREAM not in live.streams, 10, "the unwatch")
            await run.until(lambda: STREAM in _control(fake, "UNSUBSCRIBE"), 10, "UNSUBSCRIBE")
            await asyncio.sleep(0.5)  # what was in flight arrives
            published = live.counts.depth
            await asyncio.sleep(0.5)
            assert live.counts.depth == published  # nothing after the unsubscribe
            run.stop.set()
            await run.task
            return published

        published = asyncio.run(scenario())
        assert STREAM in _control(fake, "SUBSCRIBE")
        assert not any("@depth" in s for s in _control(fake, "SUBSCRIBE") - {STREAM})

    decode = depth_decoder().decode
    books: list[BookDepth] = [
        decode(value) for _, value in read_topic(kafka_bootstrap, depth_topic, published)
    ]
    assert len(books) == published
    assert {(b.exchange, b.market, b.symbol, b.key) for b in books} == {
        ("binance", market, "BTCUSDT", f"binance:{market}:BTCUSDT")
    }
    ids = [b.update_id for b in books]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for book in books:
        assert len(book.bids) == len(book.asks) == 20
        assert book.bids[0][0] < book.asks[0][0]
        assert [p for p, _ in book.bids] == sorted((p for p, _ in book.bids), reverse=True)
        # Spot's partial depth has no time; USDⓈ-M's has its transaction time.
        assert (book.time_us is None) == (market == "spot")
