"""The open-interest poll: its rounds within the weight budget, and what a refusal does.

No socket and no real time: the poller runs on a fake clock whose sleep moves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from flows.ingest.open_interest import OpenInterestPoller, OpenInterestSchedule, Timing
from flows.ingest.settings import IngestSettings
from flows.sources.binance.markets import USDM
from flows.sources.binance.rest import BinanceBanned, BinanceUnavailable
from schemas.perps import OpenInterest

WALL_AT_ZERO = 1_800_000_000.0
"""Epoch seconds when the fake monotonic clock reads 0."""


class FakeTime:
    """A monotonic clock that stands still until a sleep moves it, and the wall beside it."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_AT_ZERO + self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)

    def timing(self) -> Timing:
        return Timing(monotonic=self.monotonic, sleep=self.sleep, wall=self.wall)


def sample(symbol: str, at: float) -> OpenInterest:
    return OpenInterest(
        exchange="binance", market="usdm", symbol=symbol, time_us=int(at * 1e6),
        open_interest=Decimal("10659.509"), source="poll",
    )  # fmt: skip


def run_polls(
    symbols: set[str],
    schedule: OpenInterestSchedule,
    answer: Callable[[str, FakeTime], None],
    *,
    polls: int,
) -> tuple[OpenInterestPoller, list[tuple[float, str]], list[OpenInterest]]:
    """Run a poller until `polls` requests were sent; `answer` may raise or move time."""
    clock = FakeTime()
    asked: list[tuple[float, str]] = []
    published: list[OpenInterest] = []
    poller: OpenInterestPoller | None = None

    async def fetch(symbol: str) -> OpenInterest:
        asked.append((clock.now, symbol))
        if len(asked) >= polls:
            assert poller is not None
            poller.stop()
        answer(symbol, clock)
        return sample(symbol, clock.now)

    async def main() -> None:
        nonlocal poller
        poller = OpenInterestPoller(
            fetch, published.append, lambda: symbols, schedule, timing=clock.timing()
        )
        await asyncio.wait_for(poller.run(), 5)

    asyncio.run(main())
    assert poller is not None
    return poller, asked, published


def answered(symbol: str, clock: FakeTime) -> None:
    """A poll answered at once."""


def test_a_round_spreads_the_polls_evenly_in_symbol_order() -> None:
    schedule = OpenInterestSchedule(every_s=60.0, weight=1, weight_per_minute=480.0)
    assert schedule.slots({"ETHUSDT", "BTCUSDT", "SOLUSDT", "XRPUSDT"}, 100.0) == [
        (100.0, "BTCUSDT"), (115.0, "ETHUSDT"), (130.0, "SOLUSDT"), (145.0, "XRPUSDT"),
    ]  # fmt: skip
    assert schedule.slots(set(), 100.0) == []


def test_a_round_stretches_so_the_polls_stay_within_their_share_of_the_budget() -> None:
    # USDⓈ-M: weight 1 a poll, a quarter of the 1920 cap of each minute.
    schedule = OpenInterestSchedule(
        every_s=60.0, weight=USDM.weights["openInterest"], weight_per_minute=1920 * 0.25
    )
    assert schedule.round_s(300) == 60.0 and schedule.uses(300) == 300.0
    # 600 perpetuals would need 600 a minute: the round takes 75 s and uses 480.
    assert schedule.round_s(600) == 75.0 and schedule.uses(600) == 480.0
    assert schedule.uses(0) == 0.0


def test_each_perpetual_is_polled_once_a_round_at_its_slot() -> None:
    schedule = OpenInterestSchedule(every_s=60.0, weight=1, weight_per_minute=480.0)
    poller, asked, published = run_polls(
        {"BTCUSDT", "ETHUSDT", "SOLUSDT"}, schedule, answered, polls=7
    )
    assert asked == [
        (0.0, "BTCUSDT"), (20.0, "ETHUSDT"), (40.0, "SOLUSDT"),
        (60.0, "BTCUSDT"), (80.0, "ETHUSDT"), (100.0, "SOLUSDT"),
        (120.0, "BTCUSDT"),
    ]  # fmt: skip
    assert [s.symbol for s in published] == [symbol for _, symbol in asked]
    counts = poller.counts()
    assert counts.polls["published"] == 7 and counts.rounds == 2
    assert (counts.round_s, counts.weight_per_minute) == (60.0, 3.0)


def test_a_refused_poll_is_counted_and_the_next_keeps_its_time() -> None:
    def refuse_eth(symbol: str, clock: FakeTime) -> None:
        if symbol == "ETHUSDT":
            clock.now += 7.0  # the client held for a 429's Retry-After, then gave up
            raise BinanceUnavailable("openInterest failed after 6 attempts; last: HTTP 429")

    schedule = OpenInterestSchedule(every_s=30.0, weight=1, weight_per_minute=480.0)
    poller, asked, published = run_polls({"BTCUSDT", "ETHUSDT"}, schedule, refuse_eth, polls=4)
    assert asked == [(0.0, "BTCUSDT"), (15.0, "ETHUSDT"), (30.0, "BTCUSDT"), (45.0, "ETHUSDT")]
    assert [s.symbol for s in published] == ["BTCUSDT", "BTCUSDT"]
    assert poller.counts().polls["failed"] == 2


def test_a_hold_longer_than_the_round_skips_its_slots_instead_of_a_burst() -> None:
    def long_hold(symbol: str, clock: FakeTime) -> None:
        if symbol == "BTCUSDT" and clock.now == 0.0:
            clock.now += 100.0  # a 429 with a long Retry-After, answered at last

    schedule = OpenInterestSchedule(every_s=60.0, weight=1, weight_per_minute=480.0)
    symbols = {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    poller, asked, _ = run_polls(symbols, schedule, long_hold, polls=3)
    # ETH and SOL's slots of the first round went by during the hold: skipped. The next
    # round begins when the hold ends, its polls spread again.
    assert asked == [(0.0, "BTCUSDT"), (100.0, "BTCUSDT"), (120.0, "ETHUSDT")]
    assert poller.counts().polls["missed"] == 2


def test_a_ban_pauses_the_polls_until_it_ends() -> None:
    def banned_once(symbol: str, clock: FakeTime) -> None:
        if clock.now == 0.0:
            until = datetime.fromtimestamp(clock.wall() + 90.0, UTC)
            raise BinanceBanned(until, "418")

    schedule = OpenInterestSchedule(every_s=60.0, weight=1, weight_per_minute=480.0)
    poller, asked, _ = run_polls({"BTCUSDT", "ETHUSDT"}, schedule, banned_once, polls=3)
    assert asked == [(0.0, "BTCUSDT"), (90.0, "BTCUSDT"), (120.0, "ETHUSDT")]
    counts = poller.counts()
    assert counts.polls["failed"] == 1 and counts.polls["missed"] == 1


def test_a_symbol_no_longer_followed_is_not_polled_and_a_new_one_joins_the_next_round() -> None:
    symbols = {"BTCUSDT", "ETHUSDT"}

    def delist_eth(symbol: str, clock: FakeTime) -> None:
        if symbol == "BTCUSDT" and clock.now == 0.0:
            symbols.discard("ETHUSDT")
            symbols.add("SOLUSDT")

    schedule = OpenInterestSchedule(every_s=60.0, weight=1, weight_per_minute=480.0)
    _, asked, _ = run_polls(symbols, schedule, delist_eth, polls=3)
    assert asked == [(0.0, "BTCUSDT"), (60.0, "BTCUSDT"), (90.0, "SOLUSDT")]


def test_stopping_ends_the_wait_for_the_next_slot() -> None:
    clock = FakeTime()
    parked = asyncio.Event()
    asked: list[str] = []

    async def park(seconds: float) -> None:
        parked.set()
        await asyncio.sleep(3600)

    async def fetch(symbol: str) -> OpenInterest:
        asked.append(symbol)
        return sample(symbol, clock.now)

    async def main() -> None:
        schedule = OpenInterestSchedule(every_s=60.0, weight=1, weight_per_minute=480.0)
        timing = Timing(monotonic=clock.monotonic, sleep=park, wall=clock.wall)
        poller = OpenInterestPoller(
            fetch, lambda s: None, lambda: {"BTCUSDT", "ETHUSDT"}, schedule, timing=timing
        )
        running = asyncio.create_task(poller.run())
        await asyncio.wait_for(parked.wait(), 5)  # BTC polled, waiting for ETH's slot
        poller.stop()
        await asyncio.wait_for(running, 5)

    asyncio.run(main())
    assert asked == ["BTCUSDT"]


def test_the_poll_settings_are_validated() -> None:
    defaults = IngestSettings()
    assert (defaults.open_interest_every_s, defaults.open_interest_share) == (60.0, 0.25)
    assert defaults.mark_missing_after_s == 30.0 and defaults.open_interest
    for bad in ({"open_interest_every_s": 0}, {"open_interest_share": 0},
                {"open_interest_share": 0.9}, {"mark_missing_after_s": -1}):  # fmt: skip
        with pytest.raises(ValidationError):
            IngestSettings(**bad)
