"""What a replay and a backfill did: the reports they fill in and the command line prints.

A report is plain data, filled in as the run goes, so a run that stops on an error still
says how far it got.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flows.sources.files import Rejected, UnreadableFile
from flows.sources.market_guess import MarketEvidence
from schemas.trades import Market

__all__ = ["BackfillReport", "FileOutcome", "HistoryCounts", "ReplayReport"]


@dataclass
class FileOutcome:
    """What one input file gave, and what was wrong with it.

    Attributes:
        path: The file.
        lines: Lines read.
        trades: Trades published.
        rejected: Lines rejected (each a dead letter).
        skipped: Lines that are not trades, by kind.
        first_rejection: The first rejected line, to name in the message.
        error: Why the file could not be read to its end, if it could not.
        evidence: How its first trades are printed, to check `--market` against.
    """

    path: Path
    lines: int = 0
    trades: int = 0
    rejected: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    first_rejection: Rejected | None = None
    error: UnreadableFile | None = None
    evidence: MarketEvidence = field(default_factory=MarketEvidence)

    def problem(self) -> str | None:
        """Why the file was not replayed whole, in one line naming it; None when it was."""
        if self.error is not None:
            reason = self.error.detail
            if self.trades:
                reason += f"; the {self.trades:,} trades read before were replayed"
        elif self.rejected:
            first = self.first_rejection
            assert first is not None  # set with the first rejection
            count = f"all {self.rejected:,}" if not self.trades else f"{self.rejected:,}"
            reason = (
                f"{count} line(s) rejected, the first at {first.source}: "
                f"{first.reason} ({first.detail})"
            )
        elif not self.trades:
            kinds = ", ".join(f"{n:,} {kind}" for kind, n in self.skipped.most_common(3))
            reason = f"no trades in its {self.lines:,} line(s) ({kinds or 'none'})"
        else:
            return None
        return f"{self.path}: {reason}"

    def warning(self, market: Market) -> str | None:
        """A line naming the file when its trades contradict `market`; None when they agree."""
        why = self.evidence.contradiction(market)
        if why is None:
            return None
        return f"{self.path}: {why}, but --market {market} writes them as {market} trades"


@dataclass
class ReplayReport:
    """What a replay read, published and wrote."""

    run_id: str
    files: list[Path]
    market: Market = "spot"
    lines: int = 0
    trades: int = 0
    rejected: int = 0
    skipped: int = 0
    dead_letters: int = 0
    candles_1s: int = 0
    candles_1m: int = 0
    revisions: int = 0
    duplicates: int = 0
    """Trades the candle flow dropped because it had folded them already."""
    trades_stored: int = 0
    store_dead_letters: int = 0
    store_duplicates: int = 0
    """Trades the trade store skipped because it had written them already."""
    publish_s: float = 0.0
    candles_s: float = 0.0
    store_s: float = 0.0
    first_trade_us: int | None = None
    last_trade_us: int | None = None
    kafka: str = ""
    clickhouse: str = ""
    database: str = ""
    symbols: set[str] = field(default_factory=set)
    file_trades: dict[Path, int] = field(default_factory=dict)
    """Trades read from each file."""
    outcomes: list[FileOutcome] = field(default_factory=list)
    """Each file's outcome, in the order read."""
    kept: int = 0
    """Dead letters kept beyond the run (rejected lines and files, flow rejects)."""
    kept_file: Path | None = None
    """The JSON-lines file holding them; None when nothing was rejected."""

    @property
    def problems(self) -> list[str]:
        """One line per file that was not replayed whole, naming it and why."""
        return [p for p in (o.problem() for o in self.outcomes) if p is not None]

    @property
    def warnings(self) -> list[str]:
        """One line per file whose trades do not look like the `--market` given."""
        return [w for w in (o.warning(self.market) for o in self.outcomes) if w is not None]

    @property
    def failure(self) -> str | None:
        """Why the replay did not do all it was asked (the exit status says so); None if it did."""
        if not self.trades:
            return "nothing was replayed"
        parts = []
        if problems := len(self.problems):
            parts.append(f"{problems} of {len(self.outcomes)} file(s) had rejected input")
        if flow_rejects := self.dead_letters + self.store_dead_letters:
            parts.append(f"the flows rejected {flow_rejects:,} trade(s)")
        return "; ".join(parts) or None


@dataclass
class HistoryCounts:
    """What a backfill did for one kind of perpetual history (funding, open interest...).

    Attributes:
        chunks: Symbol-days of the range asked for.
        written: Chunks fetched, written and recorded.
        skipped: Chunks already recorded as done.
        open: Chunks reaching into the present: written but not recorded.
        clipped: Chunks (or parts) the exchange no longer keeps, left out.
        rows: Records written.
    """

    chunks: int = 0
    written: int = 0
    skipped: int = 0
    open: int = 0
    clipped: int = 0
    rows: int = 0


@dataclass
class BackfillReport:
    """What a backfill fetched, skipped and wrote.

    ``chunks*`` and ``candles`` count the klines; `history` counts each kind of perpetual
    history asked for (`data` names what was asked).
    """

    market: Market
    interval: str
    start: datetime
    end: datetime
    symbols: list[str]
    clickhouse: str = ""
    database: str = ""
    chunks: int = 0
    chunks_written: int = 0
    chunks_skipped: int = 0
    chunks_open: int = 0
    candles: int = 0
    requests: int = 0
    weight: int = 0
    rate_limited: int = 0
    throttled_s: float = 0.0
    max_used_weight: int = 0
    rest_s: float = 0.0
    archives: list[Path] = field(default_factory=list)
    archives_replayed: int = 0
    archives_skipped: int = 0
    archive_trades: int = 0
    replay: ReplayReport | None = None
    warnings: list[str] = field(default_factory=list)
    data: tuple[str, ...] = ("candles",)
    history: dict[str, HistoryCounts] = field(default_factory=dict)
