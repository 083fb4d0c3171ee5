"""Live ingest throughput: the fake Binance in a child process -> LiveIngest -> Kafka.

Runs `tests.fakes.binance.FakeBinance` in its own process (so the exchange does not
share our GIL) with S symbols at R trades/s each, points `flows.ingest.run.LiveIngest` at it
for D seconds, and reports the trades and quotes ingest handled per second, how far it
fell behind the exchange (frames queued, the consumer's lag), and the process's peak RSS.
Raise R until ingest falls behind to find its ceiling on this machine.

Prints its figures and a last line of JSON:
{"trades_per_s": N, "quotes_per_s": Q, "offered_per_s": O, "max_queued": M, "rss_mb": R}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

# The fake exchange lives in tests/, which is not installed: import it from the checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.ingest.settings import IngestSettings
from runtime.broker import EmbeddedBroker
from runtime.process import tune_for_streaming
from runtime.settings import ClickHouseSettings, KafkaSettings
from schemas import topics
from tickscan.ingest import LiveIngest
from tickscan.settings import Settings


def serve(
    market: str, symbols: int, rate: float, urls: multiprocessing.Queue, stop: object
) -> None:
    """Child process: run the fake exchange until told to stop."""
    from tests.fakes.binance import FakeBinance

    with FakeBinance(market, symbols=symbols, rate=rate, seed=1) as fake:  # type: ignore[arg-type]
        urls.put((fake.rest_url, fake.ws_url))
        stop.wait()  # type: ignore[attr-defined]


async def measure(settings: Settings, market: str, rest: str, ws: str, seconds: float) -> dict:
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    live = LiveIngest(
        settings,
        market=market,  # type: ignore[arg-type]
        rest_url=rest,
        ws_base=ws,
        trades_topic=prefix + topics.TRADES,
        quotes_topic=prefix + topics.QUOTES,
        deadletter_topic=prefix + topics.DEADLETTER,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(live.run(stop))
    while not live.status().freshness:
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)  # warm up: every connection subscribed
    first = live.status()
    started = time.monotonic()
    max_queued = 0
    while time.monotonic() - started < seconds:
        await asyncio.sleep(0.2)
        max_queued = max(max_queued, live.status().queued)
    last = live.status()
    elapsed = time.monotonic() - started
    stop.set()
    report = await task
    return {
        "trades_per_s": round((last.counts.trades - first.counts.trades) / elapsed),
        "quotes_per_s": round((last.counts.quotes - first.counts.quotes) / elapsed),
        "max_queued": max_queued,
        "connections": len(last.connections),
        "gaps": dict(report.repairs.gaps),
        "duplicates": report.counts.duplicates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--market", default="spot", choices=["spot", "usdm"])
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--rate", type=float, default=25.0, help="trades/s per symbol")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    tune_for_streaming()

    ctx = multiprocessing.get_context("spawn")
    urls: multiprocessing.Queue = ctx.Queue()
    stop = ctx.Event()
    child = ctx.Process(
        target=serve, args=(args.market, args.symbols, args.rate, urls, stop), daemon=True
    )
    child.start()
    try:
        rest, ws = urls.get(timeout=60)
        with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp)) as broker:
            settings = Settings(
                kafka=KafkaSettings(bootstrap=broker.bootstrap),
                clickhouse=ClickHouseSettings(dsn=f"chdb://{tmp}/ch", database="bench"),
                ingest=IngestSettings(status_every_s=3600),
            )
            figures = asyncio.run(measure(settings, args.market, rest, ws, args.seconds))
    finally:
        stop.set()
        child.join(timeout=30)
    offered = args.symbols * args.rate
    figures["offered_per_s"] = round(offered)
    figures["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"{args.market}: {args.symbols} symbols x {args.rate:g} trades/s offered "
        f"({offered:,.0f}/s, as many quotes), over {figures['connections']} connections"
    )
    print(
        f"ingested {figures['trades_per_s']:,} trades/s and {figures['quotes_per_s']:,} quotes/s; "
        f"max queued {figures['max_queued']:,}; gaps {figures['gaps']}"
    )
    print(json.dumps({k: figures[k] for k in (
        "trades_per_s", "quotes_per_s", "offered_per_s", "max_queued", "rss_mb")}))  # fmt: skip


if __name__ == "__main__":
    main()
