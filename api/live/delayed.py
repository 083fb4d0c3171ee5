"""The delayed board: the live board as it was `free_delay_s` ago, for the free tier."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from api.live.board import Board
from api.live.views import Views
from schemas.ranks import RankRow

logger = logging.getLogger(__name__)

MAX_PENDING_ROWS = 2_000_000
"""Rows the delay line holds at most (about ten minutes of 3,000 rows a second, far more
than any free delay needs). Past it the oldest batches are applied early rather than
memory growing on."""


class DelayedBoard:
    """A board that applies each feed batch of ranks `delay_s` after it arrived, with its
    own views, so its subscribers never see the live board.

    The delay line holds every batch until it is due, so its memory is proportional to
    `delay_s` times the rows per second the ranks topic carries (one row per symbol
    that changed; at 60 s and 2,000 rows/s, 120,000 rows shared with the live board).
    `max_rows` bounds it even under a burst (a replayed backlog): the oldest batches are
    then applied before they are due, and that is logged.

    Args:
        delay_s: How long each batch waits (> 0).
        views: Makes the views of a board (the hub makes its live views the same way).
        clock: Monotonic seconds (tests pass a fake; `run` sleeps on the loop's clock,
            which is monotonic too).
        max_rows: Rows held at most before the oldest are applied early.

    Attributes:
        board: The delayed board; its `as_of_ms` is the newest row it has applied.
        views: The ranks views of it.
    """

    def __init__(
        self,
        delay_s: float,
        views: Callable[[Board], Views],
        clock: Callable[[], float] = time.monotonic,
        max_rows: int = MAX_PENDING_ROWS,
    ) -> None:
        if delay_s <= 0:
            raise ValueError("a delayed board needs a delay > 0")
        self.delay_s = delay_s
        self.clock = clock
        self.max_rows = max_rows
        self.board = Board()
        self.views = views(self.board)
        self._pending: deque[tuple[float, Sequence[RankRow]]] = deque()
        self._held = 0
        self._arrived = asyncio.Event()

    @property
    def held(self) -> int:
        """Rows waiting in the delay line."""
        return self._held

    def push(self, rows: Sequence[RankRow]) -> None:
        """Hold a batch of ranks from the feed, due `delay_s` from now."""
        if not rows:
            return
        self._pending.append((self.clock() + self.delay_s, rows))
        self._held += len(rows)
        if self._held > self.max_rows:
            early = 0
            while self._held > self.max_rows:
                early += self._apply_oldest()
            logger.warning("delay line full: %d rows applied before they were due", early)
            self.views.wake()
        self._arrived.set()

    def seed(self, rows: Iterable[RankRow], now_ms: int) -> None:
        """Start from the live board as loaded at start-up: rows at least `delay_s` old
        (by exchange time) are applied now, newer ones wait out the delay.

        Args:
            rows: The live board's rows.
            now_ms: The wall clock, ms since the epoch.
        """
        cutoff = now_ms - int(self.delay_s * 1000)
        old: list[RankRow] = []
        recent: list[RankRow] = []
        for row in rows:
            (old if row.time_ms <= cutoff else recent).append(row)
        if self.board.apply(old):
            self.views.wake()
        self.push(recent)

    def release(self) -> int:
        """Apply every batch that is due.

        Returns:
            How many rows changed the board.
        """
        changed = 0
        now = self.clock()
        while self._pending and self._pending[0][0] <= now:
            changed += self._apply_oldest()
        if changed:
            self.views.wake()
        return changed

    def next_due(self) -> float | None:
        """When the oldest held batch is due (the clock's seconds), or None when empty."""
        return self._pending[0][0] if self._pending else None

    def _apply_oldest(self) -> int:
        _, rows = self._pending.popleft()
        self._held -= len(rows)
        return self.board.apply(rows)

    async def run(self) -> None:
        """Release batches as they fall due, and run the views' loop, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.views.run(), name="delayed-board-loop")
            tasks.create_task(self._release_loop(), name="delay-line")

    async def _release_loop(self) -> None:
        while True:
            due = self.next_due()
            if due is None:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            wait = due - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                self.release()
            except Exception:  # one bad batch must not stop the free tier's board
                logger.exception("delayed board: applying ranks failed")
