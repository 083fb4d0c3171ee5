"""The base of every exception the command line's processes raise."""

from __future__ import annotations


class TickscanError(Exception):
    """Base of every error the `tickscan` package raises: a process that cannot start or
    finish (run, replay, backfill, the API server)."""
