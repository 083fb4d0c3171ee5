"""The API's ClickHouse access: one client per process, queries run off the event loop."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from anyio import to_thread
from clickhouse_connect.driver.client import Client


class Store:
    """Runs parameterised ClickHouse queries for async handlers.

    clickhouse-connect's client is synchronous and one client must not run two queries
    at once (chdb's in-process engine least of all), so queries run one at a time on a
    worker thread: the event loop, and with it every live stream, never waits on one.

    Args:
        client: A client whose default database holds tickscan's tables.
        database: That database's name, for queries that spell it out.
    """

    def __init__(self, client: Client, database: str) -> None:
        self.client = client
        self.database = database
        self._lock = threading.Lock()

    def query_sync(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """Run a query on this thread; returns its column names and rows."""
        with self._lock:
            result = self.client.query(sql, parameters=dict(parameters or {}))
            return result.column_names, [tuple(row) for row in result.result_rows]

    async def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """Run a query on a worker thread; returns its column names and rows.

        Values reach the query only through the driver's binding
        (``{name:Type}`` placeholders), never through string formatting.
        """
        return await to_thread.run_sync(self.query_sync, sql, parameters)

    async def ping(self) -> bool:
        """Whether ClickHouse answers a trivial query."""
        try:
            _, rows = await self.query("SELECT 1")
        except Exception:  # any driver or engine failure means "not healthy"
            return False
        return rows == [(1,)]
