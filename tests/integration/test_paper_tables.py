"""The paper tables as migrations leave them: what the engine's durability relies on."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client


def _settings(ch: Client, database: str, table: str) -> str:
    rows = ch.query(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": table},
    ).result_rows
    assert rows, f"{table} not found"
    return str(rows[0][0])


def test_the_paper_event_log_is_fsynced_on_insert(ch: Client, database: str) -> None:
    # The engine empties its journal once paper_events holds its events: the insert
    # itself must then survive a power cut.
    settings = _settings(ch, database, "paper_events")
    assert "fsync_after_insert = 1" in settings, settings
    assert "fsync_part_directory = 1" in settings, settings


def test_the_derived_paper_tables_are_not_fsynced(ch: Client, database: str) -> None:
    # They are rewritten from the log at start; an fsync per insert would be cost only.
    for table in ("paper_orders", "paper_fills", "paper_ledger"):
        assert "fsync_after_insert" not in _settings(ch, database, table), table
