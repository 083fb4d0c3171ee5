"""A running count said at INFO at most every so often while it grows.

The candle flow and the trade store count the duplicate trades they drop as they go and
say how many came lately, without a line per batch; each keeps its own words and count,
and a `CountLog` to tell when a line is due.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CountLog:
    """When to say how much a running count grew: only when it did, and not too often.

    Args:
        clock: Seconds, monotonic (`time.monotonic`; tests pass their own).
    """

    __slots__ = ("_clock", "said", "said_at")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.said = 0
        """The count as it was last said."""
        self.said_at = clock()
        """When it was last said (or the log was made)."""

    def due(self, count: int, every_s: float) -> tuple[int, float] | None:
        """Whether a line is due on `count`, at most one every `every_s` seconds.

        Args:
            count: The running count now.
            every_s: Least seconds between two lines.

        Returns:
            How much it grew since it was last said and in how many seconds, when it grew
            and `every_s` has passed (it then counts as said); else None.
        """
        if count == self.said:
            return None
        now = self._clock()
        elapsed = now - self.said_at
        if elapsed < every_s:
            return None
        grown = count - self.said
        self.said, self.said_at = count, now
        return grown, elapsed

    def said_all(self, count: int) -> None:
        """Take `count` as said now (a summary line said it)."""
        self.said, self.said_at = count, self._clock()
