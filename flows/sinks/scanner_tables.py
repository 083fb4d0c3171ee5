"""ClickHouse output of the signals flow: `signals` and `rank_snapshots` as TabSeparated batches.

Both tables are ReplacingMergeTrees keyed by what a row describes (a signal occurrence; a
symbol's row as of one minute), so a retried batch or a rerun leaves the same rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flows.sinks.clickhouse import NULL, TsvTable, TsvWriter, tsv_escape
from schemas.ranks import DERIVED_FIELDS, METRICS, RankRow
from schemas.signals import Signal

SIGNALS_TABLE = "signals"
SNAPSHOTS_TABLE = "rank_snapshots"

SIGNAL_COLUMNS = (
    "exchange",
    "market",
    "symbol",
    "name",
    "timeframe",
    "time",
    "direction",
    "price",
    "value",
    "details",
)
"""Columns of `signals` we write, in `signal_tsv` order."""

SNAPSHOTTED: tuple[str, ...] = tuple(name for name in METRICS if name not in DERIVED_FIELDS)
"""The metrics a snapshot stores: all but those the API derives from two symbols' rows."""

SNAPSHOT_COLUMNS = ("exchange", "market", "symbol", "time", *SNAPSHOTTED)
"""Columns of `rank_snapshots` we write, in `snapshot_tsv` order: every RankRow field
(`time_ms` as `time`) but the history and derived ones."""


def _number(value: float | bool | None) -> str:
    if value is None:
        return NULL
    if value is True:
        return "true"
    if value is False:
        return "false"
    return repr(float(value))


def _map_key(key: str) -> str:
    # ClickHouse reads a Map field's quoted keys with the same escapes as a TSV field
    # (one pass, not two), plus an escaped quote.
    return tsv_escape(key).replace("'", "\\'")


def signal_tsv(signals: list[Signal]) -> bytes:
    """Signals as TabSeparated rows in `SIGNAL_COLUMNS` order (time as integer ms)."""
    lines = []
    for s in signals:
        details = ",".join(f"'{_map_key(k)}':{v!r}" for k, v in s.details.items())
        lines.append(
            f"{tsv_escape(s.exchange)}\t{s.market}\t{tsv_escape(s.symbol)}\t"
            f"{tsv_escape(s.name)}\t{s.timeframe}\t{s.time_ms}\t{s.direction}\t"
            f"{s.price!r}\t{s.value!r}\t{{{details}}}\n"
        )
    return "".join(lines).encode()


def snapshot_tsv(rows: list[RankRow]) -> bytes:
    """Rank rows as TabSeparated rows in `SNAPSHOT_COLUMNS` order (time as integer ms)."""
    lines = []
    for row in rows:
        metrics = "\t".join(_number(getattr(row, name)) for name in SNAPSHOTTED)
        lines.append(
            f"{tsv_escape(row.exchange)}\t{row.market}\t{tsv_escape(row.symbol)}\t"
            f"{row.time_ms}\t{metrics}\n"
        )
    return "".join(lines).encode()


def _table_of(row: Signal | RankRow) -> str:
    return SIGNALS_TABLE if isinstance(row, Signal) else SNAPSHOTS_TABLE


ScannerWriter = TsvWriter[Signal | RankRow]


def scanner_writer(
    client_factory: Callable[[], Any], database: str, *, max_age_ms: int = 1_000
) -> ScannerWriter:
    """A writer of signals into `signals` and rank rows into `rank_snapshots`.

    Args:
        client_factory: As `TsvWriter`'s: the client to insert with, made on first use.
        database: Database holding both tables.
        max_age_ms: Flush when the oldest buffered row is this old.
    """
    tables: dict[str, TsvTable[Any]] = {
        SIGNALS_TABLE: TsvTable(SIGNALS_TABLE, SIGNAL_COLUMNS, signal_tsv),
        SNAPSHOTS_TABLE: TsvTable(SNAPSHOTS_TABLE, SNAPSHOT_COLUMNS, snapshot_tsv),
    }
    return TsvWriter(client_factory, database, tables, _table_of, max_age_ms=max_age_ms)
