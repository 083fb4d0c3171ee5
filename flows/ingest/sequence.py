"""Per-symbol trade-id sequencing: drop duplicates, find gaps, in bounded memory.

Binance numbers each symbol's trades consecutively: the raw trade id on a spot ``@trade``
stream, the aggregate id (`Trade.trade_id`) on a USDⓈ-M ``@aggTrade`` stream. A live
ingest sees the same id twice when two connections overlap (a rotation opens the
replacement before closing the old one) and misses ids when a connection drops, is
rotated away with unread data, or falls behind. This module is the pure logic that
decides, trade by trade, what to publish and which ids are missing; it does no I/O and
reads no clock (the caller passes `now`), so it is tested by tables of ids.

Memory per symbol is constant: the highest id seen, the connection it came from, and at
most `max_holes` open holes (id ranges missing so far). A hole is not reported at once:
an id a lagging connection still holds may yet fill it, so a hole becomes a `Gap` only
after `grace_s` without being filled (or when a symbol has more holes than it may keep).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

Cause = Literal["reconnect", "rotation", "server_shutdown", "stall", "sequence", "restart"]
"""Why ids went missing, as the `data_quality.cause` column names it.

`reconnect`, `rotation`, `server_shutdown` and `stall` name why the connection that
delivered the first trade after the hole was opened; `sequence` is a hole within one
connection's stream (the exchange, or our reader, skipped ids); `restart` is the hole
between the last id an earlier ingest published (`TradeSequencer.seed`) and the first
one this process received: what the exchange printed while ingest was down.
"""

CAUSES: tuple[Cause, ...] = (
    "reconnect", "rotation", "server_shutdown", "stall", "sequence", "restart",
)  # fmt: skip

_SEEDED = -1
"""The connection of a seeded track: no socket has this id (they count up from 1)."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Trade ids of one symbol that the stream never delivered.

    Attributes:
        symbol: Exchange symbol, e.g. ``BTCUSDT``.
        first_id: First missing id (inclusive).
        last_id: Last missing id (inclusive).
        cause: Why they went missing, when known.
        detected_at: The caller's clock (seconds) when the hole was first seen.
    """

    symbol: str
    first_id: int
    last_id: int
    cause: Cause
    detected_at: float = 0.0

    @property
    def missing(self) -> int:
        """How many ids are missing."""
        return self.last_id - self.first_id + 1


class Origin(NamedTuple):
    """Which connection delivered a trade, and why that connection was opened.

    Attributes:
        connection: Any id unique to one socket among its market's connections.
        cause: Why the socket was opened; ``None`` for the first socket of a shard, whose
            holes (there can be none before its first trade) are `sequence` holes.
    """

    connection: int
    cause: Cause | None


class Verdict(NamedTuple):
    """What to do with one trade.

    Attributes:
        publish: True to publish it; False for a duplicate.
        gaps: Holes given up on waiting for right now (only when a symbol had more open
            holes than it may keep); the rest come from `TradeSequencer.due`.
    """

    publish: bool
    gaps: tuple[Gap, ...] = ()


_DUPLICATE = Verdict(False)
_PUBLISH = Verdict(True)


class _Hole:
    """An open hole: ids `first`..`last` not seen yet, since `since`."""

    __slots__ = ("cause", "first", "last", "since")

    def __init__(self, first: int, last: int, since: float, cause: Cause) -> None:
        self.first = first
        self.last = last
        self.since = since
        self.cause = cause


class _Track:
    """One symbol: the highest id seen, where it came from, and the open holes."""

    __slots__ = ("connection", "holes", "last")

    def __init__(self, last: int, connection: int) -> None:
        self.last = last
        self.connection = connection
        self.holes: list[_Hole] = []


@dataclass(slots=True)
class SequenceCounts:
    """What a sequencer has seen.

    Attributes:
        accepted: Trades to publish (in order or filling a hole).
        duplicates: Trades dropped because their id was already accepted.
        late_fills: Accepted trades that filled a hole (arrived out of order).
        gaps: Gaps reported.
        missing: Ids in the reported gaps.
    """

    accepted: int = 0
    duplicates: int = 0
    late_fills: int = 0
    gaps: int = 0
    missing: int = 0


class TradeSequencer:
    """Tracks each symbol's trade ids: which trades to publish and which ids are missing.

    The first trade of a symbol starts its sequence (what came before is backfill's
    business), unless the symbol was `seed`-ed with the last id an earlier process
    published: then ids up to the seed are duplicates and a first trade beyond the next
    id opens a ``restart`` hole. After that, per symbol:

    - an id at or below the highest seen and in no open hole is a duplicate: dropped;
    - the next id is published;
    - an id beyond the next opens a hole for the ids in between and is published;
    - an id inside an open hole is published and shrinks (or splits) the hole.

    Args:
        grace_s: How long a hole may wait to be filled by a lagging connection before it
            is reported as a gap. 0 reports holes at the next `due` call.
        max_holes: Open holes kept per symbol; opening one more reports the oldest.
    """

    def __init__(self, *, grace_s: float = 2.0, max_holes: int = 16) -> None:
        if grace_s < 0:
            raise ValueError(f"grace_s must not be negative, got {grace_s}")
        if max_holes < 1:
            raise ValueError(f"max_holes must be at least 1, got {max_holes}")
        self.grace_s = grace_s
        self.max_holes = max_holes
        self.counts = SequenceCounts()
        self._tracks: dict[str, _Track] = {}
        self._with_holes: set[str] = set()

    def accept(self, symbol: str, trade_id: int, origin: Origin, now: float) -> Verdict:
        """Decide about one trade.

        Args:
            symbol: The trade's symbol.
            trade_id: Its sequence id (raw id for ``@trade``, aggregate id for
                ``@aggTrade``).
            origin: The connection that delivered it.
            now: The caller's clock in seconds (monotonic), stamped on new holes.

        Returns:
            Whether to publish it, and any gaps given up on right now.
        """
        track = self._tracks.get(symbol)
        if track is None:
            self._tracks[symbol] = _Track(trade_id, origin.connection)
            self.counts.accepted += 1
            return _PUBLISH
        last = track.last
        if trade_id == last + 1:
            track.last = trade_id
            track.connection = origin.connection
            self.counts.accepted += 1
            return _PUBLISH
        if trade_id > last:
            cause: Cause
            if track.connection == _SEEDED:
                cause = "restart"
            elif origin.connection != track.connection and origin.cause is not None:
                cause = origin.cause
            else:
                cause = "sequence"
            track.holes.append(_Hole(last + 1, trade_id - 1, now, cause))
            self._with_holes.add(symbol)
            track.last = trade_id
            track.connection = origin.connection
            self.counts.accepted += 1
            if len(track.holes) > self.max_holes:
                oldest = track.holes.pop(0)
                return Verdict(True, (self._report(symbol, oldest),))
            return _PUBLISH
        if track.holes and self._fill(track, trade_id):
            if not track.holes:
                self._with_holes.discard(symbol)
            self.counts.accepted += 1
            self.counts.late_fills += 1
            return _PUBLISH
        self.counts.duplicates += 1
        return _DUPLICATE

    def seed(self, symbol: str, last_id: int) -> None:
        """Continue `symbol`'s sequence from an id already published (by an earlier run).

        Ids up to `last_id` are then duplicates, and a first trade beyond ``last_id + 1``
        opens a ``restart`` hole for the ids in between. A symbol already tracked is
        left as it is: what this process has seen is newer.

        Args:
            symbol: The symbol.
            last_id: The highest id of it already published.
        """
        if symbol not in self._tracks:
            self._tracks[symbol] = _Track(last_id, _SEEDED)

    def due(self, now: float) -> list[Gap]:
        """Report every hole that has waited `grace_s` without being filled.

        Args:
            now: The caller's clock, as passed to `accept`.

        Returns:
            The gaps, oldest first per symbol; each is reported once.
        """
        gaps: list[Gap] = []
        cutoff = now - self.grace_s
        for symbol in list(self._with_holes):
            track = self._tracks[symbol]
            keep = []
            for hole in track.holes:
                if hole.since <= cutoff:
                    gaps.append(self._report(symbol, hole))
                else:
                    keep.append(hole)
            track.holes = keep
            if not keep:
                self._with_holes.discard(symbol)
        return gaps

    def flush(self) -> list[Gap]:
        """Report every open hole now, whatever its age (at shutdown)."""
        return self.due(float("inf"))

    def forget(self, symbols: Iterable[str]) -> None:
        """Drop the state of symbols no longer followed (delisted), open holes included."""
        for symbol in symbols:
            self._tracks.pop(symbol, None)
            self._with_holes.discard(symbol)

    def last_id(self, symbol: str) -> int | None:
        """The highest id accepted for `symbol`, None before its first trade."""
        track = self._tracks.get(symbol)
        return None if track is None else track.last

    def open_holes(self) -> int:
        """Holes waiting to be filled or reported, over all symbols."""
        return sum(len(self._tracks[s].holes) for s in self._with_holes)

    def _fill(self, track: _Track, trade_id: int) -> bool:
        """Take `trade_id` out of the hole holding it; False if no hole holds it."""
        for i, hole in enumerate(track.holes):
            if hole.first <= trade_id <= hole.last:
                if hole.first == hole.last:
                    del track.holes[i]
                elif trade_id == hole.first:
                    hole.first += 1
                elif trade_id == hole.last:
                    hole.last -= 1
                else:
                    # Split: the upper part keeps the hole's age and cause.
                    upper = _Hole(trade_id + 1, hole.last, hole.since, hole.cause)
                    hole.last = trade_id - 1
                    track.holes.insert(i + 1, upper)
                return True
        return False

    def _report(self, symbol: str, hole: _Hole) -> Gap:
        gap = Gap(symbol, hole.first, hole.last, hole.cause, hole.since)
        self.counts.gaps += 1
        self.counts.missing += gap.missing
        return gap


class QuoteFilter:
    """Keeps only quotes newer than the last one published, per symbol.

    A bookTicker's update id (`u`) rises with every change of the symbol's book, so a
    quote whose id is not above the last published one is a duplicate from an
    overlapping connection, or stale. One integer per symbol.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self.stale = 0

    def accept(self, symbol: str, update_id: int) -> bool:
        """True to publish this quote, False to drop it as a duplicate or stale."""
        last = self._last.get(symbol)
        if last is not None and update_id <= last:
            self.stale += 1
            return False
        self._last[symbol] = update_id
        return True

    def forget(self, symbols: Iterable[str]) -> None:
        """Drop the state of symbols no longer followed."""
        for symbol in symbols:
            self._last.pop(symbol, None)
