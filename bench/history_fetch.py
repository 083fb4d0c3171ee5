"""History at start against the fake Binance: how long a day of 1m klines takes, at what weight.

Starts the embedded broker, a chDB store in a temporary directory and the fake Binance
(`--market`, `--symbols`, trades over the last 24 h at `--rate` per symbol per second),
then one live ingest with history on, and waits until every symbol has its day of
candles. It prints the seconds from start, the REST requests and weight of history,
the weight the fake counted in each minute of its clock against the client's cap, and
the candles written. Binance's real limits apply (spot 6,000, USDⓈ-M 2,400 per minute;
the client keeps 80 % and history leaves a quarter of that to gap repair), so a day for
more symbols than one minute's share allows spans minutes: that is the pacing at work.

    .venv/bin/python bench/history_fetch.py [--market usdm --symbols 300 --rate 0.0083]

Last line: a JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path

from flows.ingest.settings import IngestSettings
from runtime.broker import EmbeddedBroker
from runtime.settings import ClickHouseSettings, KafkaSettings
from tests.fakes.binance import FakeBinance
from tickscan.ingest import LiveIngest
from tickscan.settings import Settings


async def measure(market: str, symbols: int, rate: float, data: Path, bootstrap: str) -> dict:
    started = time.perf_counter()
    fake = FakeBinance(market, symbols=symbols, rate=rate, seed=5, history_s=86_400 + 300)  # type: ignore[arg-type]
    prefill_s = time.perf_counter() - started
    fake.rate = 0.5
    settings = Settings(
        data_dir=data,
        kafka=KafkaSettings(bootstrap=bootstrap),
        clickhouse=ClickHouseSettings(dsn=f"chdb://{data / 'ch'}", database="bench"),
        ingest=IngestSettings(history_progress_every_s=5.0),
    )
    async with fake:
        live = LiveIngest(settings, market=fake.market, rest_url=fake.rest_url, ws_base=fake.ws_url)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(live.run(stop))
        while True:
            await asyncio.sleep(0.2)
            report = live.history
            if task.done():
                task.result()
            if report is not None and report.seconds and report.done == report.total:
                break
        elapsed = time.perf_counter() - started
        stop.set()
        await task
    assert report is not None
    cap = int(0.8 * fake.weight_limit)
    return {
        "market": market,
        "symbols": symbols,
        "fake_prefill_s": round(prefill_s, 1),
        "seconds_from_start": round(elapsed, 1),
        "history_seconds": round(report.seconds, 1),
        "candles": report.candles,
        "failed": report.failed,
        "requests": report.requests,
        "weight": report.weight,
        "weight_per_symbol": round(report.weight / max(1, report.total), 2),
        "weight_by_minute": sorted(fake.weight_by_minute.values()),
        "cap_per_minute": cap,
        "history_share_per_minute": cap - int(cap * 0.25),
        "refused": sum(1 for _, _, status in fake.rest_requests if status != 200),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--market", choices=("spot", "usdm"), default="usdm")
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--rate", type=float, default=1 / 120, help="trades/s/symbol of history")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("flows.ingest.history").setLevel(logging.INFO)
    with (
        tempfile.TemporaryDirectory(prefix="bench-history-") as tmp,
        EmbeddedBroker(Path(tmp)) as broker,
    ):
        figures = asyncio.run(
            measure(args.market, args.symbols, args.rate, Path(tmp), broker.bootstrap)
        )
    for key, value in figures.items():
        print(f"{key:>26}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
