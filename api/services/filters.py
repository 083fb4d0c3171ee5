"""The scanner filter: the typed, validated model of what a trader can ask of the board."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from api.errors import InvalidRequest
from api.services.columns import (
    FLAG_COLUMNS,
    METRIC_WINDOWS,
    SORT_COLUMNS,
)
from schemas.ranks import Window
from schemas.topics import symbol_key
from schemas.trades import Market

MARKET_ALIASES: dict[str, Market] = {"perpetual": "usdm", "perp": "usdm"}
"""What traders call a market -> our name for it (the UI says "perpetual" for usdm)."""

MARKETS: tuple[Market, ...] = get_args(Market)

MAX_CONDITIONS = 32
"""Conditions of a filter in all, those of its groups included."""
MAX_GROUPS = 8
MAX_GROUP_CONDITIONS = 16
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


def _split_column(data: Any) -> Any:
    """`{"metric": "change_pct_5m"}` -> `{"metric": "change_pct", "window": "5m"}`: a metric
    may name its column whole, and the window is taken from it."""
    if isinstance(data, dict) and data.get("window") is None:
        metric = data.get("metric")
        for base, windows in METRIC_WINDOWS.items():
            if isinstance(metric, str) and metric in (f"{base}_{w}" for w in windows):
                return {**data, "metric": base, "window": metric[len(base) + 1 :]}
    return data


def _check_metric(metric: str, window: Window | None) -> None:
    """Raise ValueError unless `metric` is a board metric and `window` one it is kept for."""
    windows = METRIC_WINDOWS.get(metric)
    if windows is None:
        raise ValueError(f"unknown metric {shown(metric)}; metrics are {', '.join(METRIC_WINDOWS)}")
    if windows and window is None:
        raise ValueError(f"{metric} needs a window: one of {', '.join(windows)}")
    if not windows and window is not None:
        raise ValueError(f"{metric} has no window; leave window out")
    if windows and window not in windows:
        raise ValueError(f"window {window} is not kept for {metric}; use {', '.join(windows)}")


class MetricRef(BaseModel):
    """Another metric of the same row as a condition's right-hand side: ``factor`` times
    the metric plus ``offset`` (``vwap_24h``; ``change_pct_1h`` × 1/12)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = Field(
        description="A metric of the board, or a column whole (`vwap_24h`, `change_pct_1h`).",
        json_schema_extra={"enum": list(METRIC_WINDOWS)},
    )
    window: Window | None = Field(default=None, description="The metric's window, if it has one.")
    factor: float = Field(default=1.0, allow_inf_nan=False, description="Multiplies the metric.")
    offset: float = Field(default=0.0, allow_inf_nan=False, description="Added after the factor.")

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        return _split_column(data)

    @model_validator(mode="after")
    def _check(self) -> MetricRef:
        _check_metric(self.metric, self.window)
        return self

    @property
    def column(self) -> str:
        """The `RankRow` column this side reads."""
        return self.metric if self.window is None else f"{self.metric}_{self.window}"


def _operand_kind(value: Any) -> str:
    """Which side a condition's value is: an object names a metric, anything else is a
    number (and fails as one, so the error says "number" for `"3%"`)."""
    return "metric" if isinstance(value, dict | MetricRef) else "number"


Operand = Annotated[
    Annotated[float, Tag("number"), Field(allow_inf_nan=False)]
    | Annotated[MetricRef, Tag("metric")],
    Discriminator(_operand_kind),
]
"""A condition's right-hand side: a number, or another metric of the row (`MetricRef`)."""


class Condition(BaseModel):
    """One comparison of a metric: `change_pct` over `5m` `>=` 3, or `price` `>` `vwap_24h`.

    `metric` may also name a column whole (``change_pct_5m``), in which case the window
    is taken from it. `value` (and `value2` of between) is a number or another metric of
    the same row, `{"metric": "change_pct_1h", "factor": 0.0833}`. A side without a value
    yet (None) makes the condition false.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = Field(
        description="A metric of the board.", json_schema_extra={"enum": list(METRIC_WINDOWS)}
    )
    window: Window | None = Field(
        default=None, description="The metric's window, for change_pct, quote_volume and rvol."
    )
    op: Op = Field(description="Comparison; `between` includes both bounds.")
    value: Operand = Field(
        description="Threshold (lower bound of between): a number, or another metric of the "
        "row as `{metric, window?, factor?, offset?}` meaning factor × metric + offset."
    )
    value2: Operand | None = Field(
        default=None, description="Upper bound, for `between` only (a number or a metric)."
    )

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        return _split_column(data)

    @model_validator(mode="after")
    def _check(self) -> Condition:
        _check_metric(self.metric, self.window)
        if self.op == "between":
            if self.value2 is None:
                raise ValueError("between needs value2 (the upper bound)")
            numbers = isinstance(self.value, float) and isinstance(self.value2, float)
            if numbers and self.value2 < self.value:  # type: ignore[operator]
                raise ValueError("between needs value <= value2")
        elif self.value2 is not None:
            raise ValueError(f"value2 belongs to between only, not {self.op}")
        return self

    @property
    def column(self) -> str:
        """The `RankRow` column this condition reads."""
        return self.metric if self.window is None else f"{self.metric}_{self.window}"

    def columns(self) -> tuple[str, ...]:
        """Every `RankRow` column the condition reads, its left-hand side first."""
        sides = (self.value, self.value2)
        return (self.column, *(side.column for side in sides if isinstance(side, MetricRef)))


class AnyGroup(BaseModel):
    """Conditions of which at least one must hold (an OR)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    any: tuple[Condition, ...] = Field(
        min_length=1,
        max_length=MAX_GROUP_CONDITIONS,
        description="At least one of these must hold.",
    )


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

    `conditions` must all hold, and of each group in `groups` at least one condition:
    ``a AND b AND (c OR d) AND (e OR f)``. Empty `quotes`, `markets` and `exchanges` mean
    all of them. `watch` keeps only the symbols named, `ignore` drops those named; an
    entry is a bare symbol (every market that lists it) or a key ``exchange:market:symbol``.
    Rows whose sort column has no value yet come last, whichever the order; ties go by key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    conditions: tuple[Condition, ...] = Field(
        default=(), max_length=MAX_CONDITIONS, description="Conditions that must all hold."
    )
    groups: tuple[AnyGroup, ...] = Field(
        default=(),
        max_length=MAX_GROUPS,
        description="OR groups: of each, at least one condition must hold.",
    )
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

    @model_validator(mode="after")
    def _count(self) -> ScanFilter:
        count = len(self.conditions) + sum(len(group.any) for group in self.groups)
        if count > MAX_CONDITIONS:
            raise ValueError(
                f"{count} conditions: at most {MAX_CONDITIONS} in all, those of groups included"
            )
        return self

    def all_conditions(self) -> tuple[Condition, ...]:
        """The conditions that must all hold, with the volume band as conditions of its
        own (not those of `groups`)."""
        band = self.volume.conditions() if self.volume is not None else ()
        return self.conditions + band

    def flags(self) -> dict[str, bool]:
        """Flag column -> the value a row must have there (true: only those, false: none)."""
        values = {flag: getattr(self, flag, None) for flag in FLAG_COLUMNS}
        return {flag: value for flag, value in values.items() if value is not None}

    def canonical(self) -> str:
        """The filter as JSON that equal filters share (conditions and groups in a fixed
        order: neither AND nor OR cares about it)."""

        def ordered(items: list[Any]) -> list[Any]:
            return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))

        data = self.model_dump(mode="json")
        data["conditions"] = ordered(data["conditions"])
        data["groups"] = ordered([{"any": ordered(group["any"])} for group in data["groups"]])
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


_OPERAND_TAGS = ("number", "metric")
"""The tags of `Operand`: pydantic puts the one it tried in an error's location."""


def explain(exc: ValidationError, subject: str = "filter") -> str:
    """One line a trader can act on from pydantic's errors (at most five of them).

    Args:
        exc: The errors.
        subject: What was invalid, for the line's start (`invalid filter: ...`).
    """
    parts = []
    for error in exc.errors()[:5]:
        loc = error["loc"]
        # `value.number`, `value.metric`: which side pydantic tried is no part of the name
        kept = [
            part
            for at, part in enumerate(loc)
            if not (at and loc[at - 1] in ("value", "value2") and part in _OPERAND_TAGS)
        ]
        where = ".".join(str(part) for part in kept)
        message = str(error["msg"]).removeprefix("Value error, ")
        if loc[-1:] == ("number",) and error["type"] in ("float_type", "float_parsing"):
            message = (
                f"{shown(error['input'])} is neither a number nor another metric "
                '({"metric": "vwap_24h", "factor": 1})'
            )
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
