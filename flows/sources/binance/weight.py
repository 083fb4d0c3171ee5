"""Binance's request-weight budget: the weight used this minute, and who may spend it next.

Binance limits each IP by the summed *weight* of its requests per calendar minute
(``exchangeInfo``'s ``REQUEST_WEIGHT``: spot 6000, USDⓈ-M 2400) and reports the weight
used so far in every response's ``X-MBX-USED-WEIGHT-1M`` header. What each call costs is
a fact of its market: `flows.sources.binance.markets`.

Two kinds of work share one IP's budget: requests that must not wait (gap repair, the
symbol universe) and history, which may take whatever is left. `WeightGate` admits both
into one `WeightBudget`, the urgent ones first. A few endpoints are limited by request
count over a window instead (`RequestWindow`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

_USED_WEIGHT = "x-mbx-used-weight-1m"


class WeightBudget:
    """The request weight this IP has used in the current minute, and how long to wait.

    Binance counts weight per calendar minute of its clock. The budget counts what it
    sends, takes the server's ``X-MBX-USED-WEIGHT-1M`` figure whenever it is higher (other
    clients may share the IP), and starts again at zero each minute.

    Args:
        limit: Binance's ``REQUEST_WEIGHT`` per minute.
        safety: Fraction of `limit` to stay under.
        clock: Seconds since the epoch (tests pass a fake one).
    """

    def __init__(self, limit: int, safety: float = 0.8, clock: Callable[[], float] = time.time):
        if not 0 < safety <= 1:
            raise ValueError(f"safety must be in (0, 1], got {safety}")
        self.limit = limit
        self.cap = max(1, int(limit * safety))
        self._clock = clock
        self._minute = -1
        self._used = 0
        self._hold_until = 0.0

    @property
    def used(self) -> int:
        """Weight used in the current minute, as far as we know."""
        self._roll(self._clock())
        return self._used

    def delay(self, weight: int) -> float:
        """Seconds to wait before a request of `weight` may be sent (0 when it may go now)."""
        now = self._clock()
        self._roll(now)
        if now < self._hold_until:
            return self._hold_until - now
        if self._used and self._used + weight > self.cap:
            return (self._minute + 1) * 60 - now
        return 0.0

    def spend(self, weight: int) -> None:
        """Count a request about to be sent."""
        self._roll(self._clock())
        self._used += weight

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the server's count of this minute from a response's headers."""
        value = next((v for k, v in headers.items() if k.lower() == _USED_WEIGHT), None)
        if value is None:
            return
        try:
            used = int(value)
        except ValueError:
            return
        self._roll(self._clock())
        self._used = max(self._used, used)

    def hold(self, seconds: float) -> None:
        """Send nothing for `seconds` (a 429's Retry-After)."""
        self._hold_until = max(self._hold_until, self._clock() + seconds)

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._minute = minute
            self._used = 0


class WeightGate:
    """Admits requests into one `WeightBudget`: urgent ones first, background ones after.

    An urgent request (gap repair, ``exchangeInfo``) waits only for the budget. A
    background request (history) also waits while any urgent one is waiting, and keeps
    `reserve` of the minute's cap free, so an urgent request arriving mid-minute finds
    room at once instead of waiting for the next minute behind history.

    Args:
        budget: The IP's weight budget, shared by every request.
        reserve_share: Share of the budget's cap background requests leave unused.
        sleep: Awaits a number of seconds (tests pass one that moves a fake clock).
    """

    def __init__(
        self,
        budget: WeightBudget,
        reserve_share: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 <= reserve_share < 1:
            raise ValueError(f"reserve_share must be in [0, 1), got {reserve_share}")
        self.budget = budget
        self.reserve = int(budget.cap * reserve_share)
        self.banned_until = 0.0
        """Epoch seconds until which Binance has banned this IP (418): nothing may go."""
        self._sleep = sleep
        self._urgent_waiting = 0
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()

    @property
    def urgent_waiting(self) -> int:
        """Urgent requests waiting for room right now."""
        return self._urgent_waiting

    def background_delay(self, weight: int) -> float:
        """Seconds before a background request of `weight` fits beside the reserve."""
        return self.budget.delay(weight + self.reserve)

    async def admit(
        self,
        weight: int,
        *,
        background: bool = False,
        check: Callable[[], None] | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> float:
        """Wait until a request of `weight` may be sent, and count it.

        Args:
            weight: The request's weight.
            background: A request that yields to urgent ones and leaves the reserve free.
            check: Called before each try; raises to give up (e.g. the IP is banned).
            on_wait: Called with each wait for room, in seconds, before it.

        Returns:
            Seconds spent waiting.
        """
        waited = 0.0
        if not background:
            self._urgent_waiting += 1
            self._no_urgent.clear()
        try:
            while True:
                if check is not None:
                    check()
                if background and self._urgent_waiting:
                    started = time.monotonic()
                    await self._no_urgent.wait()
                    waited += time.monotonic() - started
                    continue
                delay = self.background_delay(weight) if background else self.budget.delay(weight)
                if delay <= 0:
                    # No await between the check and the spend: nothing can slip in between.
                    self.budget.spend(weight)
                    return waited
                if on_wait is not None:
                    on_wait(delay)
                await self._sleep(delay)
                waited += delay
        finally:
            if not background:
                self._urgent_waiting -= 1
                if not self._urgent_waiting:
                    self._no_urgent.set()


class RequestWindow:
    """A request-count limit over a sliding window, for endpoints Binance limits that way.

    Some endpoints are not (only) weighed: ``/fapi/v1/fundingRate`` and
    ``/fapi/v1/fundingInfo`` share 500 requests per 5 minutes per IP,
    ``/futures/data/openInterestHist`` allows 1000. A window counts the requests sent in
    the last `span_s` seconds and makes the next one wait while `safety` of the limit is
    used, so such a limit is never broken.

    Args:
        limit: Requests allowed per window.
        span_s: Length of the window, in seconds.
        safety: Fraction of `limit` to stay under.
        clock: Seconds (tests pass a fake one).
        sleep: Awaits a number of seconds (tests pass one that moves a fake clock).
    """

    def __init__(
        self,
        limit: int,
        span_s: float,
        safety: float = 0.8,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not 0 < safety <= 1:
            raise ValueError(f"safety must be in (0, 1], got {safety}")
        self.limit = limit
        self.span_s = span_s
        self.cap = max(1, int(limit * safety))
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()

    @property
    def used(self) -> int:
        """Requests counted in the current window."""
        self._expire(self._clock())
        return len(self._sent)

    def delay(self) -> float:
        """Seconds before one more request fits (0 when it may go now)."""
        now = self._clock()
        self._expire(now)
        if len(self._sent) < self.cap:
            return 0.0
        return self._sent[0] + self.span_s - now

    async def admit(self, on_wait: Callable[[float], None] | None = None) -> float:
        """Wait until one more request fits, and count it.

        Args:
            on_wait: Called with each wait, in seconds, before it.

        Returns:
            Seconds spent waiting.
        """
        waited = 0.0
        while (delay := self.delay()) > 0:
            if on_wait is not None:
                on_wait(delay)
            await self._sleep(delay)
            waited += delay
        self._sent.append(self._clock())
        return waited

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.span_s:
            self._sent.popleft()
