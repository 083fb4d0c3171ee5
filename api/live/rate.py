"""How fast one live connection may send: a token bucket, and how long an excess may last."""

from __future__ import annotations

from collections.abc import Callable


class MessageRate:
    """A token bucket over a connection's messages, and the overrun that persists.

    A message takes a token; tokens come back at `per_s` up to `burst`. A connection
    *persists* in exceeding the rate when messages keep being refused, with no pause of
    a second between two refusals, for `persist_s`.

    Args:
        per_s: Messages a second, sustained.
        burst: Messages at once, after a quiet spell.
        persist_s: How long refusals may go on before the connection is given up.
        clock: Monotonic seconds.
    """

    def __init__(
        self, per_s: float, burst: int, persist_s: float, clock: Callable[[], float]
    ) -> None:
        self.per_s = per_s
        self.burst = burst
        self.persist_s = persist_s
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._refusing_since: float | None = None
        self._refused_at = 0.0

    def take(self) -> bool:
        """Whether one more message is within the rate (it then takes a token)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_s)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        if self._refusing_since is None or now - self._refused_at >= 1.0:
            self._refusing_since = now
        self._refused_at = now
        return False

    @property
    def persisting(self) -> bool:
        """Whether refusals have gone on for `persist_s` (checked after a refused take)."""
        since = self._refusing_since
        return since is not None and self._refused_at - since >= self.persist_s
