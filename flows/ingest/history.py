"""History for a fresh install: the last day of 1m klines the store lacks, and the 24h tickers.

When live ingest starts, `History` asks ClickHouse which minutes of the last
`IngestSettings.history_h` hours each followed symbol lacks in candles_1m
(`flows.ingest.coverage`). If any does,
it fetches the exchange's 24h tickers in one request and publishes them on md.tickers.v1
(one per followed symbol: a 24h change and volume at once), then fetches the missing
klines over REST, most traded symbol first, writes them to candles_1m as the exchange's
candles (``source = 'exchange'``, ``version = 0``: a candle our flow builds wins) and
publishes them on md.candles.v1, keyed like the trades, so the signals flow fills its
rings. A restart fetches only what is still missing; on a complete store, nothing.

Its requests go through `BinanceRest.background`: gap repair shares the weight budget
and never waits behind history. Progress is logged every few seconds and written to
``history_progress``, where every API process reads it for ``/api/v1/health``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client
from confluent_kafka import KafkaError, Message, Producer

from flows.ingest.coverage import Need, history_window, most_traded_first, plan, stored_coverage
from flows.sinks.clickhouse import CandleWriter
from flows.sources.binance.klines import EXCHANGE, fetch_klines
from flows.sources.binance.rest import BinanceBanned, BinanceRest, BinanceRestError
from runtime.kafka import flush_or_drop, produce_when_room, producer_config
from schemas import topics
from schemas.candles import Candle, encode_candle
from schemas.tickers import Ticker24h, encode_ticker
from schemas.trades import Market

logger = logging.getLogger(__name__)

PROGRESS_TABLE = "history_progress"

_T = TypeVar("_T")

# -- publishing --------------------------------------------------------------------------


class HistoryPublisher:
    """Publishes history candles to md.candles.v1 and tickers to md.tickers.v1.

    A failed delivery is counted and logged once: the candles are in ClickHouse too,
    where the signals flow's warm start finds them.

    Args:
        bootstrap: Kafka bootstrap servers.
        candles_topic: Topic of the candles.
        tickers_topic: Topic of the tickers.
    """

    def __init__(
        self,
        bootstrap: str,
        candles_topic: str = topics.CANDLES,
        tickers_topic: str = topics.TICKERS,
    ) -> None:
        self.candles_topic = candles_topic
        self.tickers_topic = tickers_topic
        self.failures = 0
        self._producer = Producer(producer_config(bootstrap))

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.failures += 1
            if self.failures == 1:
                logger.error("history delivery to Kafka failed: %s", err)

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        produce_when_room(self._producer, topic, value, key, self._on_delivery)

    def candles(self, candles: Iterable[Candle]) -> None:
        """Queue candles for delivery, each keyed like its symbol's trades."""
        for candle in candles:
            self._produce(self.candles_topic, candle.key, encode_candle(candle))
        self._producer.poll(0)

    def tickers(self, tickers: Iterable[Ticker24h]) -> None:
        """Queue tickers for delivery, each keyed like its symbol's trades."""
        for ticker in tickers:
            self._produce(self.tickers_topic, ticker.key, encode_ticker(ticker))
        self._producer.poll(0)

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued (for up to `timeout` seconds)."""
        if dropped := flush_or_drop(self._producer, timeout):
            logger.error("%d history message(s) undelivered after %.0f s", dropped, timeout)


# -- the fetch ---------------------------------------------------------------------------


@dataclass
class HistoryReport:
    """What a fetch of history found and did.

    Attributes:
        market: The market.
        symbols: Symbols followed.
        total: Symbols that lacked minutes.
        minutes: Minutes they lacked.
        done: Symbols finished (stored, or failed).
        failed: Symbols whose klines could not be fetched.
        candles: Candles written and published.
        tickers: Tickers published.
        requests: REST requests of history.
        weight: Their weight.
        peak_weight_1m: Most weight (of every request of the client) seen in a minute.
        seconds: How long it took.
        stopped: Why it stopped before the end (a ban), or empty.
    """

    market: Market
    symbols: int = 0
    total: int = 0
    minutes: int = 0
    done: int = 0
    failed: int = 0
    candles: int = 0
    tickers: int = 0
    requests: int = 0
    weight: int = 0
    peak_weight_1m: int = 0
    seconds: float = 0.0
    stopped: str = ""


async def _finish(work: Awaitable[_T]) -> _T:
    """Await `work` to its end even when the caller is cancelled meanwhile (then re-raise):
    a ClickHouse insert running in a thread must end before its client is closed."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


class History:
    """Fetches, stores and publishes the 1m history one market lacks (see the module).

    Args:
        rest: The client to fetch with: the live ingest's `BinanceRest.background`.
        client: A ClickHouse client of its own (one query at a time runs on it).
        database: Database of candles_1m and history_progress.
        publisher: Where candles and tickers are published.
        hours: How far back the board needs candles.
        concurrency: Symbols fetched at once.
        progress_every_s: How often progress is logged and written.
        clock: Seconds since the epoch.
    """

    def __init__(
        self,
        rest: BinanceRest,
        client: Client,
        database: str,
        publisher: HistoryPublisher,
        *,
        hours: float = 24.0,
        concurrency: int = 8,
        progress_every_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rest = rest
        self.market: Market = rest.market
        self.report = HistoryReport(self.market)
        self._client = client
        self._database = database
        self._publisher = publisher
        self._hours = hours
        self._concurrency = concurrency
        self._every_s = progress_every_s
        self._clock = clock
        self._writer = CandleWriter(
            lambda: client, database, source="exchange", max_rows=1 << 30, max_age_ms=1 << 30
        )
        self._db = asyncio.Lock()
        self._pending: list[list[Candle]] = []
        self._writing = False
        self._started_at = datetime.now(UTC)

    async def run(self, symbols: Collection[str]) -> HistoryReport:
        """Fetch what the store lacks of `symbols`' last `hours` of 1m candles.

        Failures of single symbols are logged and counted; a ban stops the fetch (a
        restart fetches the rest). Cancelling it stops it after the write in flight.

        Returns:
            What was found and done.
        """
        report = self.report
        report.symbols = len(symbols)
        started = time.monotonic()
        self._started_at = datetime.now(UTC)
        now_ms = int(self._clock() * 1000)
        start_ms, end_ms = history_window(now_ms, self._hours)
        coverage = await self._in_db(
            stored_coverage, self._client, self._database, self.market, symbols, start_ms, end_ms
        )
        needs = plan(symbols, coverage, start_ms, end_ms)
        report.total = len(needs)
        report.minutes = sum(need.minutes for need in needs)
        if not needs:
            logger.info(
                "history %s: candles_1m has the last %g h of all %d symbols; nothing to fetch",
                self.market, self._hours, len(symbols),
            )  # fmt: skip
            await self._record(finished=True)
            return report
        logger.info(
            "history %s: %d of %d symbols lack %s minutes of the last %g h; fetching",
            self.market, len(needs), len(symbols), f"{report.minutes:,}", self._hours,
        )  # fmt: skip
        reporter = asyncio.create_task(self._progress(), name=f"history-{self.market}-progress")
        try:
            await self._record(finished=False)
            tickers = await self._tickers(set(symbols))
            await self._fetch(most_traded_first(needs, tickers), now_ms)
        finally:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            report.seconds = time.monotonic() - started
            report.requests = self.rest.stats.requests
            report.weight = self.rest.stats.weight
            report.peak_weight_1m = self.rest.stats.max_used_weight
            await self._record(finished=True)
            logger.info(
                "history %s: %d/%d symbols (%d failed), %s candles, %d tickers in %.1f s; "
                "%d requests, weight %s, peak %s/min%s",
                self.market, report.done, report.total, report.failed,
                f"{report.candles:,}", report.tickers, report.seconds, report.requests,
                f"{report.weight:,}", f"{report.peak_weight_1m:,}",
                f"; stopped: {report.stopped}" if report.stopped else "",
            )  # fmt: skip
        return report

    async def _tickers(self, followed: set[str]) -> dict[str, Ticker24h]:
        """Fetch every 24h ticker, publish the followed symbols' ones, and return them."""
        try:
            rows = await self.rest.tickers_24h()
        except BinanceRestError as exc:
            logger.warning("history %s: no 24h tickers (%s); fetching by name", self.market, exc)
            return {}
        tickers = {t.symbol: t for t in rows if t.symbol in followed}
        await asyncio.to_thread(self._publisher.tickers, tickers.values())
        self.report.tickers = len(tickers)
        return tickers

    async def _fetch(self, needs: list[Need], now_ms: int) -> None:
        """Fetch `needs` in order, `concurrency` symbols at a time; a ban stops them all."""
        queue = list(reversed(needs))

        async def worker() -> None:
            while queue:
                need = queue.pop()
                await self._one(need, now_ms)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self._concurrency, len(needs))):
                    group.create_task(worker())
        except* BinanceBanned as banned:
            exc = banned.exceptions[0]
            self.report.stopped = str(exc)
            logger.error("history %s stopped: %s; a restart fetches the rest", self.market, exc)
        await self._write_pending()

    async def _one(self, need: Need, now_ms: int) -> None:
        candles: list[Candle] = []
        try:
            for start, end in need.ranges:
                candles += await fetch_klines(
                    self.rest, need.symbol, "1m", start, end, now_ms=now_ms
                )
        except BinanceBanned:
            raise
        except BinanceRestError as exc:
            logger.warning("history %s %s: klines failed: %s", self.market, need.symbol, exc)
            self.report.failed += 1
            self.report.done += 1
            return
        self._pending.append(candles)
        await self._write_pending()

    async def _write_pending(self) -> None:
        """Write and publish what is pending, in batches; one batch in flight at a time."""
        if self._writing:
            return  # the batch in flight takes these on when it is done
        self._writing = True
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._in_db(self._write, batch)
                self.report.done += len(batch)
                self.report.candles += sum(len(candles) for candles in batch)
        finally:
            self._writing = False

    def _write(self, batch: list[list[Candle]]) -> None:
        for candles in batch:
            self._writer.add(candles)
        self._writer.flush()
        for candles in batch:
            self._publisher.candles(candles)

    async def _in_db(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run `fn` on a thread, alone on the client, and to its end."""
        async with self._db:
            return await _finish(asyncio.to_thread(fn, *args))

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            report = self.report
            logger.info(
                "history %s: %s/%s symbols, %s candles, weight %s/min",
                self.market, f"{report.done:,}", f"{report.total:,}",
                f"{report.candles:,}", f"{self.rest.budget.used:,}",
            )  # fmt: skip
            await self._record(finished=False)

    async def _record(self, *, finished: bool) -> None:
        """Write the progress row that ``/api/v1/health`` reads."""
        report = self.report
        row = [
            EXCHANGE, self.market, self._started_at, report.done, report.total, report.failed,
            report.candles, self.rest.budget.used, int(finished),
        ]  # fmt: skip
        try:
            insert = functools.partial(
                self._client.insert,
                PROGRESS_TABLE,
                [row],
                column_names=list(_PROGRESS_COLUMNS),
                database=self._database,
            )
            await self._in_db(insert)
        except Exception:  # progress is for show: a failed write must not stop history
            logger.exception("history %s: progress not recorded", self.market)


_PROGRESS_COLUMNS = (
    "exchange",
    "market",
    "started_at",
    "done",
    "total",
    "failed",
    "candles",
    "weight_1m",
    "finished",
)
