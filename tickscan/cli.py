"""The tickscan command line: the one place that composes flows (and the API) into a process."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from runtime.clickhouse import connect
from runtime.errors import RuntimeSetupError
from runtime.migrate import migrate as apply_migrations
from runtime.process import tune_for_streaming
from runtime.settings import Settings

log = logging.getLogger(__name__)

app = typer.Typer(
    name="tickscan",
    help="Real-time crypto market data: ingest, candles, storage.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
) -> None:
    """Configure logging for every command (the only place logging is configured)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    tune_for_streaming()


@app.command()
def migrate(
    clickhouse: Annotated[
        str | None,
        typer.Option(
            "--clickhouse",
            metavar="DSN",
            help="chdb://<dir> or http(s)://user:password@host:8123 "
            "[default: TICKSCAN_CLICKHOUSE__DSN, else chdb://<data_dir>/clickhouse]",
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            metavar="NAME",
            help="Database to create and migrate [default: TICKSCAN_CLICKHOUSE__DATABASE, "
            "else tickscan]",
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
            help="Kafka bootstrap servers [default: TICKSCAN_KAFKA__BOOTSTRAP, "
            "else an embedded broker for this run]",
        ),
    ] = None,
    clickhouse: Annotated[
        str | None,
        typer.Option(
            "--clickhouse",
            metavar="DSN",
            help="chdb://<dir> or http(s)://... [default: TICKSCAN_CLICKHOUSE__DSN, "
            "else chdb://<data_dir>/clickhouse]",
        ),
    ] = None,
) -> None:
    """Replay captures and Binance archive files into candles in ClickHouse.

    Reads `<receive ts> <json>` WebSocket captures (gz or plain) and data.binance.vision
    trades / aggTrades CSVs (zip or plain), publishes the trades to Kafka, runs the
    candle flow over exactly those trades and waits until every candle is written.
    Running it again over the same files leaves the same rows.
    """
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
    except (ReplayError, RuntimeSetupError) as exc:
        typer.echo(f"replay failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(summary(report))
