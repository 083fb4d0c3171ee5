"""The paper engine's write-ahead journal: the commit point of its events.

Each batch of events is appended to one append-only file in the data directory (one line
per event: its equity, a tab, its wire JSON) and flushed, with an fsync unless told not
to, *before* any of them is published; ClickHouse's ``paper_events`` gets them afterwards,
in a thread of their own, so the insert (and chDB's merges in the engine's process) is
off the path from a market event to its fill event. Once ClickHouse holds everything the
file holds, the next append starts the file afresh (`Journal.stored_to`); ``paper_events``
fsyncs each insert (migration 018), so what leaves the journal survives a power cut.

At start the engine restores from ``paper_events`` plus the journal's events with a
higher seq than ClickHouse holds for their account (`Journal.pending`), which it writes
through to ClickHouse before anything else, then empties the journal. A crash can tear
the last line only (a batch is one write); a line without its newline, or one that does
not decode, is ignored with a warning: an event whose line is torn was never published.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import msgspec

from flows.sinks.trading.rows import StoredEvent
from schemas.trading import event_decoder

logger = logging.getLogger(__name__)

JOURNAL_FILE = "paper-events.journal"
"""The journal's name in the data directory."""


class Journal:
    """An append-only file of events, written by one thread.

    Args:
        path: The file (created when missing).
        fsync: Whether each append is fsync'ed (else flushed to the OS only: a power cut
            may lose what a process crash would not).
    """

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - open for the journal's life
        self.size = self._file.tell()
        self._stored_to = 0

    def append(self, stored: Sequence[StoredEvent]) -> int:
        """Write events in one write, flushed (and fsync'ed); returns the file's size after
        them (what `stored_to` takes once ClickHouse holds them), 0 for no events (a size
        handed back late must never cover what a later, emptied file holds). When
        ClickHouse holds the whole file already, it is emptied first."""
        if not stored:
            return 0
        if self._stored_to >= self.size > 0:
            self._truncate()
        data = b"".join(
            (b"" if s.equity is None else format(s.equity, "f").encode())
            + b"\t"
            + s.payload
            + b"\n"
            for s in stored
        )
        self._file.write(data)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self.size += len(data)
        return self.size

    def stored_to(self, size: int) -> None:
        """Say ClickHouse holds the events up to `size` (a value `append` returned); may be
        called from another thread."""
        if size > self._stored_to:
            self._stored_to = size

    def _truncate(self) -> None:
        self._file.truncate(0)
        self._file.seek(0)
        if self.fsync:
            os.fsync(self._file.fileno())
        self.size = self._stored_to = 0

    def clear(self) -> None:
        """Empty the journal (everything in it is in ClickHouse)."""
        self._truncate()

    def entries(self) -> list[StoredEvent]:
        """The events in the file, in order; a torn or undecodable last line is ignored
        with a warning (any other bad line raises: the file is damaged)."""
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        torn = lines.pop()  # after the last newline: b"" unless a write was cut short
        if torn:
            logger.warning(
                "paper journal %s: ignoring a torn last line (%d bytes) left by a crash",
                self.path,
                len(torn),
            )
        decode = event_decoder().decode
        out = []
        for number, line in enumerate(lines):
            equity, _tab, payload = line.partition(b"\t")
            try:
                event = decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError):
                if number == len(lines) - 1 and not torn:
                    logger.warning("paper journal %s: ignoring an undecodable last line", self.path)
                    continue
                raise
            out.append(StoredEvent(event, payload, Decimal(equity.decode()) if equity else None))
        return out

    def pending(self, stored_seqs: Mapping[str, int]) -> list[StoredEvent]:
        """The journal's events ClickHouse lacks: a seq above `stored_seqs` for the
        account (the highest seq ``paper_events`` holds for each)."""
        return [
            s
            for s in self.entries()
            if s.event.seq and s.event.seq > stored_seqs.get(s.event.account_id, 0)
        ]

    def close(self) -> None:
        """Close the file."""
        self._file.close()
