"""The scanner filter typed as query parameters (`min_change_pct_5m=3&quote=USDT`)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any, Protocol, runtime_checkable

from api.errors import InvalidRequest
from api.services.columns import NUMERIC_COLUMNS
from api.services.filters import MAX_LIMIT, ScanFilter, parse_filter, shown


@runtime_checkable
class QueryParams(Protocol):
    """What `parse_query` reads: Starlette's `request.query_params` has it."""

    def multi_items(self) -> list[tuple[str, str]]: ...


_LISTS = {"quote": "quotes", "market": "markets", "exchange": "exchanges"} | {
    name: name for name in ("watch", "ignore")
}
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9}
FILTER_PARAMS: tuple[str, ...] = (
    "filter",
    "where",
    *_LISTS,
    "sort",
    "limit",
    "new_high",
    "new_low",
    "min_volume",
    "max_volume",
    "volume_window",
)
"""Query parameters `parse_query` reads, besides `min_<column>` and `max_<column>`."""


def _number(name: str, text: str) -> float:
    """A number as a trader types it: 3, -1.5, 2e6, 250k, 1.5M, 2B."""
    scale = _SCALE.get(text[-1:].lower(), 1.0)
    try:
        return float(text[:-1] if scale != 1.0 else text) * scale
    except ValueError:
        raise InvalidRequest(f"{name}: {shown(text)} is not a number") from None


# One token of a `where` clause: a number as `_number` reads it (2e6, 1.5M), a name, an
# operator. Anything else (a quote, a parenthesis, a semicolon) is an error, never text.
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[kKmMbB]?|\.\d+(?:[eE][+-]?\d+)?[kKmMbB]?)"
    r"|(?P<name>[a-z][a-z0-9_]*)|(?P<op>>=|<=|[<>*/+\-|]))"
)
_COMPARISONS = (">=", "<=", ">", "<")
_OR = re.compile(r"\||\s+or\s+", re.IGNORECASE)
WHERE_HELP = (
    "write <column><op><number or column>, e.g. price>vwap_24h, "
    "change_pct_5m>change_pct_1h/12, rsi_14 between 30 and 70; "
    "| (or `or`) between clauses means any of them"
)


class _Clause:
    """A `where` clause read left to right, one token at a time."""

    def __init__(self, text: str, whole: str) -> None:
        self.text = whole  # what the trader wrote, for the error message
        text = text.lower()
        self.tokens: list[tuple[str, str]] = []
        at = 0
        while at < len(text.rstrip()):
            match = _TOKEN.match(text, at)
            if match is None or match.end() == at:
                raise self.error(f"{shown(text[at:].strip()[:1])} is not understood")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            at = match.end()
        self.at = 0

    def error(self, why: str = "") -> InvalidRequest:
        return InvalidRequest(
            f"where: {shown(self.text)} is not a condition{f' ({why})' if why else ''}; "
            + WHERE_HELP
        )

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self, kind: str, *values: str) -> str | None:
        """The next token's text if it is of `kind` (and one of `values`), else None."""
        found, text = self.peek()
        if found != kind or (values and text not in values):
            return None
        self.at += 1
        return text

    def column(self) -> str:
        name = self.take("name")
        if name is None:
            raise self.error("a column is missing" if self.tokens else "a clause is empty")
        if name not in NUMERIC_COLUMNS:
            raise InvalidRequest(
                f"where: {shown(name)}: no such column; columns are " + ", ".join(NUMERIC_COLUMNS)
            )
        return name

    def number(self) -> float:
        sign = -1.0 if self.take("op", "-") else 1.0
        text = self.take("number")
        if text is None:
            raise self.error("a number is missing")
        return sign * _number("where", text)

    def side(self) -> float | dict[str, Any]:
        """A number, or `[number *] column [* or / number] [+ or - number]`."""
        found, _ = self.peek()
        if found != "name":
            value = self.number()
            if not self.take("op", "*"):
                return value
            factor = value
        else:
            factor = 1.0
        side: dict[str, Any] = {"metric": self.column()}
        if scale := self.take("op", "*", "/"):
            by = self.number()
            if scale == "/" and by == 0:
                raise self.error("division by zero")
            factor = factor * by if scale == "*" else factor / by
        if sign := self.take("op", "+", "-"):
            side["offset"] = self.number() * (1.0 if sign == "+" else -1.0)
        if factor != 1.0:
            side["factor"] = factor
        return side

    def condition(self) -> dict[str, Any]:
        """The whole clause as a `Condition`'s fields."""
        metric = self.column()
        if self.take("name", "between"):
            low = self.side()
            if not self.take("name", "and"):
                raise self.error("between needs and")
            data = {"metric": metric, "op": "between", "value": low, "value2": self.side()}
        else:
            op = self.take("op", *_COMPARISONS)
            if op is None:
                raise self.error("a comparison (>, >=, <, <=) is missing")
            data = {"metric": metric, "op": op, "value": self.side()}
        if self.peek()[0] != "end":
            raise self.error(f"{shown(self.peek()[1])} is not expected")
        return data


def parse_where(text: str) -> list[dict[str, Any]]:
    """The conditions of one `where` parameter, any of which must hold (``|`` is or).

    ``price>vwap_24h``, ``change_pct_5m>change_pct_1h/12``, ``rvol_5m>=2|change_pct_5m>3``,
    ``price>1.02*vwap_24h``, ``rsi_14 between 30 and 70`` (``or`` may stand for ``|``):
    a column, a comparison, and a number or another column (times or divided by a
    number, plus or minus a number; numbers may end in k, M or B). Division by n is
    multiplication by 1/n.

    Args:
        text: The parameter's value.

    Returns:
        `Condition` fields, one per clause.

    Raises:
        InvalidRequest: If a clause is not of that form or names no column of the board.
    """
    return [_Clause(clause, text).condition() for clause in _OR.split(text)]


def parse_query(
    params: QueryParams | Iterable[tuple[str, str]], *, exclude: Collection[str] = ()
) -> ScanFilter:
    """A filter from simple query parameters a trader can type, or from `filter=<JSON>`.

    ``min_change_pct_5m=3&quote=USDT,USDC&market=spot&sort=-change_pct_5m&limit=50``:
    ``min_<column>``/``max_<column>`` are inclusive thresholds on any metric column
    (numbers may end in k, M or B); ``where`` is a comparison with a number or another
    column, ``|`` between clauses for or (`parse_where`), repeated for and; ``quote``,
    ``market``, ``exchange``, ``watch`` and ``ignore`` take comma-separated or repeated
    values; ``sort`` names a column, ``-`` first for descending; ``new_high``/``new_low``
    take true or false; ``min_volume``, ``max_volume`` and ``volume_window`` make a
    quote-volume band. ``filter=<JSON>`` is
    a whole `ScanFilter` instead, and no other filter parameter may come with it.

    Args:
        params: The request's query parameters (`request.query_params`), or its
            `(name, value)` pairs.
        exclude: Parameters of the route itself, not of the filter (`at`).

    Returns:
        The validated filter.

    Raises:
        InvalidRequest: On an unknown or repeated parameter, a value that is not a
            number or flag, or a filter that does not validate.
    """
    given = params.multi_items() if isinstance(params, QueryParams) else params
    # An empty value is no value: a form's blank field, `watch=` with nothing to watch.
    pairs = [(name, value.strip()) for name, value in given if name not in exclude]
    pairs = [(name, value) for name, value in pairs if value]
    data: dict[str, Any] = {}
    conditions: list[dict[str, Any]] = []
    band: dict[str, Any] = {}
    seen: set[str] = set()
    groups: list[dict[str, Any]] = []
    for name, value in pairs:
        if name == "where":  # repeated: each must hold
            clauses = parse_where(value)
            if len(clauses) == 1:
                conditions.extend(clauses)
            else:
                groups.append({"any": clauses})
            continue
        if name in _LISTS:
            field = data.setdefault(_LISTS[name], [])
            field.extend(part for part in (p.strip() for p in value.split(",")) if part)
            continue
        if name in seen:
            raise InvalidRequest(f"parameter {name} is given more than once")
        seen.add(name)
        if name == "filter":
            if len(pairs) > 1:
                raise InvalidRequest("use either filter=<JSON> or simple parameters, not both")
            return parse_filter(value)
        if name == "sort":
            descending = value.startswith("-")
            data["sort"], data["order"] = value.removeprefix("-"), "desc" if descending else "asc"
        elif name == "limit":
            if not (value.isascii() and value.isdigit()):
                raise InvalidRequest(f"limit: {shown(value)} is not a whole number")
            # a longer run of digits is out of range anyway (and int() refuses 4,300+)
            data["limit"] = int(value) if len(value) <= 9 else MAX_LIMIT + 1
        elif name in ("new_high", "new_low"):
            if value.lower() not in _FLAGS:
                raise InvalidRequest(f"{name}: {shown(value)} is not true or false")
            data[name] = _FLAGS[value.lower()]
        elif name in ("min_volume", "max_volume"):
            band[name[:3]] = _number(name, value)
        elif name == "volume_window":
            band["window"] = value
        elif name.startswith(("min_", "max_")):
            if name[4:] not in NUMERIC_COLUMNS:
                raise InvalidRequest(
                    f"{shown(name)}: no such column; {name[:4]}<column> takes one of "
                    + ", ".join(NUMERIC_COLUMNS)
                )
            op = ">=" if name.startswith("min_") else "<="
            conditions.append({"metric": name[4:], "op": op, "value": _number(name, value)})
        else:
            known = ", ".join((*FILTER_PARAMS, "min_<column>", "max_<column>"))
            raise InvalidRequest(f"unknown parameter {shown(name)}; filter parameters: {known}")
    if conditions:
        data["conditions"] = conditions
    if groups:
        data["groups"] = groups
    if band:
        data["volume"] = band
    return parse_filter(data)
