"""Gap repair: fetch the trades a live stream missed, publish them, record it in ClickHouse.

A gap (`flows.ingest.sequence.Gap`) is written to ``data_quality`` as ``open`` (version 1) as
soon as it is reported (or, when it must not be fetched, once as ``unrepairable``:
`GapRepairer.refuse`), fetched through a `GapFiller` (Binance REST by default), its
trades handed to the same publisher as live trades, and written again under the same
key with version 2 as ``repaired`` (every id came back) or ``unrepairable`` (with the
reason in ``detail``). The ReplacingMergeTree keeps the later row, so ``FINAL`` shows
each gap's outcome and an open row left behind means a process died mid-repair.

Inside a live ingest, `GapWatch` sits between `flows.ingest.sequence.TradeSequencer`, which finds
the holes, and the repairer: it asks the sequencer every `_GAP_CHECK_S` for the holes
whose grace has run out, hands each gap to the repairer, and at shutdown reports every
hole still open and waits for the repairs. It also remembers where a restarted ingest
resumed (`flows.ingest.resume`): the symbols seeded with their last published trade, and for
each the exchange time of its first trade past the seed. The ``restart`` gap between the
two is repaired only within `IngestSettings.max_restart_gap_trades` ids and
`max_restart_gap_s` back; beyond either bound it is refused (recorded ``unrepairable``
with the ``tickscan backfill`` to run).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from flows.ingest.data_quality import DataQualityLog
from flows.ingest.resume import LastTrade, restart_gap_refusal
from flows.ingest.sequence import Gap, TradeSequencer
from flows.sources.binance.rest import (
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
    "GapWatch",
    "RepairCounts",
    "RestGapFiller",
]

_GAP_CHECK_S = 0.25
_SHUTDOWN_REPAIR_S = 30.0


class GapFiller(Protocol):
    """Fetches the trades of a gap; `RestGapFiller` asks Binance's REST API."""

    async def fetch_trade_range(self, symbol: str, first_id: int, last_id: int) -> list[Trade]:
        """Every trade of `symbol` with an id in ``first_id..last_id``, in id order.

        Raises:
            flows.sources.binance.rest.IncompleteTradeRange: Some ids cannot be had;
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


class GapWatch:
    """Sees every gap of a live ingest to its repair, or to its refusal.

    Args:
        sequencer: The ingest's sequencer, whose holes are watched.
        repairer: Repairs (or records as refused) each gap.
        market: For the ``tickscan backfill`` command of a refused restart gap.
        max_restart_gap_trades: Largest restart gap fetched.
        max_restart_gap_s: Oldest restart gap fetched.
    """

    def __init__(
        self,
        sequencer: TradeSequencer,
        repairer: GapRepairer,
        *,
        market: Market,
        max_restart_gap_trades: int,
        max_restart_gap_s: float,
    ) -> None:
        self.repairer = repairer
        self._sequencer = sequencer
        self._market: Market = market
        self._max_trades = max_restart_gap_trades
        self._max_age_s = max_restart_gap_s
        # Symbols seeded from an earlier run, until their first trade past the seed ...
        self.resuming: dict[str, LastTrade] = {}
        # ... then that trade's time, until the restart gap it opened is reported.
        self._restarts: dict[str, tuple[LastTrade, int]] = {}

    def seed(self, published: Mapping[str, LastTrade]) -> None:
        """Resume each symbol's sequence after its last trade already published.

        Args:
            published: Per symbol, the last trade an earlier run published.
        """
        self.resuming = dict(published)
        for symbol, last in self.resuming.items():
            self._sequencer.seed(symbol, last.trade_id)

    def resumed(self, trade: Trade) -> None:
        """Note when a seeded symbol's first trade past its seed came (for `repair`).

        Called for every trade while `resuming` is not empty.
        """
        last = self.resuming.get(trade.symbol)
        if last is not None and trade.trade_id > last.trade_id:
            del self.resuming[trade.symbol]
            if trade.trade_id > last.trade_id + 1:
                self._restarts[trade.symbol] = (last, trade.time_us)

    def repair(self, gap: Gap) -> None:
        """Repair a gap; a restart gap too large or too old is recorded, not fetched."""
        restart = self._restarts.pop(gap.symbol, None) if gap.cause == "restart" else None
        if restart is not None:
            last, resumed_us = restart
            reason = restart_gap_refusal(
                gap,
                last,
                resumed_us,
                market=self._market,
                max_trades=self._max_trades,
                max_age_s=self._max_age_s,
            )
            if reason:
                self.repairer.refuse(gap, reason)
                return
        self.repairer.repair(gap)

    async def run(self) -> None:
        """Repair the holes whose grace has run out, every `_GAP_CHECK_S`, until cancelled."""
        while True:
            await asyncio.sleep(_GAP_CHECK_S)
            for gap in self._sequencer.due(time.monotonic()):
                self.repair(gap)

    async def finish(self) -> None:
        """Repair every hole still open, whatever its grace, and wait for the repairs.

        Called once no more trades will come (the sockets are closed and their frames
        handled); repairs still running after `_SHUTDOWN_REPAIR_S` are abandoned.
        """
        for gap in self._sequencer.flush():
            self.repair(gap)
        await self.repairer.wait(_SHUTDOWN_REPAIR_S)

    def forget(self, symbols: Iterable[str]) -> None:
        """Drop the restart state of symbols no longer followed."""
        for symbol in symbols:
            self.resuming.pop(symbol, None)
            self._restarts.pop(symbol, None)
