"""Speed of the synthetic market, alone, with its perpetuals, and publishing to the embedded
broker."""

from __future__ import annotations

import argparse
import json
import time
import uuid

from flows.ingest.trades import TradePublisher
from flows.sources.simulator import SyntheticMarket
from flows.sources.simulator.perps import Perpetuals
from runtime.broker import EmbeddedBroker
from runtime.kafka import ensure_topics
from schemas.trades import encode_trade


def generation_rate(n: int, symbols: int, rate: float, agg: bool) -> float:
    """Trades generated per second of wall time, iterating without keeping them."""
    market = SyntheticMarket(symbols, rate, seed=1, agg=agg)
    start = time.perf_counter()
    for _ in market.trades(n):
        pass
    return n / (time.perf_counter() - start)


def perps_cost(n: int, symbols: int, rate: float, repeat: int = 3) -> dict[str, float]:
    """CPU seconds of `n` spot trades generated alone and with the perpetuals fed them as
    `publish_market` feeds them (their prints, and each second's marks, funding, open
    interest and liquidations): the best of `repeat` interleaved runs, CPU time so that
    other processes on the machine weigh less.
    """
    alone: list[float] = []
    fed: list[float] = []
    printed = records = 0
    for _ in range(repeat):
        market = SyntheticMarket(symbols, rate, seed=1)
        cpu = time.process_time()
        for _trade in market.trades(n):
            pass
        alone.append(time.process_time() - cpu)
        market = SyntheticMarket(symbols, rate, seed=1)
        perps = Perpetuals(market)
        twins = frozenset(perps.symbols)
        due_us = (perps.second + 1) * 1_000_000
        printed = records = 0
        cpu = time.process_time()
        for trade in market.trades(n):
            if trade.time_us >= due_us:
                records += len(perps.advance(trade.time_us))
                due_us = (perps.second + 1) * 1_000_000
            if trade.symbol in twins and perps.on_trade(trade) is not None:
                printed += 1
        fed.append(time.process_time() - cpu)
    return {
        "spot_cpu_s": min(alone),
        "with_perps_cpu_s": min(fed),
        "perps_overhead": min(fed) / min(alone) - 1,
        "perp_trades_per_spot_trade": printed / n,
        "perp_records": records,
    }


def encode_rate(n: int, symbols: int, rate: float) -> float:
    """Trades generated and encoded to their wire form per second: the publisher's input."""
    market = SyntheticMarket(symbols, rate, seed=1)
    start = time.perf_counter()
    for trade in market.trades(n):
        encode_trade(trade)
        _ = trade.key
    return n / (time.perf_counter() - start)


def publish_rate(n: int, symbols: int, rate: float, partitions: int) -> float:
    """Trades generated and acknowledged by a fresh embedded broker per second, flush included."""
    topic = f"bench.trades.{uuid.uuid4().hex[:8]}"
    with EmbeddedBroker() as broker:
        ensure_topics(broker.bootstrap, [topic], partitions=partitions)
        market = SyntheticMarket(symbols, rate, seed=1)
        start = time.perf_counter()
        with TradePublisher(broker.bootstrap, topic=topic) as publisher:
            publisher.publish_many(market.trades(n))
            publisher.mark_end("bench")
        elapsed = time.perf_counter() - start
        published = publisher.report().published
    if published != n:
        raise SystemExit(f"only {published} of {n} trades acknowledged")
    return n / elapsed


def main() -> None:
    """Print each figure, then all of them as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1_000.0, help="trades/s of event time")
    parser.add_argument("--publish-trades", type=int, default=500_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--no-publish", action="store_true", help="skip the broker run")
    args = parser.parse_args()

    results: dict[str, float | int] = {"trades": args.trades, "symbols": args.symbols}
    results["generated_per_s"] = generation_rate(args.trades, args.symbols, args.rate, False)
    print(f"generate:          {results['generated_per_s']:>12,.0f} trades/s")
    results["generated_agg_per_s"] = generation_rate(args.trades, args.symbols, args.rate, True)
    print(f"generate (agg):    {results['generated_agg_per_s']:>12,.0f} prints/s")
    cost = perps_cost(args.trades, args.symbols, args.rate)
    results.update(cost)
    print(
        f"perpetuals:        {cost['perps_overhead']:>12.1%} more CPU than the spot trades alone "
        f"({cost['spot_cpu_s']:.2f} -> {cost['with_perps_cpu_s']:.2f} s), "
        f"{cost['perp_trades_per_spot_trade']:.1%} more prints, {cost['perp_records']:,} records"
    )
    results["generated_encoded_per_s"] = encode_rate(args.trades, args.symbols, args.rate)
    print(f"generate + encode: {results['generated_encoded_per_s']:>12,.0f} trades/s")
    if not args.no_publish:
        n = args.publish_trades
        published = publish_rate(n, args.symbols, args.rate, args.partitions)
        results["publish_trades"] = n
        results["published_per_s"] = published
        # Share of the publishing run's time spent generating: generation must not dominate.
        results["generation_share"] = published / results["generated_per_s"]
        print(f"generate + publish:{published:>12,.0f} trades/s ({args.partitions} partitions)")
        print(f"generation share of the publishing run: {results['generation_share']:.0%}")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()
