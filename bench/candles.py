"""Candle flow end to end: Kafka -> candle flow -> ClickHouse + candle topic, one worker.

Publishes N synthetic trades to a fresh topic on the embedded broker (or --kafka),
then times, in the same run:

- the candle flow over exactly those trades, one Bytewax worker, writing candles_1s and
  candles_1m to chDB (or --clickhouse) and every candle to the candle topic;
- a raw confluent-kafka consume + msgspec decode loop over the same topic (the ceiling
  any Python consumer of this topic has), and `ratio` = flow / raw.

Prints where the time goes, and a last line of JSON:
{"trades_per_s": N, "raw_per_s": M, "ratio": N/M, "rss_mb": R}
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from pathlib import Path

from bytewax.testing import run_main
from confluent_kafka import Consumer, TopicPartition

# The candle flow as the integration tests run it lives in tests/, which is not installed,
# and the benchmarks' shared start in bench/: import both from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.published_trades import add_arguments, published_trades
from flows.candles.flow import FlowCounters
from flows.sources.kafka import RunBounds
from runtime.kafka import consumer_config
from runtime.process import tune_for_streaming
from schemas.trades import trade_decoder
from tests.integration.candle_flow import past_candle_flow


def current_rss_mb() -> float:
    """Resident set size of this process now, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class RssSampler:
    """Peak RSS while a block runs, sampled every 50 ms in a thread."""

    def __enter__(self) -> RssSampler:
        self.start_mb = self.peak_mb = current_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_mb = max(self.peak_mb, current_rss_mb())

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, current_rss_mb())


def raw_consume(bootstrap: str, topic: str, bounds: RunBounds, expected: int) -> float:
    """Seconds a bare consume + decode loop takes over the run's records."""
    consumer = Consumer(consumer_config(bootstrap))
    consumer.assign([TopicPartition(topic, p, o) for p, o in bounds.start.items()])
    decode = trade_decoder().decode
    stops = dict(bounds.end)
    done = {p for p, o in bounds.start.items() if o >= stops[p]}
    seen = 0
    started = time.perf_counter()
    while len(done) < len(stops):
        for message in consumer.consume(5_000, 0.1):
            if message.error() is not None:
                continue
            partition = message.partition()
            if message.offset() >= stops[partition]:
                done.add(partition)
                continue
            decode(message.value())
            seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    if seen != expected:
        raise SystemExit(f"raw loop read {seen} trades, expected {expected}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(
        parser,
        rate_help="market trades per second of event time (sets how many candles N trades make)",
    )
    args = parser.parse_args(argv)
    tune_for_streaming()

    with published_trades(args, "candles", ["candles"]) as published:
        bootstrap, client, database = published.bootstrap, published.client, published.database
        trades_topic, candles_topic, dl_topic = (
            published.topics[t] for t in ("trades", "candles", "deadletter")
        )
        report, publish_s = published.report, published.publish_s
        bounds = report.bounds()
        print(
            f"published {report.published:,} trades of {args.symbols:,} symbols in "
            f"{publish_s:.1f} s ({report.published / publish_s:,.0f}/s incl. generation)",
            file=sys.stderr,
        )

        raw_s = raw_consume(bootstrap, trades_topic, bounds, report.published)
        raw_per_s = report.published / raw_s

        counters = FlowCounters()
        names = (trades_topic, candles_topic, dl_topic)
        flow, writer = past_candle_flow(bootstrap, client, database, bounds, names, counters)
        started = time.perf_counter()
        with RssSampler() as rss:
            run_main(flow)
        flow_s = time.perf_counter() - started
        if counters.trades != report.published:
            raise SystemExit(f"flow read {counters.trades} trades of {report.published}")
        stored = client.query(
            "SELECT (SELECT count() FROM {db:Identifier}.candles_1s),"
            " (SELECT count() FROM {db:Identifier}.candles_1m)",
            parameters={"db": database},
        ).result_rows[0]
        trades_per_s = report.published / flow_s
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"raw consume+decode: {raw_s:.2f} s ({raw_per_s:,.0f} trades/s)\n"
            f"candle flow: {flow_s:.2f} s ({trades_per_s:,.0f} trades/s), "
            f"{writer.written['1s']:,} x 1s and {writer.written['1m']:,} x 1m candles "
            f"(stored {stored[0]:,} / {stored[1]:,}), {counters.dead_letters} dead letters\n"
            f"RSS during the flow: {rss.start_mb:,.0f} MB at start, {rss.peak_mb:,.0f} MB peak "
            f"(the process peak includes the publishing stage's producer queue)",
            file=sys.stderr,
        )
        print(
            json.dumps(
                {
                    "trades_per_s": round(trades_per_s),
                    "raw_per_s": round(raw_per_s),
                    "ratio": round(trades_per_s / raw_per_s, 3),
                    "rss_mb": round(rss_mb),
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
