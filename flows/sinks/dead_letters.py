"""Dead letters kept after their run: a JSON-lines file and the ClickHouse `dead_letters` table.

The dead-letter topic is where stages send what they reject, but a topic of the embedded
broker lives in memory: a finite run (a replay) that only published its rejects there
would lose them at exit. `DeadLetterKeeper` writes each one where it outlives the run.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Self

from schemas.deadletter import DeadLetter, encode_deadletter

logger = logging.getLogger(__name__)

TABLE = "dead_letters"
"""The ClickHouse table (infra/clickhouse/011_dead_letters.sql)."""

COLUMNS = (
    "at",
    "run_id",
    "stage",
    "reason",
    "detail",
    "source_topic",
    "source_partition",
    "source_offset",
    "key",
    "value",
    "value_encoding",
)
"""The columns a keeper fills, in row order."""


def dead_letter_row(letter: DeadLetter, run_id: str) -> list[Any]:
    """One `dead_letters` row, in `COLUMNS` order.

    Args:
        letter: The dead letter.
        run_id: The run that rejected it.
    """
    return [
        datetime.fromtimestamp(letter.at_ms / 1000, UTC),
        run_id,
        letter.stage,
        letter.reason,
        letter.detail,
        letter.source_topic,
        letter.partition,
        letter.offset,
        letter.key,
        letter.value,
        letter.value_encoding,
    ]


class DeadLetterKeeper:
    """Appends dead letters to a JSON-lines file and inserts them into ClickHouse in batches.

    The file is created with the first letter, so a clean run leaves none. Use it as a
    context manager (or call `close`) so the last batch is written.

    Args:
        path: The JSON-lines file, one `DeadLetter` as JSON per line.
        client: A clickhouse-connect client.
        database: The database holding `dead_letters`.
        run_id: Stamped on every row, so one run's letters can be selected.
        batch: Rows held before an insert.
    """

    def __init__(
        self, path: Path, client: Any, database: str, run_id: str, *, batch: int = 10_000
    ) -> None:
        self.path = path
        self.kept = 0
        self._client = client
        self._database = database
        self._run_id = run_id
        self._batch = batch
        self._rows: list[list[Any]] = []
        self._file: IO[bytes] | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, letter: DeadLetter) -> None:
        """Keep one dead letter."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        self._file.write(encode_deadletter(letter) + b"\n")
        self._rows.append(dead_letter_row(letter, self._run_id))
        self.kept += 1
        if len(self._rows) >= self._batch:
            self.flush()

    def flush(self) -> None:
        """Insert the rows held and flush the file."""
        if self._file is not None:
            self._file.flush()
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        self._client.insert(TABLE, rows, column_names=list(COLUMNS), database=self._database)
        logger.debug("kept %d dead letters in %s.%s", len(rows), self._database, TABLE)

    def close(self) -> None:
        """Write what is held and close the file. Idempotent."""
        try:
            self.flush()
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None
