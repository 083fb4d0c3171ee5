"""`tickscan paper`: the paper engine as a stage, following the market and the trading commands.

md.trades.v1, md.quotes.v1, md.depth.v1, md.marks.v1 (from their latest offsets) and
tr.orders.v1 (from its beginning: commands already applied are skipped by id) in;
tr.events.v1, tr.accounts.v1, md.depth_watch.v1 and ClickHouse ``paper_events``,
``paper_orders``, ``paper_fills`` and ``paper_ledger`` out. Every account is restored
from ``paper_events`` at start (`flows.trading.flow`).
"""

from __future__ import annotations

import logging
import threading
from contextlib import closing, nullcontext

from clickhouse_connect.driver.client import Client

from flows.sinks.journal import JOURNAL_FILE
from flows.trading.flow import PaperFlow
from flows.trading.process import PaperCounters
from runtime.clickhouse import connect
from runtime.kafka import consumer_config, producer_config
from runtime.supervisor import Supervisor
from tickscan.settings import PaperProcessSettings

logger = logging.getLogger(__name__)


STATUS_EVERY_S = 30.0
"""Seconds between status lines."""


def run_paper(
    settings: PaperProcessSettings,
    *,
    bootstrap: str,
    client: Client,
    stop: threading.Event,
    dsn: str | None = None,
) -> PaperCounters:
    """Run the paper engine in this thread until `stop` is set.

    A status line says every `STATUS_EVERY_S` seconds what it read and published;
    setting `stop` (or the engine failing) ends both.

    Args:
        settings: The database and the ``paper`` section.
        bootstrap: Kafka bootstrap servers (the topics exist already).
        client: ClickHouse client of a migrated database; the caller closes it.
        stop: Ends the engine when set.
        dsn: The store's DSN, to open a second client for the derived rows with (so their
            inserts never hold up the events'); None writes everything with `client`.

    Returns:
        The final counts.
    """
    counters = PaperCounters()
    rows_client = connect(dsn) if dsn is not None else client
    with closing(rows_client) if dsn is not None else nullcontext(), Supervisor(stop) as stages:
        flow = PaperFlow(
            settings.paper,
            # The broker answers a fetch at once when it has records, else after this
            # long: 5 ms rather than 100 took a record's hop from ~45 to ~10 ms (p50) on
            # the embedded broker.
            consumer=consumer_config(bootstrap, **{"fetch.wait.max.ms": 5}),
            # Events and views go out at once: the trader is waiting for them.
            producer=producer_config(bootstrap, **{"linger.ms": 1}),
            clickhouse=lambda: client,
            rows_clickhouse=lambda: rows_client,
            database=settings.clickhouse.database,
            stop=stages.stopping,
            counters=counters,
            journal=settings.data_dir / JOURNAL_FILE,
        )
        stages.thread("paper-status", lambda: _report(counters, stages.stopping))
        flow.run()
    return counters


def _report(counters: PaperCounters, stopping: threading.Event) -> None:
    while not stopping.wait(STATUS_EVERY_S):
        logger.info("paper engine: %s", counters.summary())
