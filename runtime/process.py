"""Process-wide tuning for long-running stream processes, applied by entry points only."""

from __future__ import annotations

import gc

GC_GEN0_THRESHOLD = 200_000
"""Allocations between young-generation collections.

The candle flow allocates several short-lived objects per trade (decoded structs,
Decimals) and almost no reference cycles. At CPython's default of 700, a collection ran
every couple of hundred trades and cost ~15% of the flow's throughput (bench/candles.py:
268k -> 310k trades/s). Garbage is still collected: reference counting frees nearly
all of it at once, and the cyclic collector still runs, just less often.
"""


def tune_for_streaming() -> None:
    """Set the garbage collector for a process that streams millions of small objects."""
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 50)
