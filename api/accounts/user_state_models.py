"""A user's board state as the API reads and writes it: watchlists, the ignore-list,
presets, preferences, and the changes their sessions are told of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from api.errors import InvalidRequest
from api.services.candles import INTERVAL_MS
from api.services.columns import FLAG_COLUMNS, NUMERIC_COLUMNS, SORT_COLUMNS
from api.services.filters import MAX_SYMBOLS, ScanFilter, explain, symbol_ref

BOARD_COLUMNS: tuple[str, ...] = (
    "symbol",
    "exchange",
    "market",
    "base_asset",
    "quote_asset",
    *NUMERIC_COLUMNS,
    *FLAG_COLUMNS,
)
"""Columns the board can show (what `GET /api/v1/scan` returns per row)."""

Kind = Literal["watchlist", "ignored", "preset", "preferences"]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T", bound=BaseModel | None)

# Printable text only: a name is shown in menus and in error messages.
Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]


def _symbol_list(values: list[str]) -> list[str]:
    """Each entry normalised (`btcusdt` -> `BTCUSDT`), repeats dropped, the user's order kept."""
    return list(dict.fromkeys(symbol_ref(value) for value in values))


Symbols = Annotated[list[str], Field(max_length=MAX_SYMBOLS), AfterValidator(_symbol_list)]
"""Symbols as `BTCUSDT` (every market listing it) or keys `exchange:market:symbol`."""


class WatchlistIn(BaseModel):
    """A watchlist as written: a name unique among the user's, and its symbols in order."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    symbols: Symbols = Field(default_factory=list)


class WatchlistOut(WatchlistIn):
    """A stored watchlist."""

    id: int
    updated_at: datetime


class SymbolIn(BaseModel):
    """One symbol to add to a watchlist."""

    model_config = ConfigDict(extra="forbid")

    symbol: Annotated[str, Field(max_length=120), AfterValidator(symbol_ref)]


class IgnoreList(BaseModel):
    """The symbols never shown on the user's board (when a filter asks for `ignored=mine`)."""

    model_config = ConfigDict(extra="forbid")

    symbols: Symbols = Field(default_factory=list)


class PresetIn(BaseModel):
    """A named scanner filter."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    filter: ScanFilter


class PresetOut(PresetIn):
    """A stored filter preset."""

    id: int
    updated_at: datetime


class Preferences(BaseModel):
    """How the user's board looks; the UI keeps its view here. Unknown fields are refused.

    `watchlist` and `preset` are the ids the board last showed; they may name one deleted
    since, which the UI then ignores.
    """

    model_config = ConfigDict(extra="forbid")

    columns: list[str] = Field(
        default_factory=lambda: ["symbol", "price", "change_pct_5m", "change_pct_24h"],
        max_length=len(BOARD_COLUMNS),
        description="Board columns in display order.",
    )
    sort: str = Field(default="change_pct_24h", description="Column the board is sorted by.")
    order: Literal["asc", "desc"] = "desc"
    interval: str = Field(default="1m", description="Chart candle interval.")
    theme: Literal["system", "light", "dark"] = "system"
    density: Literal["comfortable", "compact"] = "comfortable"
    watchlist: int | None = Field(default=None, description="The watchlist the board shows.")
    preset: int | None = Field(default=None, description="The filter preset last applied.")
    filter: ScanFilter | None = Field(
        default=None, description="The board's filter as last applied (saved or not)."
    )
    hide_ignored: bool = Field(default=True, description="Leave the ignore-list off the board.")

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: list[str]) -> list[str]:
        unknown = [column for column in value if column not in BOARD_COLUMNS]
        if unknown:
            raise ValueError(f"unknown columns {unknown}; columns are {', '.join(BOARD_COLUMNS)}")
        if len(set(value)) != len(value):
            raise ValueError("a column is listed twice")
        return value

    @field_validator("sort")
    @classmethod
    def _sort(cls, value: str) -> str:
        if value not in SORT_COLUMNS:
            raise ValueError(f"cannot sort by {value!r}; sort by symbol or a metric column")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if value not in INTERVAL_MS:
            raise ValueError(f"unknown interval {value!r}; use one of {', '.join(INTERVAL_MS)}")
        return value


class UserStateOut(BaseModel):
    """Everything a board keeps for its user, as of `version`."""

    version: int
    watchlists: list[WatchlistOut]
    ignored: list[str]
    presets: list[PresetOut]
    preferences: Preferences


@dataclass(frozen=True, slots=True)
class Change(Generic[T]):
    """One committed change of a user's state, as the user's other sessions hear of it.

    Attributes:
        kind: What changed.
        version: The user's state version after it.
        value: The new value (what the REST route of the kind returns); None if deleted.
        deleted: The id of a deleted watchlist or preset.
    """

    kind: Kind
    version: int
    value: T
    deleted: int | None = None

    def body(self) -> dict[str, Any]:
        """The `change` object of a `user_state` message: `kind`, and the new value under
        the kind's name or the `deleted` id."""
        if self.value is None:
            return {"kind": self.kind, "deleted": self.deleted}
        return {"kind": self.kind, self.kind: self.value.model_dump(mode="json")}


def parse(model: type[M], data: Any, subject: str) -> M:
    """Validate `data` (a WebSocket message's fields) as `model`.

    Raises:
        InvalidRequest: Saying what is wrong with the `subject` (`invalid watchlist: ...`).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(explain(exc, subject)) from None
