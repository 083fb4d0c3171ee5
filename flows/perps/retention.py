"""How long ``marks_1s`` keeps its rows: its TTL, set from configuration at start.

012_perps.sql creates the table with a 30-day TTL. `apply_marks_ttl` changes it with
``ALTER TABLE ... MODIFY TTL`` only when the table's current TTL (read from
``system.tables``) differs, because a TTL change makes ClickHouse rewrite every part of
the table to apply it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flows.errors import FlowError

logger = logging.getLogger(__name__)

TABLE = "marks_1s"
MAX_TTL_DAYS = 36_500

# The TTL as ClickHouse writes it back in `engine_full`: `toIntervalDay(30)` from the DDL,
# `toIntervalDay(_CAST(7, 'UInt32'))` once set through a bound parameter.
_TTL_DAYS = re.compile(r"\bTTL toDateTime\(time\) \+ toIntervalDay\((?:_CAST\()?(\d+)\b")


class InvalidTtl(FlowError, ValueError):
    """A TTL that is not a whole number of days in 1..36500."""


def check_ttl_days(days: object) -> int:
    """Check a TTL in days: an integer (not a bool) in 1..36500.

    Raises:
        InvalidTtl: Anything else.
    """
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_TTL_DAYS:
        raise InvalidTtl(f"the marks TTL must be a whole number of days in 1..{MAX_TTL_DAYS}, "
                         f"got {days!r}")  # fmt: skip
    return days


def marks_ttl_days(client: Any, database: str) -> int | None:
    """The TTL in days ``marks_1s`` has now; None when it has none in the form we set.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``marks_1s``.

    Raises:
        FlowError: The table does not exist (the database is not migrated).
    """
    rows = client.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": TABLE},
    ).result_rows
    if not rows:
        raise FlowError(f"{database}.{TABLE} does not exist: run tickscan migrate first")
    found = _TTL_DAYS.search(rows[0][0])
    return int(found.group(1)) if found else None


def apply_marks_ttl(client: Any, database: str, days: int) -> bool:
    """Give ``marks_1s`` a TTL of `days` unless it has that TTL already.

    Args:
        client: A clickhouse-connect client.
        database: Database holding ``marks_1s``.
        days: Days a row is kept, counted from the second it describes.

    Returns:
        Whether the table was altered.

    Raises:
        InvalidTtl: `days` is not a whole number in 1..36500.
    """
    days = check_ttl_days(days)
    current = marks_ttl_days(client, database)
    if current == days:
        return False
    client.command(
        "ALTER TABLE {db:Identifier}.marks_1s "
        "MODIFY TTL toDateTime(time) + toIntervalDay({days:UInt32})",
        parameters={"db": database, "days": days},
    )
    logger.info("%s.%s: TTL changed from %s to %d days", database, TABLE, current, days)
    return True
