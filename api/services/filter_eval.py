"""The scanner filter compiled to a fast predicate, sort and limit over board rows."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Protocol

from api.services.filters import AnyGroup, Condition, MetricRef, ScanFilter
from schemas.ranks import RankRow
from schemas.symbols import SymbolInfo


class SymbolLookup(Protocol):
    """Symbol metadata by key: a `Mapping[str, SymbolInfo]` or the API's symbol directory."""

    def get(self, key: str, /) -> SymbolInfo | None: ...


Check = Callable[[RankRow], bool]
Side = Callable[[RankRow], float | None]


def _number_check(condition: Condition, low: float, high: float | None) -> Check:
    """A predicate for a condition on numbers; a metric without a value (None) fails it."""
    get = attrgetter(condition.column)
    checks: dict[str, Check] = {
        ">": lambda row: (v := get(row)) is not None and v > low,
        ">=": lambda row: (v := get(row)) is not None and v >= low,
        "<": lambda row: (v := get(row)) is not None and v < low,
        "<=": lambda row: (v := get(row)) is not None and v <= low,
        "between": lambda row: (v := get(row)) is not None and low <= v <= high,
    }
    return checks[condition.op]


def _side(operand: float | MetricRef) -> Side:
    """A condition's right-hand side read from a row: a number, or factor × another
    metric + offset (None while that metric has no value). filter_sql computes the same
    expression in the same order, so both round alike."""
    if not isinstance(operand, MetricRef):
        return lambda row: operand
    get, factor, offset = attrgetter(operand.column), operand.factor, operand.offset
    if factor == 1.0 and offset == 0.0:
        return get
    if offset == 0.0:
        return lambda row: None if (w := get(row)) is None else w * factor
    return lambda row: None if (w := get(row)) is None else w * factor + offset


def _metric_check(condition: Condition) -> Check:
    """A predicate for a condition with a metric on its right: false when either side has
    no value."""
    get, low = attrgetter(condition.column), _side(condition.value)
    high = _side(condition.value2) if condition.value2 is not None else low
    checks: dict[str, Check] = {
        ">": lambda row: (v := get(row)) is not None and (a := low(row)) is not None and v > a,
        ">=": lambda row: (v := get(row)) is not None and (a := low(row)) is not None and v >= a,
        "<": lambda row: (v := get(row)) is not None and (a := low(row)) is not None and v < a,
        "<=": lambda row: (v := get(row)) is not None and (a := low(row)) is not None and v <= a,
        "between": lambda row: (
            (v := get(row)) is not None
            and (a := low(row)) is not None
            and (b := high(row)) is not None
            and a <= v <= b
        ),
    }
    return checks[condition.op]


def _condition_check(condition: Condition) -> Check:
    """A predicate for one condition; a side without a value (None) fails it."""
    low, high = condition.value, condition.value2
    if isinstance(low, MetricRef) or isinstance(high, MetricRef):
        return _metric_check(condition)
    return _number_check(condition, low, high)


def _group_check(group: AnyGroup) -> Check:
    """Whether any of a group's conditions holds."""
    checks = tuple(_condition_check(c) for c in group.any)
    return lambda row: any(check(row) for check in checks)


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
    checks.extend(_group_check(group) for group in f.groups)
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
