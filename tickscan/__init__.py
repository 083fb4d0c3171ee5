"""The tickscan command line: the one place that composes flows and the API into processes.

`cli` is the Typer app; `commands` parses each command's options (`options`: what they
share). `run` (the whole platform in one process), `replay`, `backfill`, `signals`,
`simulate`, `serve` and `users` compose each process from `flows`, `api` and `runtime`;
`progress` draws the progress bars of the finite runs.
"""
