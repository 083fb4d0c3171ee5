"""The commands of `tickscan`, registered on its one Typer app in `tickscan.cli`.

- `options`: what the commands share: options, checks of their values, how a command
  fails, and the stop on SIGINT/SIGTERM.
- `data`: finite work on the store: `migrate`, `replay`, `backfill`.
- `processes`: long-running processes: `run`, `ingest`, `candles`, `api`, `signals`, `perps`,
  `simulate`.
"""
