"""What a live ingest reports: running counts, a status snapshot, the final report.

`snapshot` and `final_report` build them from the parts of a `flows.ingest.market.LiveIngest`
(a part not built yet counts as idle); `log_status` and `log_report` write their lines.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field, replace

from flows.ingest.crosscheck import CheckCounts, LiveCrossCheck
from flows.ingest.delivery import PublishReport
from flows.ingest.gaps import GapWatch, RepairCounts
from flows.ingest.open_interest import OpenInterestPoller, PollCounts
from flows.ingest.quotes import QuotePublisher
from flows.ingest.sequence import TradeSequencer
from flows.ingest.staleness import StaleMonitor
from flows.sources.binance.ws import ConnectionStatus, Frame, StreamPool
from schemas.trades import Market

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestCounts:
    """Running counts of a live ingest (gap repair keeps its own: `RepairCounts`).

    Attributes:
        trades: Live trades handed to the publisher (duplicates excluded).
        quotes: Quotes handed to the quote producer.
        quotes_delivered: Quotes the broker acknowledged.
        duplicates: Trades dropped as already published.
        stale_quotes: Quotes dropped as not newer than the last one.
        rejected: Messages sent to the dead-letter topic.
        skipped: Non-trade messages on a trade stream, by kind.
        stale: Times a symbol was found stale (its streams silent while its connection
            flowed; `flows.ingest.staleness`).
        marks: Mark prices handed to the perpetuals publisher (USDⓈ-M).
        liquidations: Liquidations handed to the perpetuals publisher (USDⓈ-M).
        no_mark: Times a perpetual was found without mark price (its ``@markPrice@1s``
            silent while its connection flowed).
        depth: 20-level books handed to the depth publisher (watched symbols only).
    """

    trades: int = 0
    quotes: int = 0
    quotes_delivered: int = 0
    duplicates: int = 0
    stale_quotes: int = 0
    rejected: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    stale: int = 0
    marks: int = 0
    liquidations: int = 0
    no_mark: int = 0
    depth: int = 0


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """A snapshot of a running ingest, for operators and the CLI.

    Attributes:
        market: The market followed.
        symbols: Symbols followed.
        connections: One entry per shard (connection slot).
        freshness: Seconds since each stream's last message (streams heard from).
        counts: The running counts.
        repairs: Gaps found and repaired so far.
        reconnects: Sockets opened after a shard's first, by cause.
        open_holes: Holes waiting (within their grace) to be filled or reported.
        repairs_running: Gap repairs in flight.
        queued: Frames waiting between the sockets and the publisher.
        crosscheck: Klines checked against our candles, and mismatches (None: off).
        stale_symbols: Symbols stale now (recorded ``open`` in ``data_quality``), sorted.
        no_mark_price: Perpetuals without mark price now (recorded ``open`` in
            ``data_quality``), sorted.
        open_interest: What the open-interest poller has done and the weight it uses
            (None: not polling).
    """

    market: Market
    symbols: int
    connections: list[ConnectionStatus]
    freshness: dict[str, float]
    counts: IngestCounts
    repairs: RepairCounts
    reconnects: dict[str, int]
    open_holes: int
    repairs_running: int
    queued: int
    crosscheck: CheckCounts | None = None
    stale_symbols: list[str] = field(default_factory=list)
    no_mark_price: list[str] = field(default_factory=list)
    open_interest: PollCounts | None = None

    def stale(self, older_than_s: float) -> list[str]:
        """Streams whose last message is older than `older_than_s`."""
        return sorted(s for s, age in self.freshness.items() if age > older_than_s)


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What a live ingest did, once stopped and flushed.

    Attributes:
        market: The market followed.
        symbols: Symbols followed at the end.
        seconds: Wall-clock run time.
        counts: Trades, quotes and duplicates.
        repairs: Gaps found, repaired, unrepairable; trades recovered.
        reconnects: Sockets opened after a shard's first, by cause.
        publish: The trade publisher's delivery report.
        crosscheck: Klines checked against our candles, and mismatches (None: off).
        open_interest: What the open-interest poller did (None: it did not poll).
    """

    market: Market
    symbols: int
    seconds: float
    counts: IngestCounts
    repairs: RepairCounts
    reconnects: dict[str, int]
    publish: PublishReport
    crosscheck: CheckCounts | None = None
    open_interest: PollCounts | None = None


# -- built from a running ingest -------------------------------------------------------


def snapshot(
    market: Market,
    *,
    symbols: int,
    counts: IngestCounts,
    sequencer: TradeSequencer,
    pool: StreamPool | None,
    queue: asyncio.Queue[Frame] | None,
    gaps: GapWatch | None,
    quotes: QuotePublisher | None,
    stale: StaleMonitor | None,
    checker: LiveCrossCheck | None,
    marks: StaleMonitor | None = None,
    poller: OpenInterestPoller | None = None,
) -> LiveStatus:
    """A snapshot of a running ingest that later counting does not change.

    Args:
        market: The market followed.
        symbols: Symbols followed.
        counts: The running counts.
        sequencer: The trade sequencer, for its open holes.
        pool: The connections (None: not opened yet).
        queue: The frames between sockets and publisher (None: not made yet).
        gaps: The gap watch, for repairs (None: not started yet).
        quotes: The quote publisher, for deliveries (None: not started yet).
        stale: The staleness monitor (None: not started yet).
        checker: The cross-check (None: off or not started yet).
        marks: The missing-mark-price monitor (None: spot, or not started yet).
        poller: The open-interest poller (None: spot, off, or not started yet).

    Returns:
        The status.
    """
    return LiveStatus(
        market=market,
        symbols=symbols,
        connections=pool.status() if pool else [],
        freshness=pool.freshness() if pool else {},
        counts=replace(
            counts,
            skipped=Counter(counts.skipped),
            quotes_delivered=quotes.delivered if quotes else counts.quotes_delivered,
            stale=stale.found if stale else counts.stale,
            no_mark=marks.found if marks else counts.no_mark,
        ),
        repairs=_repairs(gaps).copy(),
        reconnects=_reconnects(pool),
        open_holes=sequencer.open_holes(),
        repairs_running=gaps.repairer.running if gaps else 0,
        queued=queue.qsize() if queue else 0,
        crosscheck=checker.counts() if checker else None,
        stale_symbols=stale.watch.stale if stale else [],
        no_mark_price=marks.watch.stale if marks else [],
        open_interest=poller.counts() if poller else None,
    )


def final_report(
    market: Market,
    *,
    symbols: int,
    seconds: float,
    counts: IngestCounts,
    pool: StreamPool | None,
    gaps: GapWatch | None,
    publish: PublishReport,
    checker: LiveCrossCheck | None,
    poller: OpenInterestPoller | None = None,
) -> IngestReport:
    """The report of a stopped and flushed ingest.

    Args:
        market: The market followed.
        symbols: Symbols followed at the end.
        seconds: Wall-clock run time.
        counts: The final counts.
        pool: The connections (None: never opened).
        gaps: The gap watch (None: never started).
        publish: The trade publisher's delivery report.
        checker: The cross-check (None: off).
        poller: The open-interest poller (None: it did not poll).

    Returns:
        The report.
    """
    return IngestReport(
        market=market,
        symbols=symbols,
        seconds=seconds,
        counts=counts,
        repairs=_repairs(gaps),
        reconnects=_reconnects(pool),
        publish=publish,
        crosscheck=checker.counts() if checker else None,
        open_interest=poller.counts() if poller else None,
    )


def _repairs(gaps: GapWatch | None) -> RepairCounts:
    return gaps.repairer.counts if gaps else RepairCounts()


def _reconnects(pool: StreamPool | None) -> dict[str, int]:
    if pool is None:
        return {}
    return {k: v for k, v in pool.counts.opened.items() if k != "initial"}


# -- log lines -------------------------------------------------------------------------


def log_status(s: LiveStatus, stale_after_s: float) -> None:
    """Log a running ingest's status line (and its cross-check's, when on).

    Args:
        s: The status.
        stale_after_s: Streams silent longer than this are counted silent.
    """
    logger.info(
        "%s: %d symbols, %d connections, %d trades, %d quotes, %d duplicates, "
        "gaps %s, %d repairing, %d queued, %d streams silent > %.0f s, "
        "%d symbols stale %s",
        s.market, s.symbols, len(s.connections), s.counts.trades, s.counts.quotes,
        s.counts.duplicates, dict(s.repairs.gaps), s.repairs_running, s.queued,
        len(s.stale(stale_after_s)), stale_after_s, len(s.stale_symbols), s.stale_symbols[:10],
    )  # fmt: skip
    if s.crosscheck is not None:
        logger.info(
            "%s cross-check: %d klines judged, %d mismatched",
            s.market, s.crosscheck.checked, s.crosscheck.mismatched,
        )  # fmt: skip
    if s.open_interest is not None or s.counts.marks:
        _log_perps(s.market, s.counts, s.open_interest, s.no_mark_price)


def _log_perps(
    market: Market, counts: IngestCounts, polls: PollCounts | None, no_mark: list[str]
) -> None:
    oi = (
        f"{polls.polls['published']} open-interest samples ({polls.polls['failed']} failed, "
        f"{polls.polls['missed']} missed; a round of {polls.round_s:.0f} s using "
        f"{polls.weight_per_minute:.0f} weight/min, {polls.weight} spent)"
        if polls is not None
        else "open interest not polled"
    )
    logger.info(
        "%s perpetuals: %d marks, %d liquidations, %s, %d without mark price %s",
        market, counts.marks, counts.liquidations, oi, len(no_mark), no_mark[:10],
    )  # fmt: skip


def log_report(report: IngestReport) -> None:
    """Log what a stopped ingest did (and its cross-check, when on)."""
    counts, repairs = report.counts, report.repairs
    logger.info(
        "ingest %s stopped after %.0f s: %d trades, %d quotes, %d duplicates, "
        "%d gaps (%d repaired, %d unrepairable, %d trades recovered)",
        report.market, report.seconds, counts.trades, counts.quotes, counts.duplicates,
        sum(repairs.gaps.values()), repairs.repaired, repairs.unrepairable, repairs.recovered,
    )  # fmt: skip
    if report.open_interest is not None or counts.marks:
        _log_perps(report.market, counts, report.open_interest, [])
    if report.crosscheck is not None:
        checked = report.crosscheck
        logger.info(
            "cross-check %s: %d klines judged, %d mismatched (%d without our candle), "
            "%d recorded",
            report.market, checked.checked, checked.mismatched, checked.missing,
            checked.recorded,
        )  # fmt: skip
