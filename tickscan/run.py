"""`tickscan run`: the whole platform in one process: broker, ClickHouse, flows, source, API.

The trade source is live Binance (spot and USDⓈ-M) by default. When the exchange cannot
be reached, `run` says so plainly and goes on with the synthetic market, whose trades
are labelled `exchange="sim"` everywhere, so simulated data never passes for an
exchange's. `replay:PATH` feeds capture or archive files instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# run_main runs a dataflow on one worker in this process (bytewax.run would import it
# from a module path instead); the process here composes several stages itself.
from bytewax.testing import run_main
from clickhouse_connect.driver.client import Client

from flows.candles import trade_store
from flows.candles.flow import FlowCounters, build_kafka_flow
from flows.candles.replay import expand_paths
from flows.candles.settings import CandleFlowSettings
from flows.ingest.trades import TradePublisher
from flows.sinks.symbols import SymbolWriter
from flows.sources.files import Rejected, UnreadableFile, read_trades
from flows.sources.simulator import SyntheticMarket, symbol_infos
from flows.sources.simulator.perps import Perpetuals
from runtime.broker import EmbeddedBroker
from runtime.clickhouse import connect
from runtime.kafka import ensure_configured_topics
from runtime.migrate import migrate
from runtime.process import release_memory
from runtime.supervisor import Supervisor
from schemas import topics
from schemas.trades import Market
from tickscan.banner import Endpoints
from tickscan.ingest import run_ingest
from tickscan.paper import run_paper
from tickscan.perps import run_perp_store
from tickscan.run_options import (
    RunError,
    RunOptions,
    binance_reachable,
    check_options,
    choose_source,
    replay_paths,
    source_kind,
)
from tickscan.serve import ApiServer, ApiServerError
from tickscan.settings import Settings
from tickscan.signals import run_signals
from tickscan.simulate import prepare_market, prepare_perpetuals, publish_market

logger = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0


def run(
    settings: Settings,
    options: RunOptions,
    stop: threading.Event,
    *,
    on_ready: Callable[[Endpoints], None] | None = None,
    flow_settings: CandleFlowSettings | None = None,
    reachable: Callable[[Market], str | None] | None = None,
) -> FlowCounters:
    """Run the embedded platform until `stop` is set.

    Starts (or connects to) Kafka, opens and migrates ClickHouse, then runs the candle
    flow, the trade store, the perpetuals store, the paper engine, the signals flow and
    the trade source in threads of this process, and serves the API beside them.

    The embedded broker keeps every record in memory (Tansu's memory storage honours no
    retention and cannot delete records), so when it holds `kafka.embedded_max_mb` the
    whole pipeline stops and starts again on a fresh broker. That is safe because every
    stage rebuilds its state from ClickHouse (the candle flow its open minutes and the
    trades after them, the signals flow its rings, the simulator its prices and ids, live
    ingest its trade ids with a REST repair of what it missed, the paper engine its
    accounts from their event log), exactly as after a restart of `tickscan run`.

    Args:
        settings: Process settings; `kafka.bootstrap` None starts the embedded broker.
        options: The synthetic market to run.
        stop: Set it (e.g. from a signal handler) to shut down cleanly.
        on_ready: Called once everything is up the first time, with where the data is.
        flow_settings: Candle flow rules instead of `settings.candles` (live: windows of
            quiet partitions close on wall time).
        reachable: Probe of the exchange per market (default: ask Binance's REST API).

    Returns:
        The candle flow's final counts.

    Raises:
        Exception: Whatever stopped a stage; the other stages are stopped first.
    """
    check_options(options)
    counters = FlowCounters()
    source: str | None = None
    # One client for every cycle: closing the last client of a chdb store shuts its engine
    # down, and each engine started again in this process kept memory its predecessor had
    # not handed back (tens of MB a rotation).
    client = connect(settings.clickhouse_dsn())
    try:
        migrate(client, settings.clickhouse.database)
        while True:
            started = time.monotonic()
            source, rotate = _run_cycle(
                settings,
                options,
                stop,
                counters,
                client,
                source=source,
                on_ready=on_ready,
                flow_settings=flow_settings,
                reachable=reachable,
            )
            if not rotate or stop.is_set():
                return counters
            on_ready = None  # the banner is printed once; a rotation says so in the log
            logger.info(
                "pipeline stopped after %.0f min on that broker; starting it on a fresh one",
                (time.monotonic() - started) / 60,
            )
    finally:
        client.close()


def _run_cycle(
    settings: Settings,
    options: RunOptions,
    stop: threading.Event,
    counters: FlowCounters,
    client: Client,
    *,
    source: str | None,
    on_ready: Callable[[Endpoints], None] | None,
    flow_settings: CandleFlowSettings | None,
    reachable: Callable[[Market], str | None] | None,
) -> tuple[str, bool]:
    """One life of the pipeline on one broker: start everything, wait for `stop`, a failed
    stage or the embedded broker's memory bound, stop everything.

    Returns:
        The source it ran (chosen on the first cycle), and whether the broker reached its
        bound, so another cycle should run on a fresh one.
    """
    started = time.monotonic()
    rotate = False
    # Whatever ends this block (stop, a failed stage, an error while starting), the stages
    # stop in reverse order and are joined before the broker (and, after the last cycle,
    # the store) close under them: a flow thread still inside its native code at
    # interpreter exit aborts the process.
    with Supervisor() as stages:
        bootstrap = settings.kafka.bootstrap
        broker: EmbeddedBroker | None = None
        if bootstrap is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            broker = stages.enter("broker", EmbeddedBroker(settings.data_dir))
            bootstrap = broker.bootstrap
        ensure_configured_topics(bootstrap, topics.ALL, settings.kafka)
        dsn = settings.clickhouse_dsn()
        database = settings.clickhouse.database
        # Both flows read md.trades.v1 from its beginning on this broker into this store.
        trades_in: dict[str, Any] = {
            "bootstrap": bootstrap,
            "clickhouse": lambda: client,
            "database": database,
            "start": "beginning",
            "stop": stages.stopping,
        }
        flow, _writer = build_kafka_flow(
            flow_settings or settings.candles,
            counters=counters,
            # The embedded broker starts empty (memory storage): ClickHouse is the record
            # of what the candle flow had done before this start.
            resume_from_store=settings.kafka.bootstrap is None,
            **trades_in,
        )
        # Every trade in ClickHouse within half a second: the durable record the candle flow
        # resumes its open windows from after a crash (the embedded broker's memory is gone).
        stored = trade_store.TradeStoreCounters()
        store_flow, _store_writer = trade_store.build_kafka_flow(
            # Trades not yet in ClickHouse are what a crash loses: keep that short.
            trade_store.TradeStoreSettings(clickhouse_flush_ms=500),
            counters=stored,
            **trades_in,
        )
        if source is None:
            source = choose_source(options, reachable or binance_reachable(options.rest_url))
        sim_market = None
        sim_perps = None
        if source == "sim":
            # Before any stage starts: the signals flow warms up from these candles.
            sim_market, _history = prepare_market(
                client, database, options.symbols, options.rate, options.seed, perpetuals=True
            )
            sim_perps, _perp_history = prepare_perpetuals(
                client, database, sim_market, funding_every_s=options.funding_every_s
            )
            SymbolWriter(lambda: client, database).write(
                symbol_infos(sim_market) + sim_perps.symbol_infos(sim_market.start_us // 1000)
            )
        # The topics were made for this broker: the feeds keep their count.
        kafka = {"bootstrap": bootstrap, "partitions": settings.kafka.topic_partitions()}
        live_settings = settings.model_copy(
            update={"kafka": settings.kafka.model_copy(update=kafka)}
        )
        feeds = _sources(source, options, live_settings, stages.stopping, sim_market, sim_perps)
        stages.thread("candle-flow", lambda: run_main(flow))
        stages.thread("trade-store", lambda: run_main(store_flow))
        # Marks, liquidations, open interest and funding of whichever source publishes them;
        # the funding state comes back from ClickHouse, like the candle flow's windows.
        stages.thread(
            "perp-store",
            lambda: run_perp_store(
                settings, bootstrap=bootstrap, client=client, start="beginning",
                stop=stages.stopping,
            ),
        )  # fmt: skip
        # Paper accounts come back from ClickHouse's event log; market data from now on.
        stages.thread(
            "paper",
            lambda: run_paper(
                settings, bootstrap=bootstrap, client=client, stop=stages.stopping, dsn=dsn
            ),
        )
        stages.thread(
            "signals-flow",
            lambda: run_signals(
                live_settings, bootstrap=bootstrap, start="beginning", stop=stages.stopping
            ),
        )
        for name, target in feeds:
            stages.thread(name, target)
        api_url = None
        if options.api:
            server = ApiServer(live_settings, source=source_kind(source))
            try:
                api_url = server.start()
            except ApiServerError as exc:
                raise RunError(f"{exc} (set TICKSCAN_API__PORT to use another port)") from exc
            stages.service("api", server, stop=server.stop)
        if on_ready is not None:
            on_ready(Endpoints(bootstrap, dsn, database, source, api_url))
        else:
            logger.info("pipeline running again on a fresh embedded broker at %s", bootstrap)
        last_status = time.monotonic()
        # Live ingest hands freed memory back itself; the other sources leave it to us. A
        # cycle's start (warm start columns, history) leaves the most behind: the first
        # release comes half a minute in.
        release = source != "binance"
        next_release = started + 30.0
        while not stages.stopping.wait(0.5) and not stop.is_set():
            if time.monotonic() - last_status < STATUS_EVERY_S:
                continue
            last_status = time.monotonic()
            if release and last_status >= next_release:
                next_release = last_status + settings.ingest.release_memory_every_s
                release_memory()
            logger.info(
                "candle flow: %d trades, %d candles, %d dead letters; duplicate trades "
                "dropped: %d by the candle flow, %d by the trade store%s",
                counters.trades,
                counters.candles,
                counters.dead_letters,
                counters.duplicates,
                stored.duplicates,
                _broker_memory(broker),
            )
            if _broker_full(broker, settings.kafka.embedded_max_mb, source):
                rotate = True
                break
    return source, rotate


def _broker_full(broker: EmbeddedBroker | None, max_mb: int, source: str) -> bool:
    """Whether the embedded broker holds its bound (and a fresh one may take over: a replay
    publishes its files once, so its run never rotates)."""
    rss = broker.rss_bytes() if broker is not None else None
    if rss is None or rss < max_mb * 1_000_000:
        return False
    if source.startswith("replay:"):
        return False
    logger.warning(
        "the embedded broker holds %.0f MB (TICKSCAN_KAFKA__EMBEDDED_MAX_MB=%d; its memory "
        "storage keeps every record): restarting the pipeline on a fresh broker, every stage "
        "resumes from ClickHouse; the board pauses for a few seconds",
        rss / 1e6,
        max_mb,
    )
    return True


def _broker_memory(broker: EmbeddedBroker | None) -> str:
    """`; embedded broker N MB` for the status line: it keeps every record (see its class)."""
    rss = broker.rss_bytes() if broker is not None else None
    return "" if rss is None else f"; embedded broker {rss / 1e6:,.0f} MB"


def _sources(
    source: str,
    options: RunOptions,
    settings: Settings,
    stop: threading.Event,
    sim_market: SyntheticMarket | None = None,
    sim_perps: Perpetuals | None = None,
) -> list[tuple[str, Callable[[], object]]]:
    """The threads that feed md.trades.v1 (and md.quotes.v1, and the simulated perpetuals'
    topics) for the chosen source."""
    bootstrap = settings.kafka.bootstrap
    assert bootstrap is not None
    if source == "binance":
        return [
            (
                f"binance-{market}",
                lambda market=market: run_ingest(  # type: ignore[misc]
                    settings,
                    market=market,
                    rest_url=options.rest_url,
                    ws_base=options.ws_base,
                    stop=stop,
                    crosscheck=options.crosscheck,
                ),
            )
            for market in options.markets
        ]
    if source == "sim":
        assert sim_market is not None, "prepare_market runs before the stages start"
        return [
            (
                "simulator",
                lambda: publish_market(
                    bootstrap,
                    sim_market,
                    duration=None,
                    topic=topics.TRADES,
                    realtime=True,
                    stop=stop,
                    quotes_topic=topics.QUOTES,
                    perps=sim_perps,
                    depth_topic=topics.DEPTH,
                    watch_topic=topics.DEPTH_WATCH,
                ),
            )
        ]
    if source.startswith("replay:"):
        paths = replay_paths(source)
        market: Market = options.markets[0]
        return [("replay", lambda: _publish_files(bootstrap, paths, market))]
    raise RunError(f"unknown source {source!r}: use binance, sim or replay:PATH")


def _publish_files(bootstrap: str, paths: list[Path], market: Market) -> None:
    """Publish every trade of capture or archive files once (rejects to dead letters)."""
    with TradePublisher(bootstrap) as publisher:
        for path in expand_paths(paths):
            try:
                for item in read_trades(path, market=market):
                    if isinstance(item, Rejected):
                        publisher.reject(item)
                    else:
                        publisher.publish(item)
            except UnreadableFile as exc:
                # One bad file must not end the run: say which and go on with the next.
                logger.error("replay source: %s", exc)
    logger.info("replay source: published %d trades from %d path(s)", publisher.sent, len(paths))
