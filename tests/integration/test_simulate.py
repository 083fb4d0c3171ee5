"""`tickscan simulate` against the real broker: paced at the wall clock, or flat out."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from confluent_kafka import Producer

from flows.sources.simulator import SyntheticMarket
from flows.sources.simulator.perps import Perpetuals
from runtime.kafka import ensure_topics, producer_config
from schemas import topics
from schemas.depth import DepthWatch, depth_decoder, encode_depth
from schemas.quotes import quote_decoder
from tests.integration.live_run import PARTITIONS, read_topic
from tickscan.simulate import publish_market, simulate

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(kafka_bootstrap: str, fresh_topic: Callable[[str], str]) -> str:
    name = fresh_topic(topics.TRADES)
    ensure_topics(kafka_bootstrap, [name], partitions=3)
    return name


def test_paced_run_publishes_rate_per_second_stamped_with_wall_time(
    kafka_bootstrap: str, topic: str
) -> None:
    before_us = time.time_ns() // 1_000
    report = simulate(kafka_bootstrap, symbols=20, rate=400.0, duration=2.0, seed=1, topic=topic)
    after_us = time.time_ns() // 1_000

    assert report.publish.delivery_failures == 0
    # 2 s at 400/s: Poisson arrivals, so allow a few standard deviations (sqrt(800) ~ 28).
    assert 650 <= report.trades <= 950
    assert 1.9 <= report.seconds < 3.5
    assert report.first_time_us is not None and report.last_time_us is not None
    # Event time is wall time: fresh data, never ahead of the moment it was sent.
    assert before_us <= report.first_time_us <= before_us + 100_000
    assert report.last_time_us <= after_us
    assert report.last_time_us - report.first_time_us > 1_800_000


def test_flat_out_run_outpaces_the_rate_and_stops_when_asked(
    kafka_bootstrap: str, topic: str
) -> None:
    stop = threading.Event()
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    try:
        report = simulate(
            kafka_bootstrap,
            symbols=100,
            rate=1_000.0,
            duration=None,
            seed=2,
            topic=topic,
            realtime=False,
            stop=stop,
            run_id="sim-1",
        )
    finally:
        timer.cancel()

    assert report.seconds < 5.0
    # Far more than 1.5 s worth at 1000/s: event time ran ahead of the wall clock.
    assert report.trades > 20_000
    assert report.publish.published == report.trades
    assert report.first_time_us is not None and report.last_time_us is not None
    event_s = (report.last_time_us - report.first_time_us) / 1e6
    assert report.trades / event_s == pytest.approx(1_000.0, rel=0.05)
    # run_id ends the run in every partition, after the data.
    spans = report.publish.partitions
    assert sorted(spans) == [0, 1, 2]
    for span in spans.values():
        assert span.end_offset is not None and span.last_offset is not None
        assert span.end_offset == span.last_offset + 1


def test_quotes_go_to_their_topic_keyed_like_the_trades(
    kafka_bootstrap: str, topic: str, fresh_topic: Callable[[str], str]
) -> None:
    quotes_topic = fresh_topic(topics.QUOTES)
    ensure_topics(kafka_bootstrap, [quotes_topic], partitions=PARTITIONS)
    report = simulate(
        kafka_bootstrap,
        symbols=20,
        rate=400.0,
        duration=3.0,
        seed=3,
        topic=topic,
        quotes_topic=quotes_topic,
    )
    # A book ticker per move of a traded symbol's book, at most ten a second.
    assert 20 <= report.quotes <= 20 * 10 * 4
    decode = quote_decoder().decode
    quotes = [
        decode(value) for _, value in read_topic(kafka_bootstrap, quotes_topic, report.quotes)
    ]
    assert len(quotes) == report.quotes
    assert all(q.exchange == "sim" and 0 < q.bid_price < q.ask_price for q in quotes)
    assert all(q.ask_price / q.bid_price - 1 < Decimal("0.03") for q in quotes)
    assert report.first_time_us is not None and report.last_time_us is not None
    assert all(
        q.time_us is not None and report.first_time_us <= q.time_us <= report.last_time_us
        for q in quotes
    )


def test_depth_goes_out_for_the_watched_symbols_of_each_market_only(
    kafka_bootstrap: str, topic: str, fresh_topic: Callable[[str], str]
) -> None:
    names = [fresh_topic(t) for t in (topics.QUOTES, topics.DEPTH, topics.DEPTH_WATCH)]
    marks, liquidations, open_interest, funding = (
        fresh_topic(t)
        for t in (topics.MARKS, topics.LIQUIDATIONS, topics.OPEN_INTEREST, topics.FUNDING)
    )
    ensure_topics(
        kafka_bootstrap,
        [*names, marks, liquidations, open_interest, funding],
        partitions=PARTITIONS,
    )
    quotes_topic, depth_topic, watch_topic = names
    now_us = time.time_ns() // 1_000
    watches = [
        DepthWatch("sim", "spot", ["SYM0002USDT", "SYM0005USDT"], now_us),
        DepthWatch("sim", "usdm", ["SYM0001USDT"], now_us),
        DepthWatch("binance", "spot", ["SYM0003USDT"], now_us),  # another exchange's
        DepthWatch("sim", "spot", ["SYM0002USDT"], now_us + 1),  # replaces the first
    ]
    producer = Producer(producer_config(kafka_bootstrap))
    for watch in watches:
        producer.produce(watch_topic, encode_depth(watch), watch.key)
    assert producer.flush(10) == 0

    market = SyntheticMarket(20, 400.0, seed=4, start_us=now_us, quotes=True)
    perps = Perpetuals(market)
    report = publish_market(
        kafka_bootstrap,
        market,
        duration=3.0,
        topic=topic,
        quotes_topic=quotes_topic,
        perps=perps,
        perp_topics=topics.PerpTopics(marks, liquidations, open_interest, funding),
        depth_topic=depth_topic,
        watch_topic=watch_topic,
    )
    assert report.depth > 20
    decode = depth_decoder().decode
    depth = [decode(value) for _, value in read_topic(kafka_bootstrap, depth_topic, report.depth)]
    assert {(d.exchange, d.market, d.symbol) for d in depth} == {
        ("sim", "spot", "SYM0002USDT"),
        ("sim", "usdm", "SYM0001USDT"),
    }
    # Every 100 ms of event time per symbol (from when the watch was read), 20 levels a
    # side, the best bid under the best ask.
    for key in ("SYM0002USDT", "SYM0001USDT"):
        times = sorted(d.update_id for d in depth if d.symbol == key)
        assert len(times) >= 15
        assert {b - a for a, b in itertools.pairwise(times)} == {100_000}
    assert all(len(d.bids) == len(d.asks) == 20 for d in depth)
    assert all(d.bids[0][0] < d.asks[0][0] for d in depth)
