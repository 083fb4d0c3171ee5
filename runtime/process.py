"""Process-wide tuning for long-running stream processes, applied by entry points only."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

logger = logging.getLogger(__name__)

GC_GEN0_THRESHOLD = 200_000
"""Allocations between young-generation collections.

The candle flow allocates several short-lived objects per trade (decoded structs,
Decimals) and almost no reference cycles. At CPython's default of 700, a collection ran
every couple of hundred trades and cost ~15% of the flow's throughput (bench/candles.py:
268k -> 310k trades/s). Garbage is still collected: reference counting frees nearly
all of it at once, and the cyclic collector still runs, just less often.
"""

MALLOC_ARENAS = 2
"""glibc malloc arenas for the whole process.

glibc gives each new thread its own arena (up to 8 per core) and rarely hands an arena's
freed pages back to the system. A streaming process has many threads it does not own
(librdkafka's, chdb's query pools), each churning buffers in its own arena, so RSS creeps
up long after the live data stopped growing. Two arenas bound that, at no measurable cost
to our throughput (the hot loops run under the GIL on one thread anyway).
"""

_M_ARENA_MAX = -8  # glibc's mallopt parameter number, from <malloc.h>


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    # Only glibc has both; musl or another libc has neither and needs neither.
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


def tune_for_streaming() -> None:
    """Set the garbage collector and the allocator for a process that streams
    millions of small objects for days."""
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 50)
    libc = _libc()
    if libc is not None and not libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS):
        logger.debug("mallopt(M_ARENA_MAX) refused; arenas left at glibc's default")


def release_memory() -> int:
    """Collect cyclic garbage now and hand the allocator's free pages back to the system.

    With the raised collection thresholds, garbage in reference cycles (a client's
    per-insert contexts, aiohttp's per-connection objects) waits a long time for a full
    collection; and glibc keeps freed pages until told otherwise. A long-running process
    calls this every few minutes so its RSS follows its live data.

    Returns:
        The number of unreachable objects the collection found.
    """
    found = gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
    return found


def collect_ahead(share: float = 0.5) -> int | None:
    """Run now the collection that the thresholds would soon start on their own.

    A collection stops every thread for as long as it scans its generation: tens of ms
    for the young one at `GC_GEN0_THRESHOLD`, hundreds for a full one over a server's
    live objects. A process that knows when it is idle (the API between two seconds of
    ranks) calls this then, so the pause falls there and not in the middle of a fan-out.

    Args:
        share: A generation is collected once its count has reached this share of its
            threshold.

    Returns:
        The oldest generation collected (its younger ones with it), or None if none
        was due.
    """
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for generation in (2, 1, 0):
        if thresholds[generation] and counts[generation] >= share * thresholds[generation]:
            gc.collect(generation)
            return generation
    return None
