"""`tickscan replay`: files -> Kafka -> candle flow and trade store -> ClickHouse.

A replay is a finite run. It publishes every trade of the files to the trades topic,
ends the run with a marker in every partition, then runs the candle flow and then the
trade store over exactly the offsets it wrote (so it needs neither the broker's high
watermark, which Tansu reports late, nor wall-clock time: the candles are the same at
any speed).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
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

from flows import trade_store
from flows.candles import CandleFlowSettings, FlowCounters, build_kafka_flow
from flows.ingest import TradePublisher
from flows.sources.files import ReadStats, Rejected, read_trades
from runtime.broker import EmbeddedBroker
from runtime.clickhouse import connect
from runtime.kafka import ensure_configured_topics
from runtime.migrate import migrate
from runtime.settings import Settings
from schemas import topics
from schemas.trades import Market, Trade

logger = logging.getLogger(__name__)


class ReplayError(Exception):
    """The replay could not run; the message says why and what to do."""


@dataclass
class ReplayReport:
    """What a replay read, published and wrote."""

    run_id: str
    files: list[Path]
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
    report: ReplayReport,
    progress: Progress,
) -> Iterator[Trade]:
    """Trades of every file in order; rejected lines go to the dead-letter topic."""
    task = progress.add_task("publishing trades", total=None)
    for path in files:
        stats = ReadStats()
        progress.update(task, description=f"publishing {path.name}")
        for item in read_trades(path, market=market, exchange=exchange, symbol=symbol, stats=stats):
            if isinstance(item, Rejected):
                publisher.reject(item)
                report.rejected += 1
                continue
            if report.first_trade_us is None or item.time_us < report.first_trade_us:
                report.first_trade_us = item.time_us
            if report.last_trade_us is None or item.time_us > report.last_trade_us:
                report.last_trade_us = item.time_us
            report.symbols.add(item.symbol)
            report.trades += 1
            if not report.trades & 0x3FFF:
                progress.update(task, completed=report.trades)
            yield item
        report.lines += stats.lines
        report.skipped += stats.skipped_non_trade
        report.file_trades[path] = stats.trades
    progress.update(task, completed=report.trades, total=report.trades)


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
    flow_settings = (flow_settings or CandleFlowSettings()).model_copy(
        update={"idle_close_ms": None}
    )
    run_id = f"replay-{uuid.uuid4()}"
    report = ReplayReport(run_id=run_id, files=files, clickhouse=dsn, database=database)
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
                _trades_of(files, market, exchange, symbol, publisher, report, progress)
            )
            publisher.mark_end(run_id)
            published = publisher.report()
        report.publish_s = time.perf_counter() - started
        bounds = published.bounds()

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
    """A human summary of a replay, for the terminal."""

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
    if report.rejected or report.dead_letters or report.store_dead_letters:
        lines.append(f"rejected input is in the Kafka topic {topics.DEADLETTER} ({report.kafka})")
    return "\n".join(lines)
