"""History at start: what the store lacks, in what order it is fetched, and its progress."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

from flows.ingest.coverage import (
    MINUTE_MS,
    Coverage,
    Need,
    history_window,
    missing_ranges,
    most_traded_first,
    plan,
)
from flows.ingest.history import History
from flows.sources.binance.rest import Kline, RestStats
from flows.sources.binance.weight import WeightBudget
from schemas.candles import Candle
from schemas.tickers import Ticker24h

M = MINUTE_MS
T0 = 1_700_000_000_000 // M * M  # a minute start
DAY = 1440 * M


def test_the_window_is_the_last_day_up_to_the_open_minute() -> None:
    assert history_window(T0 + 30_000, 24) == (T0 - DAY, T0)
    assert history_window(T0, 1) == (T0 - 60 * M, T0)


def test_a_symbol_without_candles_lacks_the_whole_window() -> None:
    assert missing_ranges(None, T0 - DAY, T0) == [(T0 - DAY, T0)]
    assert missing_ranges(None, T0, T0) == []


def test_a_complete_symbol_lacks_nothing() -> None:
    assert missing_ranges(Coverage(T0 - DAY, T0 - M), T0 - DAY, T0) == []


def test_the_ends_and_every_hole_are_lacking_minute_for_minute() -> None:
    start, end = T0 - 100 * M, T0
    # Candles at minutes 10..19 and 25..89 of the window: 10 before, 5 between, 10 after.
    coverage = Coverage(start + 10 * M, start + 89 * M, ((start + 19 * M, start + 25 * M),))
    ranges = missing_ranges(coverage, start, end)
    assert ranges == [
        (start, start + 10 * M),
        (start + 20 * M, start + 25 * M),
        (start + 90 * M, end),
    ]
    assert Need("X", tuple(ranges)).minutes == 10 + 5 + 10


def test_the_plan_leaves_out_complete_symbols_and_fetches_new_ones_whole() -> None:
    start, end = T0 - DAY, T0
    coverage = {
        "FULL": Coverage(start, end - M),
        "LATE": Coverage(start, end - 4 * M),  # the flow had not written the last 3
    }
    needs = plan(["FULL", "LATE", "NEW", "FULL"], coverage, start, end)
    assert needs == [
        Need("LATE", ((end - 3 * M, end),)),
        Need("NEW", ((start, end),)),
    ]
    assert plan(["FULL"], coverage, start, end) == []


def ticker(symbol: str, count: int) -> Ticker24h:
    one = Decimal(1)
    return Ticker24h("binance", "usdm", symbol, T0 - DAY, T0, one, one, one, one, one, one, count)


def test_the_most_traded_symbols_come_first_those_without_a_ticker_last() -> None:
    needs = [Need(s, ((T0 - M, T0),)) for s in ("A", "B", "C", "D")]
    tickers = {"A": ticker("A", 10), "B": ticker("B", 500), "D": ticker("D", 500)}
    assert [n.symbol for n in most_traded_first(needs, tickers)] == ["B", "D", "A", "C"]


# -- a whole run, against stand-ins for the exchange, ClickHouse and Kafka ------------------


class FakeRest:
    """Serves one kline a minute for every symbol, from `first_ms` on; counts requests."""

    market = "usdm"

    def __init__(self, tickers: list[Ticker24h], first_ms: dict[str, int]) -> None:
        self.stats = RestStats()
        self.budget = WeightBudget(2400)
        self.asked: list[str] = []
        self._tickers = tickers
        self._first = first_ms

    async def tickers_24h(self) -> list[Ticker24h]:
        self.stats.requests += 1
        return self._tickers

    async def klines(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, limit: int
    ) -> list[Kline]:
        self.stats.requests += 1
        self.asked.append(symbol)
        await asyncio.sleep(0)
        lo = max(start_ms, self._first.get(symbol, start_ms))
        one = Decimal(1)
        return [
            Kline(t, one, one, one, one, one, t + M - 1, one, 1, one, one)
            for t in range(lo, min(end_ms + 1, lo + limit * M), M)
        ]


class FakeClient:
    """Holds candles_1m as (symbol, open_time) pairs; records progress rows."""

    def __init__(self, stored: dict[str, list[int]]) -> None:
        self.stored = stored
        self.progress: list[dict[str, Any]] = []

    def query(self, sql: str, parameters: dict[str, Any]) -> Any:
        rows = []
        for symbol in parameters["symbols"]:
            ts = sorted(
                t for t in self.stored.get(symbol, [])
                if parameters["start"] <= t < parameters["end"]
            )  # fmt: skip
            if ts:
                after = [a for a, b in itertools.pairwise(ts) if b - a > M]
                before = [b for a, b in itertools.pairwise(ts) if b - a > M]
                rows.append((symbol, ts[0], ts[-1], after, before))
        return type("Result", (), {"result_rows": rows})()

    def insert(self, table: str, rows: list[list[Any]], column_names: list[str], **_: Any) -> None:
        assert table == "history_progress"
        self.progress.extend(dict(zip(column_names, row, strict=True)) for row in rows)

    def raw_insert(self, table: str, columns: list[str], data: bytes, fmt: str) -> None:
        assert table.endswith(".candles_1m")
        for line in data.decode().splitlines():
            fields = dict(zip(columns, line.split("\t"), strict=True))
            assert (fields["version"], fields["source"]) == ("0", "exchange")
            self.stored.setdefault(fields["symbol"], []).append(int(fields["open_time"]))


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[Candle] = []
        self.tickers_published: list[Ticker24h] = []

    def candles(self, candles: list[Candle]) -> None:
        self.published.extend(candles)

    def tickers(self, tickers: Any) -> None:
        self.tickers_published.extend(tickers)


def run_history(rest: FakeRest, client: FakeClient, symbols: set[str], **kw: Any) -> History:
    history = History(
        rest,  # type: ignore[arg-type]
        client,  # type: ignore[arg-type]
        "db",
        FakePublisher(),  # type: ignore[arg-type]
        clock=lambda: (T0 + 30_000) / 1000,
        **kw,
    )
    asyncio.run(history.run(symbols))
    return history


def test_a_fresh_store_gets_every_minute_once_most_traded_first_with_progress() -> None:
    symbols = {"AAA", "BBB", "CCC"}
    tickers = [ticker("AAA", 5), ticker("BBB", 900), ticker("CCC", 50), ticker("ZZZ", 10**6)]
    rest = FakeRest(tickers, {})
    client = FakeClient({})
    history = run_history(rest, client, symbols, concurrency=1)
    for symbol in symbols:
        assert sorted(client.stored[symbol]) == list(range(T0 - DAY, T0, M))
    # One at a time: the order asked is the order of trades, the unfollowed one left out.
    assert list(dict.fromkeys(rest.asked)) == ["BBB", "CCC", "AAA"]
    publisher = history._publisher
    assert {t.symbol for t in publisher.tickers_published} == symbols  # type: ignore[attr-defined]
    assert len(publisher.published) == 3 * 1440  # type: ignore[attr-defined]
    report = history.report
    assert (report.total, report.done, report.failed, report.candles) == (3, 3, 0, 3 * 1440)
    first, last = client.progress[0], client.progress[-1]
    assert (first["done"], first["total"], first["finished"]) == (0, 3, 0)
    assert (last["done"], last["total"], last["finished"]) == (3, 3, 1)


def test_a_restart_on_a_complete_store_fetches_nothing_not_even_tickers() -> None:
    symbols = {"AAA", "BBB"}
    stored = {s: list(range(T0 - DAY, T0, M)) for s in symbols}
    rest = FakeRest([ticker("AAA", 1)], {})
    client = FakeClient(stored)
    history = run_history(rest, client, symbols)
    assert rest.stats.requests == 0
    assert history.report.total == 0
    assert [(p["done"], p["total"], p["finished"]) for p in client.progress] == [(0, 0, 1)]


def test_only_the_minutes_missing_are_asked_for() -> None:
    stored = {"AAA": [t for t in range(T0 - DAY, T0, M) if not T0 - 90 * M <= t < T0 - 30 * M]}
    rest = FakeRest([], {})
    client = FakeClient(stored)
    history = run_history(rest, client, {"AAA"})
    assert history.report.minutes == 60
    assert history.report.candles == 60
    assert sorted(client.stored["AAA"]) == list(range(T0 - DAY, T0, M))
