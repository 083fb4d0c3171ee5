"""A ClickHouse client stand-in for the writers' unit tests (they open no ClickHouse)."""

from __future__ import annotations

from typing import Any


class RecordingClient:
    """Records every raw insert: its table, its columns and its TabSeparated body."""

    def __init__(self) -> None:
        self.inserts: list[tuple[str, list[str], bytes]] = []

    def raw_insert(self, table: str, columns: list[str], data: bytes, fmt: Any) -> None:
        """Keep one insert; only TabSeparated bodies are expected."""
        assert fmt == "TabSeparated"
        self.inserts.append((table, columns, data))
