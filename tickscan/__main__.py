"""`python -m tickscan`: the same command line as the `tickscan` script."""

from tickscan.cli import app

app(prog_name="tickscan")
