"""`tickscan backfill`: history from Binance REST and data.binance.vision archives.

This checks the arguments and archives (`flows.candles.backfill`), opens the migrated
ClickHouse and the Binance REST client, fetches the klines (`flows.candles.kline_backfill`)
and, on USDⓈ-M when asked, the perpetuals' funding, open interest and mark-price klines
(`flows.candles.perp_backfill`) with progress bars, replays the archives not yet done
(`tickscan.replay`) and records them; then prints its summary.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client
from rich.console import Console

from flows.candles.backfill import archive_digests, pending_archives, plan_backfill, record_archives
from flows.candles.kline_backfill import RestRun, backfill_klines
from flows.candles.perp_backfill import HISTORY, backfill_perp_history
from flows.candles.reports import BackfillReport
from flows.sources.binance.rest import BinanceRest
from runtime.clickhouse import connect
from runtime.migrate import migrate
from schemas.trades import Market
from tickscan.progress import ProgressBars
from tickscan.replay import replay
from tickscan.settings import Settings

__all__ = ["backfill", "summary"]


def backfill(
    settings: Settings,
    *,
    market: Market,
    symbols: str | Sequence[str] = (),
    start: str | datetime,
    end: str | datetime,
    interval: str = "1m",
    archives: Sequence[str | Path] = (),
    rest_url: str | None = None,
    console: Console | None = None,
    force: bool = False,
    concurrency: int = 4,
    data: str | Sequence[str] = ("candles",),
) -> BackfillReport:
    """Backfill candles over ``[start, end)`` from Binance REST klines and archive files,
    and on USDⓈ-M the perpetuals' history.

    Args:
        settings: Process settings: ClickHouse DSN and database, and the Kafka used to
            replay archives (the embedded broker when unset).
        market: ``spot`` or ``usdm``.
        symbols: Symbols whose klines to fetch, a list or ``"BTCUSDT,ETHUSDT"``; may be
            empty when only archives are given.
        start: Start of the range (inclusive), ISO 8601 or a datetime; UTC without a zone.
        end: End of the range (exclusive).
        interval: ``1m`` (candles_1m) or, on spot, ``1s`` (candles_1s).
        archives: data.binance.vision trades / aggTrades files or directories of them.
        rest_url: Binance REST base URL (a fake exchange in tests); Binance's by default.
        console: Where progress goes.
        force: Fetch and write chunks and files already recorded as done.
        concurrency: Symbols fetched at once (they share one weight budget).
        data: What to fetch, a list or ``"candles,funding"``: ``candles`` (klines and
            archives, the default), and on USDⓈ-M ``funding``, ``open-interest`` (the last
            30 days only: Binance keeps no more) and ``mark-klines``.

    Returns:
        What was fetched, skipped and written.

    Raises:
        BackfillError: Bad arguments (perpetual history asked on spot), an unknown symbol
            or one that is not a perpetual, a corrupt archive, a Binance ban
            (with the time it ends) or another refusal. Completed chunks stay recorded.
    """
    report = plan_backfill(
        market=market,
        symbols=symbols,
        start=start,
        end=end,
        interval=interval,
        archives=archives,
        clickhouse=settings.clickhouse_dsn(),
        database=settings.clickhouse.database,
        data=data,
    )
    # Refuse a corrupt archive before any work is done.
    digests = archive_digests(report)
    console = console or Console(stderr=True)

    client = connect(report.clickhouse)
    try:
        migrate(client, report.database)
        if report.symbols:
            started = time.perf_counter()
            try:
                asyncio.run(_rest_history(client, report, rest_url, console, force, concurrency))
            finally:
                report.rest_s = time.perf_counter() - started
        if report.archives:
            pending = pending_archives(client, report, digests, force=force)
            if pending:
                replayed = replay(
                    pending,
                    settings=settings,
                    market=report.market,
                    bootstrap=settings.kafka.bootstrap,
                    clickhouse_dsn=report.clickhouse,
                    console=console,
                )
                record_archives(client, report, pending, digests, replayed)
    finally:
        client.close()
    return report


async def _rest_history(
    client: Client,
    report: BackfillReport,
    rest_url: str | None,
    console: Console,
    force: bool,
    concurrency: int,
) -> None:
    """Fetch the report's klines, then its perpetual history, with one Binance REST client
    of its own (one weight budget), bars on `console`."""
    async with BinanceRest(report.market, rest_url) as rest:
        with closing(ProgressBars(console)) as progress:
            run = RestRun(client, rest, report, progress, force, concurrency)
            if "candles" in report.data:
                await backfill_klines(run)
            await backfill_perp_history(run)


def summary(report: BackfillReport) -> str:
    """A human summary of a backfill, for the terminal."""
    lines = [
        f"backfill binance {report.market} {report.interval} "
        f"{report.start:%Y-%m-%d %H:%M} .. {report.end:%Y-%m-%d %H:%M} UTC"
    ]
    if report.symbols and "candles" in report.data:
        open_note = (
            f", {report.chunks_open} still open (not recorded)" if report.chunks_open else ""
        )
        lines += [
            f"klines: {len(report.symbols)} symbol(s), {report.chunks} chunk(s): "
            f"{report.chunks_written} written, {report.chunks_skipped} already done{open_note}; "
            f"{report.candles:,} candles (source 'exchange', version 0)",
        ]
    for name, counts in report.history.items():
        kind = HISTORY[name]
        notes = [f"{counts.open} still open (not recorded)"] if counts.open else []
        if counts.clipped:
            notes.append(f"{counts.clipped} wholly or partly older than Binance keeps")
        lines.append(
            f"{name}: {counts.chunks} chunk(s): {counts.written} written, "
            f"{counts.skipped} already done{''.join(f', {n}' for n in notes)}; "
            f"{counts.rows:,} {kind.unit} -> {report.database}.{kind.table}"
        )
    if report.symbols:
        lines += [
            f"REST: {report.requests:,} requests, weight {report.weight:,}, "
            f"peak {report.max_used_weight:,}/min, {report.rate_limited} rate-limited, "
            f"{report.throttled_s:.1f} s throttled, {report.rest_s:.2f} s",
        ]
    if report.archives:
        lines.append(
            f"archives: {len(report.archives)} file(s): {report.archives_replayed} replayed "
            f"({report.archive_trades:,} trades), {report.archives_skipped} already done"
        )
        if report.replay is not None:
            lines.append(
                f"replay: {report.replay.candles_1s:,} x 1s, {report.replay.candles_1m:,} x 1m "
                f"candles, {report.replay.rejected:,} rejected lines"
            )
    lines.extend(f"warning: {w}" for w in report.warnings)
    tables = [HISTORY[name].table for name in report.history]
    if "candles" in report.data:
        tables.insert(0, "candles_1s" if report.interval == "1s" else "candles_1m")
    lines.append(
        f"ClickHouse {report.clickhouse} database {report.database}: "
        + "; ".join(f"SELECT * FROM {report.database}.{table} FINAL" for table in tables)
    )
    return "\n".join(lines)
