"""The live board: every symbol's latest RankRow, and filtered views of it (snapshots, diffs)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

import msgspec

from api.services.filter_eval import CompiledFilter, SymbolLookup
from api.store import Store
from schemas.ranks import DERIVED_FIELDS, HISTORY_FIELDS, RankRow

logger = logging.getLogger(__name__)

FIELDS: tuple[str, ...] = RankRow.__struct_fields__
"""RankRow's fields in wire order: the columns a diff may carry."""

SNAPSHOT_HORIZON_MS = 24 * 3_600_000
"""Snapshots older than this (against the wall clock) are not loaded at start-up: a symbol
silent for a day is not on the live board until it trades again."""

_encode = msgspec.json.Encoder().encode

PERP_MARKET = "usdm"
SPOT_MARKET = "spot"


def premium_bps(perp_price: float, spot_price: float | None) -> float | None:
    """A perpetual's premium over its spot pair: (perp price / spot price - 1) in basis
    points; None without a positive spot price (see `schemas.ranks.RankRow.premium_bps`)."""
    if spot_price is None or spot_price <= 0:
        return None
    return (perp_price / spot_price - 1.0) * 10_000.0


def _with_premium(perp: RankRow, spot: RankRow | None) -> RankRow:
    """The perpetual's row with its premium over `spot` (the same row if it holds it)."""
    premium = premium_bps(perp.price, None if spot is None else spot.price)
    if premium == perp.premium_bps:
        return perp
    return msgspec.structs.replace(perp, premium_bps=premium)


class Board:
    """The latest RankRow of every symbol, as the ranks topic delivers them.

    md.ranks.v1 carries a symbol's row only when it changed, so the board starts from
    the latest snapshots in ClickHouse (`load_board`) and then applies the topic. A row
    older than the one held (a replayed backlog, two sources racing) never replaces it.

    The board is where a perpetual's row meets its spot pair's (they are different keys,
    so different partitions of the signals flow): it sets each perpetual's
    `premium_bps` from the two latest prices, when either row arrives.

    Attributes:
        rows: Latest row per symbol key (`exchange:market:symbol`).
        as_of_ms: The newest `time_ms` of any row applied, or None while empty.
        version: Rises each time `apply` changes a row, so views know when to re-evaluate.
        newest_count: Rows applied so far whose `time_ms` is `as_of_ms`.
        previous_count: The same count for the second before, when `as_of_ms` moved on:
            what a whole second looks like, so the hub can tell one that is not all here.
    """

    def __init__(self) -> None:
        self.rows: dict[str, RankRow] = {}
        self.as_of_ms: int | None = None
        self.version = 0
        self.newest_count = 0
        self.previous_count = 0

    @property
    def second_complete(self) -> bool:
        """Whether the newest second has as many rows as the one before it had."""
        return self.newest_count >= self.previous_count

    def apply(self, rows: Iterable[RankRow]) -> int:
        """Apply rows in arrival order; newer (or equal) `time_ms` wins per symbol.

        Args:
            rows: RankRows from the topic or a snapshot.

        Returns:
            How many rows changed the board.
        """
        changed = 0
        held = self.rows
        as_of = self.as_of_ms
        for row in rows:
            key = row.key
            market = row.market
            if market == PERP_MARKET:
                row = _with_premium(row, held.get(f"{row.exchange}:{SPOT_MARKET}:{row.symbol}"))
            current = held.get(key)
            if current is not None and (current.time_ms > row.time_ms or current == row):
                continue
            held[key] = row
            changed += 1
            if market == SPOT_MARKET:
                perp_key = f"{row.exchange}:{PERP_MARKET}:{row.symbol}"
                perp = held.get(perp_key)
                if perp is not None:
                    priced = _with_premium(perp, row)
                    if priced is not perp:
                        held[perp_key] = priced
                        changed += 1
            if as_of is None or row.time_ms > as_of:
                as_of = row.time_ms
                self.previous_count, self.newest_count = self.newest_count, 0
            if row.time_ms == as_of:
                self.newest_count += 1
        if changed:
            self.as_of_ms = as_of
            self.version += 1
        return changed


async def load_board(board: Board, store: Store, horizon_ms: int = SNAPSHOT_HORIZON_MS) -> int:
    """Fill the board with each symbol's latest row from ClickHouse `rank_snapshots`.

    Args:
        board: The board to fill (rows it already holds that are newer are kept).
        store: The API's ClickHouse store.
        horizon_ms: Ignore snapshots older than this, against the wall clock.

    Returns:
        How many rows were applied; 0 when the table does not exist (yet).
    """
    params = {"db": store.database}
    _, exists = await store.query("EXISTS TABLE {db:Identifier}.rank_snapshots", params)
    if not exists or not exists[0][0]:
        logger.warning("no rank_snapshots table in %s: the board starts empty", store.database)
        return 0
    # Column names come from the RankRow schema, never from a request; the history
    # fields are not snapshotted (they describe the flow's rings, not the market), nor
    # are the derived ones (`apply` computes them).
    columns = ", ".join(
        "toUnixTimestamp64Milli(time) AS time_ms" if name == "time_ms" else name
        for name in FIELDS
        if name not in HISTORY_FIELDS and name not in DERIVED_FIELDS
    )
    sql = (
        f"SELECT {columns} FROM {{db:Identifier}}.rank_snapshots FINAL"
        " WHERE time >= now64(3) - toIntervalMillisecond({horizon:Int64})"
        " ORDER BY exchange, market, symbol, time DESC"
        " LIMIT 1 BY exchange, market, symbol"
    )
    names, rows = await store.query(sql, {**params, "horizon": horizon_ms})
    loaded = [msgspec.convert(dict(zip(names, row, strict=True)), RankRow) for row in rows]
    applied = board.apply(loaded)
    logger.info("board loaded %d symbols from rank_snapshots", applied)
    return applied


class Diff(NamedTuple):
    """A view's change between two evaluations."""

    body: bytes
    """The JSON message body."""
    rows: int
    """Rows it upserts or removes."""


class FilteredBoard:
    """One filter's view of the board, evaluated once for every client that shares it.

    Each evaluation is compared with the previous one: clients that hold the previous
    state (every client that lost nothing) need only the diff, so the diff is encoded
    once and sent to all of them; a new or resynchronising client gets the snapshot.

    Args:
        compiled: The compiled filter.

    Attributes:
        seq: Number of the state last evaluated; each diff raises it by one.
        rows: The rows of that state by key; `order` their keys, sorted.
    """

    def __init__(self, compiled: CompiledFilter) -> None:
        self.compiled = compiled
        self.seq = 0
        self.rows: dict[str, RankRow] = {}
        self.order: list[str] = []
        self.as_of_ms: int | None = None
        self.board_version = -1
        self._snapshot: bytes | None = None

    def evaluate(self, board: Board, symbols: SymbolLookup) -> Diff | None:
        """Re-run the filter on the board; the JSON diff against the last state, if any.

        Args:
            board: The live board.
            symbols: Symbol metadata by key (quote-asset filters need it).

        Returns:
            The diff, whose body holds `upsert` (per changed row its `key` and the
            fields that changed; every field of a row new to the view), `remove`
            (keys), `order` (only when it changed), `as_of_ms` and `seq`; or None when
            the view did not change (the first evaluation returns None too: there is
            nothing to diff against).
        """
        first = self.board_version < 0
        self.board_version = board.version
        selected = self.compiled.select(board.rows.values(), symbols)
        order = [row.key for row in selected]
        rows = dict(zip(order, selected, strict=True))
        previous = self.rows
        upsert = [change for row in selected if (change := _changes(previous.get(row.key), row))]
        remove = [key for key in previous if key not in rows]
        order_changed = order != self.order
        self.rows, self.order, self.as_of_ms = rows, order, board.as_of_ms
        if first or not (upsert or remove or order_changed):
            return None
        self.seq += 1
        self._snapshot = None
        diff: dict[str, Any] = {"upsert": upsert, "remove": remove}
        if order_changed:
            diff["order"] = order
        diff["as_of_ms"] = self.as_of_ms
        diff["seq"] = self.seq
        return Diff(_encode(diff), len(upsert) + len(remove))

    def snapshot(self) -> bytes:
        """The JSON body of the current state: `rows` (full RankRows, sorted), `order`,
        `as_of_ms`, `seq`; encoded once per state."""
        if self._snapshot is None:
            self._snapshot = _encode(
                {
                    "rows": [self.rows[key] for key in self.order],
                    "order": self.order,
                    "as_of_ms": self.as_of_ms,
                    "seq": self.seq,
                }
            )
        return self._snapshot


def _changes(old: RankRow | None, new: RankRow) -> dict[str, Any] | None:
    """The fields of `new` that differ from `old` (all of them for a new row), with `key`."""
    if old is new:
        return None
    change: dict[str, Any] = {"key": new.key}
    if old is None:
        change.update(msgspec.structs.asdict(new))
        return change
    for name, value, was in zip(
        FIELDS, msgspec.structs.astuple(new), msgspec.structs.astuple(old), strict=True
    ):
        if value != was:
            change[name] = value
    return change if len(change) > 1 else None
