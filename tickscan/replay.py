"""`tickscan replay`: files -> Kafka -> candle flow and trade store -> ClickHouse, composed.

This opens what a replay runs on (the embedded broker unless one is given, the topics,
the migrated ClickHouse, the dead-letter keeper, the trades publisher, progress bars) and
hands them to `flows.candles.replay`, which does the replaying; then prints its summary.
Rejected lines, files and flow records are kept beyond the run in
`<data_dir>/dead_letters/<run_id>.jsonl` and ClickHouse `dead_letters`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack, closing
from pathlib import Path

from rich.console import Console

from flows.candles import trade_store
from flows.candles.replay import expand_paths, publish_files, run_flows
from flows.candles.reports import ReplayReport
from flows.candles.settings import CandleFlowSettings
from flows.ingest.trades import TradePublisher
from flows.sinks.dead_letters import TABLE as DEAD_LETTER_TABLE
from flows.sinks.dead_letters import DeadLetterKeeper
from runtime.broker import EmbeddedBroker
from runtime.clickhouse import connect
from runtime.kafka import ensure_configured_topics
from runtime.migrate import migrate
from schemas import topics
from schemas.trades import Market
from tickscan.progress import ProgressBars
from tickscan.settings import Settings

logger = logging.getLogger(__name__)


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
        progress = stack.enter_context(closing(ProgressBars(console)))

        started = time.perf_counter()
        with TradePublisher(bootstrap) as publisher:
            bounds = publish_files(
                report, publisher, keeper, progress, tell, exchange=exchange, symbol=symbol
            )
        report.publish_s = time.perf_counter() - started
        run_flows(
            report,
            bounds,
            bootstrap=bootstrap,
            client=client,
            keeper=keeper,
            progress=progress,
            flow_settings=flow_settings or settings.candles,
            store_settings=store_settings,
        )
    return report


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
