"""Finite work on the store: `migrate` it, `replay` files into it, `backfill` its history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runtime.clickhouse import connect
from runtime.migrate import migrate as apply_migrations
from runtime.settings import RuntimeSettings
from tickscan.commands.options import RestUrlOption, check_market, failing_as
from tickscan.settings import Settings


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
    settings = RuntimeSettings()
    dsn = clickhouse or settings.clickhouse_dsn()
    name = database or settings.clickhouse.database
    with failing_as("migrate"):
        client = connect(dsn)
        try:
            applied = apply_migrations(client, name)
        finally:
            client.close()
    if applied:
        for file_name in applied:
            typer.echo(f"applied {file_name}")
    else:
        typer.echo(f"{name} is up to date")


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
    from flows.candles.replay import ReplayError
    from flows.ingest.trades import IngestError
    from tickscan.replay import replay as run_replay
    from tickscan.replay import summary

    chosen = check_market(market)
    settings = Settings()
    with failing_as("replay", ReplayError, IngestError):
        report = run_replay(
            paths,
            settings=settings,
            market=chosen,
            exchange=exchange,
            symbol=symbol,
            bootstrap=kafka or settings.kafka.bootstrap,
            clickhouse_dsn=clickhouse,
        )
    typer.echo(summary(report))
    if failure := report.failure:
        typer.echo(f"replay incomplete: {failure}", err=True)
        raise typer.Exit(code=1)


def backfill(
    market: Annotated[str, typer.Option(help="spot or usdm.")],
    start: Annotated[
        str, typer.Option("--from", help="Start, ISO 8601 (UTC unless it has a zone).")
    ],
    end: Annotated[str, typer.Option("--to", help="End (exclusive), ISO 8601.")],
    symbols: Annotated[
        str,
        typer.Option(
            help="Symbols for REST klines and the --data history, comma-separated, "
            "e.g. BTCUSDT,ETHUSDT."
        ),
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
    rest_url: RestUrlOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Redo chunks and files already recorded as done.")
    ] = False,
    data: Annotated[
        str,
        typer.Option(
            "--data",
            metavar="KINDS",
            help="What to fetch, comma-separated: candles (REST klines and --archives), and "
            "on --market usdm funding (funding rate history -> funding), open-interest "
            "(5m open interest -> open_interest; Binance keeps only the last 30 days: an "
            "older part of the range is left out with a warning) and mark-klines (1m "
            "mark-price klines -> mark_klines_1m).",
        ),
    ] = "candles",
) -> None:
    """Backfill history: exchange klines over REST, archive files through the replay, and
    on USDⓈ-M the perpetuals' funding, open interest and mark-price klines (--data).

    REST klines are written as exchange-sourced candles (source 'exchange', version 0),
    so candles tickscan computes from trades win wherever both exist. Archive zips are
    checked against their .CHECKSUM files. Open-interest history exists for the last 30
    days only. Completed chunks are recorded, so an interrupted backfill resumes; a rerun
    writes identical rows.
    """
    from flows.candles.backfill import BackfillError
    from tickscan.backfill import backfill as run_backfill
    from tickscan.backfill import summary

    chosen = check_market(market)
    with failing_as("backfill", BackfillError):
        report = run_backfill(
            Settings(),
            market=chosen,
            symbols=symbols,
            start=start,
            end=end,
            interval=interval,
            archives=archives or (),
            rest_url=rest_url,
            force=force,
            data=data,
        )
    typer.echo(summary(report))
