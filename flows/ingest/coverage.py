"""The 1m candles a fresh store lacks, symbol by symbol, and in what order to fetch them.

The rules are pure (`plan`, `missing_ranges`, `most_traded_first`); `stored_coverage`
reads what candles_1m holds in one query. `flows.ingest.history` fetches what they say.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from clickhouse_connect.driver.client import Client

from flows.sources.binance.klines import EXCHANGE
from schemas.tickers import Ticker24h
from schemas.trades import Market

MINUTE_MS = 60_000

Range = tuple[int, int]
"""Open times ``[start_ms, end_ms)`` of 1m candles."""


class Coverage(NamedTuple):
    """The 1m candles a symbol has in a window.

    Attributes:
        first_ms: Open time of its first candle in the window.
        last_ms: Open time of its last one.
        holes: Each run of missing minutes between them, as (open time of the candle
            before it, open time of the candle after it), in time order.
    """

    first_ms: int
    last_ms: int
    holes: tuple[Range, ...] = ()


@dataclass(frozen=True)
class Need:
    """The minutes one symbol lacks.

    Attributes:
        symbol: The exchange symbol.
        ranges: Missing open times, ``[start_ms, end_ms)`` each, in time order.
    """

    symbol: str
    ranges: tuple[Range, ...]

    @property
    def minutes(self) -> int:
        """How many 1m candles are missing."""
        return sum((end - start) // MINUTE_MS for start, end in self.ranges)


def history_window(now_ms: int, hours: float) -> Range:
    """The minutes history covers at `now_ms`: `hours` back to the current minute.

    The current minute is left out: it is still open, and the live candles build it.
    """
    end = now_ms // MINUTE_MS * MINUTE_MS
    return end - round(hours * 60) * MINUTE_MS, end


def missing_ranges(coverage: Coverage | None, start_ms: int, end_ms: int) -> list[Range]:
    """The ranges of ``[start_ms, end_ms)`` a symbol with `coverage` has no candle in."""
    if start_ms >= end_ms:
        return []
    if coverage is None:
        return [(start_ms, end_ms)]
    edges = [
        (start_ms - MINUTE_MS, coverage.first_ms),
        *coverage.holes,
        (coverage.last_ms, end_ms),
    ]
    out: list[Range] = []
    for before, after in edges:
        lo, hi = max(before + MINUTE_MS, start_ms), min(after, end_ms)
        if lo < hi:
            out.append((lo, hi))
    return out


def plan(
    symbols: Iterable[str], coverage: Mapping[str, Coverage], start_ms: int, end_ms: int
) -> list[Need]:
    """What each symbol lacks of ``[start_ms, end_ms)``; symbols lacking nothing are left out.

    Args:
        symbols: The followed symbols.
        coverage: What the store has, per symbol (a symbol without candles is absent).
        start_ms: First open time wanted.
        end_ms: End of the window (exclusive).

    Returns:
        One `Need` per symbol that lacks a minute, by symbol.
    """
    needs = []
    for symbol in sorted(set(symbols)):
        ranges = missing_ranges(coverage.get(symbol), start_ms, end_ms)
        if ranges:
            needs.append(Need(symbol, tuple(ranges)))
    return needs


def most_traded_first(needs: Iterable[Need], tickers: Mapping[str, Ticker24h]) -> list[Need]:
    """`needs` ordered by the exchange's 24h trade count, highest first.

    Trades, not quote volume: quote volumes in USDT, BTC or TRY do not compare. Symbols
    without a ticker come last, by name.
    """

    def key(need: Need) -> tuple[int, int, str]:
        ticker = tickers.get(need.symbol)
        return (0, -ticker.count, need.symbol) if ticker is not None else (1, 0, need.symbol)

    return sorted(needs, key=key)


# -- the store ---------------------------------------------------------------------------

# Each symbol's distinct open times in the window, sorted, reduced in ClickHouse to the
# ends and the holes: a few numbers per symbol cross the wire, not 1,440. No FINAL: any
# version of a candle means the minute is there.
_COVERAGE_SQL = """
SELECT
    symbol,
    ts[1],
    ts[-1],
    arrayFilter((a, b) -> b - a > 60000, arrayPopBack(ts), arrayPopFront(ts)),
    arrayFilter((b, a) -> b - a > 60000, arrayPopFront(ts), arrayPopBack(ts))
FROM
(
    SELECT symbol, arraySort(groupUniqArray(toUnixTimestamp64Milli(open_time))) AS ts
    FROM {db:Identifier}.candles_1m
    WHERE exchange = {exchange:String} AND market = {market:String}
        AND symbol IN {symbols:Array(String)}
        AND open_time >= fromUnixTimestamp64Milli({start:Int64})
        AND open_time < fromUnixTimestamp64Milli({end:Int64})
    GROUP BY symbol
)
"""


def stored_coverage(
    client: Client,
    database: str,
    market: Market,
    symbols: Collection[str],
    start_ms: int,
    end_ms: int,
) -> dict[str, Coverage]:
    """The 1m candles candles_1m has of each symbol with open times in ``[start_ms, end_ms)``.

    Returns:
        Per symbol that has at least one, its `Coverage`.
    """
    rows = client.query(
        _COVERAGE_SQL,
        parameters={
            "db": database,
            "exchange": EXCHANGE,
            "market": market,
            "symbols": sorted(symbols),
            "start": start_ms,
            "end": end_ms,
        },
    ).result_rows
    return {
        symbol: Coverage(
            int(first), int(last), tuple(zip(map(int, after), map(int, before), strict=True))
        )
        for symbol, first, last, after, before in rows
    }
