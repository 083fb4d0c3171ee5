"""How a finite run (a replay, a backfill) reports its progress without a display of its own.

The run names its tasks and moves them on; whoever composed it decides how that shows
(bars on a terminal for the command line, a record in tests).
"""

from __future__ import annotations

from typing import Protocol


class Task(Protocol):
    """One thing a run is doing, e.g. the klines of one symbol or one flow over the run."""

    def advance(self, amount: int) -> None:
        """Count `amount` more units done."""

    def update(
        self,
        *,
        description: str | None = None,
        completed: int | None = None,
        total: int | None = None,
    ) -> None:
        """Change what is given and leave the rest (None changes nothing)."""


class Progress(Protocol):
    """Where a run's tasks are shown."""

    def task(self, description: str, total: int | None) -> Task:
        """Start showing a task.

        Args:
            description: What it is doing.
            total: Units it will have done at the end; None when not known yet.
        """
        ...
