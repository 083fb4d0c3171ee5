"""A clock that stands still until a test moves it."""

from __future__ import annotations


class Clock:
    """A `time.monotonic`-like callable reading `now`, which the test sets or advances.

    Args:
        now: The time it reads at first (seconds).
    """

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
