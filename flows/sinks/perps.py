"""ClickHouse output of perpetuals data: marks_1s, funding, open_interest, liquidations and
mark_klines_1m.

`PerpWriter` is a `flows.sinks.clickhouse.TsvWriter` routing each record by its type to
its table, so the live store, the backfill and the simulated history write the same rows
the same way. Every table is a ReplacingMergeTree on the record's natural key (012_perps.sql):
a batch written twice leaves the same rows.

- A `MarkPrice` becomes the row of its second in ``marks_1s``: `time` is the start of the
  second, `event_time` the exchange's event time, and the latest event of a second wins.
- A `FundingEvent` writes ``funding`` with the version of its source (`FUNDING_VERSION`):
  the exchange's own rate replaces the live estimate of the same funding time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flows.sinks.clickhouse import NULL, TsvTable, TsvWriter, tsv_escape
from schemas.perps import FundingEvent, Liquidation, MarkKline, MarkPrice, OpenInterest

PerpRecord = MarkPrice | Liquidation | OpenInterest | FundingEvent | MarkKline
"""What a `PerpWriter` writes."""

FUNDING_VERSION = {"stream": 1, "exchange": 2, "sim": 2}
"""``funding.version`` by source: the exchange's settled rate outranks the live estimate."""

MARK_COLUMNS = (
    "exchange", "market", "symbol", "time", "event_time", "mark_price", "index_price",
    "estimated_settle_price", "funding_rate", "next_funding_time",
)  # fmt: skip
FUNDING_COLUMNS = (
    "exchange", "market", "symbol", "funding_time", "funding_rate", "mark_price", "source",
    "version",
)  # fmt: skip
OPEN_INTEREST_COLUMNS = (
    "exchange", "market", "symbol", "time", "open_interest", "open_interest_value", "source",
)  # fmt: skip
LIQUIDATION_COLUMNS = (
    "exchange", "market", "symbol", "time", "side", "price", "avg_price", "qty",
    "filled_qty", "last_filled_qty", "quote_volume", "status", "order_type",
    "time_in_force", "event_time",
)  # fmt: skip
MARK_KLINE_COLUMNS = (
    "exchange", "market", "symbol", "open_time", "open", "high", "low", "close", "close_time",
)  # fmt: skip


def _opt(value: object) -> str:
    return NULL if value is None else str(value)


def _ms(time_us: int) -> int:
    return time_us // 1000


def _symbol(record: PerpRecord) -> str:
    return (
        f"{tsv_escape(record.exchange)}\t{tsv_escape(record.market)}\t{tsv_escape(record.symbol)}"
    )


def mark_rows(marks: list[MarkPrice]) -> bytes:
    """`MarkPrice` records as ``marks_1s`` rows (`MARK_COLUMNS`); times as integer ms."""
    return "".join(
        f"{_symbol(m)}\t{m.time_us // 1_000_000 * 1000}\t{_ms(m.time_us)}\t{m.mark_price}\t"
        f"{m.index_price}\t{m.estimated_settle_price}\t{_opt(m.funding_rate)}\t"
        f"{_ms(m.next_funding_time_us) if m.next_funding_time_us else NULL}\n"
        for m in marks
    ).encode()


def funding_rows(events: list[FundingEvent]) -> bytes:
    """`FundingEvent` records as ``funding`` rows (`FUNDING_COLUMNS`)."""
    return "".join(
        f"{_symbol(e)}\t{_ms(e.funding_time_us)}\t{e.funding_rate}\t{_opt(e.mark_price)}\t"
        f"{e.source}\t{FUNDING_VERSION[e.source]}\n"
        for e in events
    ).encode()


def open_interest_rows(samples: list[OpenInterest]) -> bytes:
    """`OpenInterest` records as ``open_interest`` rows (`OPEN_INTEREST_COLUMNS`)."""
    return "".join(
        f"{_symbol(o)}\t{_ms(o.time_us)}\t{o.open_interest}\t{_opt(o.open_interest_value)}\t"
        f"{o.source}\n"
        for o in samples
    ).encode()


def liquidation_rows(liquidations: list[Liquidation]) -> bytes:
    """`Liquidation` records as ``liquidations`` rows (`LIQUIDATION_COLUMNS`)."""
    return "".join(
        f"{_symbol(q)}\t{_ms(q.time_us)}\t{q.side}\t{q.price}\t{q.avg_price}\t{q.qty}\t"
        f"{q.filled_qty}\t{q.last_filled_qty}\t{q.quote_volume}\t{tsv_escape(q.status)}\t"
        f"{tsv_escape(q.order_type)}\t{tsv_escape(q.time_in_force)}\t{_ms(q.event_time_us)}\n"
        for q in liquidations
    ).encode()


def mark_kline_rows(klines: list[MarkKline]) -> bytes:
    """`MarkKline` records as ``mark_klines_1m`` rows (`MARK_KLINE_COLUMNS`)."""
    return "".join(
        f"{_symbol(k)}\t{k.open_time}\t{k.open}\t{k.high}\t{k.low}\t{k.close}\t{k.close_time}\n"
        for k in klines
    ).encode()


TABLES: dict[type, TsvTable[Any]] = {
    MarkPrice: TsvTable("marks_1s", MARK_COLUMNS, mark_rows),
    FundingEvent: TsvTable("funding", FUNDING_COLUMNS, funding_rows),
    OpenInterest: TsvTable("open_interest", OPEN_INTEREST_COLUMNS, open_interest_rows),
    Liquidation: TsvTable("liquidations", LIQUIDATION_COLUMNS, liquidation_rows),
    MarkKline: TsvTable("mark_klines_1m", MARK_KLINE_COLUMNS, mark_kline_rows),
}
"""The table of each record type."""


class PerpWriter(TsvWriter[PerpRecord]):
    """Buffers perpetuals records and inserts each table's as one TabSeparated batch.

    Args:
        client_factory: Returns the clickhouse-connect client to insert with.
        database: Database holding the tables.
        max_rows: Flush when this many records are buffered.
        max_age_ms: Flush when the oldest buffered record is this old.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        database: str,
        *,
        max_rows: int = 100_000,
        max_age_ms: int = 1_000,
    ) -> None:
        super().__init__(
            client_factory,
            database,
            {kind.__name__: table for kind, table in TABLES.items()},
            lambda record: type(record).__name__,
            max_rows=max_rows,
            max_age_ms=max_age_ms,
        )
