"""The marks_1s TTL: read from the table, altered only when it differs, always an integer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from flows.errors import FlowError
from flows.perps.retention import InvalidTtl, apply_marks_ttl, check_ttl_days, marks_ttl_days

DDL_ENGINE = (
    "ReplacingMergeTree(event_time) PARTITION BY toYYYYMMDD(time) ORDER BY (exchange, market, "
    "symbol, time) TTL toDateTime(time) + toIntervalDay(30) SETTINGS index_granularity = 8192"
)
ALTERED_ENGINE = DDL_ENGINE.replace("toIntervalDay(30)", "toIntervalDay(_CAST(7, 'UInt32'))")


class Tables:
    """A client that reports one engine_full and records the commands it is sent."""

    def __init__(self, engine_full: str | None) -> None:
        self.engine_full = engine_full
        self.commands: list[tuple[str, dict[str, Any]]] = []

    def query(self, sql: str, parameters: dict[str, Any]) -> SimpleNamespace:
        assert parameters == {"db": "tickscan", "t": "marks_1s"}
        rows = [] if self.engine_full is None else [(self.engine_full,)]
        return SimpleNamespace(result_rows=rows)

    def command(self, sql: str, parameters: dict[str, Any]) -> None:
        self.commands.append((sql, parameters))


def test_the_current_ttl_is_read_in_both_forms_clickhouse_writes_back() -> None:
    assert marks_ttl_days(Tables(DDL_ENGINE), "tickscan") == 30
    assert marks_ttl_days(Tables(ALTERED_ENGINE), "tickscan") == 7
    assert marks_ttl_days(Tables(DDL_ENGINE.split(" TTL ")[0]), "tickscan") is None
    with pytest.raises(FlowError, match="migrate"):
        marks_ttl_days(Tables(None), "tickscan")


def test_the_table_is_altered_only_when_its_ttl_differs() -> None:
    same = Tables(DDL_ENGINE)
    assert apply_marks_ttl(same, "tickscan", 30) is False
    assert same.commands == []
    other = Tables(DDL_ENGINE)
    assert apply_marks_ttl(other, "tickscan", 7) is True
    [(sql, parameters)] = other.commands
    assert "MODIFY TTL toDateTime(time) + toIntervalDay({days:UInt32})" in sql
    assert parameters == {"db": "tickscan", "days": 7}
    assert apply_marks_ttl(Tables(ALTERED_ENGINE), "tickscan", 7) is False


@pytest.mark.parametrize("days", [0, -3, 36_501, 7.5, "7", True, None])
def test_a_ttl_that_is_not_a_whole_number_of_days_in_range_is_refused(days: object) -> None:
    with pytest.raises(InvalidTtl):
        check_ttl_days(days)
    tables = Tables(DDL_ENGINE)
    with pytest.raises(InvalidTtl):
        apply_marks_ttl(tables, "tickscan", days)  # type: ignore[arg-type]
    assert tables.commands == []
