"""Gap repair: fetch the trades a live stream missed, publish them, record it in ClickHouse.

A gap (`flows.sequence.Gap`) is written to ``data_quality`` as ``open`` (version 1) as
soon as it is reported (or, when it must not be fetched, once as ``unrepairable``:
`GapRepairer.refuse`), fetched through a `GapFiller` (Binance REST by default), its
trades handed to the same publisher as live trades, and written again under the same
key with version 2 as ``repaired`` (every id came back) or ``unrepairable`` (with the
reason in ``detail``). The ReplacingMergeTree keeps the later row, so ``FINAL`` shows
each gap's outcome and an open row left behind means a process died mid-repair.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from flows.data_quality import DataQualityLog
from flows.sequence import Gap
from flows.sources.binance_rest import (
    BinanceBanned,
    BinanceRest,
    IncompleteTradeRange,
    TradeKind,
)
from schemas.trades import Market, Trade

logger = logging.getLogger(__name__)

__all__ = [
    "DataQualityLog",
    "GapFiller",
    "GapRepairer",
    "RepairCounts",
    "RestGapFiller",
]


class GapFiller(Protocol):
    """Fetches the trades of a gap; `RestGapFiller` asks Binance's REST API."""

    async def fetch_trade_range(self, symbol: str, first_id: int, last_id: int) -> list[Trade]:
        """Every trade of `symbol` with an id in ``first_id..last_id``, in id order.

        Raises:
            flows.sources.binance_rest.IncompleteTradeRange: Some ids cannot be had;
                its ``trades`` are those that can.
        """
        ...


class RestGapFiller:
    """A `GapFiller` over `BinanceRest`: ``historicalTrades`` ids on spot, ``aggTrades``
    ids on USDⓈ-M, the same ids the followed streams carry."""

    def __init__(self, rest: BinanceRest, kind: TradeKind) -> None:
        self.rest = rest
        self.kind: TradeKind = kind

    async def fetch_trade_range(self, symbol: str, first_id: int, last_id: int) -> list[Trade]:
        """Every trade with an id in ``first_id..last_id`` (see `BinanceRest`)."""
        return await self.rest.fetch_trade_range(symbol, first_id, last_id, kind=self.kind)


@dataclass(slots=True)
class RepairCounts:
    """What gap repair has done.

    Attributes:
        gaps: Gaps reported, by cause.
        missing: Trade ids in them.
        repaired: Gaps wholly filled.
        unrepairable: Gaps the filler could not (wholly) fill.
        recovered: Trades fetched and published.
    """

    gaps: Counter[str] = field(default_factory=Counter)
    missing: int = 0
    repaired: int = 0
    unrepairable: int = 0
    recovered: int = 0

    def copy(self) -> RepairCounts:
        """A snapshot that later repairs do not change."""
        return RepairCounts(
            Counter(self.gaps), self.missing, self.repaired, self.unrepairable, self.recovered
        )


class GapRepairer:
    """Repairs gaps in the background, a few at a time.

    Args:
        filler: Where the missing trades come from.
        log: Where each gap and its outcome are recorded.
        publish: Publishes one repaired trade (like a live one).
        market: For log lines.
        concurrency: Repairs running at once.
        attempts: Tries of a failing fetch before the gap is unrepairable.
        backoff_s: Wait after the first failed try; doubles per try.
    """

    def __init__(
        self,
        filler: GapFiller,
        log: DataQualityLog,
        publish: Callable[[Trade], None],
        *,
        market: Market,
        concurrency: int = 4,
        attempts: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.counts = RepairCounts()
        self._filler = filler
        self._log = log
        self._publish = publish
        self._market = market
        self._slots = asyncio.Semaphore(concurrency)
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        """Repairs not finished yet."""
        return len(self._tasks)

    def repair(self, gap: Gap) -> None:
        """Start repairing `gap` in the background."""
        self._count(gap)
        logger.warning(
            "%s %s: ids %d..%d missing (%d, %s); repairing",
            self._market, gap.symbol, gap.first_id, gap.last_id, gap.missing, gap.cause,
        )  # fmt: skip
        self._start(self._repair(gap), f"repair-{gap.symbol}-{gap.first_id}")

    def refuse(self, gap: Gap, reason: str) -> None:
        """Record `gap` as unrepairable without fetching it, for `reason`, in the background.

        One ``data_quality`` row, ``unrepairable`` with the reason as its detail: nothing
        is fetched, so there is no ``open`` state to replace.
        """
        self._count(gap)
        self.counts.unrepairable += 1
        logger.error(
            "%s %s: ids %d..%d missing (%d, %s), not repaired: %s",
            self._market, gap.symbol, gap.first_id, gap.last_id, gap.missing, gap.cause, reason,
        )  # fmt: skip
        now = datetime.now(UTC)
        record = self._log.gap(gap, now, "unrepairable", 1, detail=reason, resolved_at=now)
        self._start(record, f"refuse-{gap.symbol}-{gap.first_id}")

    def _count(self, gap: Gap) -> None:
        self.counts.gaps[gap.cause] += 1
        self.counts.missing += gap.missing

    def _start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self, timeout: float) -> None:
        """Wait for every running repair; cancel those still running after `timeout`."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            logger.error("%d gap repair(s) abandoned after %.0f s", len(pending), timeout)
            await asyncio.gather(*pending, return_exceptions=True)

    async def _repair(self, gap: Gap) -> None:
        now = datetime.now(UTC)
        # data_quality keeps ms: the final row must carry exactly the open row's key.
        detected_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
        await self._log.gap(gap, detected_at, "open", 1)
        async with self._slots:
            trades, error = await self._fetch(gap)
        fill: list[Trade] = []
        seen: set[int] = set()
        for trade in sorted(trades, key=lambda t: t.trade_id):
            if gap.first_id <= trade.trade_id <= gap.last_id and trade.trade_id not in seen:
                seen.add(trade.trade_id)
                fill.append(trade)
        for trade in fill:
            self._publish(trade)
        self.counts.recovered += len(fill)
        repaired = not error and len(fill) == gap.missing
        if repaired:
            self.counts.repaired += 1
        else:
            self.counts.unrepairable += 1
            error = error or f"{len(fill)} of {gap.missing} ids returned"
            logger.error(
                "%s %s: gap %d..%d unrepairable: %s",
                self._market, gap.symbol, gap.first_id, gap.last_id, error,
            )  # fmt: skip
        await self._log.gap(
            gap,
            detected_at,
            "repaired" if repaired else "unrepairable",
            2,
            recovered=len(fill),
            detail=error,
            resolved_at=datetime.now(UTC),
        )

    async def _fetch(self, gap: Gap) -> tuple[list[Trade], str]:
        """The gap's trades and, when they are not all there, why."""
        error = ""
        for attempt in range(self._attempts):
            try:
                return await self._filler.fetch_trade_range(
                    gap.symbol, gap.first_id, gap.last_id
                ), ""
            except IncompleteTradeRange as exc:
                return exc.trades, str(exc)
            except BinanceBanned as exc:
                return [], str(exc)
            except Exception as exc:
                # Whatever a filler raises is recorded as the gap's outcome; one failed
                # repair must not stop ingest.
                error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "repair of %s %d..%d failed: %s", gap.symbol, gap.first_id, gap.last_id, error
                )
                if attempt + 1 < self._attempts:
                    await asyncio.sleep(self._backoff_s * 2**attempt)
        return [], error
