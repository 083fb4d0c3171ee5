"""The command line of `tickscan run --source sim` as a child process, for the restart and
crash tests and `bench/crash_hole.py`."""

from __future__ import annotations

import sys


def sim_run_command(symbols: int, rate: float) -> list[str]:
    """`tickscan run` on the simulated market, with this interpreter.

    Args:
        symbols: How many symbols the simulator trades.
        rate: Trades per second per symbol.

    Returns:
        The argv for `subprocess.Popen`.
    """
    return [
        sys.executable,
        "-m",
        "tickscan",
        "run",
        "--source",
        "sim",
        "--symbols",
        str(symbols),
        "--rate",
        str(rate),
    ]
