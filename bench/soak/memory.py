"""Where the soak's memory is: RSS of a process, the machine's free memory, chdb's heap, gc."""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import os
import tracemalloc
from dataclasses import dataclass

from runtime.clickhouse import connect
from tickscan.settings import Settings

logger = logging.getLogger("soak")

MB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def mem_available_mb() -> float:
    """The machine's available memory (MemAvailable) in MB."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident set size of a process in MB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / MB
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Probe:
    """Where memory is, at minute 5 and at the end, to tell what grows."""

    minute: int
    rss: float
    types: collections.Counter[str]  # gc-tracked objects by type
    chdb_tracked_mb: float | None  # ClickHouse's MemoryTracking: the embedded engine's heap
    dq_parts: int | None  # active parts of data_quality (one per insert until merged)
    malloc: tracemalloc.Snapshot | None = None
    traced_mb: float | None = None


async def chdb_memory(settings: Settings) -> tuple[float | None, int | None]:
    """ClickHouse's MemoryTracking in MB (the embedded engine's own heap) and the active
    parts of data_quality; a second client on the chdb engine shares it with ingest."""

    def chdb() -> tuple[float, int]:
        client = connect(settings.clickhouse_dsn())
        try:
            tracked = client.query(
                "SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'"
            ).result_rows[0][0]
            parts = client.query(
                "SELECT count() FROM system.parts WHERE database = {db:String} "
                "AND table = 'data_quality' AND active",
                parameters={"db": settings.clickhouse.database},
            ).result_rows[0][0]
        finally:
            client.close()
        return tracked / MB, parts

    try:
        return await asyncio.to_thread(chdb)
    except Exception as exc:  # a diagnostic: never let it end the soak
        logger.warning("cannot read chdb's memory: %s", exc)
        return None, None


async def probe(minute: int, settings: Settings) -> Probe:
    """Take a `Probe`."""
    tracked, parts = await chdb_memory(settings)
    tracing = tracemalloc.is_tracing()
    return Probe(
        minute=minute,
        rss=rss_mb() or 0.0,
        types=gc_types(),
        chdb_tracked_mb=tracked,
        dq_parts=parts,
        malloc=tracemalloc.take_snapshot() if tracing else None,
        traced_mb=tracemalloc.get_traced_memory()[0] / MB if tracing else None,
    )


def gc_types() -> collections.Counter[str]:
    """Live objects the cyclic collector tracks, by type (containers: dicts, lists, ...)."""
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())
