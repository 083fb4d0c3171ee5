"""`tickscan run`: the embedded platform in one process (broker, ClickHouse, flows, source).

Until live exchange ingestion lands, the trade source is the synthetic market, and every
trade it makes is labelled `exchange="sim"`, so simulated data never passes for an
exchange's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from bytewax.dataflow import Dataflow

# run_main runs a dataflow on one worker in this process (bytewax.run would import it
# from a module path instead); the process here composes several stages itself.
from bytewax.testing import run_main

from flows.candles import CandleFlowSettings, FlowCounters, build_kafka_flow
from runtime.broker import EmbeddedBroker
from runtime.clickhouse import connect
from runtime.kafka import ensure_topics
from runtime.migrate import migrate
from runtime.settings import Settings
from schemas import topics
from tickscan.simulate import simulate

logger = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0


@dataclass(frozen=True)
class RunOptions:
    """What `tickscan run` starts.

    Attributes:
        symbols: Symbols of the synthetic market.
        rate: Its trades per second (wall clock = event time).
        seed: Its random seed.
    """

    symbols: int = 200
    rate: float = 2_000.0
    seed: int = 1


@dataclass(frozen=True)
class Endpoints:
    """Where a running tickscan keeps its data, for the banner and for tests."""

    kafka: str
    clickhouse: str
    database: str


def run(
    settings: Settings,
    options: RunOptions,
    stop: threading.Event,
    *,
    on_ready: Callable[[Endpoints], None] | None = None,
    flow_settings: CandleFlowSettings | None = None,
) -> FlowCounters:
    """Run the embedded platform until `stop` is set.

    Starts (or connects to) Kafka, opens and migrates ClickHouse, then runs the candle
    flow live and the synthetic market in threads of this process.

    Args:
        settings: Process settings; `kafka.bootstrap` None starts the embedded broker.
        options: The synthetic market to run.
        stop: Set it (e.g. from a signal handler) to shut down cleanly.
        on_ready: Called once everything is up, with where the data is.
        flow_settings: Candle flow rules (live: windows of quiet partitions close on
            wall time).

    Returns:
        The candle flow's final counts.

    Raises:
        Exception: Whatever stopped a stage; the other stages are stopped first.
    """
    counters = FlowCounters()
    failures: list[BaseException] = []
    with ExitStack() as stack:
        bootstrap = settings.kafka.bootstrap
        if bootstrap is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            bootstrap = stack.enter_context(EmbeddedBroker(settings.data_dir)).bootstrap
        ensure_topics(bootstrap, topics.ALL, settings.kafka.partitions)
        dsn = settings.clickhouse_dsn()
        client = connect(dsn)
        stack.callback(client.close)
        database = settings.clickhouse.database
        migrate(client, database)

        flow, _writer = build_kafka_flow(
            flow_settings or CandleFlowSettings(),
            bootstrap=bootstrap,
            clickhouse=lambda: client,
            database=database,
            start="beginning",
            counters=counters,
            stop=stop,
        )
        stages = [
            _stage("candle-flow", lambda: _run_flow(flow), stop, failures),
            _stage(
                "simulator",
                lambda: simulate(
                    bootstrap,
                    symbols=options.symbols,
                    rate=options.rate,
                    duration=None,
                    seed=options.seed,
                    topic=topics.TRADES,
                    realtime=True,
                    stop=stop,
                ),
                stop,
                failures,
            ),
        ]
        if on_ready is not None:
            on_ready(Endpoints(bootstrap, dsn, database))
        last_status = time.monotonic()
        while not stop.wait(0.5):
            if time.monotonic() - last_status >= STATUS_EVERY_S:
                last_status = time.monotonic()
                logger.info(
                    "candle flow: %d trades, %d candles, %d dead letters",
                    counters.trades,
                    counters.candles,
                    counters.dead_letters,
                )
        for stage in stages:
            stage.join()
    if failures:
        raise failures[0]
    return counters


def _run_flow(flow: Dataflow) -> None:
    run_main(flow)


def _stage(
    name: str, target: Callable[[], object], stop: threading.Event, failures: list[BaseException]
) -> threading.Thread:
    """Start a stage in a thread; if it fails, record why and stop every other stage."""

    def body() -> None:
        try:
            target()
        except BaseException as exc:
            logger.exception("%s failed; stopping", name)
            failures.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    return thread


def banner(endpoints: Endpoints, options: RunOptions) -> str:
    """What a person needs to find the data of a running tickscan."""
    return "\n".join(
        [
            "tickscan is running (Ctrl-C to stop)",
            f"  source      simulated market: {options.symbols} symbols, "
            f"{options.rate:,.0f} trades/s, labelled exchange 'sim'",
            f"  Kafka       {endpoints.kafka}  topics {', '.join(topics.ALL)}",
            f"  ClickHouse  {endpoints.clickhouse}  database {endpoints.database}",
            f"              SELECT * FROM {endpoints.database}.candles_1m FINAL "
            "ORDER BY open_time DESC LIMIT 10",
            "              (an embedded chdb store opens in one process at a time: query it",
            "              once tickscan stops, or point TICKSCAN_CLICKHOUSE__DSN at a server)",
            f"  live        candles stream on {topics.CANDLES}",
        ]
    )
