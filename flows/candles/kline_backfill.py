"""The exchange's own klines over REST into the candle tables, one recorded chunk at a time.

Each chunk (one symbol, one UTC day of the range; `flows.candles.backfill.plan_chunks`)
is fetched page by page, written as ``source = 'exchange'``, ``version = 0`` candles, then
recorded in ``backfill_progress``, so a rerun skips it. A chunk reaching into the present
is written but not recorded: it is not finished until its last kline has closed.
"""

from __future__ import annotations

import asyncio
import difflib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from clickhouse_connect.driver.client import Client

from flows.candles.backfill import (
    PROGRESS_COLUMNS,
    PROGRESS_TABLE,
    BackfillError,
    Chunk,
    plan_chunks,
)
from flows.candles.progress import Progress, Task
from flows.candles.reports import BackfillReport
from flows.sinks.clickhouse import CandleWriter
from flows.sources.binance.klines import EXCHANGE, fetch_klines
from flows.sources.binance.rest import BinanceBanned, BinanceRest, BinanceRestError
from schemas.candles import INTERVAL_MS, Interval
from schemas.trades import Market

__all__ = [
    "RestRun",
    "backfill_klines",
    "check_symbols",
    "done_chunks",
    "first_error",
    "is_done",
    "kline_count",
    "record_chunk",
    "rest_failures",
]

DoneChunks = dict[tuple[str, date], list[tuple[int, int]]]
"""Recorded kline chunks: (symbol, day) -> [(from ms, to ms), ...]."""

_EPOCH = datetime.fromtimestamp(0, UTC)


def kline_count(start_ms: int, end_ms: int, interval: Interval) -> int:
    """How many klines of `interval` open in ``[start_ms, end_ms)``."""
    return -(-(end_ms - start_ms) // INTERVAL_MS[interval])


@dataclass(frozen=True)
class RestRun:
    """A backfill's REST work: what it writes to, asks with, counts in and shows on.

    Attributes:
        client: The ClickHouse written to (the data tables and `backfill_progress`).
        rest: The Binance REST client of the report's market.
        report: The backfill's report: market, interval, range, symbols, data, database.
        progress: Where each symbol's tasks are shown.
        force: Fetch and write chunks already recorded as done.
        concurrency: Symbols fetched at once; they share `rest`'s weight budget.
    """

    client: Client
    rest: BinanceRest
    report: BackfillReport
    progress: Progress
    force: bool = False
    concurrency: int = 4

    async def for_each_symbol(self, work: Callable[[str], Awaitable[None]]) -> None:
        """Run `work` for each of the report's symbols, `concurrency` at a time.

        Raises:
            The first failure, a ban before any other.
        """
        gate = asyncio.Semaphore(max(1, self.concurrency))

        async def run(symbol: str) -> None:
            async with gate:
                await work(symbol)

        try:
            async with asyncio.TaskGroup() as group:
                for symbol in self.report.symbols:
                    group.create_task(run(symbol))
        except BaseExceptionGroup as failed:
            raise first_error(failed) from None


async def backfill_klines(run: RestRun) -> None:
    """Fetch and write every kline chunk of the report's symbols and range not yet done.

    The report counts chunks, candles and the REST client's requests as they go; the
    progress shows one task per symbol, counting its klines.

    Raises:
        BackfillError: An unknown symbol, a Binance ban (with the time it ends) or another
            refusal. Completed chunks stay recorded.
    """
    client, rest, report = run.client, run.rest, run.report
    interval = cast(Interval, report.interval)
    start_ms = epoch_ms(report.start)
    end_ms = epoch_ms(report.end)
    writer = CandleWriter(
        lambda: client, report.database, source="exchange", max_rows=1 << 30, max_age_ms=1 << 30
    )
    with rest_failures(rest, report, lambda: report.chunks_written):
        await check_symbols(rest, report.symbols, report.market)
        chunks = plan_chunks(report.symbols, start_ms, end_ms)
        report.chunks = len(chunks)
        done: DoneChunks = {} if run.force else done_chunks(client, report, "klines", interval)
        tasks = {
            symbol: run.progress.task(
                f"{symbol} {interval} klines", total=kline_count(start_ms, end_ms, interval)
            )
            for symbol in report.symbols
        }

        async def symbol_klines(symbol: str) -> None:
            for chunk in (c for c in chunks if c.symbol == symbol):
                await _backfill_chunk(
                    rest, client, writer, report, interval, chunk, done, tasks[symbol]
                )

        await run.for_each_symbol(symbol_klines)


@contextmanager
def rest_failures(
    rest: BinanceRest, report: BackfillReport, finished: Callable[[], int]
) -> Iterator[None]:
    """Turn a Binance ban or refusal into a `BackfillError` saying how far the run got, and
    copy the REST client's figures into the report whatever happens.

    Args:
        rest: The client whose requests the report counts.
        report: The backfill's report.
        finished: How many chunks are finished and recorded so far.
    """
    try:
        yield
    except BinanceBanned as exc:
        raise BackfillError(
            f"{exc}. Backfill stopped; {finished()} chunk(s) finished and "
            f"recorded. Run it again after {exc.until:%Y-%m-%d %H:%M:%S} UTC "
            "(sending earlier only extends the ban)."
        ) from exc
    except BinanceRestError as exc:
        raise BackfillError(
            f"Binance {report.market} REST failed: {exc}. {finished()} chunk(s) "
            "finished and recorded; a rerun continues from there."
        ) from exc
    finally:
        report.requests = rest.stats.requests
        report.weight = rest.stats.weight
        report.rate_limited = rest.stats.rate_limited
        report.throttled_s = rest.stats.throttled_s
        report.max_used_weight = rest.stats.max_used_weight


async def check_symbols(
    rest: BinanceRest, symbols: Sequence[str], market: Market
) -> dict[str, dict[str, Any]]:
    """Each symbol's ``exchangeInfo`` entry; raise `BackfillError` naming the valid symbols
    when one is not on the exchange."""
    info = await rest.exchange_info()
    entries = {str(s.get("symbol")): s for s in info["symbols"] if isinstance(s, dict)}
    valid = sorted(entries)
    unknown = [s for s in symbols if s not in entries]
    if not unknown:
        return {s: entries[s] for s in symbols}
    lines = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=3)
        lines.append(f"{name}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    shown = ", ".join(valid[:30]) + (f" ... and {len(valid) - 30} more" if len(valid) > 30 else "")
    raise BackfillError(
        f"unknown Binance {market} symbol(s): {'; '.join(lines)}. "
        f"Valid symbols ({len(valid)}): {shown}"
    )


def done_chunks(client: Client, report: BackfillReport, kind: str, interval: str) -> DoneChunks:
    """Recorded chunks of one kind (``klines``, ``funding``...) and interval, of the report's
    symbols and days: (symbol, day) -> [(from, to), ...]."""
    rows = client.query(
        "SELECT symbol, day, toUnixTimestamp64Milli(from_time), toUnixTimestamp64Milli(to_time) "
        "FROM {db:Identifier}.{table:Identifier} FINAL "
        "WHERE exchange = {exchange:String} AND market = {market:String} "
        "AND kind = {kind:String} AND interval = {interval:String} "
        "AND symbol IN {symbols:Array(String)} AND day BETWEEN {first:Date} AND {last:Date}",
        parameters={
            "db": report.database,
            "table": PROGRESS_TABLE,
            "exchange": EXCHANGE,
            "market": report.market,
            "kind": kind,
            "interval": interval,
            "symbols": report.symbols,
            "first": report.start.date(),
            "last": report.end.date(),
        },
    ).result_rows
    done: DoneChunks = {}
    for symbol, day, start, end in rows:
        done.setdefault((symbol, day), []).append((int(start), int(end)))
    return done


async def _backfill_chunk(
    rest: BinanceRest,
    client: Client,
    writer: CandleWriter,
    report: BackfillReport,
    interval: Interval,
    chunk: Chunk,
    done: DoneChunks,
    task: Task,
) -> None:
    """Fetch one chunk's klines page by page, write them, then record the chunk."""
    if is_done(done, chunk):
        report.chunks_skipped += 1
        task.advance(kline_count(chunk.start_ms, chunk.end_ms, interval))
        return
    now_ms = int(time.time() * 1000)
    candles = await fetch_klines(
        rest, chunk.symbol, interval, chunk.start_ms, chunk.end_ms,
        now_ms=now_ms, on_page=task.advance,
    )  # fmt: skip
    writer.add(candles)
    writer.flush()
    report.candles += len(candles)
    if chunk.end_ms > now_ms:
        # The range runs into the present: what exists is written, but the chunk is not
        # finished until its last kline has closed.
        report.chunks_open += 1
        return
    record_chunk(client, report, "klines", interval, chunk, len(candles))
    report.chunks_written += 1


def is_done(done: DoneChunks, chunk: Chunk) -> bool:
    """Whether a recorded chunk covers `chunk`."""
    covered = done.get((chunk.symbol, chunk.day), [])
    return any(s <= chunk.start_ms and chunk.end_ms <= e for s, e in covered)


def record_chunk(
    client: Client, report: BackfillReport, kind: str, interval: str, chunk: Chunk, rows: int
) -> None:
    """Record a finished chunk in ``backfill_progress``, so a rerun skips it."""
    start, end = utc_datetime(chunk.start_ms), utc_datetime(chunk.end_ms)
    client.insert(
        PROGRESS_TABLE,
        [[EXCHANGE, report.market, kind, chunk.symbol, interval, chunk.day, start, end, rows]],
        column_names=[*PROGRESS_COLUMNS[:8], "rows"],
        database=report.database,
    )


def first_error(group: BaseExceptionGroup[Any]) -> BaseException:
    """The exception to report from a task group: a ban first, else the first one."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, BinanceBanned):
            return exc
    for exc in leaves:
        if isinstance(exc, BinanceRestError | BackfillError):
            return exc
    return leaves[0]


def epoch_ms(dt: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime, exactly (no float)."""
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def utc_datetime(ms: int) -> datetime:
    """The UTC datetime of milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, UTC)
