"""What a live ingest reports: running counts, a status snapshot, the final report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from flows.crosscheck import CheckCounts
from flows.gaps import RepairCounts
from flows.ingest import PublishReport
from flows.sources.binance_ws import ConnectionStatus
from schemas.trades import Market


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
            flowed; `flows.staleness`).
    """

    trades: int = 0
    quotes: int = 0
    quotes_delivered: int = 0
    duplicates: int = 0
    stale_quotes: int = 0
    rejected: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    stale: int = 0


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
    """

    market: Market
    symbols: int
    seconds: float
    counts: IngestCounts
    repairs: RepairCounts
    reconnects: dict[str, int]
    publish: PublishReport
    crosscheck: CheckCounts | None = None
