"""The ClickHouse writer's buffer: rows are inserted once they are old, even if none follow."""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any

from flows.sinks.clickhouse import TsvTable, TsvWriter


class Inserts:
    """A stand-in client that records what would be inserted."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def raw_insert(self, table: str, columns: list[str], body: bytes, fmt: str) -> None:
        self.bodies.append(body)


def writer(client: Any, max_age_ms: int) -> TsvWriter[str]:
    table: TsvTable[str] = TsvTable("t", ("a",), lambda rows: "".join(rows).encode())
    return TsvWriter(lambda: client, "db", {"t": table}, max_age_ms=max_age_ms)


def test_the_last_rows_of_a_stream_are_inserted_when_old_without_more_rows() -> None:
    client = Inserts()
    rows = writer(client, max_age_ms=100)
    rows.add(["1\n", "2\n"])
    assert client.bodies == []  # young: still buffered
    deadline = time.monotonic() + 5
    while not client.bodies and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.bodies == [b"1\n2\n"] and rows.written == {"t": 2}


def test_young_rows_wait_for_their_age() -> None:
    client = Inserts()
    rows = writer(client, max_age_ms=60_000)
    rows.add(["1\n"])
    time.sleep(0.3)
    assert client.bodies == []
    rows.flush()
    assert client.bodies == [b"1\n"]


def test_a_dropped_writer_is_freed_and_its_timer_thread_ends() -> None:
    # A pipeline restarted on a fresh broker drops its writers: each must go, with its
    # client and buffers, not live on in its age-flush thread.
    client = Inserts()
    rows = writer(client, max_age_ms=40)
    rows.add(["1\n"])
    rows.flush()
    thread = rows._timer
    assert thread is not None and thread.is_alive()
    gone = weakref.ref(rows)
    del rows
    gc.collect()
    assert gone() is None
    thread.join(5)
    assert not thread.is_alive()
