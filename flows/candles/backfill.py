"""Backfill planning: the range and symbols checked, chunks per UTC day, archives verified.

Two sources fill the candle tables for a time range:

- **REST klines**, one chunk per (symbol, UTC day), written to candles_1m (or candles_1s)
  as the exchange's own candles: ``source = 'exchange'``, ``version = 0``, no trade ids
  (`flows.candles.kline_backfill`). Candles our flow builds from trades have
  ``version >= 1``, so they win wherever both exist (the tables are ReplacingMergeTree on
  the candle key with ``version``).
- **archive files** (``BTCUSDT-trades-2024-08-08.zip``...), each checked against its
  ``.CHECKSUM`` sibling and replayed through Kafka and the candle flow exactly as a replay
  does (`flows.candles.replay`), so their candles are the flow's own (``source = 'trades'``).

On USDⓈ-M, ``data`` also asks for a perpetual's history, by the same (symbol, UTC day)
chunks: funding, open interest and mark-price klines (`flows.candles.perp_backfill`).

Every finished chunk and file is recorded in ``backfill_progress``; a rerun skips them,
and a forced rerun writes the same rows again.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from clickhouse_connect.driver.client import Client

from flows.candles.replay import expand_paths
from flows.candles.reports import BackfillReport, ReplayReport
from flows.errors import FlowError
from flows.sources.binance.klines import EXCHANGE
from flows.sources.files import parse_archive_name
from schemas.candles import INTERVAL_MS
from schemas.trades import Market

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_KINDS",
    "PERP_DATA",
    "BackfillError",
    "Chunk",
    "archive_digests",
    "parse_time",
    "pending_archives",
    "plan_backfill",
    "plan_chunks",
    "record_archives",
    "verify_checksum",
]

PROGRESS_TABLE = "backfill_progress"
PROGRESS_COLUMNS = (
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
"""The columns of `PROGRESS_TABLE` (infra/clickhouse), in row order."""

DAY_MS = 86_400_000

CANDLES = "candles"
PERP_DATA = ("funding", "open-interest", "mark-klines")
"""What a backfill can fetch of a USDⓈ-M perpetual's history besides its klines."""
DATA_KINDS = (CANDLES, *PERP_DATA)
"""What ``tickscan backfill --data`` takes; ``candles`` (klines and archives) by default."""

_CHECKSUM_LINE = re.compile(r"^\s*([0-9a-fA-F]{64})\b\s*\*?(\S*)")

_EPOCH = datetime.fromtimestamp(0, UTC)


class BackfillError(FlowError):
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


def plan_backfill(
    *,
    market: Market,
    symbols: str | Sequence[str],
    start: str | datetime,
    end: str | datetime,
    interval: str,
    archives: Sequence[str | Path],
    clickhouse: str,
    database: str,
    data: str | Sequence[str] = (CANDLES,),
) -> BackfillReport:
    """Check a backfill's arguments and list its archive files, before anything is opened.

    Args:
        market: ``spot`` or ``usdm``.
        symbols: Symbols whose klines to fetch, a list or ``"BTCUSDT,ETHUSDT"``; may be
            empty when archives are given.
        start: Start of the range (inclusive), ISO 8601 or a datetime; UTC without a zone.
        end: End of the range (exclusive).
        interval: ``1m`` (candles_1m) or, on spot, ``1s`` (candles_1s).
        archives: data.binance.vision trades / aggTrades files or directories of them.
        clickhouse: The ClickHouse DSN written to, for the report.
        database: The database written to.
        data: What to fetch, a list or ``"candles,funding"``: `DATA_KINDS`; anything but
            candles is USDⓈ-M only and needs `symbols`.

    Returns:
        The report the backfill fills in, with its symbols and archive files.

    Raises:
        BackfillError: A bad argument, or an archive path that does not exist.
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
    kinds = _data_kinds(data, market)
    wanted = _symbols(symbols)
    if CANDLES not in kinds:
        if archives:
            raise BackfillError("--archives only give candles: add candles to --data")
        if not wanted:
            raise BackfillError(f"--data {','.join(kinds)} needs --symbols")
    if not wanted and not archives:
        raise BackfillError("nothing to backfill: give --symbols, --archives or both")
    report = BackfillReport(market, interval, begin, finish, wanted, clickhouse, database)
    report.data = kinds
    report.archives = _archive_files(archives)
    return report


def _data_kinds(data: str | Sequence[str], market: Market) -> tuple[str, ...]:
    """The kinds of data asked for, checked, in `DATA_KINDS` order."""
    items = [data] if isinstance(data, str) else list(data)
    asked = {name.strip().lower() for item in items for name in item.split(",") if name.strip()}
    unknown = sorted(asked - set(DATA_KINDS))
    if unknown or not asked:
        raise BackfillError(
            f"--data takes {', '.join(DATA_KINDS)} (comma-separated), "
            f"not {', '.join(unknown) or 'nothing'}"
        )
    perps = [k for k in PERP_DATA if k in asked]
    if perps and market != "usdm":
        raise BackfillError(
            f"{', '.join(perps)}: perpetual futures history exists on USDⓈ-M only: "
            "use --market usdm"
        )
    return tuple(k for k in DATA_KINDS if k in asked)


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


# ------------------------------------------------------------------------------- archives


def _archive_files(archives: Sequence[str | Path]) -> list[Path]:
    """Archive files named or found under the directories, without checksum files."""
    if not archives:
        return []
    try:
        files = expand_paths([Path(p) for p in archives])
    except Exception as exc:
        raise BackfillError(str(exc)) from exc
    return [p.resolve() for p in files if not p.name.endswith(".CHECKSUM")]


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


def archive_digests(report: BackfillReport) -> dict[Path, str]:
    """Verify every archive of the report against its checksum file, before any work is done.

    A file without a checksum file is a warning in the report (and the log).

    Returns:
        Each archive's SHA-256: what records it as done.

    Raises:
        BackfillError: An archive does not match its checksum.
    """
    digests = {}
    for path in report.archives:
        warning = verify_checksum(path)
        if warning:
            logger.warning("%s", warning)
            report.warnings.append(warning)
        digests[path] = sha256_of(path)
    return digests


def pending_archives(
    client: Client, report: BackfillReport, digests: dict[Path, str], *, force: bool
) -> list[Path]:
    """The archives not yet recorded as done (all of them when forced); counts the others.

    Args:
        client: The ClickHouse holding `PROGRESS_TABLE`.
        report: The backfill's report: its archives, market and database.
        digests: Each archive's SHA-256 (`archive_digests`).
        force: Redo archives already recorded.
    """
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
    return pending


def record_archives(
    client: Client,
    report: BackfillReport,
    pending: Sequence[Path],
    digests: dict[Path, str],
    replayed: ReplayReport,
) -> None:
    """Record the archives a replay read whole as done.

    Args:
        client: The ClickHouse holding `PROGRESS_TABLE`.
        report: The backfill's report, given the replay's figures.
        pending: The archives replayed.
        digests: Each archive's SHA-256.
        replayed: What the replay of `pending` did.

    Raises:
        BackfillError: Naming the files cut short or unreadable: they are not recorded,
            so a later run with a good copy redoes them.
    """
    report.replay = replayed
    report.archives_replayed = len(pending)
    report.archive_trades = replayed.trades
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
            column_names=list(PROGRESS_COLUMNS),
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
