"""The ``data_quality`` table: gaps in trade streams, kline mismatches, stale symbols,
perpetuals without mark price.

One writer for every kind of finding, so rows keep one shape: a gap is written as
``open`` and rewritten (same key, higher version) as ``repaired`` or ``unrepairable``
(`flows.ingest.gaps`); a mismatch between our 1m candle and the exchange's kline is written
once, as ``info`` (`flows.ingest.crosscheck`); a stale symbol is written as ``open`` and
rewritten as ``repaired`` when its data resumes (`flows.ingest.staleness`), and so is a
perpetual without mark price (``no_mark_price``). ``FINAL`` shows
each finding's latest row.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flows.ingest.mismatch import Mismatch
from schemas.trades import Market

if TYPE_CHECKING:
    from flows.ingest.sequence import Gap

EXCHANGE = "binance"


class DataQualityLog:
    """Writes findings to ClickHouse ``data_quality``, one insert at a time.

    Args:
        client: A clickhouse-connect client; inserts run in a worker thread.
        database: Database holding ``data_quality``.
        market: The market every gap row is about.
    """

    COLUMNS = (
        "exchange", "market", "symbol", "kind", "status", "detected_at", "resolved_at",
        "first_id", "last_id", "missing", "recovered", "cause", "detail", "version",
        "open_time", "interval",
    )  # fmt: skip

    def __init__(self, client: Any, database: str, market: Market) -> None:
        self._client = client
        self._table = f"{database}.data_quality"
        self._market = market
        self._lock = asyncio.Lock()

    async def gap(
        self,
        gap: Gap,
        detected_at: datetime,
        status: str,
        version: int,
        *,
        recovered: int = 0,
        detail: str = "",
        resolved_at: datetime | None = None,
    ) -> None:
        """Record one state of a gap.

        Args:
            gap: The gap.
            detected_at: When it was found; with the gap's symbol and first id, the key
                the later states replace.
            status: ``open``, ``repaired`` or ``unrepairable``.
            version: Higher for a later state of the same gap.
            recovered: Trades fetched to fill it.
            detail: Why it could not be repaired.
            resolved_at: When it was repaired or given up.
        """
        row = [
            EXCHANGE, self._market, gap.symbol, "gap", status, detected_at, resolved_at,
            gap.first_id, gap.last_id, gap.missing, recovered, gap.cause, detail[:2_000],
            version, None, "",
        ]  # fmt: skip
        await self._insert([row])

    async def stale(
        self,
        symbol: str,
        detected_at: datetime,
        status: str,
        version: int,
        *,
        detail: str,
        resolved_at: datetime | None = None,
        kind: str = "stale",
    ) -> None:
        """Record one state of a stale symbol (``kind='stale'``), or of another silence
        found the same way (``no_mark_price``: a perpetual without mark price).

        Args:
            symbol: The symbol whose streams went silent.
            detected_at: When it was found; with the symbol, the key later states replace.
            status: ``open``, or ``repaired`` once its data resumed.
            version: Higher for a later state.
            detail: Which streams were silent, and for how long.
            resolved_at: When its data resumed.
            kind: The finding's kind.
        """
        row = [
            EXCHANGE, self._market, symbol, kind, status, detected_at, resolved_at,
            None, None, 0, 0, "", detail[:2_000], version, None, "",
        ]  # fmt: skip
        await self._insert([row])

    async def kline_mismatches(self, mismatches: Sequence[Mismatch], detected_at: datetime) -> None:
        """Record mismatches between our 1m candles and the exchange's klines.

        Each row is ``kind='kline_mismatch'``, ``status='info'``, with the minute in
        ``open_time``, ``interval='1m'`` and the differing fields (``name: ours !=
        theirs``, ``; ``-separated) or `flows.ingest.mismatch.NO_CANDLE` in ``detail``.

        Args:
            mismatches: Findings of `flows.ingest.crosscheck.CrossChecker.due`.
            detected_at: When they were judged.
        """
        rows = []
        # The table's key is (exchange, market, symbol, kind, detected_at, first_id): two
        # minutes of one symbol judged together would collapse into one row under FINAL,
        # so each gets its own millisecond.
        nth: Counter[tuple[str, str, str]] = Counter()
        for m in sorted(mismatches, key=lambda m: (m.symbol, m.open_time)):
            key = (m.exchange, m.market, m.symbol)
            at = detected_at + timedelta(milliseconds=nth[key])
            nth[key] += 1
            opened = datetime.fromtimestamp(m.open_time / 1000, UTC)
            rows.append([
                m.exchange, m.market, m.symbol, "kline_mismatch", "info", at, None,
                None, None, 0, 0, "", m.detail[:2_000], 1, opened, "1m",
            ])  # fmt: skip
        if rows:
            await self._insert(rows)

    async def _insert(self, rows: list[list[Any]]) -> None:
        async with self._lock:
            await asyncio.to_thread(
                self._client.insert, self._table, rows, column_names=list(self.COLUMNS)
            )
