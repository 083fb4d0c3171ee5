"""The accounts database: an async SQLAlchemy engine, its sessions, and its migrations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from api.errors import Unavailable

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"

BUSY_TIMEOUT_MS = 20_000
"""How long a SQLite transaction waits for the writer before it to finish (then 503)."""

_READ_ONLY = "accounts_read_only"
"""Execution option of the engine behind `AccountsDb.reading` sessions."""


class AccountsDb:
    """The engine and session factory of the accounts database.

    SQLite (the default) gets foreign keys switched on for every connection, so deleting a
    user deletes what is theirs, as PostgreSQL does, and transactions whose savepoints
    roll back alone, as PostgreSQL's do.

    SQLite has one writer at a time. A transaction that reads and then writes while
    another one committed cannot take the write lock without seeing a stale snapshot, and
    SQLite answers it `database is locked` at once, without waiting (the sign-ups racing in
    parallel all failed so). So every `session` takes the write lock as it begins
    (`BEGIN IMMEDIATE`, waiting up to `BUSY_TIMEOUT_MS` for the writer before it), which
    makes each transaction's reads and writes one step; `reading` sessions, which never
    write, begin deferred and run beside the writer (WAL journal). PostgreSQL needs
    neither: its row locks order concurrent writers.

    Args:
        url: SQLAlchemy async URL (`sqlite+aiosqlite:///...`, `postgresql+asyncpg://...`).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.readers = async_sessionmaker(
            self.engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False
        )

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (Alembic, on this engine's connection)."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed when the block ends, rolled back on error.

        On SQLite it holds the database's write lock from its first statement to its end:
        keep slow work (password hashing, remote calls) before that statement.

        Raises:
            Unavailable: SQLite's writer held the lock for longer than the busy timeout.
        """
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except OperationalError as exc:
            if not _is_busy(exc):
                raise
            logger.warning("accounts database busy: %s", exc.orig)
            raise Unavailable("the accounts database is busy: try again") from None

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only, in a transaction of its own that sees one snapshot;
        on SQLite it does not wait for the writer (and must not write)."""
        async with self.readers() as session, session.begin():
            yield session

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def upsert_insert(session: AsyncSession, table: type[Any]) -> Any:
    """An INSERT into `table` that can take `.on_conflict_do_nothing()`: the dialect's own,
    since standard SQL has no such clause (PostgreSQL and SQLite spell it the same way)."""
    bind = session.get_bind()
    insert = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
    return insert(table)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module begins transactions itself, lazily, and a SAVEPOINT's release
    # then commits the whole outer transaction (measured: a nested block's row survived
    # the outer rollback). Taking BEGIN over (`_sqlite_begin`) makes savepoints nest.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # The timeout first: switching a fresh database to WAL takes a lock too.
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; commits skip an fsync
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # Read-only sessions begin deferred: they read a snapshot beside the writer.
    if connection.get_execution_options().get(_READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _is_busy(exc: OperationalError) -> bool:
    # SQLite's SQLITE_BUSY, after the busy timeout ("database is locked").
    return "database is locked" in str(exc.orig)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
