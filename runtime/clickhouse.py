"""ClickHouse clients from a DSN: the embedded chdb engine or a ClickHouse server over HTTP.

What we found about clickhouse-connect 1.12's chdb backend (chdb-core 26.9), so that
nobody has to find it again:

- One chdb engine per process. While any client on `chdb:///a` is open, opening
  `chdb:///b` in the same process raises ProgrammingError ("EmbeddedServer already
  initialized with path ..."); a second client on the same directory shares the engine
  and its data. Once every client is closed, the process may open another directory.
- One process per directory: a second process opening a directory that another process
  holds fails with an unhelpful "Error initializing EmbeddedServer". A running tickscan
  therefore migrates its own chdb store instead of expecting `tickscan migrate` beside it.
- Query parameters are bound server-side, as on a server: the driver passes
  `{name:Type}` values to chdb's `params`, so `{x:String}` and `{db:Identifier}` (even in
  DDL: CREATE DATABASE / CREATE TABLE {db:Identifier}.t) work and are never spliced into
  the SQL text. Caveat of the driver, not chdb: a statement with *no* `{name:Type}`
  placeholder but a parameters dict falls back to client-side `%` formatting, so pass
  parameters only to statements that use them.
- A database named in `connect(..., database=...)` must already exist (it is applied
  with USE when the client opens).
- The engine's caches are sized for a server: 5 GiB each for marks, primary indexes and
  skip-index marks. In a long-running `tickscan run` they fill as queries read new parts,
  so the process grows for days. `connect` bounds them (`CHDB_CACHES`); the sizes are
  engine-start options in the connection string (`path?mark_cache_size=...`), which apply
  when the first client opens the engine and are accepted by later ones.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError

from runtime.errors import ClickHouseSetupError

log = logging.getLogger(__name__)

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""A plain ClickHouse identifier: what we accept as a database name."""

_CHDB_PREFIX = "chdb://"

# The driver's default ("naive_utc") returns naive datetimes for our UTC columns; we never
# hand out naive timestamps, so every client returns timezone-aware UTC datetimes.
_TZ_MODE = "aware"


CHDB_CACHES = {
    "mark_cache_size": 256 << 20,
    "primary_index_cache_size": 128 << 20,
    "index_mark_cache_size": 64 << 20,
    "query_condition_cache_size": 32 << 20,
}
"""Bytes of each chdb engine cache: 480 MiB together at most, where a server would take
15 GiB. Our queries read recent parts of a few tables, which fit."""


def check_identifier(name: str) -> str:
    """Check that `name` is a plain identifier (letters, digits, `_`, not leading digit).

    Args:
        name: A database (or table) name from configuration.

    Returns:
        The name, unchanged.

    Raises:
        ClickHouseSetupError: If the name is not a plain identifier.
    """
    if not IDENTIFIER.fullmatch(name):
        raise ClickHouseSetupError(
            f"invalid ClickHouse identifier {name!r}: use letters, digits and _, "
            "not starting with a digit"
        )
    return name


def chdb_path(dsn: str) -> Path | None:
    """The directory of a `chdb://` DSN, or None for another scheme or `chdb://:memory:`.

    Everything after `chdb://` is the path: `chdb:///var/lib/x` is absolute and
    `chdb://data/clickhouse` is relative to the working directory (it is resolved here,
    because chdb compares engine paths literally).
    """
    if not dsn.startswith(_CHDB_PREFIX):
        return None
    location = dsn[len(_CHDB_PREFIX) :]
    if location in ("", ":memory:"):
        return None
    return Path(location).resolve()


def connect(dsn: str, database: str | None = None) -> Client:
    """Open a clickhouse-connect client for `dsn`.

    Args:
        dsn: `chdb://<dir>` for the in-process engine (the directory is created),
            `chdb://:memory:` for a throwaway in-memory engine, or
            `http(s)://[user[:password]@]host[:port][/database]` for a server.
        database: Default database of the client; it must exist. Overrides one in the DSN.

    Returns:
        A synchronous clickhouse-connect client; close it when done.

    Raises:
        ClickHouseSetupError: If the DSN is malformed or the chdb engine cannot be opened.
    """
    if database is not None:
        check_identifier(database)
    if dsn.startswith(_CHDB_PREFIX):
        path = chdb_path(dsn)
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
        try:
            client = clickhouse_connect.get_client(
                interface="chdb",
                path=str(path) if path is not None else ":memory:",
                database=database,
                tz_mode=_TZ_MODE,
                chdb_options=CHDB_CACHES,
            )
        except ProgrammingError as exc:
            raise ClickHouseSetupError(
                f"cannot open chdb at {path or ':memory:'}: {exc}. A process can hold one chdb "
                "directory at a time, and a directory can be held by one process at a time."
            ) from exc
        log.debug("opened chdb engine at %s", path or ":memory:")
        return client

    parts = urlsplit(dsn)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClickHouseSetupError(
            f"unsupported ClickHouse DSN {_redact(dsn)!r}: expected chdb://<dir> or "
            "http(s)://[user[:password]@]host[:port][/database]"
        )
    secure = parts.scheme == "https"
    path_db = unquote(parts.path.strip("/")) or None
    client = clickhouse_connect.get_client(
        host=parts.hostname,
        port=parts.port or (8443 if secure else 8123),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else "",
        database=database or path_db,
        secure=secure,
        tz_mode=_TZ_MODE,
    )
    log.debug("connected to ClickHouse at %s", _redact(dsn))
    return client


def _redact(dsn: str) -> str:
    """The DSN with its password replaced, for logs and error messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
