"""The scanner filter typed as query parameters (`min_change_pct_5m=3&quote=USDT`)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Protocol, runtime_checkable

from api.errors import InvalidRequest
from api.services.filters import MAX_LIMIT, NUMERIC_COLUMNS, ScanFilter, parse_filter, shown


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


def parse_query(
    params: QueryParams | Iterable[tuple[str, str]], *, exclude: Collection[str] = ()
) -> ScanFilter:
    """A filter from simple query parameters a trader can type, or from `filter=<JSON>`.

    ``min_change_pct_5m=3&quote=USDT,USDC&market=spot&sort=-change_pct_5m&limit=50``:
    ``min_<column>``/``max_<column>`` are inclusive thresholds on any metric column
    (numbers may end in k, M or B); ``quote``, ``market``, ``exchange``, ``watch`` and
    ``ignore`` take comma-separated or repeated values; ``sort`` names a column, ``-``
    first for descending; ``new_high``/``new_low`` take true or false; ``min_volume``,
    ``max_volume`` and ``volume_window`` make a quote-volume band. ``filter=<JSON>`` is
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
    for name, value in pairs:
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
    if band:
        data["volume"] = band
    return parse_filter(data)
