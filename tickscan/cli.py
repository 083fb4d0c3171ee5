"""The tickscan command line: the one place that composes flows (and the API) into a process.

This module is the Typer app and its logging set-up; the commands are in
`tickscan.commands` (`data`: migrate, replay, backfill; `processes`: run, ingest,
candles, api, signals, perps, paper, simulate) and `tickscan.users`.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from runtime.process import tune_for_streaming
from tickscan.commands import data, processes
from tickscan.users import app as users_app

app = typer.Typer(
    name="tickscan",
    help="Real-time crypto market data: ingest, candles, storage.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(users_app)

# In the order `tickscan --help` lists them.
app.command("migrate")(data.migrate)
app.command("replay")(data.replay)
app.command("run")(processes.run)
app.command("ingest")(processes.ingest)
app.command("candles")(processes.candles)
app.command("api")(processes.api)
app.command("signals")(processes.signals)
app.command("perps")(processes.perps)
app.command("paper")(processes.paper)
app.command("simulate")(processes.simulate)
app.command("backfill")(data.backfill)


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
