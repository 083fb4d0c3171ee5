"""One REST weight budget for gap repair and history: repair first, history with the rest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from flows.sources.binance.rest import BinanceBanned, BinanceRest
from flows.sources.binance.weight import WeightBudget, WeightGate

MINUTE_START = 1_000_020.0  # a multiple of 60


class Clock:
    """A fake clock: sleepers wake when the test moves it past the time they asked for."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, woken))
        await woken

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [f for t, f in self.sleepers if t <= self.now]
        self.sleepers = [(t, f) for t, f in self.sleepers if t > self.now]
        for woken in due:  # in the order they went to sleep
            woken.set_result(None)
        for _ in range(20):
            await asyncio.sleep(0)


def gate(limit: int = 100, reserve: float = 0.25) -> tuple[WeightGate, Clock]:
    clock = Clock(MINUTE_START + 10)
    budget = WeightBudget(limit, safety=0.8, clock=clock)
    return WeightGate(budget, reserve, sleep=clock.sleep), clock


def test_history_leaves_the_reserve_so_a_repair_goes_at_once_mid_minute() -> None:
    g, clock = gate()  # cap 80, reserve 20
    assert g.reserve == 20

    async def main() -> None:
        for _ in range(3):
            assert await g.admit(20, background=True) == 0
        # 60 used: a fourth history request would eat the reserve, so it waits ...
        history = asyncio.create_task(g.admit(20, background=True))
        await asyncio.sleep(0)
        assert not history.done()
        # ... while a repair of the same weight needs no wait at all.
        assert await g.admit(20) == 0
        assert g.budget.used == 80
        await clock.advance(50)  # the rest of the minute
        assert await history == pytest.approx(50.0)
        assert g.budget.used == 20  # the history request went into the next minute

    asyncio.run(main())


def test_history_waiting_for_room_lets_a_later_repair_go_first() -> None:
    g, clock = gate()
    order: list[str] = []

    async def request(name: str, weight: int, background: bool) -> None:
        await g.admit(weight, background=background)
        order.append(name)

    async def main() -> None:
        await g.admit(80)  # the minute's cap is spent
        # History asks first and waits for the next minute; then a repair asks and waits.
        history = asyncio.create_task(request("history", 20, True))
        await asyncio.sleep(0)
        repair = asyncio.create_task(request("repair", 40, False))
        await asyncio.sleep(0)
        assert g.urgent_waiting == 1
        await clock.advance(50)
        await asyncio.gather(repair, history)

    asyncio.run(main())
    # History woke first, but the repair was admitted first.
    assert order == ["repair", "history"]
    assert g.budget.used == 60


def test_history_alone_uses_all_but_the_reserve_each_minute() -> None:
    g, clock = gate(limit=6000)  # spot: cap 4800, reserve 1200

    async def main() -> None:
        for _ in range(1800):  # 3,600 weight of spot klines pages
            assert await g.admit(2, background=True) == 0
        assert g.budget.used == 3600
        page = asyncio.create_task(g.admit(2, background=True))
        await asyncio.sleep(0)
        assert not page.done()  # the 1,801st page would have taken from the reserve
        await clock.advance(50)
        await page
        assert g.budget.used == 2

    asyncio.run(main())


def test_the_history_client_shares_the_ban_and_the_budget() -> None:
    async def main() -> None:
        async with BinanceRest("usdm", "http://127.0.0.1:9") as rest:
            history = rest.background()
            assert history.gate is rest.gate and history.budget is rest.budget
            until = datetime.now(UTC).timestamp() + 120
            rest.gate.banned_until = until
            assert history.banned_until is not None
            with pytest.raises(BinanceBanned):
                await history.klines("BTCUSDT", "1m")
            assert history.stats.requests == 0

    asyncio.run(main())
