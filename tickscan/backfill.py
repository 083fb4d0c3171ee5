"""`tickscan backfill`: history from Binance REST klines and data.binance.vision archives.

Two sources fill the candle tables for a time range:

- **REST klines**, one chunk per (symbol, UTC day), written to candles_1m (or candles_1s)
  as the exchange's own candles: ``source = 'exchange'``, ``version = 0``, no trade ids.
  Candles our flow builds from trades have ``version >= 1``, so they win wherever both
  exist (the tables are ReplacingMergeTree on the candle key with ``version``).
- **archive files** (``BTCUSDT-trades-2024-08-08.zip``...), each checked against its
  ``.CHECKSUM`` sibling and replayed through Kafka and the candle flow exactly as
  ``tickscan replay`` does, so their candles are the flow's own (``source = 'trades'``).

Every finished chunk and file is recorded in ``backfill_progress``; a rerun skips them,
and a forced rerun writes the same rows again.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from flows.sinks.clickhouse import CandleWriter
from flows.sources.binance.klines import EXCHANGE, candle_from_kline, fetch_klines
from flows.sources.binance.rest import BinanceBanned, BinanceRest, BinanceRestError
from flows.sources.files import parse_archive_name
from runtime.clickhouse import connect
from runtime.migrate import migrate
from runtime.settings import Settings
from schemas.candles import INTERVAL_MS, Interval
from schemas.trades import Market
from tickscan.replay import ReplayReport, expand_paths, replay

logger = logging.getLogger(__name__)

__all__ = [
    "BackfillError",
    "BackfillReport",
    "Chunk",
    "backfill",
    "candle_from_kline",
    "parse_time",
    "plan_chunks",
    "summary",
    "verify_checksum",
]

PROGRESS_TABLE = "backfill_progress"
DAY_MS = 86_400_000

_CHECKSUM_LINE = re.compile(r"^\s*([0-9a-fA-F]{64})\b\s*\*?(\S*)")


_PROGRESS_COLUMNS = (
    "exchange",
    "market",
    "kind",
    "symbol",
    "interval",
    "day",
    "from_time",
    "to_time",
    "sha256",
    "path",
    "rows",
)

_EPOCH = datetime.fromtimestamp(0, UTC)

DoneChunks = dict[tuple[str, date], list[tuple[int, int]]]
"""Recorded kline chunks: (symbol, day) -> [(from ms, to ms), ...]."""


class BackfillError(Exception):
    """The backfill cannot run or had to stop; the message says why and what to do."""


@dataclass(frozen=True)
class Chunk:
    """Klines of one symbol over one UTC day (or the part of it in the range).

    Attributes:
        symbol: The exchange symbol.
        day: The UTC day.
        start_ms: First open time covered (inclusive).
        end_ms: End of the time covered (exclusive).
    """

    symbol: str
    day: date
    start_ms: int
    end_ms: int


@dataclass
class BackfillReport:
    """What a backfill fetched, skipped and wrote."""

    market: Market
    interval: str
    start: datetime
    end: datetime
    symbols: list[str]
    clickhouse: str = ""
    database: str = ""
    chunks: int = 0
    chunks_written: int = 0
    chunks_skipped: int = 0
    chunks_open: int = 0
    candles: int = 0
    requests: int = 0
    weight: int = 0
    rate_limited: int = 0
    throttled_s: float = 0.0
    max_used_weight: int = 0
    rest_s: float = 0.0
    archives: list[Path] = field(default_factory=list)
    archives_replayed: int = 0
    archives_skipped: int = 0
    archive_trades: int = 0
    replay: ReplayReport | None = None
    warnings: list[str] = field(default_factory=list)


def parse_time(value: str | datetime) -> datetime:
    """A range bound as an aware UTC datetime.

    Args:
        value: ISO 8601 (``2024-08-08``, ``2024-08-08T12:30``, ``...Z``, ``...+02:00``) or a
            datetime; without a zone it is UTC.

    Raises:
        BackfillError: The text is not an ISO date or time.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BackfillError(
                f"{value!r} is not an ISO date or time (e.g. 2024-08-08 or 2024-08-08T12:30Z)"
            ) from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def plan_chunks(symbols: Iterable[str], start_ms: int, end_ms: int) -> list[Chunk]:
    """Split ``[start_ms, end_ms)`` into one chunk per symbol and UTC day."""
    chunks = []
    for symbol in symbols:
        day_start = start_ms - start_ms % DAY_MS
        while day_start < end_ms:
            day = datetime.fromtimestamp(day_start / 1000, UTC).date()
            chunks.append(
                Chunk(symbol, day, max(start_ms, day_start), min(end_ms, day_start + DAY_MS))
            )
            day_start += DAY_MS
    return chunks


def verify_checksum(path: Path) -> str | None:
    """Check a file against its data.binance.vision ``<name>.CHECKSUM`` sibling.

    The checksum file holds ``<sha256 hex>  <file name>``.

    Returns:
        A warning when the file has no checksum beside it, else None.

    Raises:
        BackfillError: The checksum file is malformed or the file's SHA-256 differs.
    """
    checksum = path.with_name(path.name + ".CHECKSUM")
    if not checksum.is_file():
        return f"{path}: no {checksum.name} beside it; replaying it unverified"
    text = checksum.read_text(encoding="utf-8", errors="replace")
    found = _CHECKSUM_LINE.match(text)
    if found is None:
        raise BackfillError(f"{checksum}: not a '<sha256>  <file name>' checksum file")
    expected = found.group(1).lower()
    actual = sha256_of(path)
    if actual != expected:
        raise BackfillError(
            f"{path}: SHA-256 {actual} does not match {expected} in {checksum.name}; "
            "the archive is corrupt or incomplete: download it again"
        )
    return None


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


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
) -> BackfillReport:
    """Backfill candles over ``[start, end)`` from Binance REST klines and archive files.

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

    Returns:
        What was fetched, skipped and written.

    Raises:
        BackfillError: Bad arguments, an unknown symbol, a corrupt archive, a Binance ban
            (with the time it ends) or another refusal. Completed chunks stay recorded.
    """
    if market not in ("spot", "usdm"):
        raise BackfillError(f"market must be spot or usdm, not {market!r}")
    if interval not in INTERVAL_MS:
        raise BackfillError(f"interval must be one of {', '.join(INTERVAL_MS)}, not {interval!r}")
    if interval == "1s" and market != "spot":
        raise BackfillError("Binance USDⓈ-M has no 1s klines: use --interval 1m")
    begin, finish = parse_time(start), parse_time(end)
    if begin >= finish:
        raise BackfillError(
            f"--from {begin:%Y-%m-%d %H:%M:%S} is not before --to {finish:%Y-%m-%d %H:%M:%S} (UTC)"
        )
    wanted = _symbols(symbols)
    if not wanted and not archives:
        raise BackfillError("nothing to backfill: give --symbols, --archives or both")
    console = console or Console(stderr=True)
    dsn = settings.clickhouse_dsn()
    database = settings.clickhouse.database
    report = BackfillReport(
        market=market,
        interval=interval,
        start=begin,
        end=finish,
        symbols=wanted,
        clickhouse=dsn,
        database=database,
    )
    archive_files = _archive_files(archives)
    report.archives = archive_files
    # Refuse a corrupt archive before any work is done.
    digests = {}
    for path in archive_files:
        warning = verify_checksum(path)
        if warning:
            logger.warning("%s", warning)
            report.warnings.append(warning)
        digests[path] = sha256_of(path)

    client = connect(dsn)
    try:
        migrate(client, database)
        if wanted:
            started = time.perf_counter()
            try:
                asyncio.run(
                    _backfill_klines(
                        client,
                        report,
                        cast(Interval, interval),
                        rest_url,
                        console,
                        force,
                        concurrency,
                    )
                )
            finally:
                report.rest_s = time.perf_counter() - started
        if archive_files:
            _backfill_archives(client, settings, report, digests, console, force)
    finally:
        client.close()
    return report


def _symbols(symbols: str | Sequence[str]) -> list[str]:
    """Symbols as given, split on commas, upper case, in order, without repeats."""
    items = [symbols] if isinstance(symbols, str) else list(symbols)
    out: list[str] = []
    for item in items:
        for name in item.split(","):
            name = name.strip().upper()
            if name and name not in out:
                out.append(name)
    return out


def _archive_files(archives: Sequence[str | Path]) -> list[Path]:
    """Archive files named or found under the directories, without checksum files."""
    if not archives:
        return []
    try:
        files = expand_paths([Path(p) for p in archives])
    except Exception as exc:
        raise BackfillError(str(exc)) from exc
    return [p.resolve() for p in files if not p.name.endswith(".CHECKSUM")]


# ---------------------------------------------------------------------------- REST klines


async def _backfill_klines(
    client: Client,
    report: BackfillReport,
    interval: Interval,
    rest_url: str | None,
    console: Console,
    force: bool,
    concurrency: int,
) -> None:
    """Fetch and write every chunk not yet done, `concurrency` symbols at a time."""
    market = report.market
    start_ms = _ms(report.start)
    end_ms = _ms(report.end)
    step = INTERVAL_MS[interval]
    writer = CandleWriter(
        lambda: client, report.database, source="exchange", max_rows=1 << 30, max_age_ms=1 << 30
    )
    async with BinanceRest(market, rest_url) as rest:
        try:
            await _check_symbols(rest, report.symbols, market)
            chunks = plan_chunks(report.symbols, start_ms, end_ms)
            report.chunks = len(chunks)
            done: DoneChunks = {} if force else _done_chunks(client, report, interval)
            gate = asyncio.Semaphore(max(1, concurrency))
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                tasks = {
                    symbol: progress.add_task(
                        f"{symbol} {interval} klines", total=-(-(end_ms - start_ms) // step)
                    )
                    for symbol in report.symbols
                }

                async def run(symbol: str) -> None:
                    async with gate:
                        for chunk in (c for c in chunks if c.symbol == symbol):
                            await _backfill_chunk(
                                rest, client, writer, report, interval, chunk, done, progress,
                                tasks[symbol],
                            )  # fmt: skip

                try:
                    async with asyncio.TaskGroup() as group:
                        for symbol in report.symbols:
                            group.create_task(run(symbol))
                except BaseExceptionGroup as failed:
                    raise _first_error(failed) from None
        except BinanceBanned as exc:
            raise BackfillError(
                f"{exc}. Backfill stopped; {report.chunks_written} chunk(s) finished and "
                f"recorded. Run it again after {exc.until:%Y-%m-%d %H:%M:%S} UTC "
                "(sending earlier only extends the ban)."
            ) from exc
        except BinanceRestError as exc:
            raise BackfillError(
                f"Binance {market} REST failed: {exc}. {report.chunks_written} chunk(s) "
                "finished and recorded; a rerun continues from there."
            ) from exc
        finally:
            report.requests = rest.stats.requests
            report.weight = rest.stats.weight
            report.rate_limited = rest.stats.rate_limited
            report.throttled_s = rest.stats.throttled_s
            report.max_used_weight = rest.stats.max_used_weight


async def _check_symbols(rest: BinanceRest, symbols: Sequence[str], market: Market) -> None:
    """Raise `BackfillError` naming the valid symbols when one is not on the exchange."""
    info = await rest.exchange_info()
    valid = sorted(str(s.get("symbol")) for s in info["symbols"] if isinstance(s, dict))
    known = set(valid)
    unknown = [s for s in symbols if s not in known]
    if not unknown:
        return
    lines = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=3)
        lines.append(f"{name}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    shown = ", ".join(valid[:30]) + (f" ... and {len(valid) - 30} more" if len(valid) > 30 else "")
    raise BackfillError(
        f"unknown Binance {market} symbol(s): {'; '.join(lines)}. "
        f"Valid symbols ({len(valid)}): {shown}"
    )


def _done_chunks(client: Client, report: BackfillReport, interval: str) -> DoneChunks:
    """Recorded kline chunks of these symbols and days: (symbol, day) -> [(from, to), ...]."""
    rows = client.query(
        "SELECT symbol, day, toUnixTimestamp64Milli(from_time), toUnixTimestamp64Milli(to_time) "
        "FROM {db:Identifier}.{table:Identifier} FINAL "
        "WHERE exchange = {exchange:String} AND market = {market:String} "
        "AND kind = 'klines' AND interval = {interval:String} "
        "AND symbol IN {symbols:Array(String)} AND day BETWEEN {first:Date} AND {last:Date}",
        parameters={
            "db": report.database,
            "table": PROGRESS_TABLE,
            "exchange": EXCHANGE,
            "market": report.market,
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
    progress: Progress,
    task: TaskID,
) -> None:
    """Fetch one chunk's klines page by page, write them, then record the chunk."""
    step = INTERVAL_MS[interval]
    span = -(-(chunk.end_ms - chunk.start_ms) // step)
    covered = done.get((chunk.symbol, chunk.day), [])
    if any(s <= chunk.start_ms and chunk.end_ms <= e for s, e in covered):
        report.chunks_skipped += 1
        progress.advance(task, span)
        return
    now_ms = int(time.time() * 1000)
    candles = await fetch_klines(
        rest, chunk.symbol, interval, chunk.start_ms, chunk.end_ms,
        now_ms=now_ms, on_page=lambda n: progress.advance(task, n),
    )  # fmt: skip
    writer.add(candles)
    writer.flush()
    report.candles += len(candles)
    if chunk.end_ms > now_ms:
        # The range runs into the present: what exists is written, but the chunk is not
        # finished until its last kline has closed.
        report.chunks_open += 1
        return
    client.insert(
        PROGRESS_TABLE,
        [
            [
                EXCHANGE,
                report.market,
                "klines",
                chunk.symbol,
                interval,
                chunk.day,
                _dt(chunk.start_ms),
                _dt(chunk.end_ms),
                len(candles),
            ]
        ],
        column_names=[*_PROGRESS_COLUMNS[:8], "rows"],
        database=report.database,
    )
    report.chunks_written += 1


def _first_error(group: BaseExceptionGroup[Any]) -> BaseException:
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


# ------------------------------------------------------------------------------- archives


def _backfill_archives(
    client: Client,
    settings: Settings,
    report: BackfillReport,
    digests: dict[Path, str],
    console: Console,
    force: bool,
) -> None:
    """Replay the archive files not yet done through the candle flow, then record them."""
    done: set[str] = set()
    if not force:
        done = {
            row[0]
            for row in client.query(
                "SELECT sha256 FROM {db:Identifier}.{table:Identifier} FINAL "
                "WHERE kind = 'archive' AND market = {market:String} "
                "AND sha256 IN {digests:Array(String)}",
                parameters={
                    "db": report.database,
                    "table": PROGRESS_TABLE,
                    "market": report.market,
                    "digests": sorted(set(digests.values())),
                },
            ).result_rows
        }
    pending = [p for p in report.archives if digests[p] not in done]
    report.archives_skipped = len(report.archives) - len(pending)
    if not pending:
        return
    replayed = replay(
        pending,
        settings=settings,
        market=report.market,
        bootstrap=settings.kafka.bootstrap,
        clickhouse_dsn=report.clickhouse,
        console=console,
    )
    report.replay = replayed
    report.archives_replayed = len(pending)
    report.archive_trades = replayed.trades
    # A file cut short or unreadable is not done: a later run with a good copy redoes it.
    unreadable = [o for o in replayed.outcomes if o.error is not None]
    skip = {o.path for o in unreadable}
    rows = []
    for path in pending:
        if path in skip:
            continue
        name = parse_archive_name(path.name)
        symbol = name.symbol if name else ""
        first, last = _period(name.period if name else "")
        rows.append(
            [
                EXCHANGE, report.market, "archive", symbol, "", first.date(), first, last,
                digests[path], str(path), replayed.file_trades.get(path, 0),
            ]
        )  # fmt: skip
    if rows:
        client.insert(
            PROGRESS_TABLE,
            rows,
            column_names=list(_PROGRESS_COLUMNS),
            database=report.database,
        )
    if unreadable:
        raise BackfillError(
            "not recorded as done: " + "; ".join(str(o.problem()) for o in unreadable)
        )


def _period(period: str) -> tuple[datetime, datetime]:
    """The UTC span of an archive's day (``2024-08-08``) or month (``2025-01``)."""
    if len(period) == 10:
        first = datetime.fromisoformat(period).replace(tzinfo=UTC)
        return first, first + timedelta(days=1)
    if len(period) == 7:
        first = datetime.fromisoformat(period + "-01").replace(tzinfo=UTC)
        after = (first + timedelta(days=32)).replace(day=1)
        return first, after
    return _EPOCH, _EPOCH


# -------------------------------------------------------------------------------- summary


def summary(report: BackfillReport) -> str:
    """A human summary of a backfill, for the terminal."""
    lines = [
        f"backfill binance {report.market} {report.interval} "
        f"{report.start:%Y-%m-%d %H:%M} .. {report.end:%Y-%m-%d %H:%M} UTC"
    ]
    if report.symbols:
        open_note = (
            f", {report.chunks_open} still open (not recorded)" if report.chunks_open else ""
        )
        lines += [
            f"klines: {len(report.symbols)} symbol(s), {report.chunks} chunk(s): "
            f"{report.chunks_written} written, {report.chunks_skipped} already done{open_note}; "
            f"{report.candles:,} candles (source 'exchange', version 0)",
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
    table = "candles_1s" if report.interval == "1s" else "candles_1m"
    lines.append(
        f"ClickHouse {report.clickhouse} database {report.database}: "
        f"SELECT * FROM {report.database}.{table} FINAL"
    )
    return "\n".join(lines)


def _ms(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
