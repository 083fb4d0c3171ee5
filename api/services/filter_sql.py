"""The scanner filter as a parameterised ClickHouse query: the board as of a past moment."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import msgspec

from api.errors import InvalidRequest
from api.services.columns import FLAG_COLUMNS, NUMERIC_COLUMNS
from api.services.filters import Condition, MetricRef, ScanFilter
from api.services.times import iso_ms
from schemas.ranks import RankRow

SNAPSHOT_MAX_AGE_MS = 120_000
"""A symbol's last snapshot counts only this long before the moment asked for: an older
one belongs to a symbol that had stopped trading (or to a gap), not to that board."""

# The only identifiers the SQL text ever holds: RankRow's columns (not a hand-kept list)
# and the joins' columns. A user's column name is looked up here and the text written is
# ours; a user's value reaches ClickHouse only as a bound {name:Type}. A derived column
# (not stored) is its expression: the perp premium over the spot pair's snapshot `sp` of
# the same moment (api.live.board.premium_bps; a missing pair joins as price 0).
_DERIVED_SQL: dict[str, str] = {
    "premium_bps": "if(r.market = 'usdm' AND sp.price > 0, (r.price / sp.price - 1) * 10000, NULL)",
}
_COLUMNS: dict[str, str] = {
    name: _DERIVED_SQL.get(name, f"r.{name}") for name in (*NUMERIC_COLUMNS, *FLAG_COLUMNS)
}
_KEY_COLUMNS = ("exchange", "market", "symbol")
_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<="}

_SELECT = ", ".join(
    (
        *(f"r.{c} AS {c}" for c in _KEY_COLUMNS),
        "toUnixTimestamp64Milli(r.time) AS time_ms",
        *(f"{sql} AS {name}" for name, sql in _COLUMNS.items()),
        "s.base_asset AS base_asset",
        "s.quote_asset AS quote_asset",
    )
)


def _time_param(name: str) -> str:
    return f"fromUnixTimestamp64Milli({{{name}:Int64}}, 'UTC')"


def _symbol_refs(refs: tuple[str, ...], name: str, params: dict[str, Any]) -> str:
    """`r` is named by one of `refs` (keys or bare symbols), bound as `name_keys`/`_symbols`."""
    params[f"{name}_keys"] = [ref for ref in refs if ":" in ref]
    params[f"{name}_symbols"] = [ref for ref in refs if ":" not in ref]
    return (
        f"(symbol IN {{{name}_symbols:Array(String)}}"
        f" OR concat(exchange, ':', market, ':', symbol) IN {{{name}_keys:Array(String)}})"
    )


def _side_sql(side: float | MetricRef, name: str, params: dict[str, Any]) -> str:
    """A condition's right-hand side: a bound number, or a whitelisted column times a bound
    factor plus a bound offset, in the order filter_eval computes it (so both round alike)."""
    if not isinstance(side, MetricRef):
        params[name] = side
        return f"{{{name}:Float64}}"
    column = _COLUMNS[side.column]
    expression = column
    if side.factor != 1.0:
        params[f"{name}_factor"] = side.factor
        expression += f" * {{{name}_factor:Float64}}"
    if side.offset != 0.0:
        params[f"{name}_offset"] = side.offset
        expression += f" + {{{name}_offset:Float64}}"
    return f"({expression})" if expression != column else expression


def _condition_sql(condition: Condition, i: int, params: dict[str, Any]) -> str:
    """One condition, its values bound as `v<i>` (and `w<i>`, between's upper bound).

    A NULL on either side makes the comparison NULL, which WHERE, AND and OR treat as
    false, as `filter_eval` does (the filter has no NOT that would turn it true).
    """
    column = _COLUMNS[condition.column]
    low = _side_sql(condition.value, f"v{i}", params)
    if condition.value2 is not None:  # between, and only between, has one
        high = _side_sql(condition.value2, f"w{i}", params)
        return f"{column} BETWEEN {low} AND {high}"
    return f"{column} {_OPS[condition.op]} {low}"


def history_sql(f: ScanFilter, at_ms: int, database: str) -> tuple[str, dict[str, Any]]:
    """Compile a filter to a query for the board as of `at_ms`, from `rank_snapshots`.

    Each symbol's row is its last snapshot at or before `at_ms`, and not older than
    `SNAPSHOT_MAX_AGE_MS` (a perpetual's premium over spot against its spot pair's row
    chosen the same way); the filter, sort and limit then apply exactly as
    `CompiledFilter.select` applies them to live rows (nulls last, ties by key). Quote
    assets come from `symbols` (latest row, FINAL); a symbol without one fails a quote
    filter.

    Args:
        f: A validated filter.
        at_ms: The moment of the board (exchange time, ms since the epoch).
        database: The database holding `rank_snapshots` and `symbols`.

    Returns:
        The SQL text and its parameters, for `Store.query`. Its columns are RankRow's
        fields (`time_ms` for the snapshot's time) then `base_asset` and `quote_asset`
        (empty strings when unknown); `history_rows` turns its rows into RankRows.
    """
    params: dict[str, Any] = {
        "database": database,
        "at_ms": at_ms,
        "since_ms": at_ms - SNAPSHOT_MAX_AGE_MS,
        "limit": f.limit,
    }
    # What picks symbols (not their metrics) is known before the latest row is found,
    # so it narrows the scan; thresholds must wait for the latest row of each symbol.
    scope = [f"time <= {_time_param('at_ms')}", f"time >= {_time_param('since_ms')}"]
    if f.markets:
        params["markets"] = list(f.markets)
        scope.append("market IN {markets:Array(String)}")
    if f.exchanges:
        params["exchanges"] = list(f.exchanges)
        scope.append("exchange IN {exchanges:Array(String)}")
    if f.watch:
        scope.append(_symbol_refs(f.watch, "watch", params))
    if f.ignore:
        scope.append("NOT " + _symbol_refs(f.ignore, "ignore", params))

    where = [_COLUMNS[flag] if on else f"NOT {_COLUMNS[flag]}" for flag, on in f.flags().items()]
    number = itertools.count()  # v0, v1 ...: the conditions, the band's, then the groups'
    where.extend(_condition_sql(c, next(number), params) for c in f.all_conditions())
    where.extend(
        "(" + " OR ".join(_condition_sql(c, next(number), params) for c in group.any) + ")"
        for group in f.groups
    )
    if f.quotes:
        params["quotes"] = list(f.quotes)
        where.append("s.quote_asset IN {quotes:Array(String)}")

    sort = "r.symbol" if f.sort == "symbol" else _COLUMNS[f.sort]
    direction = "DESC" if f.order == "desc" else "ASC"
    sql = f"""
SELECT {_SELECT}
FROM (
    SELECT *
    FROM {{database:Identifier}}.rank_snapshots FINAL
    WHERE {" AND ".join(scope)}
    ORDER BY exchange, market, symbol, time DESC
    LIMIT 1 BY exchange, market, symbol
) AS r
LEFT JOIN (
    SELECT exchange, symbol, price
    FROM {{database:Identifier}}.rank_snapshots FINAL
    WHERE market = 'spot' AND {" AND ".join(scope[:2])}
    ORDER BY exchange, symbol, time DESC
    LIMIT 1 BY exchange, symbol
) AS sp ON r.exchange = sp.exchange AND r.symbol = sp.symbol
LEFT JOIN (
    SELECT exchange, market, symbol, base_asset, quote_asset
    FROM {{database:Identifier}}.symbols FINAL
) AS s ON r.exchange = s.exchange AND r.market = s.market AND r.symbol = s.symbol
{"WHERE " + " AND ".join(where) if where else ""}
ORDER BY {sort} {direction} NULLS LAST, r.exchange, r.market, r.symbol
LIMIT {{limit:UInt32}}
"""
    return sql, params


_AT_HELP = "use milliseconds since the epoch or ISO-8601 (2024-08-08T23:55:00Z)"


def parse_at(text: str, now_ms: int) -> int:
    """The moment of a historical board, as a trader gives it.

    Args:
        text: Milliseconds since the epoch (``1723161300000``) or ISO-8601
            (``2024-08-08T23:55:00Z``; without an offset it is UTC).
        now_ms: The current time: a board of the future does not exist yet.

    Returns:
        Milliseconds since the epoch.

    Raises:
        InvalidRequest: If it is neither, before 1970, or after `now_ms`.
    """
    value = text.strip()
    if value.isascii() and value.isdigit():
        if len(value) > 15:  # past the year 30000: a typo, and beyond Int64 soon after
            raise InvalidRequest(f"at: {value[:40]!r} is too far in the future; {_AT_HELP}")
        ms = int(value)
    else:
        try:
            ms = iso_ms(value)
        except ValueError:
            raise InvalidRequest(f"at: {value[:40]!r} is not a time; {_AT_HELP}") from None
    if ms < 0:
        raise InvalidRequest(f"at: {value[:40]!r} is before 1970; {_AT_HELP}")
    if ms > now_ms:
        raise InvalidRequest(
            f"at: {value[:40]!r} is in the future; leave `at` out for the live board"
        )
    return ms


def history_rows(
    columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> list[tuple[RankRow, str | None, str | None]]:
    """The rows of a `history_sql` query: each RankRow with its base and quote asset.

    Args:
        columns: The result's column names.
        rows: The result's rows.

    Returns:
        `(row, base_asset, quote_asset)` in the query's order; an asset is None when
        the symbol has no metadata.
    """
    result = []
    for values in rows:
        record = dict(zip(columns, values, strict=True))
        base, quote = record.pop("base_asset") or None, record.pop("quote_asset") or None
        row = msgspec.convert(record, RankRow, strict=False)
        result.append((row, base, quote))
    return result
