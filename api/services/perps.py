"""Perpetuals history for charts: open interest, funding and liquidations of one USDⓈ-M symbol.

Read from the tables of ``infra/clickhouse/012_perps.sql`` (each a ReplacingMergeTree,
read with FINAL). Open interest and the funding estimate are sampled far more often than
a chart draws bars, and a chart's panes share the candles' time scale: both come one
point per bar of the chart's interval (the bar's last sample), timed at the bar's open
like the candles. Settled funding and liquidations are events, returned as they are.

Every answer holds the latest points of the range asked for, oldest first; `more` says
that earlier ones in the range were left out (ask again with ``end`` = the first time
received), as a candle page without a start does.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, Field

from api.errors import InvalidRequest, NotFound
from api.services.candles import (
    INTERVAL_MS,
    HistoryInterval,
    check_query,
    decimal_text,
    exchange_of,
)
from api.services.candles import MAX_LIMIT as MAX_LIMIT
from api.services.times import MAX_TIME_MS
from api.store import Store
from schemas.topics import symbol_key

PERP_MARKET: Final = "usdm"
"""The one market with perpetuals data."""

DEFAULT_LIMIT = 500

_KEY = "exchange = {exchange:String} AND market = {market:String} AND symbol = {symbol:String}"


def _range(column: str) -> str:
    return (
        f"{column} >= fromUnixTimestamp64Milli({{start:Int64}}, 'UTC')"
        f" AND {column} < fromUnixTimestamp64Milli({{end:Int64}}, 'UTC')"
    )


def _bucket(column: str) -> str:
    # Bars from the epoch, as the candles' (4h and 1d start at 00:00 UTC like Binance's).
    return f"intDiv(toUnixTimestamp64Milli({column}), {{step:Int64}}) * {{step:Int64}}"


# The last sample of each bar; the tuple keeps a sample's value with its contracts.
_OPEN_INTEREST_SQL = f"""
SELECT {_bucket("time")} AS bar, toUnixTimestamp64Milli(max(time)),
       argMax(tuple(toString(open_interest), toString(open_interest_value)), time)
FROM {{database:Identifier}}.open_interest FINAL
WHERE {_KEY} AND {_range("time")}
GROUP BY bar ORDER BY bar DESC LIMIT {{limit:UInt32}}
"""

# The last mark price of each bar, to value the polled samples (the poll gives none).
_MARKS_SQL = f"""
SELECT {_bucket("time")} AS bar, toString(argMax(mark_price, time))
FROM {{database:Identifier}}.marks_1s FINAL
WHERE {_KEY} AND {_range("time")}
GROUP BY bar
"""

_SETTLED_SQL = f"""
SELECT toUnixTimestamp64Milli(funding_time), toString(funding_rate), toString(mark_price), source
FROM {{database:Identifier}}.funding FINAL
WHERE {_KEY} AND {_range("funding_time")}
ORDER BY funding_time DESC LIMIT {{limit:UInt32}}
"""

_ESTIMATES_SQL = f"""
SELECT {_bucket("time")} AS bar, toString(argMax(funding_rate, time))
FROM {{database:Identifier}}.marks_1s FINAL
WHERE {_KEY} AND {_range("time")} AND funding_rate IS NOT NULL
GROUP BY bar ORDER BY bar DESC LIMIT {{limit:UInt32}}
"""

# The latest second before the end; of its rows (before a merge), the latest event.
_CURRENT_SQL = f"""
SELECT toUnixTimestamp64Milli(time), toString(mark_price), toString(index_price),
       toString(funding_rate), toUnixTimestamp64Milli(next_funding_time)
FROM {{database:Identifier}}.marks_1s
WHERE {_KEY} AND time < fromUnixTimestamp64Milli({{end:Int64}}, 'UTC')
ORDER BY time DESC, event_time DESC LIMIT 1
"""

_LIQUIDATIONS_SQL = f"""
SELECT toUnixTimestamp64Milli(time), side, toString(price), toString(avg_price),
       toString(filled_qty), toString(quote_volume)
FROM {{database:Identifier}}.liquidations FINAL
WHERE {_KEY} AND {_range("time")}
ORDER BY time DESC, side LIMIT {{limit:UInt32}}
"""

# A bar's mark-price OHLC: from the live seconds where there are any, else (for 1m bars
# and longer) from the exchange's mark-price klines that the backfill wrote.
_MARK_BARS_SQL = f"""
SELECT bar, argMax(o, rank), argMax(h, rank), argMax(l, rank), argMax(c, rank),
       if(max(rank) = 2, 'marks', 'klines')
FROM (
    SELECT {_bucket("time")} AS bar, 2 AS rank, toString(argMin(mark_price, time)) AS o,
           toString(max(mark_price)) AS h, toString(min(mark_price)) AS l,
           toString(argMax(mark_price, time)) AS c
    FROM {{database:Identifier}}.marks_1s FINAL
    WHERE {_KEY} AND {_range("time")}
    GROUP BY bar
    UNION ALL
    SELECT {_bucket("open_time")} AS bar, 1 AS rank, toString(argMin(open, open_time)),
           toString(max(high)), toString(min(low)), toString(argMax(close, open_time))
    FROM {{database:Identifier}}.mark_klines_1m FINAL
    WHERE {_KEY} AND {_range("open_time")} AND {{step:Int64}} >= 60000
    GROUP BY bar
)
GROUP BY bar ORDER BY bar DESC LIMIT {{limit:UInt32}}
"""

# Whether the symbol is known at all: an empty answer for a known one is not a 404.
_KNOWN_SQL = f"""
SELECT 1 FROM {{database:Identifier}}.symbols WHERE {_KEY} LIMIT 1
UNION ALL SELECT 1 FROM {{database:Identifier}}.marks_1s WHERE {_KEY} LIMIT 1
UNION ALL SELECT 1 FROM {{database:Identifier}}.open_interest WHERE {_KEY} LIMIT 1
UNION ALL SELECT 1 FROM {{database:Identifier}}.funding WHERE {_KEY} LIMIT 1
UNION ALL SELECT 1 FROM {{database:Identifier}}.candles_1m WHERE {_KEY} LIMIT 1
"""

UNDERCOUNT_NOTE: Final = (
    "Binance publishes at most one liquidation per symbol per second (the latest of that "
    "second): these undercount the true liquidations."
)


Item = TypeVar("Item", bound=BaseModel)


class PerpSeries(BaseModel):
    """What every perpetuals answer names: the symbol and the bars its points are timed at."""

    exchange: str
    market: Literal["usdm"]
    symbol: str
    interval: HistoryInterval = Field(description="The bars of the chart the points are for.")
    more: bool = Field(
        description="Earlier points in the range were left out: ask again with `end` = "
        "the first time received."
    )


class OpenInterestPoint(BaseModel):
    """A bar's open interest: its last sample."""

    time_ms: int = Field(description="Open time of the bar (ms), as the candles'.")
    sample_ms: int = Field(description="Exchange time of the sample (ms).")
    open_interest: str = Field(description="Open contracts, in the base asset (exact decimal).")
    open_interest_value: str | None = Field(
        description="Their value in the quote asset: the exchange's own when it gave one "
        "(history), else the contracts at the bar's last mark price; null without either."
    )


class OpenInterestSeries(PerpSeries):
    """A symbol's open interest, one point per bar with samples, oldest first."""

    points: list[OpenInterestPoint] = Field(description="One per bar with samples.")


class SettledFunding(BaseModel):
    """One settled funding time and the rate that applied."""

    funding_time_ms: int
    funding_rate: str = Field(description="A fraction: longs pay shorts when positive.")
    mark_price: str | None
    source: str = Field(description="exchange (authoritative), stream or sim.")


class FundingEstimate(BaseModel):
    """The funding-rate estimate of a bar: the last one published in it."""

    time_ms: int = Field(description="Open time of the bar (ms).")
    funding_rate: str


class CurrentFunding(BaseModel):
    """The latest mark-price update before the end of the range."""

    time_ms: int = Field(description="The second it belongs to (ms).")
    mark_price: str
    index_price: str
    funding_rate: str | None = Field(description="The estimate of the next funding.")
    next_funding_time_ms: int | None


class FundingSeries(PerpSeries):
    """A symbol's funding: settled rates, the estimate per bar, and the latest estimate.

    `more` concerns the estimates (the busier of the two lists).
    """

    settled: list[SettledFunding] = Field(description="Settled funding times, oldest first.")
    estimates: list[FundingEstimate] = Field(description="One per bar, oldest first.")
    current: CurrentFunding | None


class LiquidationOut(BaseModel):
    """One liquidation order as Binance sampled it."""

    time_ms: int
    side: Literal["BUY", "SELL"] = Field(description="SELL liquidated a long, BUY a short.")
    price: str = Field(description="Order (bankruptcy) price.")
    avg_price: str
    filled_qty: str
    quote_volume: str = Field(description="filled_qty × avg_price, exact.")


class LiquidationSeries(PerpSeries):
    """A symbol's liquidations in the range, oldest first."""

    liquidations: list[LiquidationOut]
    note: str = Field(default=UNDERCOUNT_NOTE, description="What the stream leaves out.")


class MarkBar(BaseModel):
    """A bar of the mark price."""

    time_ms: int = Field(description="Open time of the bar (ms).")
    open: str
    high: str
    low: str
    close: str
    source: Literal["marks", "klines"] = Field(
        description="marks: the live stream's seconds (kept 30 days); klines: Binance's "
        "1m mark-price klines, from the backfill."
    )


class MarkSeries(PerpSeries):
    """A symbol's mark price per bar, oldest first."""

    bars: list[MarkBar] = Field(description="One per bar with a mark price.")


@dataclass
class PerpQuery:
    """A perpetuals query: the symbol, the chart's bars and the time range ``[start, end)``
    (ms), checked when made.

    Raises:
        InvalidRequest: On a market other than usdm, a malformed name, an unknown
            interval, a limit out of range or an empty time range.
    """

    symbol: str
    exchange: str | None = None
    market: str = PERP_MARKET
    interval: str = "1m"
    start: int = 0
    end: int = MAX_TIME_MS
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if self.market != PERP_MARKET:
            raise InvalidRequest(
                f"market: {self.market[:20]!r} has no perpetuals data; only {PERP_MARKET} has"
            )
        check_query(self.exchange or "binance", self.market, self.symbol, self.interval, self.limit)
        for name, value in (("start", self.start), ("end", self.end)):
            if not 0 <= value <= MAX_TIME_MS:
                raise InvalidRequest(f"{name}: {value} is outside 1970 .. 2200")
        if self.start >= self.end:
            raise InvalidRequest(f"start ({self.start}) must be before end ({self.end})")

    async def params(self, store: Store) -> dict[str, Any]:
        """The query's bound parameters, the exchange resolved when none was given."""
        if self.exchange is None:
            self.exchange = await exchange_of(store, self.market, self.symbol)
        return {
            "database": store.database,
            "exchange": self.exchange,
            "market": self.market,
            "symbol": self.symbol,
            "start": self.start,
            "end": self.end,
            "step": INTERVAL_MS[self.interval],
            "limit": self.limit + 1,  # one more says whether there is more
        }

    def names(self) -> dict[str, Any]:
        """The fields every answer starts with (call after `params`)."""
        return {
            "exchange": self.exchange,
            "market": self.market,
            "symbol": self.symbol,
            "interval": self.interval,
        }


async def _latest(
    store: Store, sql: str, params: dict[str, Any], query: PerpQuery
) -> tuple[list[tuple[Any, ...]], bool]:
    """Rows of a newest-first query, oldest first, and whether more were left out; a
    symbol known nowhere is a 404 (an empty answer for a known one is not)."""
    _, rows = await store.query(sql, params)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    rows.reverse()
    if not rows:
        _, known = await store.query(_KNOWN_SQL, params)
        if not known:
            raise NotFound(
                f"no perpetual {symbol_key(params['exchange'], PERP_MARKET, query.symbol)}"
            )
    return rows, more


def _nullable(text: str | None) -> str | None:
    # toString of a NULL Nullable gives NULL (None); keep it so.
    return None if text is None or text == "\\N" else text


async def open_interest(store: Store, query: PerpQuery) -> OpenInterestSeries:
    """The open interest of each bar of the range (its last sample), latest bars first
    kept, oldest first returned; valued at the bar's last mark when the sample has no
    value of its own.

    Raises:
        NotFound: For a symbol known nowhere.
        InvalidRequest: `ambiguous_symbol` when no exchange is given and several have it.
    """
    params = await query.params(store)
    rows, more = await _latest(store, _OPEN_INTEREST_SQL, params, query)
    marks: dict[int, str] = {}
    if rows and any(_nullable(row[2][1]) is None for row in rows):
        _, found = await store.query(
            _MARKS_SQL, {**params, "start": max(params["start"], rows[0][0])}
        )
        marks = {bar: mark for bar, mark in found}
    points = []
    for bar, sample, (contracts, stored_value) in rows:
        value = _nullable(stored_value)
        if value is None and bar in marks:
            value = decimal_text(Decimal(contracts) * Decimal(marks[bar]))
        points.append(
            OpenInterestPoint(
                time_ms=bar, sample_ms=sample, open_interest=contracts, open_interest_value=value
            )
        )
    return OpenInterestSeries(**query.names(), points=points, more=more)


async def funding(store: Store, query: PerpQuery) -> FundingSeries:
    """Settled funding in the range, the estimate of each bar, and the latest estimate
    before the end.

    Raises:
        NotFound: For a symbol known nowhere.
        InvalidRequest: `ambiguous_symbol` when no exchange is given and several have it.
    """
    params = await query.params(store)
    estimates, more = await _latest(store, _ESTIMATES_SQL, params, query)
    _, settled = await store.query(_SETTLED_SQL, params)
    settled = settled[: query.limit]
    settled.reverse()
    _, current = await store.query(_CURRENT_SQL, params)
    now = None
    if current:
        time_ms, mark, index, rate, next_time = current[0]
        now = CurrentFunding(
            time_ms=time_ms,
            mark_price=mark,
            index_price=index,
            funding_rate=_nullable(rate),
            next_funding_time_ms=next_time,
        )
    return FundingSeries(
        **query.names(),
        settled=[
            SettledFunding(
                funding_time_ms=t, funding_rate=rate, mark_price=_nullable(mark), source=source
            )
            for t, rate, mark, source in settled
        ],
        estimates=[FundingEstimate(time_ms=bar, funding_rate=rate) for bar, rate in estimates],
        current=now,
        more=more,
    )


async def liquidations(store: Store, query: PerpQuery) -> LiquidationSeries:
    """The liquidations of the range, the latest `limit` kept, oldest first.

    Raises:
        NotFound: For a symbol known nowhere.
        InvalidRequest: `ambiguous_symbol` when no exchange is given and several have it.
    """
    items, more = await _items(store, query, _LIQUIDATIONS_SQL, LiquidationOut)
    return LiquidationSeries(**query.names(), liquidations=items, more=more)


async def marks(store: Store, query: PerpQuery) -> MarkSeries:
    """The mark price of each bar of the range (open, high, low, close), latest bars kept,
    oldest first; see `liquidations` for the errors."""
    items, more = await _items(store, query, _MARK_BARS_SQL, MarkBar)
    return MarkSeries(**query.names(), bars=items, more=more)


async def _items(
    store: Store, query: PerpQuery, sql: str, model: type[Item]
) -> tuple[list[Item], bool]:
    """The latest rows of `sql` as `model`s (its fields in the query's column order),
    oldest first, and whether earlier ones were left out."""
    rows, more = await _latest(store, sql, await query.params(store), query)
    fields = list(model.model_fields)
    return [model(**dict(zip(fields, row, strict=True))) for row in rows], more
