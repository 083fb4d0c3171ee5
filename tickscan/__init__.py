"""The tickscan command line: the one place that composes flows and the API into processes.

`cli` parses the commands; `run` (the whole platform in one process), `replay`,
`backfill`, `signals`, `simulate`, `serve` and `users` compose each process from
`flows`, `api` and `runtime`; `settings` combines each package's settings into one
object per process kind, read from the environment; `errors`: `TickscanError`, the base of
the errors raised here.
"""
