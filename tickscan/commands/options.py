"""What the commands share: options, checks of their values, how they fail and stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, cast

import typer

from flows.sources.kafka import StartAt
from runtime.errors import RuntimeSetupError
from runtime.settings import RuntimeSettings
from schemas.trades import Market

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
RestUrlOption = Annotated[
    str | None, typer.Option(help="Binance REST base URL (default: Binance's).")
]
WsBaseOption = Annotated[
    str | None, typer.Option(help="Binance WebSocket base URL (default: Binance's).")
]


def usage_error(message: str) -> typer.Exit:
    """Say what is wrong with the command line; the exit (status 2) to raise."""
    typer.echo(message, err=True)
    return typer.Exit(code=2)


def check_market(market: str) -> Market:
    """`--market` as a market, or exit 2 naming the two there are."""
    if market not in ("spot", "usdm"):
        raise usage_error(f"--market must be spot or usdm, not {market!r}")
    return cast(Market, market)


def check_start(start: str) -> StartAt:
    """`--start` as where a flow starts reading, or exit 2."""
    if start not in ("beginning", "end"):
        raise usage_error(f"--start must be beginning or end, not {start!r}")
    return cast(StartAt, start)


def require_kafka(command: str, kafka: str | None, settings: RuntimeSettings) -> str:
    """The Kafka a command needs: `--kafka`, else the settings', else exit 2."""
    bootstrap = kafka or settings.kafka.bootstrap
    if bootstrap is None:
        raise usage_error(f"{command} needs a Kafka cluster: --kafka or TICKSCAN_KAFKA__BOOTSTRAP")
    return bootstrap


@contextmanager
def failing_as(command: str, *errors: type[Exception]) -> Iterator[None]:
    """Turn a set-up failure (or one of `errors`) into one line and exit status 1."""
    caught: tuple[type[Exception], ...] = (RuntimeSetupError, *errors)
    try:
        yield
    except caught as exc:
        typer.echo(f"{command} failed: {exc}", err=True)
        raise typer.Exit(code=1) from exc


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so long-running commands shut down cleanly."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
