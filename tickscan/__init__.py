"""The tickscan command line: the one place that composes flows and the API into processes.

`cli` is the Typer app; `commands` parses each command's options (`options`: what they
share). `run` (the whole platform in one process), `ingest`, `replay`, `backfill`,
`signals`, `simulate`, `serve` and `users` compose each process from `flows`, `api` and
`runtime`, opening the clients each part is handed; the stages of a process run under one
`runtime.supervisor.Supervisor`; `run_options` checks what `run` is asked for and picks
its source, `banner` says where a running platform's data is. `settings` combines each
package's settings into one object per process kind, read from the environment;
`progress` draws the progress bars of the finite runs; `errors`: `TickscanError`, the base
of the errors raised here.
"""
