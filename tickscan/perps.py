"""`tickscan perps`: the perpetuals store as a stage, following the four perpetuals topics.

md.marks.v1, md.liquidations.v1, md.open_interest.v1 and md.funding.v1 in; ClickHouse
``marks_1s``, ``liquidations``, ``open_interest`` and ``funding`` out (with the funding
rows the mark stream settles); rejects to md.deadletter.v1. Before the flow starts, the
``marks_1s`` TTL is set from ``TICKSCAN_PERPS__MARKS_TTL_DAYS`` when it differs.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from clickhouse_connect.driver.client import Client

from flows.perps.retention import apply_marks_ttl
from flows.perps.store import PerpStoreCounters, build_kafka_flow
from flows.recovery import run_flow
from flows.sources.kafka import StartAt
from runtime.supervisor import Supervisor
from tickscan.settings import PerpsSettings

logger = logging.getLogger(__name__)


def run_perp_store(
    settings: PerpsSettings,
    *,
    bootstrap: str,
    client: Client,
    stop: threading.Event,
    start: StartAt = "end",
    recovery_dir: Path | None = None,
    counters: PerpStoreCounters | None = None,
    status_every_s: float = 30.0,
) -> PerpStoreCounters:
    """Run the perpetuals store on one Bytewax worker of this process until `stop` is set.

    The ``marks_1s`` TTL is set first (`flows.perps.retention.apply_marks_ttl`); a status
    line says every `status_every_s` seconds what was read per topic; setting `stop` (or
    the flow failing) ends both.

    Args:
        settings: The database and the ``perps`` section.
        bootstrap: Kafka bootstrap servers (the topics exist already).
        client: ClickHouse client of a migrated database; the caller closes it.
        stop: Ends the flow when set.
        start: Each topic's first read position, "beginning" or "end" (recovery state,
            when there is some, says where instead).
        recovery_dir: Where Bytewax keeps its snapshots; None runs without.
        counters: Live counts to fill; None makes new ones.
        status_every_s: Seconds between status lines.

    Returns:
        The counters, final.
    """
    counters = counters if counters is not None else PerpStoreCounters()
    database = settings.clickhouse.database
    apply_marks_ttl(client, database, settings.perps.marks_ttl_days)
    with Supervisor(stop) as stages:
        flow, _writer = build_kafka_flow(
            settings.perps,
            bootstrap=bootstrap,
            clickhouse=lambda: client,
            database=database,
            start=start,
            counters=counters,
            stop=stages.stopping,
        )
        stages.thread("perps-status", lambda: _report(counters, stages.stopping, status_every_s))
        run_flow(flow, recovery_dir)
    return counters


def _report(counters: PerpStoreCounters, stopping: threading.Event, every_s: float) -> None:
    while not stopping.wait(every_s):
        logger.info("perpetuals store: %s", counters.summary())
