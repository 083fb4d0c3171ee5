"""`tickscan replay`: files -> Kafka -> candle flow and trade store -> ClickHouse.

A replay is a finite run. It publishes every trade of the files to the trades topic,
ends the run with a marker in every partition, then runs the candle flow and then the
trade store over exactly the offsets it wrote (so it needs neither the broker's high
watermark, which Tansu reports late, nor wall-clock time: the candles are the same at
any speed).

A bad file does not stop the others: it is named with its reason (`FileOutcome`), and
every rejected line or file, with the records the flows reject, is kept beyond the run
in `<data_dir>/dead_letters/<run_id>.jsonl` and ClickHouse `dead_letters`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bytewax.dataflow import Dataflow

# run_main executes a dataflow on one worker in this process; bytewax.run's CLI would
# re-import the flow from a module path, which a replay built from arguments cannot be.
from bytewax.testing import run_main
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows.candles import trade_store
from flows.candles.flow import FlowCounters, build_kafka_flow
from flows.candles.settings import CandleFlowSettings
from flows.dead_letters import dead_letter_offsets, read_dead_letters
from flows.ingest.trades import STAGE as INGEST_STAGE
from flows.ingest.trades import TradePublisher, dead_letter
from flows.sinks.dead_letters import TABLE as DEAD_LETTER_TABLE
from flows.sinks.dead_letters import DeadLetterKeeper
from flows.sources.files import ReadStats, Rejected, UnreadableFile, read_trades
from flows.sources.kafka import RunBounds
from flows.sources.market_guess import SAMPLE, MarketEvidence
from runtime.broker import EmbeddedBroker
from runtime.clickhouse import connect
from runtime.kafka import ensure_configured_topics
from runtime.migrate import migrate
from schemas import topics
from schemas.deadletter import DeadLetter
from schemas.trades import Market, Trade
from tickscan.errors import TickscanError
from tickscan.settings import Settings

logger = logging.getLogger(__name__)


class ReplayError(TickscanError):
    """The replay could not run; the message says why and what to do."""


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


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Files to replay: each path as given, or the files under a directory, sorted.

    Raises:
        ReplayError: A path does not exist, or nothing is left to read.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            )
        elif path.is_file():
            files.append(path)
        else:
            raise ReplayError(f"{path}: no such file or directory")
    if not files:
        raise ReplayError("no files to replay")
    return files


def _trades_of(
    files: Sequence[Path],
    market: Market,
    exchange: str,
    symbol: str | None,
    publisher: TradePublisher,
    keeper: DeadLetterKeeper,
    report: ReplayReport,
    progress: Progress,
    tell: Callable[[str], None],
) -> Iterator[Trade]:
    """Trades of every file in order; a bad file is told and the next one read.

    Rejected lines go to the dead-letter topic and to `keeper`, and so does a file that
    cannot be read to its end (its trades before the fault are kept).
    """
    task = progress.add_task("publishing trades", total=None)
    for path in files:
        stats = ReadStats()
        outcome = FileOutcome(path)
        report.outcomes.append(outcome)
        progress.update(task, description=f"publishing {path.name}")
        to_sample = SAMPLE  # a local count: this loop runs once per trade
        try:
            for item in read_trades(
                path, market=market, exchange=exchange, symbol=symbol, stats=stats
            ):
                if isinstance(item, Rejected):
                    publisher.reject(item)
                    keeper.add(dead_letter(item, at_ms=time.time_ns() // 1_000_000))
                    if outcome.first_rejection is None:
                        outcome.first_rejection = item
                    report.rejected += 1
                    continue
                if report.first_trade_us is None or item.time_us < report.first_trade_us:
                    report.first_trade_us = item.time_us
                if report.last_trade_us is None or item.time_us > report.last_trade_us:
                    report.last_trade_us = item.time_us
                report.symbols.add(item.symbol)
                report.trades += 1
                if to_sample:
                    outcome.evidence.add(item)
                    to_sample -= 1
                if not report.trades & 0x3FFF:
                    progress.update(task, completed=report.trades)
                yield item
        except UnreadableFile as exc:
            outcome.error = exc
            keeper.add(_file_dead_letter(exc))
        outcome.lines, outcome.trades, outcome.rejected = stats.lines, stats.trades, stats.rejected
        outcome.skipped = stats.skipped
        report.lines += stats.lines
        report.skipped += stats.skipped_non_trade
        report.file_trades[path] = stats.trades
        for line in filter(None, (outcome.problem(), outcome.warning(market))):
            tell(line)
    progress.update(task, completed=report.trades, total=report.trades)


def _file_dead_letter(error: UnreadableFile) -> DeadLetter:
    """The dead letter of a whole file that could not be read (to its end)."""
    return DeadLetter(
        stage=INGEST_STAGE,
        reason=error.reason,
        detail=f"{error.detail} (at {error.path})",
        source_topic=None,
        partition=None,
        offset=None,
        key=None,
        value="",
        at_ms=time.time_ns() // 1_000_000,
    )


def _keep_flow_dead_letters(
    bootstrap: str,
    since: dict[int, int],
    bounds: RunBounds,
    want: int,
    keeper: DeadLetterKeeper,
) -> None:
    """Keep the dead letters the flows wrote about this run's records.

    They are on the dead-letter topic after `since`; a record of this run is one of the
    trades topic within `bounds`, which tells them from anything another process wrote.
    """

    def of_this_run(letter: DeadLetter) -> bool:
        partition, offset = letter.partition, letter.offset
        return (
            letter.stage != INGEST_STAGE
            and letter.source_topic == topics.TRADES
            and partition is not None
            and offset is not None
            and bounds.start.get(partition, 0) <= offset <= bounds.end.get(partition, -1)
        )

    found = read_dead_letters(bootstrap, topics.DEADLETTER, since, want=want, keep=of_this_run)
    if len(found) < want:
        logger.warning(
            "found %d of the %d dead letters the flows reported on %s",
            len(found),
            want,
            topics.DEADLETTER,
        )
    for letter in found:
        keeper.add(letter)


def replay(
    paths: Sequence[Path],
    *,
    settings: Settings,
    market: Market,
    exchange: str = "binance",
    symbol: str | None = None,
    bootstrap: str | None = None,
    clickhouse_dsn: str | None = None,
    console: Console | None = None,
    flow_settings: CandleFlowSettings | None = None,
    store_settings: trade_store.TradeStoreSettings | None = None,
) -> ReplayReport:
    """Replay files into Kafka and ClickHouse and wait until every candle and trade is written.

    Args:
        paths: Capture or archive files, or directories of them.
        settings: Process settings (data directory, topic partitions, database).
        market: `spot` or `usdm` (the files do not say).
        exchange: Exchange name stamped on the trades.
        symbol: Overrides the symbol the files name.
        bootstrap: Kafka to use; None starts the embedded broker for this run.
        clickhouse_dsn: ClickHouse to write to; None uses the settings' (embedded chdb).
        console: Where progress goes (a quiet one in tests).
        flow_settings: Candle flow rules; replays never close windows on wall time.
        store_settings: Trade store batching.

    Returns:
        What was read, published and written.

    Raises:
        ReplayError: Bad paths, or a flow did not consume the whole run.
    """
    files = expand_paths(paths)
    console = console or Console(stderr=True)
    dsn = clickhouse_dsn or settings.clickhouse_dsn()
    database = settings.clickhouse.database
    flow_settings = (flow_settings or settings.candles).model_copy(update={"idle_close_ms": None})
    run_id = f"replay-{uuid.uuid4()}"
    report = ReplayReport(
        run_id=run_id, files=files, market=market, clickhouse=dsn, database=database
    )

    def tell(line: str) -> None:
        # One line per bad file, never wrapped nor read as markup (paths may hold "[").
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    with ExitStack() as stack:
        if bootstrap is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            broker = stack.enter_context(EmbeddedBroker(settings.data_dir))
            bootstrap = broker.bootstrap
        report.kafka = bootstrap
        ensure_configured_topics(bootstrap, topics.ALL, settings.kafka)
        client = connect(dsn)
        stack.callback(client.close)
        migrate(client, database)
        keeper = stack.enter_context(
            DeadLetterKeeper(
                settings.data_dir.resolve() / "dead_letters" / f"{run_id}.jsonl",
                client,
                database,
                run_id,
            )
        )
        progress = stack.enter_context(
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
        )

        started = time.perf_counter()
        with TradePublisher(bootstrap) as publisher:
            publisher.publish_many(
                _trades_of(
                    files, market, exchange, symbol, publisher, keeper, report, progress, tell
                )
            )
            publisher.mark_end(run_id)
            published = publisher.report()
        report.publish_s = time.perf_counter() - started
        bounds = published.bounds()
        dead_letters_since = dead_letter_offsets(bootstrap, topics.DEADLETTER)

        counters = FlowCounters()
        flow, writer = build_kafka_flow(
            flow_settings,
            bootstrap=bootstrap,
            clickhouse=lambda: client,
            database=database,
            start=bounds,
            counters=counters,
        )
        report.candles_s = _run_with_progress(
            flow, "building candles", lambda: counters.trades, report.trades, progress
        )
        report.candles_1s = writer.written["1s"]
        report.candles_1m = writer.written["1m"]
        report.dead_letters = counters.dead_letters
        report.revisions = sum(stats.revisions for stats in counters.engines)
        report.duplicates = counters.duplicates

        stored = trade_store.TradeStoreCounters()
        store_flow, store_writer = trade_store.build_kafka_flow(
            store_settings or trade_store.TradeStoreSettings(),
            bootstrap=bootstrap,
            clickhouse=lambda: client,
            database=database,
            start=bounds,
            counters=stored,
        )
        report.store_s = _run_with_progress(
            store_flow, "storing trades", lambda: stored.trades, report.trades, progress
        )
        report.trades_stored = store_writer.written[trade_store.TABLE]
        report.store_dead_letters = stored.dead_letters
        report.store_duplicates = stored.duplicates
        if flow_rejects := report.dead_letters + report.store_dead_letters:
            _keep_flow_dead_letters(bootstrap, dead_letters_since, bounds, flow_rejects, keeper)
        keeper.flush()
        report.kept = keeper.kept
        report.kept_file = keeper.path if keeper.kept else None
    return report


def _run_with_progress(
    flow: Dataflow, description: str, done: Callable[[], int], total: int, progress: Progress
) -> float:
    """Run a dataflow over the whole run on this process's one worker.

    The progress bar follows `done()`, the trades the flow has read.

    Returns:
        The seconds the flow took.

    Raises:
        ReplayError: The flow read other than `total` trades.
    """
    failure: list[BaseException] = []

    def target() -> None:
        try:
            run_main(flow)
        except BaseException as exc:  # re-raised in the calling thread below
            failure.append(exc)

    task = progress.add_task(description, total=total)
    started = time.perf_counter()
    worker = threading.Thread(target=target, name=flow.flow_id, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
        progress.update(task, completed=done())
    progress.update(task, completed=done())
    elapsed = time.perf_counter() - started
    if failure:
        raise failure[0]
    if done() != total:
        raise ReplayError(f"the {flow.flow_id} flow read {done()} trades of the {total} published")
    return elapsed


def summary(report: ReplayReport) -> str:
    """A human summary of a replay, for the terminal: what it did, then what went wrong."""

    def when(us: int | None) -> str:
        if us is None:
            return "-"
        return (
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(us / 1e6)) + f".{us // 1000 % 1000:03d}"
        )

    rate = report.trades / report.candles_s if report.candles_s else 0.0
    store_rate = report.trades / report.store_s if report.store_s else 0.0
    lines = [
        f"replayed {len(report.files)} file(s), {report.lines:,} lines: "
        f"{report.trades:,} trades of {len(report.symbols)} symbol(s), "
        f"{report.skipped:,} non-trade lines skipped, {report.rejected:,} rejected",
        f"trade time {when(report.first_trade_us)} .. {when(report.last_trade_us)} UTC",
        f"candles written: {report.candles_1s:,} x 1s, {report.candles_1m:,} x 1m "
        f"({report.revisions:,} revisions), {report.dead_letters:,} dead letters from the flow",
        f"trades stored: {report.trades_stored:,}, "
        f"{report.store_dead_letters:,} dead letters from the trade store",
        f"duplicate trades dropped (the same trade delivered again): {report.duplicates:,} "
        f"by the candle flow, {report.store_duplicates:,} by the trade store",
        f"publish {report.publish_s:.2f} s, "
        f"candles {report.candles_s:.2f} s ({rate:,.0f} trades/s), "
        f"trade store {report.store_s:.2f} s ({store_rate:,.0f} trades/s)",
        f"ClickHouse {report.clickhouse} database {report.database}: "
        f"SELECT * FROM {report.database}.candles_1m FINAL",
    ]
    if problems := report.problems:
        lines.append(f"rejected input in {len(problems)} of {len(report.outcomes)} file(s):")
        lines.extend(f"  {problem}" for problem in problems)
    if warnings := report.warnings:
        lines.append(f"written as {report.market} though they may not be:")
        lines.extend(f"  {warning}" for warning in warnings)
    if report.kept_file is not None:
        table = f"{report.database}.{DEAD_LETTER_TABLE}"
        lines.append(
            f"{report.kept:,} dead letter(s) kept in {report.kept_file} and in ClickHouse "
            f"{table}: SELECT * FROM {table} WHERE run_id = '{report.run_id}'"
        )
    return "\n".join(lines)
