"""Running `flows.live.LiveIngest` against the fake Binance inside an integration test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from flows.live import IngestReport, LiveIngest
from runtime.settings import ClickHouseSettings, IngestSettings, KafkaSettings, Settings
from schemas import topics
from tests.fakes.binance import FakeBinance

PARTITIONS = 3
RATE = 40.0
"""Trades per second per symbol once the fake exchange opens."""


def live_settings(bootstrap: str, dsn: str, database: str, **ingest: Any) -> Settings:
    """Settings for a test: the session's broker and database, short ingest timings."""
    timings: dict[str, Any] = {
        "open_timeout_s": 5.0,
        "stall_s": 5.0,
        "backoff_base_s": 0.1,
        "backoff_max_s": 1.0,
        "gap_grace_s": 0.3,
        "rotation_overlap_s": 0.3,
        "status_every_s": 5.0,
    }
    timings.update(ingest)
    return Settings(
        kafka=KafkaSettings(bootstrap=bootstrap, partitions=PARTITIONS),
        clickhouse=ClickHouseSettings(dsn=dsn, database=database),
        ingest=IngestSettings(**timings),
    )


def live_ingest(
    settings: Settings, fake: FakeBinance, topic: Callable[[str], str], **options: Any
) -> LiveIngest:
    """A live ingest of the fake's market onto fresh topics."""
    return LiveIngest(
        settings,
        market=fake.market,
        rest_url=fake.rest_url,
        ws_base=fake.ws_url,
        trades_topic=topic(topics.TRADES),
        quotes_topic=topic(topics.QUOTES),
        deadletter_topic=topic(topics.DEADLETTER),
        **options,
    )


def truth_ids(fake: FakeBinance, symbol: str) -> list[int]:
    """The ids the followed stream numbers: raw trade ids on spot, aggregate ids on USDⓈ-M."""
    if fake.market == "spot":
        return [row["id"] for row in fake.raw_trades(symbol)]
    return [row["a"] for row in fake.trades(symbol)]


class Run:
    """One ingest run in the background of a test's event loop."""

    def __init__(self, live: LiveIngest) -> None:
        self.live = live
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(live.run(self.stop))

    async def until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.task.done():
                self.task.result()
                raise AssertionError(f"ingest ended while waiting for {what}")
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}: {self.live.status()}"
            )
            await asyncio.sleep(0.05)

    async def subscribed(self, timeout: float = 15.0) -> None:
        """Wait until every stream is subscribed on an open connection."""

        def ready() -> bool:
            shards = self.live.status().connections
            return bool(shards) and all(s.state == "open" for s in shards)

        await self.until(ready, timeout, "every connection open and subscribed")

    async def finish(self, fake: FakeBinance, timeout: float = 20.0) -> IngestReport:
        """Stop the exchange trading, wait until ingest has every trade, stop ingest."""
        fake.rate = 0.0
        await asyncio.sleep(0.3)  # the generator's last tick is sent
        ids = {s: truth_ids(fake, s) for s in self.live.symbols}

        def caught_up() -> bool:
            status = self.live.status()
            return (
                status.repairs_running == 0
                and status.open_holes == 0
                and all(
                    not want or self.live.last_trade_id(s) == want[-1] for s, want in ids.items()
                )
            )

        await self.until(caught_up, timeout, "ingest to catch up with the exchange")
        self.stop.set()
        return await asyncio.wait_for(self.task, 60)


async def open_market(fake: FakeBinance, *runs: Run) -> None:
    """Start the fake's trading once every run is subscribed: ingest sees its first trade."""
    for run in runs:
        await run.subscribed()
    fake.rate = RATE
