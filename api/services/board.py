"""The scanner board a request gets: the filter its query string asks for (with the
signed-in user's lists resolved into it), and the board it is applied to: the live one,
the delayed one of the free tier, or the history in ClickHouse as of a past moment.

`GET /api/v1/scan` and `GET /api/v1/stream/ranks` both assemble their filter and choose
their board here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from clickhouse_connect.driver.exceptions import ClickHouseError

from api.accounts import user_state
from api.accounts.db import AccountsDb
from api.accounts.entitlements import Entitlements
from api.errors import Forbidden, InvalidRequest, Unavailable
from api.live.board import Board
from api.services.columns import SORT_COLUMNS
from api.services.filter_eval import SymbolLookup, compile_filter
from api.services.filter_query import QueryParams, parse_query
from api.services.filter_sql import history_rows, history_sql, parse_at
from api.services.filters import (
    MAX_CONDITIONS,
    MAX_GROUP_CONDITIONS,
    MAX_GROUPS,
    MAX_LIMIT,
    ScanFilter,
    shown,
)
from api.store import Store
from schemas.ranks import RankRow

logger = logging.getLogger(__name__)

MAX_ID = 2**31 - 1
"""Largest row id (an id beyond it is refused before it reaches the database)."""

LIST_PARAMS: tuple[str, ...] = ("watchlist", "ignored")
"""Query parameters that put the signed-in user's lists in a scanner filter."""

LIST_PARAMS_DOC = """
- `watchlist`: the id of one of the signed-in user's watchlists: only its symbols
  (instead of `watch`; a 401 without a signed-in user)
- `ignored=mine`: never the symbols of the signed-in user's ignore-list (besides any in
  `ignore`; a 401 without a signed-in user)"""
"""How the list parameters are written, for the routes' descriptions."""

FILTER_QUERY_DOC = f"""
A filter is written either as simple parameters a trader can type, or as one `filter`
parameter holding a whole filter as JSON (the `filter` object of the response, e.g.
from the UI). All parts must hold; every list is comma-separated or repeated.

- `min_<column>`, `max_<column>`: inclusive thresholds on a metric column:
  `min_change_pct_5m=3`, `max_rsi_14=30`, `min_quote_volume_24h=5M` (numbers may end in
  k, M or B)
- `where`: a column compared with a number or with another column times a factor plus
  an offset: `where=price>vwap_24h`, `where=change_pct_5m>change_pct_1h/12`,
  `where=price>=1.02*vwap_24h`, `where=rsi_14 between 30 and 70` (`>`, `>=`, `<`, `<=`,
  `between ... and ...`; `/n` is `* (1/n)`). Clauses joined by `|` (or ` or `) form
  a group of which any one must hold: `where=rvol_5m>=3|change_pct_5m>2`; repeated
  `where` parameters must all hold. URL-encode it (`curl -G --data-urlencode`), or at
  least `+` as `%2B`; `curl -g` sends `>` and `|` as they are
- `quote`: quote assets, `quote=USDT,USDC` (default: all)
- `market`: `spot`, `usdm` or its alias `perpetual` (default: both)
- `exchange`: exchanges, `exchange=binance` (default: all)
- `watch`: only these symbols, `watch=BTCUSDT,binance:usdm:ETHUSDT` (a bare symbol
  means every market listing it)
- `ignore`: never these symbols (same form as `watch`)
- `new_high`, `new_low`: `true` for only symbols at a new 24h high (low), `false` for
  none of them
- `min_volume`, `max_volume`, `volume_window`: a band of quote volume over a window
  (default 24h)
- `sort`: a column, `-` first for descending: `sort=-change_pct_5m` (default
  `-change_pct_24h`); rows without a value come last either way, ties go by symbol key
- `limit`: rows, 1 to {MAX_LIMIT} (default 100)
- `filter`: the whole filter as JSON, instead of the parameters above{LIST_PARAMS_DOC}

In JSON a condition's `value` (and between's `value2`) is a number or another metric,
`{{"metric": "change_pct_1h", "factor": 0.0833, "offset": 0}}`, and `groups` holds OR groups,
`[{{"any": [condition, ...]}}]` (at most {MAX_GROUPS} groups of up to {MAX_GROUP_CONDITIONS}
conditions, {MAX_CONDITIONS} conditions in all). A condition with no value on either side
(a metric still null) is false, in a group too.

Columns: {", ".join(f"`{c}`" for c in SORT_COLUMNS)}.
An unknown parameter, column, window or symbol form, a value that is not a number, or a
list longer than its cap is a 422 saying what to change.
"""
"""How a filter is written in a query string; the live ranks stream takes the same."""


ListOwner = Callable[[], Awaitable[tuple[AccountsDb, int]]]
"""Signs the request's user in when a filter names their lists: their accounts database
and id (raises `Unauthorized` without a signed-in user)."""


def _one(params: QueryParams, name: str) -> str | None:
    values = [value.strip() for key, value in params.multi_items() if key == name and value.strip()]
    if len(values) > 1:
        raise InvalidRequest(f"parameter {name} is given more than once")
    return values[0] if values else None


async def board_filter(
    params: QueryParams, owner: ListOwner, *, exclude: Collection[str] = ()
) -> ScanFilter:
    """The scanner filter of a query string, with the signed-in user's watchlist
    (`watchlist=<id>`) and ignore-list (`ignored=mine`) resolved into it.

    Args:
        params: The query string (`/scan`, `/stream/ranks`).
        owner: Who owns the lists; asked only when a list parameter is given.
        exclude: Parameters of the route itself, not of the filter (`at`).

    Raises:
        InvalidRequest: For a bad filter or list parameter.
        Unauthorized: For a list parameter without a signed-in user.
        NotFound: For a watchlist id the user has not.
    """
    scan = parse_query(params, exclude=(*exclude, *LIST_PARAMS))
    watchlist, ignored = _one(params, "watchlist"), _one(params, "ignored")
    if watchlist is None and ignored is None:
        return scan
    if watchlist is not None and not (
        watchlist.isascii() and watchlist.isdigit() and 0 < int(watchlist[:12]) <= MAX_ID
    ):
        raise InvalidRequest(f"watchlist: {shown(watchlist)} is not a watchlist id")
    if ignored is not None and ignored != "mine":
        raise InvalidRequest(f"ignored: {shown(ignored)} is not 'mine'")
    db, user_id = await owner()
    async with db.session() as session:
        return await user_state.apply_lists(
            session,
            user_id,
            scan,
            watchlist=None if watchlist is None else int(watchlist),
            ignored=ignored is not None,
        )


def streams_live(entitlements: Entitlements) -> bool:
    """Whether a caller follows the live board, or else the delayed one (no `live_board`)."""
    return entitlements.live_board


@dataclass(frozen=True, slots=True)
class BoardRows:
    """One board as a caller gets it: its moment, where it came from, its chosen rows."""

    as_of_ms: int | None
    source: Literal["live", "history"]
    rows: list[dict[str, Any]]


def _row(row: RankRow, base_asset: str | None, quote_asset: str | None) -> dict[str, Any]:
    record = msgspec.structs.asdict(row)
    record["base_asset"], record["quote_asset"] = base_asset, quote_asset
    return record


class Boards:
    """The boards of one API process a scan chooses from.

    Args:
        store: ClickHouse, for the board as of a past moment.
        live: The live board, None without live delivery.
        delayed: The free tier's delayed board, None without one.
        symbols: Symbol metadata by key, None without a symbol directory.
    """

    def __init__(
        self,
        store: Store,
        live: Board | None,
        delayed: Board | None,
        symbols: SymbolLookup | None,
    ) -> None:
        self.store = store
        self.live = live
        self.delayed = delayed
        self.symbols = symbols

    def current(self, entitlements: Entitlements) -> Board | None:
        """The live board, or the delayed one for a caller without `live_board` (never the
        live one instead: without a delayed board there is none)."""
        return self.live if streams_live(entitlements) else self.delayed

    async def scan(self, f: ScanFilter, entitlements: Entitlements, at: str | None) -> BoardRows:
        """The rows of the board the caller may see that satisfy `f`, in its order.

        Args:
            f: The filter.
            entitlements: The caller's; without `live_board`, the delayed board, and `at`
                no later than the delay.
            at: A past moment as the caller wrote it, or None for the current board.

        Raises:
            InvalidRequest: For an `at` that is no moment.
            Forbidden: For an `at` within the delay the caller's plan keeps.
            Unavailable: When the history cannot be read, or there is no current board.
        """
        if at is not None:
            return await self._history(f, entitlements, at)
        board, symbols = self.current(entitlements), self.symbols
        if board is None or symbols is None:
            raise Unavailable("this API process has no live board; ask for a past one with at=")
        rows = []
        for row in compile_filter(f).select(board.rows.values(), symbols):
            info = symbols.get(row.key)
            rows.append(_row(row, *((info.base_asset, info.quote_asset) if info else (None, None))))
        return BoardRows(as_of_ms=board.as_of_ms, source="live", rows=rows)

    async def _history(self, f: ScanFilter, entitlements: Entitlements, at: str) -> BoardRows:
        now_ms = time.time_ns() // 1_000_000
        at_ms = parse_at(at, now_ms)
        if not entitlements.live_board and at_ms > now_ms - entitlements.delay_s * 1000:
            raise Forbidden(
                f"the board of the last {entitlements.delay_s} s is not in the "
                f"{entitlements.plan} plan: ask for an earlier at=, or a paid plan unlocks "
                "'live_board'",
                code="not_entitled",
            )
        sql, params = history_sql(f, at_ms, self.store.database)
        try:
            columns, result = await self.store.query(sql, params)
        except ClickHouseError as exc:
            logger.warning("historical scan failed: %s", exc)
            raise Unavailable("the board history cannot be read now; try again") from exc
        rows = [_row(*found) for found in history_rows(columns, result)]
        return BoardRows(as_of_ms=at_ms, source="history", rows=rows)
