"""ClickHouse ``symbols`` output: `SymbolInfo` rows, inserted as one TabSeparated batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from flows.sinks.clickhouse import NULL, TsvTable, TsvWriter, tsv_escape
from schemas.symbols import SymbolInfo

TABLE = "symbols"

SYMBOL_COLUMNS = (
    "exchange",
    "market",
    "symbol",
    "base_asset",
    "quote_asset",
    "status",
    "kind",
    "tick_size",
    "step_size",
    "updated",
    "min_qty",
    "max_qty",
    "market_max_qty",
    "min_notional",
)
"""Columns we write, in `tsv_rows` order."""


def tsv_rows(infos: list[SymbolInfo]) -> bytes:
    """Symbols as TabSeparated rows in `SYMBOL_COLUMNS` order.

    Sizes and filter values are written in plain notation (``0.00000001``, never
    ``1E-8``), the update time as integer milliseconds, which DateTime64(3) reads as its
    ticks.
    """
    lines = [
        "\t".join(
            (
                tsv_escape(s.exchange),
                tsv_escape(s.market),
                tsv_escape(s.symbol),
                tsv_escape(s.base_asset),
                tsv_escape(s.quote_asset),
                tsv_escape(s.status),
                tsv_escape(s.kind),
                _decimal(s.tick_size),
                _decimal(s.step_size),
                str(s.updated_ms),
                _decimal(s.min_qty),
                _decimal(s.max_qty),
                _decimal(s.market_max_qty),
                _decimal(s.min_notional),
            )
        )
        + "\n"
        for s in infos
    ]
    return "".join(lines).encode()


def _decimal(value: Decimal | None) -> str:
    return NULL if value is None else format(value, "f")


class SymbolWriter(TsvWriter[SymbolInfo]):
    """Writes the symbols an exchange lists to ClickHouse ``symbols``.

    ``symbols`` is a ReplacingMergeTree on (exchange, market, symbol) by update time, so
    writing the whole universe at every refresh keeps one row per symbol, the latest.

    Args:
        client_factory: Returns the clickhouse-connect client to insert with. Called once,
            on first use.
        database: Database holding ``symbols``.
    """

    def __init__(self, client_factory: Callable[[], Any], database: str) -> None:
        super().__init__(
            client_factory, database, {TABLE: TsvTable(TABLE, SYMBOL_COLUMNS, tsv_rows)}
        )

    def write(self, infos: Iterable[SymbolInfo]) -> int:
        """Insert `infos` now (one insert; blocking: call it off the event loop).

        Returns:
            How many rows were written.
        """
        before = self.written[TABLE]
        self.add(infos)
        self.flush()
        return self.written[TABLE] - before
