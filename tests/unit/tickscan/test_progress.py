"""Progress bars of finite runs: nothing drawn before the first task, each task's count after."""

from __future__ import annotations

import io
from contextlib import closing

from rich.console import Console

from tickscan.progress import ProgressBars


def console(out: io.StringIO) -> Console:
    return Console(file=out, width=100, force_terminal=False, color_system=None)


def test_a_run_that_starts_no_task_draws_nothing() -> None:
    out = io.StringIO()
    ProgressBars(console(out)).close()
    assert out.getvalue() == ""


def test_each_task_shows_its_description_and_count() -> None:
    out = io.StringIO()
    with closing(ProgressBars(console(out))) as bars:
        klines = bars.task("BTCUSDT 1m klines", total=90)
        klines.advance(60)
        klines.advance(30)
        trades = bars.task("publishing trades", total=None)
        trades.update(description="publishing a.zip", completed=7, total=7)
    drawn = out.getvalue()
    assert "BTCUSDT 1m klines" in drawn and "90/90" in drawn
    assert "publishing a.zip" in drawn and "7/7" in drawn
