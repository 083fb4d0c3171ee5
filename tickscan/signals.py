"""`tickscan signals`: the signals flow as a process, following md.candles.v1 and md.quotes.v1.

It writes md.ranks.v1 (each symbol's metric row, when it changed), md.signals.v1, and the
ClickHouse tables `signals` and `rank_snapshots`. Without a recovery snapshot it starts
from the candle history in ClickHouse (`flows.signals.warm_start`), and it reads md.tickers.v1
from its beginning (one ticker per symbol at a fresh install). Perpetuals data:
md.marks.v1 from its end (one a second per symbol; the last stored ones warm the state),
md.open_interest.v1, md.liquidations.v1 and md.funding.v1 from their beginning (what the
store has not written yet is there; repeats of stored records change nothing). Rule
parameters come from the environment with the other settings:
`TICKSCAN_SIGNALS__RULES__VOLUME_SPIKE_FACTOR=4`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from flows.recovery import run_flow
from flows.signals.flow import SignalCounters, build_kafka_flow
from flows.signals.rules import default_rules
from flows.signals.warm_start import WarmStart
from flows.sources.kafka import StartAt
from runtime.clickhouse import connect
from runtime.kafka import ensure_configured_topics
from runtime.migrate import migrate
from runtime.supervisor import Supervisor
from schemas import topics
from tickscan.settings import SignalsSettings

logger = logging.getLogger(__name__)


def run_signals(
    settings: SignalsSettings,
    *,
    bootstrap: str,
    clickhouse_dsn: str | None = None,
    start: StartAt = "end",
    recovery_dir: Path | None = None,
    stop: threading.Event | None = None,
    counters: SignalCounters | None = None,
    status_every_s: float = 30.0,
) -> SignalCounters:
    """Run the signals flow on one Bytewax worker of this process until `stop` is set.

    Creates the topics it needs when missing and migrates ClickHouse first. Quotes are
    read from the end of their topic (only the newest matter) unless recovery resumes
    them where they were; tickers from the beginning of theirs. A flow that starts
    without a recovery snapshot first reads each symbol's last hour of 1s and last day of
    1m candles from ClickHouse, so its rows continue where the last run's left off.

    Args:
        settings: Process settings (database, topic partitions, rule parameters).
        bootstrap: Kafka bootstrap servers.
        clickhouse_dsn: ClickHouse to write to; None uses the settings'.
        start: Where to start reading candles the first time: "beginning" or "end".
        recovery_dir: Keep Bytewax recovery state here, so a restart resumes where the
            last run committed.
        stop: Set it to stop the flow.
        counters: Filled with live counts (a fresh set when None).
        status_every_s: How often a status line is logged.

    Returns:
        The flow's final counts.
    """
    counters = counters if counters is not None else SignalCounters()
    ensure_configured_topics(bootstrap, topics.ALL, settings.kafka)
    client = connect(clickhouse_dsn or settings.clickhouse_dsn())
    try:
        migrate(client, settings.clickhouse.database)
        # The flow runs in this thread, its status line beside it; whichever ends first,
        # the flow (its stop, or a failure) or the reporter (a failure), ends both.
        with Supervisor(stop) as stages:
            flow, _writer = build_kafka_flow(
                settings.signals,
                registry=default_rules(),
                bootstrap=bootstrap,
                clickhouse=lambda: client,
                database=settings.clickhouse.database,
                start=start,
                quotes_start="end",
                tickers_start="beginning",
                perps_start={
                    topics.MARKS: "end",
                    topics.OPEN_INTEREST: "beginning",
                    topics.LIQUIDATIONS: "beginning",
                    topics.FUNDING: "beginning",
                },
                warm=WarmStart(lambda: client, settings.clickhouse.database),
                counters=counters,
                stop=stages.stopping,
            )
            stages.thread(
                "signals-status", lambda: _report(counters, stages.stopping, status_every_s)
            )
            run_flow(flow, recovery_dir)
    finally:
        client.close()
    return counters


def _report(counters: SignalCounters, stopping: threading.Event, every_s: float) -> None:
    while not stopping.wait(every_s):
        logger.info(
            "signals flow: %d candles, %d quotes, %d tickers, %d perpetuals records, "
            "%d rows (%d published), "
            "%d signals, %d dead letters, %d symbols warm-started",
            counters.candles,
            counters.quotes,
            counters.tickers,
            counters.perps,
            counters.rows,
            counters.ranks,
            counters.signals,
            counters.dead_letters,
            counters.warm_symbols,
        )
