"""Replaying files: their trades to Kafka, then the candle flow and trade store over that run.

A replay is a finite run. It publishes every trade of the files to the trades topic,
ends the run with a marker in every partition (`publish_files`), then runs the candle
flow and then the trade store over exactly the offsets it wrote (`run_flows`), so it
needs neither the broker's high watermark, which Tansu reports late, nor wall-clock time:
the candles are the same at any speed.

A bad file does not stop the others: it is named with its reason (`FileOutcome`), and
every rejected line or file, with the records the flows reject, is kept beyond the run
by the `DeadLetterKeeper` it is given.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypedDict

from bytewax.dataflow import Dataflow

# run_main executes a dataflow on one worker in this process; bytewax.run's CLI would
# re-import the flow from a module path, which a replay built from arguments cannot be.
from bytewax.testing import run_main
from clickhouse_connect.driver.client import Client

from flows.candles import trade_store
from flows.candles.flow import FlowCounters, build_kafka_flow
from flows.candles.progress import Progress
from flows.candles.reports import FileOutcome, ReplayReport
from flows.candles.settings import CandleFlowSettings
from flows.dead_letters import dead_letter_offsets, read_dead_letters
from flows.errors import FlowError
from flows.ingest.trades import STAGE as INGEST_STAGE
from flows.ingest.trades import TradePublisher, dead_letter
from flows.sinks.dead_letters import DeadLetterKeeper
from flows.sources.files import ReadStats, Rejected, UnreadableFile, read_trades
from flows.sources.kafka import RunBounds
from flows.sources.market_guess import SAMPLE
from schemas import topics
from schemas.deadletter import DeadLetter
from schemas.trades import Trade

logger = logging.getLogger(__name__)

__all__ = ["ReplayError", "expand_paths", "publish_files", "run_flows"]


class ReplayError(FlowError):
    """The replay could not run; the message says why and what to do."""


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


def publish_files(
    report: ReplayReport,
    publisher: TradePublisher,
    keeper: DeadLetterKeeper,
    progress: Progress,
    tell: Callable[[str], None],
    *,
    exchange: str = "binance",
    symbol: str | None = None,
) -> RunBounds:
    """Publish the trades of the report's files as one run, ended by its markers.

    Args:
        report: The replay's report: its run id, files and market; counts what was read.
        publisher: The trades topic's publisher; it rejects lines to the dead-letter topic.
        keeper: Keeps every rejected line and unreadable file beyond the run.
        progress: Shows the trades published.
        tell: Told one line per file not read whole or not looking like the market.
        exchange: Exchange name stamped on the trades.
        symbol: Overrides the symbol the files name.

    Returns:
        The offsets the run's trades occupy in each partition of the trades topic.

    Raises:
        IngestError: A trade or marker was not delivered.
    """
    publisher.publish_many(_trades_of(report, exchange, symbol, publisher, keeper, progress, tell))
    publisher.mark_end(report.run_id)
    return publisher.report().bounds()


def _trades_of(
    report: ReplayReport,
    exchange: str,
    symbol: str | None,
    publisher: TradePublisher,
    keeper: DeadLetterKeeper,
    progress: Progress,
    tell: Callable[[str], None],
) -> Iterator[Trade]:
    """Trades of every file in order; a bad file is told and the next one read.

    Rejected lines go to the dead-letter topic and to `keeper`, and so does a file that
    cannot be read to its end (its trades before the fault are kept).
    """
    market = report.market
    task = progress.task("publishing trades", total=None)
    for path in report.files:
        stats = ReadStats()
        outcome = FileOutcome(path)
        report.outcomes.append(outcome)
        task.update(description=f"publishing {path.name}")
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
                    task.update(completed=report.trades)
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
    task.update(completed=report.trades, total=report.trades)


def _file_dead_letter(error: UnreadableFile) -> DeadLetter:
    """The dead letter of a whole file that could not be read (to its end): no line of it."""
    whole_file = Rejected(str(error.path), b"", error.reason, error.detail)
    return dead_letter(whole_file, at_ms=time.time_ns() // 1_000_000)


class _RunWiring(TypedDict):
    """What both flows of a replay read from and write to."""

    bootstrap: str
    clickhouse: Callable[[], Client]
    database: str
    start: RunBounds


def run_flows(
    report: ReplayReport,
    bounds: RunBounds,
    *,
    bootstrap: str,
    client: Client,
    keeper: DeadLetterKeeper,
    progress: Progress,
    flow_settings: CandleFlowSettings | None = None,
    store_settings: trade_store.TradeStoreSettings | None = None,
) -> None:
    """Run the candle flow, then the trade store, over the run's offsets until both are done.

    Args:
        report: The replay's report (its database is written to); counts what was written.
        bounds: The offsets of the run (`publish_files`).
        bootstrap: The Kafka holding the run.
        client: The ClickHouse written to.
        keeper: Keeps the records the flows reject, and is flushed.
        progress: Shows the trades each flow has read.
        flow_settings: Candle flow rules; replays never close windows on wall time.
        store_settings: Trade store batching.

    Raises:
        ReplayError: A flow did not read the whole run.
    """
    dead_letters_since = dead_letter_offsets(bootstrap, topics.DEADLETTER)
    wiring = _RunWiring(
        bootstrap=bootstrap, clickhouse=lambda: client, database=report.database, start=bounds
    )
    candle_settings = (flow_settings or CandleFlowSettings()).model_copy(
        update={"idle_close_ms": None}
    )

    counters = FlowCounters()
    flow, writer = build_kafka_flow(candle_settings, counters=counters, **wiring)
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
        store_settings or trade_store.TradeStoreSettings(), counters=stored, **wiring
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


def _run_with_progress(
    flow: Dataflow, description: str, done: Callable[[], int], total: int, progress: Progress
) -> float:
    """Run a dataflow over the whole run on this process's one worker.

    The progress task follows `done()`, the trades the flow has read.

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

    task = progress.task(description, total=total)
    started = time.perf_counter()
    worker = threading.Thread(target=target, name=flow.flow_id, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
        task.update(completed=done())
    task.update(completed=done())
    elapsed = time.perf_counter() - started
    if failure:
        raise failure[0]
    if done() != total:
        raise ReplayError(f"the {flow.flow_id} flow read {done()} trades of the {total} published")
    return elapsed
