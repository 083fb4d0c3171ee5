"""Open interest, polled: ``GET /fapi/v1/openInterest`` per followed perpetual, spread in time.

Binance streams no open interest; its REST endpoint answers one symbol at a time (weight
1, from the market's weights table, `flows.sources.binance.markets`). Polling every
perpetual at once each minute would spend hundreds of weight in one burst, the burst gap
repair would then wait behind. So each round of `IngestSettings.open_interest_every_s`
polls the followed perpetuals one after the other at evenly spaced slots
(`OpenInterestSchedule`), and a round is stretched when the perpetuals are more than
`open_interest_share` of the minute's weight cap can pay for.

The requests go through the REST client's background view (`BinanceRest.background`):
they share the weight budget and a ban with gap repair, wait while any gap repair waits
and leave the budget's reserve to it, so gap repair keeps priority. A 429 holds every
request for its ``Retry-After`` and is retried by the client; a poll that fails anyway is
counted and skipped, a ban (418) pauses the poller until it ends. Either way the rounds
keep their times: a slot missed because a whole round went by is skipped (``missed``),
never made up in a burst. Each sample is published as `schemas.perps.OpenInterest`
(``source="poll"``) to md.open_interest.v1.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

import aiohttp

from flows.sources.binance.rest import BinanceBanned, BinanceRestError
from flows.sources.binance.trades import BinanceDecodeError
from schemas.perps import OpenInterest

logger = logging.getLogger(__name__)

OPEN_INTEREST_ENDPOINT = "openInterest"
"""The REST endpoint polled, as named in the market's weights table."""


@dataclass(frozen=True, slots=True)
class OpenInterestSchedule:
    """How often the followed perpetuals are polled, within a share of the weight budget.

    Args:
        every_s: The wanted round: each perpetual polled once per this many seconds.
        weight: Request weight of one poll.
        weight_per_minute: Most weight per minute the polls may use (a share of the
            budget's cap).
    """

    every_s: float
    weight: int
    weight_per_minute: float

    def round_s(self, symbols: int) -> float:
        """Length of a round polling `symbols` perpetuals: `every_s`, or longer when that
        would use more than `weight_per_minute`."""
        return max(self.every_s, symbols * self.weight * 60.0 / self.weight_per_minute)

    def uses(self, symbols: int) -> float:
        """Weight per minute the polls of `symbols` perpetuals use."""
        if not symbols:
            return 0.0
        return symbols * self.weight * 60.0 / self.round_s(symbols)

    def slots(self, symbols: Collection[str], start: float) -> list[tuple[float, str]]:
        """When each perpetual of a round beginning at `start` is polled, in order.

        The symbols are spread evenly over the round in sorted order (the first at
        `start`), so one round is never a burst.
        """
        ordered = sorted(symbols)
        if not ordered:
            return []
        step = self.round_s(len(ordered)) / len(ordered)
        return [(start + i * step, symbol) for i, symbol in enumerate(ordered)]


@dataclass(frozen=True, slots=True)
class PollCounts:
    """What the open-interest poller has done, and the weight it uses.

    Attributes:
        polls: Polls by outcome: ``published``; ``failed`` (retries exhausted, a ban, a
            bad answer); ``missed`` (skipped because their round had gone by).
        rounds: Rounds finished.
        round_s: Length of the current round, seconds.
        weight_per_minute: Weight per minute the current round uses.
        weight: Weight its requests have spent so far (retries included).
    """

    polls: Counter[str]
    rounds: int
    round_s: float
    weight_per_minute: float
    weight: int


@dataclass(frozen=True, slots=True)
class Timing:
    """The clocks and the sleep the poller runs on (tests pass fakes that agree).

    Attributes:
        monotonic: Seconds of a clock that never goes back: the rounds' times.
        sleep: Awaits a number of seconds of `monotonic`.
        wall: Epoch seconds: when a ban ends.
    """

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    wall: Callable[[], float] = time.time


class OpenInterestPoller:
    """Polls each followed perpetual's open interest once a round and publishes it.

    Args:
        fetch: Fetches one symbol's open interest (`BinanceRest.open_interest` of a
            background client).
        publish: Publishes a sample.
        symbols: The perpetuals followed now (read at the start of each round).
        schedule: The round and its slots.
        spent: The weight the polls' client has spent so far (its ``stats.weight``).
        timing: Its clocks and sleep.
    """

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[OpenInterest]],
        publish: Callable[[OpenInterest], None],
        symbols: Callable[[], Collection[str]],
        schedule: OpenInterestSchedule,
        *,
        spent: Callable[[], int] = lambda: 0,
        timing: Timing = Timing(),
    ) -> None:
        self.schedule = schedule
        self.polls: Counter[str] = Counter()
        self.rounds = 0
        self._fetch, self._publish = fetch, publish
        self._symbols, self._spent = symbols, spent
        self._clock = timing.monotonic
        self._timing = timing
        self._following = 0  # perpetuals of the current round
        self._stopping = asyncio.Event()

    def counts(self) -> PollCounts:
        """A snapshot of what it has done, with the weight it uses and has spent."""
        n = self._following
        return PollCounts(
            polls=Counter(self.polls),
            rounds=self.rounds,
            round_s=self.schedule.round_s(n),
            weight_per_minute=self.schedule.uses(n),
            weight=self._spent(),
        )

    def stop(self) -> None:
        """Make `run` return before its next poll."""
        self._stopping.set()

    async def run(self) -> None:
        """Poll round after round until `stop`; each round starts a round after the last."""
        start = self._clock()
        while not self._stopping.is_set():
            symbols = set(self._symbols())
            if len(symbols) != self._following:
                self._following = len(symbols)
                logger.info(
                    "open interest: polling %d perpetual(s) every %.0f s, %.0f weight/min",
                    len(symbols), self.schedule.round_s(len(symbols)),
                    self.schedule.uses(len(symbols)),
                )  # fmt: skip
            end = start + self.schedule.round_s(len(symbols))
            await self._round(self.schedule.slots(symbols, start), end)
            if not await self._wait_until(end):
                return
            self.rounds += 1
            # A round that overran (a long ban) is not made up: the next starts now.
            start = max(end, self._clock())

    async def _round(self, slots: list[tuple[float, str]], end: float) -> None:
        for i, (at, symbol) in enumerate(slots):
            if not await self._wait_until(at):
                return
            if self._clock() >= end:
                self.polls["missed"] += len(slots) - i
                logger.warning(
                    "open interest: %d poll(s) of this round skipped, the round went by",
                    len(slots) - i,
                )
                return
            if symbol in self._symbols():  # else no longer followed
                await self._poll(symbol)

    async def _poll(self, symbol: str) -> None:
        try:
            sample = await self._fetch(symbol)
        except BinanceBanned as exc:
            self.polls["failed"] += 1
            logger.warning("open interest %s: %s; polling pauses until then", symbol, exc)
            ban_s = exc.until.timestamp() - self._timing.wall()
            await self._wait_until(self._clock() + max(0.0, ban_s))
            return
        except (BinanceRestError, BinanceDecodeError, aiohttp.ClientError, TimeoutError) as exc:
            self.polls["failed"] += 1
            logger.warning("open interest %s: poll failed (%s); next round goes on", symbol, exc)
            return
        self._publish(sample)
        self.polls["published"] += 1

    async def _wait_until(self, at: float) -> bool:
        """Wait until `at` on the clock; False when stopped meanwhile."""
        while not self._stopping.is_set():
            delay = at - self._clock()
            if delay <= 0:
                return True
            stopped = asyncio.ensure_future(self._stopping.wait())
            slept = asyncio.ensure_future(self._timing.sleep(delay))
            try:
                await asyncio.wait([stopped, slept], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                slept.cancel()
        return False
