"""ClickHouse output: rows buffered per table and inserted as large TabSeparated batches.

`TsvWriter` is the buffer, generic over the row type: each table it fills says how a
batch of its rows becomes TabSeparated text. `CandleWriter` fills candles_1s and
candles_1m; the trade store fills `trades` with rows it encodes itself.

Inserts are at-least-once and idempotent: every table written here is a ReplacingMergeTree
keyed by what a row describes, so a batch written twice (a retry, a recovery, a rerun)
leaves the same rows. The buffer is flushed when it is large, when its oldest row is
`max_age_ms` old (a timer thread sees to it when no rows come to trigger it, so a quiet
stream's last rows are not held until the epoch ends: they would be lost in a crash), at
every Bytewax epoch end (the sink's snapshot), and at close.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import attrgetter
from typing import Any, Generic, Literal, TypeVar

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from schemas.candles import Candle

logger = logging.getLogger(__name__)

R = TypeVar("R")

NULL = "\\N"
"""TabSeparated NULL."""


def tsv_escape(text: str) -> str:
    """A string as a TabSeparated field: backslash, tab and newline escaped."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


@dataclass(frozen=True, slots=True)
class TsvTable(Generic[R]):
    """A table a `TsvWriter` inserts into.

    Attributes:
        name: Table name (the writer's database qualifies it).
        columns: The columns each row gives, in order; the others take their defaults.
        encode: Turns a batch of rows into TabSeparated text, one line per row.
    """

    name: str
    columns: Sequence[str]
    encode: Callable[[list[R]], bytes]


class TsvWriter(Generic[R]):
    """Buffers rows per table and inserts each table's rows as one TabSeparated batch.

    One writer serves every sink partition of a process (a lock guards it), so each
    process sends ClickHouse few, large inserts. clickhouse-connect converts a Decimal
    column value by value through `str()` and back (about 0.7 us each); ClickHouse parses
    the same decimal text itself, exactly and several times faster, so rows go in as text.

    Args:
        client_factory: Returns the clickhouse-connect client to insert with. Called once,
            on first use, in the process that writes.
        database: Database holding the tables.
        tables: The tables by name; `written` counts inserted rows under the same names.
        route: Names the table of a row; may be None when there is one table.
        max_rows: Flush when this many rows are buffered.
        max_age_ms: Flush when the oldest buffered row is this old.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        database: str,
        tables: Mapping[str, TsvTable[R]],
        route: Callable[[R], str] | None = None,
        *,
        max_rows: int = 200_000,
        max_age_ms: int = 1_000,
    ) -> None:
        if route is None and len(tables) != 1:
            raise ValueError("a writer of several tables needs a route")
        self._client_factory = client_factory
        self._client: Any = None
        self._database = database
        self._tables = dict(tables)
        self._route = route
        self._max_rows = max_rows
        self._max_age_s = max_age_ms / 1000
        self._lock = threading.Lock()
        self._buffers: dict[str, list[R]] = {name: [] for name in tables}
        self._only = next(iter(self._buffers.values())) if route is None else None
        self._rows = 0
        self._since = 0.0
        self._timer: threading.Thread | None = None
        self._timer_error: BaseException | None = None
        self.written = dict.fromkeys(tables, 0)

    def add(self, rows: Iterable[R]) -> None:
        """Buffer rows; insert if the buffer is due."""
        if self._timer is None:
            # The thread holds the writer only weakly: a writer its flow has dropped (a
            # finished replay, a pipeline restarted on a fresh broker) is freed, with its
            # client and buffers, and its thread ends.
            self._timer = threading.Thread(
                target=TsvWriter._age_flush,
                args=(weakref.ref(self), max(self._max_age_s / 4, 0.01)),
                name="tsv-writer",
                daemon=True,
            )
            self._timer.start()
        with self._lock:
            if self._timer_error is not None:
                raise self._timer_error
            before = self._rows
            only = self._only
            if only is not None:
                size = len(only)
                only.extend(rows)
                self._rows += len(only) - size
            else:
                buffers = self._buffers
                route = self._route
                assert route is not None
                for row in rows:
                    buffers[route(row)].append(row)
                    self._rows += 1
            if before == 0 and self._rows:
                self._since = time.monotonic()
            if self._rows >= self._max_rows or (
                self._rows and time.monotonic() - self._since >= self._max_age_s
            ):
                self._flush_locked()

    def flush(self) -> None:
        """Insert everything buffered."""
        with self._lock:
            self._flush_locked()

    @staticmethod
    def _age_flush(ref: weakref.ReferenceType[TsvWriter[Any]], tick: float) -> None:
        """Insert rows that reached `max_age_ms` while no new rows came (a daemon thread,
        until the writer is gone or an insert failed)."""
        while True:
            time.sleep(tick)
            writer = ref()
            if writer is None or writer._timer_error is not None:
                return
            with writer._lock:
                if writer._rows and time.monotonic() - writer._since >= writer._max_age_s:
                    try:
                        writer._flush_locked()
                    except Exception as exc:  # raised again in the flow's thread by add()
                        logger.exception("insert of aged rows failed")
                        writer._timer_error = exc
            del writer

    def _flush_locked(self) -> None:
        if not self._rows:
            return
        if self._client is None:
            self._client = self._client_factory()
        for name, rows in self._buffers.items():
            if not rows:
                continue
            table = self._tables[name]
            target = f"{self._database}.{table.name}"
            self._client.raw_insert(
                target, list(table.columns), table.encode(rows), fmt="TabSeparated"
            )
            self.written[name] += len(rows)
            logger.debug("inserted %d rows into %s", len(rows), target)
            rows.clear()
        self._rows = 0


CANDLE_COLUMNS: tuple[str, ...] = (
    *(name for name in Candle.__struct_fields__ if name != "interval"),
    "source",
)
"""Columns we write, in `tsv_rows` order: a `Candle`'s fields (its interval is the table)
and the candle's source."""

TABLES = {"1s": "candles_1s", "1m": "candles_1m"}

CandleSource = Literal["trades", "exchange"]
"""The candle tables' `source`: built by tickscan from trades, or the exchange's own kline."""


class CandleWriter(TsvWriter[Candle]):
    """Buffers candles and inserts them into candles_1s and candles_1m by interval.

    Args:
        client_factory: Returns the clickhouse-connect client to insert with. Called once,
            on first use, in the process that writes.
        database: Database holding the candle tables.
        source: What the candles are, written to every row's `source`: ``trades`` for
            candles our flow built, ``exchange`` for klines backfilled from the exchange.
        max_rows: Flush when this many candles are buffered.
        max_age_ms: Flush when the oldest buffered candle is this old.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        database: str,
        *,
        source: CandleSource = "trades",
        max_rows: int = 200_000,
        max_age_ms: int = 1_000,
    ) -> None:
        encode = partial(tsv_rows, source=source)
        super().__init__(
            client_factory,
            database,
            {
                interval: TsvTable(table, CANDLE_COLUMNS, encode)
                for interval, table in TABLES.items()
            },
            attrgetter("interval"),
            max_rows=max_rows,
            max_age_ms=max_age_ms,
        )


def tsv_rows(candles: list[Candle], source: CandleSource = "trades") -> bytes:
    """Candles as TabSeparated rows in `CANDLE_COLUMNS` order, each with `source`.

    Times are integer milliseconds, which DateTime64(3) reads as its ticks.
    """
    escaped: dict[str, str] = {}

    def text(value: str) -> str:
        out = escaped.get(value)
        if out is None:
            out = escaped[value] = tsv_escape(value)
        return out

    lines = [
        f"{text(c.exchange)}\t{text(c.market)}\t{text(c.symbol)}\t{c.open_time}\t"
        f"{c.close_time}\t{c.open}\t{c.high}\t{c.low}\t{c.close}\t{c.volume}\t"
        f"{c.quote_volume}\t{c.count}\t{c.taker_buy_volume}\t{c.taker_buy_quote_volume}\t"
        f"{NULL if c.first_trade_id is None else c.first_trade_id}\t"
        f"{NULL if c.last_trade_id is None else c.last_trade_id}\t{c.version}\t{source}\n"
        for c in candles
    ]
    return "".join(lines).encode()


def candle_table_writer(client: Any, database: str) -> Callable[[str, Any], None]:
    """Inserts ready-made candle rows as Arrow tables, for writers that build their own.

    Args:
        client: A clickhouse-connect client.
        database: Database holding the candle tables.

    Returns:
        A function of `(interval, pyarrow.Table)` that inserts the table (columns named
        as the candle tables' columns) into `candles_1s` or `candles_1m` as one batch.
    """

    def write(interval: str, table: Any) -> None:
        target = f"{database}.{TABLES[interval]}"
        client.insert_arrow(target, table)
        logger.debug("inserted %d rows into %s", table.num_rows, target)

    return write


class _WriterPartition(StatefulSinkPartition[list[R], None]):
    def __init__(self, writer: TsvWriter[R]) -> None:
        self._writer = writer

    def write_batch(self, values: list[list[R]]) -> None:
        for rows in values:
            self._writer.add(rows)

    def snapshot(self) -> None:
        # Bytewax commits the epoch after this returns: nothing may stay buffered.
        self._writer.flush()

    def close(self) -> None:
        self._writer.flush()


class ClickHouseSink(FixedPartitionedSink[list[R], None]):
    """Writes `(key, [row, ...])` items through a `TsvWriter` (e.g. a `CandleWriter`).

    Args:
        writer: The process's writer for these rows.
        parts: Sink partitions; items are routed by their (numeric) key. One is enough
            for one process; raise it to spread inserts over the processes of a cluster.
    """

    def __init__(self, writer: TsvWriter[R], parts: int = 1) -> None:
        self._writer = writer
        self._parts = parts

    def list_parts(self) -> list[str]:
        return [str(i) for i in range(self._parts)]

    def part_fn(self, item_key: str) -> int:
        return int(item_key) if item_key.isdigit() else super().part_fn(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _WriterPartition[R]:
        return _WriterPartition(self._writer)
