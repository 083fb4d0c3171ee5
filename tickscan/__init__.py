"""The tickscan command line: the one place that composes flows and the API into processes.

`cli` parses the commands; `run` (the whole platform in one process), `ingest`,
`replay`, `backfill`, `signals`, `simulate`, `serve` and `users` compose each process
from `flows`, `api` and `runtime`, opening the clients each part is handed; the stages
of a process run under one `runtime.supervisor.Supervisor`.
"""
