"""The scanner filter compiled to a fast predicate, sort and limit over board rows."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Protocol

from api.services.filters import Condition, ScanFilter
from schemas.ranks import RankRow
from schemas.symbols import SymbolInfo


class SymbolLookup(Protocol):
    """Symbol metadata by key: a `Mapping[str, SymbolInfo]` or the API's symbol directory."""

    def get(self, key: str, /) -> SymbolInfo | None: ...


Check = Callable[[RankRow], bool]


def _condition_check(condition: Condition) -> Check:
    """A predicate for one condition; a metric without a value (None) fails it."""
    get = attrgetter(condition.column)
    low, high = condition.value, condition.value2
    checks: dict[str, Check] = {
        ">": lambda row: (v := get(row)) is not None and v > low,
        ">=": lambda row: (v := get(row)) is not None and v >= low,
        "<": lambda row: (v := get(row)) is not None and v < low,
        "<=": lambda row: (v := get(row)) is not None and v <= low,
        "between": lambda row: (v := get(row)) is not None and low <= v <= high,
    }
    return checks[condition.op]


def _symbol_check(refs: tuple[str, ...], wanted: bool) -> Check:
    """Whether a row is (`wanted`) or is not named by keys or bare symbols in `refs`."""
    keys = frozenset(ref for ref in refs if ":" in ref)
    symbols = frozenset(ref for ref in refs if ":" not in ref)
    return lambda row: (row.symbol in symbols or row.key in keys) is wanted


def _flag_check(flag: str, expected: bool) -> Check:
    """Whether a row's flag column is `expected`."""
    get = attrgetter(flag)
    return lambda row: get(row) is expected


def _checks(f: ScanFilter) -> tuple[Check, ...]:
    """The filter's predicates, cheapest and most selective first."""
    checks: list[Check] = []
    if f.watch:
        checks.append(_symbol_check(f.watch, True))
    if f.markets:
        markets = frozenset(f.markets)
        checks.append(lambda row: row.market in markets)
    if f.exchanges:
        exchanges = frozenset(f.exchanges)
        checks.append(lambda row: row.exchange in exchanges)
    if f.ignore:
        checks.append(_symbol_check(f.ignore, False))
    checks.extend(_flag_check(flag, expected) for flag, expected in f.flags().items())
    checks.extend(_condition_check(c) for c in f.all_conditions())
    return tuple(checks)


_IDENTITY = attrgetter("exchange", "market", "symbol")


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """A filter ready to run over live rows; build it with `compile_filter`.

    `key` is a hash of the normalised filter: clients whose filters are equal share one
    evaluation.
    """

    filter: ScanFilter
    key: str
    checks: tuple[Check, ...]
    quotes: frozenset[str]

    def select(self, rows: Iterable[RankRow], symbols: SymbolLookup) -> list[RankRow]:
        """The rows that satisfy the filter, sorted and cut to its limit.

        Args:
            rows: The board's rows, one per symbol.
            symbols: Symbol metadata by key; a row whose symbol has none fails a quote
                filter and passes when there is none.

        Returns:
            At most `limit` rows, in the filter's order; rows without a value in the sort
            column last, ties by (exchange, market, symbol).
        """
        chosen = list(rows)
        for check in self.checks:
            chosen = [row for row in chosen if check(row)]
        if self.quotes:
            quotes = self.quotes
            chosen = [
                row
                for row in chosen
                if (info := symbols.get(row.key)) is not None and info.quote_asset in quotes
            ]
        return _ordered(chosen, self.filter.sort, self.filter.order == "desc")[: self.filter.limit]


def _ordered(rows: list[RankRow], column: str, descending: bool) -> list[RankRow]:
    """Rows by `column` with ties by key, then NaNs, then rows without a value: ClickHouse's
    ``ORDER BY column [DESC] NULLS LAST, exchange, market, symbol``."""
    rows.sort(key=_IDENTITY)
    get = attrgetter(column)
    valued, nans, nulls = [], [], []
    for row in rows:
        value = get(row)
        if value is None:
            nulls.append(row)
        elif value != value:  # NaN: never equal to itself
            nans.append(row)
        else:
            valued.append(row)
    valued.sort(key=get, reverse=descending)  # stable: ties keep key order either way
    return valued + nans + nulls


def compile_filter(f: ScanFilter) -> CompiledFilter:
    """Compile a filter for the live board.

    Args:
        f: A validated filter.

    Returns:
        A `CompiledFilter` whose `select` runs it over rows.
    """
    key = hashlib.sha256(f.canonical().encode()).hexdigest()[:16]
    return CompiledFilter(filter=f, key=key, checks=_checks(f), quotes=frozenset(f.quotes))
