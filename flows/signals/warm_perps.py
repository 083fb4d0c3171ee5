"""Warm start of the perpetuals metrics: each perpetual's `PerpState` read back from ClickHouse.

A restarted signals flow shows the same mark, funding, open interest and liquidation
figures at once: it reads each symbol's newest mark of the last `MARK_HORIZON_MS`
(`marks_1s`), its newest settled funding (`funding`), its open-interest samples
(`open_interest`) and liquidations (`liquidations`) of the last day plus the open
interest's reference slack, all FINAL. Records the topics deliver again on top are
repeats: a mark or funding no newer than the held one, an open-interest sample of a held
time, a liquidation of a held time and side change nothing.

Small reads (400 perpetuals: 400 marks and fundings, about 600 k open-interest samples at
one a minute, and the day's liquidations), one query per table.
"""

from __future__ import annotations

from typing import Any

from flows.signals.perps import KEEP_MS, PerpState

MARK_HORIZON_MS = 3_600_000
"""A stored mark older than this (before the start) is not loaded: the next live one
will be along within a second, and an hour-old mark is no figure to show."""

_MARKS_SQL = """
SELECT exchange, market, symbol, toUnixTimestamp64Milli(event_time),
    toFloat64(mark_price), toFloat64(index_price),
    if(isNull(funding_rate), NULL, toFloat64(assumeNotNull(funding_rate))),
    if(isNull(next_funding_time), 0, toUnixTimestamp64Milli(assumeNotNull(next_funding_time)))
FROM {db:Identifier}.marks_1s FINAL
WHERE time >= fromUnixTimestamp64Milli({since:Int64})
    AND time <= fromUnixTimestamp64Milli({to:Int64})
ORDER BY exchange, market, symbol, time DESC
LIMIT 1 BY exchange, market, symbol
"""

_FUNDING_SQL = """
SELECT exchange, market, symbol, toUnixTimestamp64Milli(funding_time), toFloat64(funding_rate)
FROM {db:Identifier}.funding FINAL
WHERE funding_time <= fromUnixTimestamp64Milli({to:Int64})
ORDER BY exchange, market, symbol, funding_time DESC
LIMIT 1 BY exchange, market, symbol
"""

# Open-interest samples and liquidations of a window, each symbol's oldest first.
_WINDOW_SQL = """
SELECT exchange, market, symbol, toUnixTimestamp64Milli(time), {figures}
FROM {db:Identifier}.{table} FINAL
WHERE time >= fromUnixTimestamp64Milli({since:Int64})
    AND time <= fromUnixTimestamp64Milli({to:Int64})
ORDER BY exchange, market, symbol, time
"""
_OPEN_INTEREST_SQL = _WINDOW_SQL.replace("{table}", "open_interest").replace(
    "{figures}", "toFloat64(open_interest)"
)
_LIQUIDATIONS_SQL = _WINDOW_SQL.replace("{table}", "liquidations").replace(
    "{figures}", "side = 'SELL', toFloat64(quote_volume)"
)


def read_perps(client: Any, database: str, as_of_ms: int) -> dict[str, PerpState]:
    """Every perpetual's perpetuals state as of `as_of_ms`, from the perpetuals tables.

    Args:
        client: clickhouse-connect client.
        database: Database holding `marks_1s`, `funding`, `open_interest` and
            `liquidations`.
        as_of_ms: Now (exchange time); nothing later is read.

    Returns:
        A state per symbol key (`exchange:market:symbol`) that has any.
    """
    states: dict[str, PerpState] = {}

    def rows(sql: str, since_ms: int) -> list[tuple[Any, ...]]:
        params = {"db": database, "since": since_ms, "to": as_of_ms}
        return client.query(sql, parameters=params).result_rows

    def state(exchange: str, market: str, symbol: str) -> PerpState:
        key = f"{exchange}:{market}:{symbol}"
        held = states.get(key)
        if held is None:
            held = states[key] = PerpState()
        return held

    for exchange, market, symbol, t, mark, index, rate, next_ms in rows(
        _MARKS_SQL, as_of_ms - MARK_HORIZON_MS
    ):
        state(exchange, market, symbol).set_mark(t, mark, index, rate, next_ms)
    for exchange, market, symbol, t, rate in rows(_FUNDING_SQL, 0):
        state(exchange, market, symbol).set_funding(t, rate)
    since = as_of_ms - KEEP_MS
    for exchange, market, symbol, t, contracts in rows(_OPEN_INTEREST_SQL, since):
        state(exchange, market, symbol).set_open_interest(t, contracts)
    for exchange, market, symbol, t, is_long, quote in rows(_LIQUIDATIONS_SQL, since):
        state(exchange, market, symbol).set_liquidation(t, bool(is_long), quote)
    return states
