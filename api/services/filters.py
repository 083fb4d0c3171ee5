"""The scanner filter: the typed, validated model of what a trader can ask of the board."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from api.errors import InvalidRequest
from schemas.ranks import WINDOWS, RankRow, Window
from schemas.topics import symbol_key
from schemas.trades import Market


def _columns_of(kind: type) -> tuple[str, ...]:
    """RankRow's metric columns whose values are `kind` (or `kind | None`), in display order."""
    return tuple(
        field.name
        for field in msgspec.structs.fields(RankRow)
        if field.name != "time_ms" and (field.type is kind or kind in get_args(field.type))
    )


NUMERIC_COLUMNS: tuple[str, ...] = _columns_of(float)
"""Every number column of `RankRow` a condition or a sort may name."""

FLAG_COLUMNS: tuple[str, ...] = _columns_of(bool)
"""The true/false columns of `RankRow` (``new_high``, ``new_low``)."""


def _window_of(column: str) -> Window | None:
    """The window a column's name ends with (``change_pct_5m`` -> ``5m``), if any."""
    return next((w for w in WINDOWS if column.endswith(f"_{w}")), None)


def _metric_windows() -> dict[str, tuple[Window, ...]]:
    """Metric name -> its windows: a prefix with columns for several windows (``rvol_1m``,
    ``rvol_5m`` ...) is one windowed metric; any other column is a metric of its own, even
    one whose name ends like a window (``volatility_1h``, ``high_24h``)."""
    windows: dict[str, list[Window]] = {}
    for column in NUMERIC_COLUMNS:
        window = _window_of(column)
        if window is not None:
            windows.setdefault(column.removesuffix(f"_{window}"), []).append(window)
    metrics: dict[str, tuple[Window, ...]] = {}
    for column in NUMERIC_COLUMNS:
        window = _window_of(column)
        base = column.removesuffix(f"_{window}") if window is not None else column
        if len(windows.get(base, ())) > 1:
            metrics.setdefault(base, tuple(windows[base]))
        else:
            metrics[column] = ()
    return metrics


METRIC_WINDOWS: dict[str, tuple[Window, ...]] = _metric_windows()
"""Every metric a condition may name, with its windows (empty: the metric has none)."""

SORT_COLUMNS: tuple[str, ...] = ("symbol", *NUMERIC_COLUMNS, *FLAG_COLUMNS)
"""What the board can be sorted by."""

MARKET_ALIASES: dict[str, Market] = {"perpetual": "usdm", "perp": "usdm"}
"""What traders call a market -> our name for it (the UI says "perpetual" for usdm)."""

MARKETS: tuple[Market, ...] = get_args(Market)

MAX_CONDITIONS = 32
MAX_SYMBOLS = 1_000
"""Longest watch or ignore list: half the universe is already more than a board shows."""
MAX_QUOTES = 64
MAX_EXCHANGES = 16
MAX_LIMIT = 5_000
MAX_FILTER_JSON = 64 * 1024
"""Longest `filter=<JSON>` accepted (a full watch list of keys is about 30 KiB)."""

# Letters of any script (Binance lists symbols like 币安人生USDT), digits, `.`, `_`, `-`:
# never a quote, space, semicolon or anything else a query language gives meaning to.
_NAME = re.compile(r"[^\W_][\w.\-]{0,39}")
_EXCHANGE = re.compile(r"[a-z][a-z0-9_]{0,31}")

Op = Literal[">", ">=", "<", "<=", "between"]


def shown(value: object) -> str:
    """A user's value, quoted and cut short, for an error message."""
    text = repr(value)
    return text if len(text) <= 42 else f"{text[:40]}…"


def _market(value: str) -> str:
    """Our market name for what a trader typed (`Perpetual` -> `usdm`)."""
    name = value.strip().lower()
    return MARKET_ALIASES.get(name, name)


def symbol_ref(value: str) -> str:
    """Normalise one watch/ignore entry: `SYMBOL` or `exchange:market:SYMBOL`.

    Raises:
        ValueError: If it is neither (the message says what to write instead).
    """
    parts = [part.strip() for part in value.split(":")]
    if len(parts) == 1 and _NAME.fullmatch(parts[0]):
        return parts[0].upper()
    if len(parts) == 3:
        exchange, market, symbol = parts[0].lower(), _market(parts[1]), parts[2].upper()
        if _EXCHANGE.fullmatch(exchange) and market in MARKETS and _NAME.fullmatch(symbol):
            return symbol_key(exchange, market, symbol)
    raise ValueError(
        f"{shown(value)} is not a symbol: use BTCUSDT or exchange:market:symbol "
        "(binance:spot:BTCUSDT)"
    )


def _normalised(values: Any, one: Callable[[str], str]) -> Any:
    """Each entry normalised by `one`, deduplicated and sorted (order means nothing)."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple | set | frozenset):
        return values  # pydantic reports the wrong type
    if not all(isinstance(value, str) for value in values):
        return values
    return tuple(sorted({one(value) for value in values}))


class Condition(BaseModel):
    """A threshold on one metric: `change_pct` over `5m` `>=` 3.

    `metric` may also name a column whole (``change_pct_5m``), in which case the window
    is taken from it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = Field(
        description="A metric of the board.", json_schema_extra={"enum": list(METRIC_WINDOWS)}
    )
    window: Window | None = Field(
        default=None, description="The metric's window, for change_pct, quote_volume and rvol."
    )
    op: Op = Field(description="Comparison; `between` includes both bounds.")
    value: float = Field(allow_inf_nan=False, description="Threshold (lower bound of between).")
    value2: float | None = Field(
        default=None, allow_inf_nan=False, description="Upper bound, for `between` only."
    )

    @model_validator(mode="before")
    @classmethod
    def _split_column(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("window") is None:
            metric = data.get("metric")
            for base, windows in METRIC_WINDOWS.items():
                if isinstance(metric, str) and metric in (f"{base}_{w}" for w in windows):
                    return {**data, "metric": base, "window": metric[len(base) + 1 :]}
        return data

    @model_validator(mode="after")
    def _check(self) -> Condition:
        windows = METRIC_WINDOWS.get(self.metric)
        if windows is None:
            raise ValueError(
                f"unknown metric {shown(self.metric)}; metrics are {', '.join(METRIC_WINDOWS)}"
            )
        if windows and self.window is None:
            raise ValueError(f"{self.metric} needs a window: one of {', '.join(windows)}")
        if not windows and self.window is not None:
            raise ValueError(f"{self.metric} has no window; leave window out")
        if windows and self.window not in windows:
            raise ValueError(
                f"window {self.window} is not kept for {self.metric}; use {', '.join(windows)}"
            )
        if self.op == "between":
            if self.value2 is None:
                raise ValueError("between needs value2 (the upper bound)")
            if self.value2 < self.value:
                raise ValueError("between needs value <= value2")
        elif self.value2 is not None:
            raise ValueError(f"value2 belongs to between only, not {self.op}")
        return self

    @property
    def column(self) -> str:
        """The `RankRow` column this condition reads."""
        return self.metric if self.window is None else f"{self.metric}_{self.window}"


class VolumeBand(BaseModel):
    """Quote volume over one window between `min` and `max` (both inclusive, either open)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: Window = "24h"
    min: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> VolumeBand:
        if self.min is None and self.max is None:
            raise ValueError("a volume band needs min, max or both")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError("a volume band needs min <= max")
        return self

    def conditions(self) -> tuple[Condition, ...]:
        """The band as conditions on `quote_volume` over its window."""
        bounds: tuple[tuple[Op, float | None], ...] = ((">=", self.min), ("<=", self.max))
        return tuple(
            Condition(metric="quote_volume", window=self.window, op=op, value=value)
            for op, value in bounds
            if value is not None
        )


class ScanFilter(BaseModel):
    """What a trader asks of the board; every part is optional and all parts must hold.

    Empty `quotes`, `markets` and `exchanges` mean all of them. `watch` keeps only the
    symbols named, `ignore` drops those named; an entry is a bare symbol (every market
    that lists it) or a key ``exchange:market:symbol``. Rows whose sort column has no
    value yet come last, whichever the order; ties go by key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    conditions: tuple[Condition, ...] = Field(default=(), max_length=MAX_CONDITIONS)
    new_high: bool | None = Field(
        default=None, description="true: only symbols at a new 24h high; false: none of them."
    )
    new_low: bool | None = Field(
        default=None, description="true: only symbols at a new 24h low; false: none of them."
    )
    volume: VolumeBand | None = Field(default=None, description="A band of quote volume.")
    quotes: tuple[str, ...] = Field(
        default=(), max_length=MAX_QUOTES, description="Quote assets (USDT, USDC, BTC ...)."
    )
    markets: tuple[Market, ...] = Field(
        default=(), description="spot, usdm (or its alias perpetual)."
    )
    exchanges: tuple[str, ...] = Field(default=(), max_length=MAX_EXCHANGES)
    watch: tuple[str, ...] = Field(default=(), max_length=MAX_SYMBOLS)
    ignore: tuple[str, ...] = Field(default=(), max_length=MAX_SYMBOLS)
    sort: str = Field(
        default="change_pct_24h",
        description="Column to sort by.",
        json_schema_extra={"enum": list(SORT_COLUMNS)},
    )
    order: Literal["asc", "desc"] = "desc"
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)

    @field_validator("quotes", mode="before")
    @classmethod
    def _quotes(cls, value: Any) -> Any:
        return _normalised(value, _quote_asset)

    @field_validator("markets", mode="before")
    @classmethod
    def _markets(cls, value: Any) -> Any:
        return _normalised(value, _market)

    @field_validator("exchanges", mode="before")
    @classmethod
    def _exchanges(cls, value: Any) -> Any:
        return _normalised(value, _exchange)

    @field_validator("watch", "ignore", mode="before")
    @classmethod
    def _symbols(cls, value: Any) -> Any:
        return _normalised(value, symbol_ref)

    @field_validator("sort")
    @classmethod
    def _sort(cls, value: str) -> str:
        if value in SORT_COLUMNS:
            return value
        windows = METRIC_WINDOWS.get(value)
        if windows:
            columns = ", ".join(f"{value}_{w}" for w in windows)
            raise ValueError(f"sort by {value} needs a window: one of {columns}")
        raise ValueError(f"cannot sort by {shown(value)}; sort by symbol or a metric column")

    def all_conditions(self) -> tuple[Condition, ...]:
        """The conditions, with the volume band as conditions of its own."""
        band = self.volume.conditions() if self.volume is not None else ()
        return self.conditions + band

    def flags(self) -> dict[str, bool]:
        """Flag column -> the value a row must have there (true: only those, false: none)."""
        values = {flag: getattr(self, flag, None) for flag in FLAG_COLUMNS}
        return {flag: value for flag, value in values.items() if value is not None}

    def canonical(self) -> str:
        """The filter as JSON that equal filters share (conditions in a fixed order)."""
        data = self.model_dump(mode="json")
        data["conditions"] = sorted(data["conditions"], key=lambda c: json.dumps(c, sort_keys=True))
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _quote_asset(value: str) -> str:
    name = value.strip().upper()
    if not _NAME.fullmatch(name):
        raise ValueError(f"{shown(value)} is not an asset name (USDT, USDC, BTC ...)")
    return name


def _exchange(value: str) -> str:
    name = value.strip().lower()
    if not _EXCHANGE.fullmatch(name):
        raise ValueError(f"{shown(value)} is not an exchange name (binance ...)")
    return name


def explain(exc: ValidationError, subject: str = "filter") -> str:
    """One line a trader can act on from pydantic's errors (at most five of them).

    Args:
        exc: The errors.
        subject: What was invalid, for the line's start (`invalid filter: ...`).
    """
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = len(exc.errors()) - len(parts)
    return f"invalid {subject}: " + "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_filter(data: str | bytes | Mapping[str, Any]) -> ScanFilter:
    """A filter from its JSON form (the `filter` query parameter, a WebSocket message).

    Args:
        data: JSON text, or the object it decodes to.

    Returns:
        The validated, normalised filter.

    Raises:
        InvalidRequest: If the JSON is malformed, too long, or not a valid filter.
    """
    try:
        if isinstance(data, Mapping):
            return ScanFilter.model_validate(data)
        if len(data) > MAX_FILTER_JSON:
            raise InvalidRequest(f"filter is longer than {MAX_FILTER_JSON} bytes")
        return ScanFilter.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidRequest(explain(exc)) from exc
