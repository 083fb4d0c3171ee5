"""Progress bars on the terminal for the finite runs (replay, backfill): rich's, one per task."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["ProgressBars"]


class ProgressBars:
    """A `flows.candles.progress.Progress` drawn as rich progress bars on a console.

    The bars appear with the first task and stay on screen when closed, so a run that
    fails before it starts anything draws nothing. Use it as
    ``with closing(ProgressBars(console)) as progress: ...``.

    Args:
        console: Where the bars are drawn (a quiet one in tests).
    """

    def __init__(self, console: Console) -> None:
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._shown = False

    def task(self, description: str, total: int | None) -> _Bar:
        """Show a new bar; `total` None draws it as work of unknown length."""
        if not self._shown:
            self._bars.start()
            self._shown = True
        return _Bar(self._bars, self._bars.add_task(description, total=total))

    def close(self) -> None:
        """Stop redrawing the bars (they stay as last drawn)."""
        if self._shown:
            self._bars.stop()


class _Bar:
    """One task's bar."""

    def __init__(self, bars: Progress, task: TaskID) -> None:
        self._bars = bars
        self._task = task

    def advance(self, amount: int) -> None:
        self._bars.advance(self._task, amount)

    def update(self, **changes: Any) -> None:
        self._bars.update(self._task, **changes)
