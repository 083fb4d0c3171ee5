"""Signal history: past signal occurrences from ClickHouse ``signals``, newest first."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, Field

from api.errors import InvalidRequest
from api.services.candles import EXCHANGE_NAME, MARKETS, SYMBOL_NAME
from api.services.times import MAX_TIME_MS
from api.store import Store
from schemas.signals import Timeframe
from schemas.topics import symbol_key

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000

_RULE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DIRECTIONS = ("up", "down")

_COLUMNS = (
    "exchange, market, symbol, name, timeframe, toUnixTimestamp64Milli(time), direction,"
    " price, value, details"
)

# Each criterion a caller may give, as a fixed condition on its bound parameter: the SQL
# text is only ever these, and every value reaches ClickHouse bound.
_CONDITIONS: Final[dict[str, str]] = {
    "exchange": "exchange = {exchange:String}",
    "market": "market = {market:String}",
    "symbol": "symbol = {symbol:String}",
    "name": "name = {name:String}",
    "timeframe": "timeframe = {timeframe:String}",
    "direction": "direction = {direction:String}",
    "start": "time >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')",
    "end": "time < fromUnixTimestamp64Milli({end:Int64}, 'UTC')",
}


class SignalOut(BaseModel):
    """One signal occurrence (`schemas.signals.Signal`) as the API shows it."""

    key: str = Field(description="`exchange:market:symbol`.")
    exchange: str
    market: Literal["spot", "usdm"]
    symbol: str
    name: str = Field(description="The rule that fired: volume_spike, breakout, ema_cross, ...")
    timeframe: Timeframe
    time_ms: int = Field(description="Close of the candle that fired it (ms since the epoch).")
    direction: Literal["up", "down"]
    price: float = Field(description="Close of that candle.")
    value: float = Field(description="The rule's headline figure (e.g. relative volume).")
    details: dict[str, float] = Field(description="The rule's other figures.")


class SignalPage(BaseModel):
    """Signals, newest first."""

    signals: list[SignalOut]
    more: bool = Field(
        description="More signals match: narrow the range, or ask again with `end` = the "
        "oldest time_ms received (signals at that very millisecond come again)."
    )


async def signals(
    store: Store,
    *,
    exchange: str | None = None,
    market: str | None = None,
    symbol: str | None = None,
    name: str | None = None,
    timeframe: str | None = None,
    direction: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> SignalPage:
    """The newest signals that match every criterion given.

    Args:
        store: The process's ClickHouse store.
        exchange: Only this exchange.
        market: Only ``spot`` or ``usdm``.
        symbol: Only this symbol (as the exchange spells it).
        name: Only this rule, e.g. ``volume_spike``.
        timeframe: Only this timeframe, e.g. ``5m``.
        direction: Only ``up`` or ``down``.
        start_ms: Signals at or after this time (ms).
        end_ms: Signals before this time (ms).
        limit: At most this many, 1 to `MAX_LIMIT`.

    Returns:
        Up to `limit` signals, newest first (ties in key order).

    Raises:
        InvalidRequest: On a malformed criterion, a limit out of range, or an empty range.
    """
    given: dict[str, Any] = {
        "exchange": _checked("exchange", exchange, EXCHANGE_NAME.fullmatch),
        "market": _checked("market", market, MARKETS.__contains__),
        "symbol": _checked("symbol", symbol, SYMBOL_NAME.fullmatch),
        "name": _checked("name", name, _RULE.fullmatch),
        "timeframe": _checked("timeframe", timeframe, get_args(Timeframe).__contains__),
        "direction": _checked("direction", direction, _DIRECTIONS.__contains__),
        "start": start_ms,
        "end": end_ms,
    }
    for bound in ("start", "end"):
        value = given[bound]
        if value is not None and not 0 <= value <= MAX_TIME_MS:
            raise InvalidRequest(f"{bound}: {value} is outside 1970 .. 2200")
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise InvalidRequest(f"start ({start_ms}) must be before end ({end_ms})")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit: {limit} is not between 1 and {MAX_LIMIT}")
    params = {k: v for k, v in given.items() if v is not None}
    where = " AND ".join(_CONDITIONS[k] for k in params) or "1"
    sql = f"""
SELECT {_COLUMNS}
FROM {{database:Identifier}}.signals FINAL
WHERE {where}
ORDER BY time DESC, exchange, market, symbol, name, timeframe
LIMIT {{limit:UInt32}}
"""
    _, rows = await store.query(sql, {**params, "database": store.database, "limit": limit + 1})
    return SignalPage(signals=[_signal(row) for row in rows[:limit]], more=len(rows) > limit)


def _checked(field: str, value: str | None, valid: Callable[[str], object]) -> str | None:
    """`value` when None or valid, else an InvalidRequest naming `field`."""
    if value is None or valid(value):
        return value
    raise InvalidRequest(f"{field}: {value[:40]!r} is not a valid {field}")


def _signal(row: tuple[Any, ...]) -> SignalOut:
    exchange, market, symbol, name, timeframe, time_ms, direction, price, value, details = row
    return SignalOut(
        key=symbol_key(exchange, market, symbol),
        exchange=exchange,
        market=market,
        symbol=symbol,
        name=name,
        timeframe=timeframe,
        time_ms=time_ms,
        direction=direction,
        price=price,
        value=value,
        details=dict(details),
    )
